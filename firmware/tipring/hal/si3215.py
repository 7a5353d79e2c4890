"""Silicon Labs ProSLIC Si3215 (and Si3210) over SPI, with RESET and INT GPIOs; audio over the PCM bus.

Everything the chip does is registers, so this driver is the datasheet's bring-up written out:
reset pulse, identification, indirect-register defaults with their filters flushed, DC-DC
converter power-up (PWM period first, then power, then wait for the battery voltage to rise),
calibration (enables first, then CAL, wait until it self-clears), DC-DC calibration, PCM bus,
gains and impedance, ring oscillator, interrupts, then forward active.

Why the access helpers look the way they do:
- SPI: one byte per chip-select frame (the ProSLIC wants CS released between the control byte
  and the data byte), so every access is two `xfer2` calls of one byte.
- Indirect registers are reached through DR28-31 and the chip needs time to move the data; an
  access started while IAS (DR31 bit 0) is set is lost, so every indirect access first waits
  for IAS to clear and a read waits again before fetching the data.
- Hook events come from the chip's own debounced loop-closure / ring-trip interrupts on INT, so
  pulse-dial timing is the chip's; the event time is the interrupt time minus that debounce.
- Power alarm (a line-driver transistor overheating: a short or a lightning-damaged line): the
  chip opens the line itself; the driver keeps it open, stops ringing and reports the fault
  through `fault` / `on_fault` until `clear_fault()`.

Waits (battery rise, calibration) poll a register on the injected `Clock`, so tests run them on
virtual time against the emulator; on the device the clock is real time.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from tipring.hal import si3215_regs as r
from tipring.hal.api import (
    Board,
    HardwareError,
    GuardedSlic,
    HookEvent,
    Linefeed,
    LinePort,
    RingCadence,
)
from tipring.hal.simclock import Clock, RealClock, TimerHandle

if TYPE_CHECKING:
    from tipring.hal.profile import BoardProfile

__all__ = [
    "ProSlicRegisters",
    "Si3215Board",
    "Si3215Settings",
    "Si3215Slic",
    "SpiBus",
    "open_si3215_board",
    "spidev_bus",
]

log = logging.getLogger(__name__)

VBAT_READY = 0xC0  # about 72 V: the DC-DC converter is up
VBAT_TIMEOUT_S = 0.5
CAL_TIMEOUT_S = 2.0
POLL_S = 0.005
IAS_POLLS = 100  # an indirect access takes microseconds; each poll is one SPI read
RESET_PULSE_S = 0.010
FaultListener = Callable[[str], None]

_LINEFEED_CODES = {
    Linefeed.OPEN: r.LF_OPEN,
    Linefeed.FORWARD_ACTIVE: r.LF_FORWARD_ACTIVE,
    Linefeed.ON_HOOK_TRANSMISSION: r.LF_FORWARD_OHT,
    Linefeed.REVERSE_ACTIVE: r.LF_REVERSE_ACTIVE,
}


class SpiBus(Protocol):
    """The one spidev call the driver uses; CS is asserted for the whole list."""

    def xfer2(self, data: list[int]) -> list[int]: ...


class ProSlicRegisters:
    """Direct and indirect register access to one ProSLIC, serialised by a lock."""

    def __init__(self, spi: SpiBus, where: str) -> None:
        self._spi = spi
        self.where = where
        self.si3215 = False  # set by identification: translates indirect addresses
        self.lock = threading.RLock()

    def read(self, reg: int) -> int:
        with self.lock:
            self._spi.xfer2([r.READ | reg])
            return self._spi.xfer2([0x00])[0] & 0xFF

    def write(self, reg: int, value: int) -> None:
        if not 0 <= value <= 0xFF:
            raise ValueError(f"register {reg}: {value} does not fit 8 bits")
        with self.lock:
            self._spi.xfer2([reg & 0x7F])
            self._spi.xfer2([value])

    def _indirect_address(self, ir: int) -> int:
        if not self.si3215:
            return ir
        try:
            return r.SI3215_INDIRECT[ir]
        except KeyError:
            raise HardwareError(
                f"{self.where}: indirect register {ir} does not exist on an Si3215"
            ) from None

    def _wait_indirect_idle(self) -> None:
        for _ in range(IAS_POLLS):
            if not self.read(r.IND_STATUS) & r.IAS:
                return
        raise HardwareError(
            f"{self.where}: indirect access still pending after {IAS_POLLS} polls (DR31)"
        )

    def write_indirect(self, ir: int, value: int) -> None:
        address = self._indirect_address(ir)
        with self.lock:
            self._wait_indirect_idle()
            self.write(r.IND_DATA_LO, value & 0xFF)
            self.write(r.IND_DATA_HI, (value >> 8) & 0xFF)
            self.write(r.IND_ADDRESS, address)

    def read_indirect(self, ir: int) -> int:
        address = self._indirect_address(ir)
        with self.lock:
            self._wait_indirect_idle()
            self.write(r.IND_ADDRESS, address)
            self._wait_indirect_idle()
            return self.read(r.IND_DATA_LO) | self.read(r.IND_DATA_HI) << 8


@dataclass(frozen=True)
class Si3215Settings:
    """Analog and PCM settings of one line (profile `[[line]]` keys of the same names)."""

    pcm_format: str = "linear"  # linear | ulaw | alaw
    timeslot: int = 0  # PCM slot: 8 PCLK bits per slot for G.711, 16 for linear
    tx_start: int | None = None  # explicit PCLK counts override timeslot (odd bus layouts)
    rx_start: int | None = None
    tx_gain_db: float = 0.0  # -3.5, 0 or +3.5 (analog)
    rx_gain_db: float = 0.0
    impedance: str = "600"
    loop_current_ma: int = 20  # 20..41 in 3 mA steps
    ring_peak_volts: float = 65.0
    vbath: int = 0x32  # high battery for ringing, 1.5 V units (75 V)
    loop_debounce_ms: float = 12.5
    ring_trip_debounce_ms: float = 12.5
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.pcm_format not in r.PCM_FORMATS:
            raise ValueError(
                f"pcm_format must be one of {', '.join(r.PCM_FORMATS)}, got {self.pcm_format!r}"
            )
        for name in ("tx_gain_db", "rx_gain_db"):
            if getattr(self, name) not in r.GAIN_CODES:
                raise ValueError(f"{name} must be -3.5, 0 or 3.5, got {getattr(self, name)!r}")
        if self.impedance not in r.IMPEDANCES:
            raise ValueError(
                f"impedance must be one of {', '.join(r.IMPEDANCES)}, got {self.impedance!r}"
            )
        if not 20 <= self.loop_current_ma <= 41:
            raise ValueError(f"loop_current_ma must be 20..41, got {self.loop_current_ma}")
        if not 0 <= self.timeslot <= 63:
            raise ValueError(f"timeslot must be 0..63, got {self.timeslot}")
        for name in ("loop_debounce_ms", "ring_trip_debounce_ms"):
            if not 0 < getattr(self, name) <= 150:
                raise ValueError(f"{name} must be in (0, 150] ms, got {getattr(self, name)}")
        r.ring_oscillator(20.0, self.ring_peak_volts)  # validates the amplitude

    def start_counts(self) -> tuple[int, int]:
        bits = 16 if self.pcm_format == "linear" else 8
        slot = self.timeslot * bits
        tx = slot if self.tx_start is None else self.tx_start
        rx = slot if self.rx_start is None else self.rx_start
        for count in (tx, rx):
            if not 0 <= count <= 0x3FF:
                raise ValueError(f"PCM start count {count} does not fit 10 bits")
        return tx, rx


class Si3215Slic(GuardedSlic):
    """One FXS line on a ProSLIC. Interrupts arrive on gpiozero's thread; timers on the clock's."""

    def __init__(
        self,
        line: int,
        regs: ProSlicRegisters,
        clock: Clock,
        *,
        settings: Si3215Settings | None = None,
        reset: Any = None,
        interrupt: Any = None,
    ) -> None:
        self.line = line
        self.on_hook_event = None
        self.on_fault: FaultListener | None = None
        self.regs = regs
        self.settings = settings or Si3215Settings()
        self._clock = clock
        self._reset = reset  # gpiozero DigitalOutputDevice, active high = chip running
        self._interrupt = interrupt  # gpiozero DigitalInputDevice, active = INT low
        self._lock = threading.RLock()
        self._wait_cond = threading.Condition()
        self._linefeed = Linefeed.OPEN
        self._before_ring = Linefeed.FORWARD_ACTIVE
        self._off_hook = False
        self._cadence: RingCadence | None = None
        self._ring_frequency: float | None = None
        self._ring_timer: TimerHandle | None = None
        self._ring_generation = 0
        self._fault: str | None = None
        self._closed = False
        self.part = "unknown"
        self.revision = 0

    # -- bring-up -------------------------------------------------------------------------------

    def start(self) -> None:
        """Reset, identify, power up, calibrate and configure; leaves the line forward active."""
        if self._reset is not None:
            self._reset.off()  # RESET low: chip held in reset
            self._pause(RESET_PULSE_S)
            self._reset.on()
            self._pause(RESET_PULSE_S)
        self._identify()
        regs = self.regs
        regs.write(r.POWER_DOWN_1, r.PDDCDC)  # DC-DC off until it is set up
        for ir, value in r.INDIRECT_DEFAULTS.items():
            regs.write_indirect(ir, value)
        regs.write(r.AUDIO_LOOPBACK, 0x00)  # reset leaves a loopback on: clear it
        regs.write(r.AUTO_CONTROL, r.AUTO_DEFAULT)
        regs.write(r.BATTERY_FEED, 0x01)
        saved = {ir: regs.read_indirect(ir) for ir in r.IR_FILTERS}
        for ir in r.IR_FILTERS:
            regs.write_indirect(ir, r.FILTER_FLUSH)  # hold the filters clear while power comes up
        self._power_up()
        self._calibrate()
        for ir, value in saved.items():
            regs.write_indirect(ir, value)
        self._verify_indirect()
        self._configure_audio()
        self._configure_ringing(20.0)
        regs.write(r.LOOP_DEBOUNCE, round(self.settings.loop_debounce_ms / 1.25))
        regs.write(r.RING_TRIP_DEBOUNCE, round(self.settings.ring_trip_debounce_ms / 1.25))
        for status in (r.IRQ_STATUS_1, r.IRQ_STATUS_2, r.IRQ_STATUS_3):
            regs.write(status, 0xFF)  # write-one-to-clear anything left from power-up
        regs.write(r.IRQ_ENABLE_1, 0x00)
        regs.write(r.IRQ_ENABLE_2, r.RTIP | r.LCIP | r.POWER_ALARMS)
        regs.write(r.IRQ_ENABLE_3, 0x00)
        with self._lock:
            self._off_hook = bool(regs.read(r.LOOP_STATUS) & r.LCR)
            self._write_linefeed_locked(Linefeed.FORWARD_ACTIVE)
        if self._interrupt is not None:
            self._interrupt.when_activated = self.service_interrupt
            if self._interrupt.is_active:
                self.service_interrupt()
        log.info("line %d: %s rev %d ready on %s", self.line, self.part, self.revision, regs.where)

    def _pause(self, seconds: float) -> None:
        with self._wait_cond:
            self._clock.wait_until(self._clock.now() + seconds, self._wait_cond, lambda: False)

    def _poll(self, done: Callable[[], bool], timeout: float) -> bool:
        deadline = self._clock.now() + timeout
        while not done():
            if self._clock.now() >= deadline:
                return False
            self._pause(POLL_S)
        return True

    def _identify(self) -> None:
        regs = self.regs
        ident = regs.read(r.SPI_MODE)
        self.revision = ident & 0x0F
        if self.revision in (0x0, 0xF):
            raise HardwareError(
                f"{regs.where}: no ProSLIC answers (DR0 reads {ident:#04x}); check the HAT is seated, "
                "SPI wiring and the RESET pin"
            )
        checks = {r.AUDIO_LOOPBACK: 0x02, r.HYBRID: 0x33, r.LINEFEED: 0x00}
        for reg, expected in checks.items():
            got = regs.read(reg)
            if got != expected:
                raise HardwareError(
                    f"{regs.where}: ProSLIC fails its reset check: DR{reg} reads {got:#04x}, "
                    f"expected {expected:#04x} after reset"
                )
        regs.si3215 = bool(regs.read(r.PCM_MODE) & r.SI3215_FLAG)
        self.part = "Si3215" if regs.si3215 else "Si3210"

    def _power_up(self) -> None:
        regs = self.regs
        regs.write(r.DCDC_PWM_PERIOD, 0xFF)
        regs.write(r.POWER_DOWN_1, 0x00)
        if not self._poll(lambda: regs.read(r.VBAT_SENSE) >= VBAT_READY, VBAT_TIMEOUT_S):
            vbat = regs.read(r.VBAT_SENSE)
            regs.write(r.POWER_DOWN_1, r.PDDCDC)
            raise HardwareError(
                f"{regs.where}: battery voltage did not rise ({vbat * 0.376:.1f} V after "
                f"{VBAT_TIMEOUT_S * 1000:.0f} ms): check the DC-DC supply and that PCLK/FSYNC run"
            )
        regs.write(r.LOOP_CURRENT_LIMIT, (self.settings.loop_current_ma - 20) // 3)
        regs.write(r.DCDC_CONTROL, r.DCDC_ENGAGE)

    def _calibrate(self) -> None:
        regs = self.regs
        regs.write(r.CALIBRATION_2, r.CAL_ALL_2)
        regs.write(r.CALIBRATION_1, r.CAL_START | r.CAL_ALL_1)
        if not self._poll(lambda: regs.read(r.CALIBRATION_1) == 0, CAL_TIMEOUT_S):
            raise HardwareError(
                f"{regs.where}: calibration did not finish within {CAL_TIMEOUT_S:.0f} s (DR96)"
            )
        regs.write(r.DCDC_CONTROL, r.DCDC_ENGAGE | r.DCCAL)
        if not self._poll(lambda: not regs.read(r.DCDC_CONTROL) & r.DCCAL, CAL_TIMEOUT_S):
            raise HardwareError(f"{regs.where}: DC-DC calibration did not finish (DR93)")

    def _verify_indirect(self) -> None:
        for ir, value in r.INDIRECT_DEFAULTS.items():
            got = self.regs.read_indirect(ir)
            if got != value:
                raise HardwareError(
                    f"{self.regs.where}: indirect register {ir} reads {got:#06x}, wrote {value:#06x}"
                )

    def _configure_audio(self) -> None:
        regs, s = self.regs, self.settings
        tx, rx = s.start_counts()
        regs.write(r.PCM_MODE, 0x00)  # PCM off while its timing changes
        regs.write(r.PCM_TX_START_LO, tx & 0xFF)
        regs.write(r.PCM_TX_START_HI, tx >> 8)
        regs.write(r.PCM_RX_START_LO, rx & 0xFF)
        regs.write(r.PCM_RX_START_HI, rx >> 8)
        regs.write(r.PCM_MODE, r.PCM_ENABLE | r.PCM_FORMATS[s.pcm_format] << r.PCM_FORMAT_SHIFT)
        regs.write(r.AUDIO_GAIN, r.GAIN_CODES[s.tx_gain_db] << 2 | r.GAIN_CODES[s.rx_gain_db])
        regs.write(r.LINE_IMPEDANCE, r.IMPEDANCES[s.impedance])

    def _configure_ringing(self, frequency: float) -> None:
        osc = r.ring_oscillator(frequency, self.settings.ring_peak_volts)
        self.regs.write_indirect(r.IR_RING_OSC, osc.rco)
        self.regs.write_indirect(r.IR_RING_X, osc.rngx)
        self.regs.write_indirect(r.IR_RING_Y, osc.rngy)
        self.regs.write(r.VBATH, self.settings.vbath)
        self._ring_frequency = frequency

    # -- state ------------------------------------------------------------------------------------

    @property
    def fault(self) -> str | None:
        """Why the line is shut down (power alarm), or None."""
        with self._lock:
            return self._fault

    def clear_fault(self) -> None:
        """Allow battery again after a power alarm (an operator action after fixing the line)."""
        with self._lock:
            self._fault = None
            self.regs.write(r.IRQ_STATUS_2, r.POWER_ALARMS)
            self.regs.write(r.IRQ_ENABLE_2, r.RTIP | r.LCIP | r.POWER_ALARMS)

    # -- linefeed and ringing ------------------------------------------------------------------------

    def _write_linefeed_locked(self, state: Linefeed) -> None:
        self.regs.write(r.LINEFEED, _LINEFEED_CODES[state])
        self._linefeed = state

    def _check_usable_locked(self) -> None:
        if self._closed:
            raise HardwareError(f"line {self.line}: the Si3215 driver is closed")
        if self._fault is not None:
            raise HardwareError(
                f"line {self.line}: shut down by {self._fault}; clear_fault() after fixing it"
            )

    def set_linefeed(self, state: Linefeed) -> None:
        self._check_linefeed(state)
        with self._lock:
            if state is not Linefeed.OPEN:
                self._check_usable_locked()
            self._stop_ring_locked(restore=False)
            self._write_linefeed_locked(state)

    def ring(self, cadence: RingCadence) -> None:
        self._check_cadence(cadence)
        with self._lock:
            self._check_usable_locked()
            if self._off_hook:
                log.info("line %d: not ringing, the phone is off hook", self.line)
                return
            before = self._before_ring if self._cadence is not None else self._linefeed
            if before is Linefeed.OPEN:
                raise HardwareError(
                    f"line {self.line}: cannot ring an OPEN line; apply battery first"
                )
            self._stop_ring_locked(restore=False)
            self._before_ring = before
            if cadence.frequency_hz != self._ring_frequency:
                self._configure_ringing(cadence.frequency_hz)
            self._cadence = cadence
            self._ring_generation += 1
            if _chip_can_time(cadence):
                on, off = cadence.segments[0]
                ticks_on, ticks_off = r.timer_ticks(on), r.timer_ticks(off)
                self.regs.write(r.RING_ON_LO, ticks_on & 0xFF)
                self.regs.write(r.RING_ON_HI, ticks_on >> 8)
                self.regs.write(r.RING_OFF_LO, ticks_off & 0xFF)
                self.regs.write(r.RING_OFF_HI, ticks_off >> 8)
                self.regs.write(r.RING_OSC_CTL, r.RTAE | r.RTIE if off > 0 else 0)
                self.regs.write(r.LINEFEED, r.LF_RINGING)
            else:
                # Multi-segment cadences (UK double ring...) the chip's one timer pair cannot do:
                # the driver switches ringing on and off on the clock.
                self.regs.write(r.RING_OSC_CTL, 0)
                self._software_cadence_locked(_bursts(self._clock.now(), cadence))

    def _software_cadence_locked(self, edges: Iterator[tuple[float, bool]]) -> None:
        when, on = next(edges)
        generation = self._ring_generation

        def step() -> None:
            with self._lock:
                if generation != self._ring_generation or self._cadence is None:
                    return
                self.regs.write(r.LINEFEED, r.LF_RINGING if on else r.LF_FORWARD_OHT)
                self._software_cadence_locked(edges)

        if when <= self._clock.now():
            self.regs.write(r.LINEFEED, r.LF_RINGING if on else r.LF_FORWARD_OHT)
            self._software_cadence_locked(edges)
        else:
            self._ring_timer = self._clock.call_at(when, step)

    def stop_ring(self) -> None:
        with self._lock:
            self._stop_ring_locked(restore=True)

    def _stop_ring_locked(self, restore: bool) -> None:
        if self._cadence is None:
            return
        self._ring_generation += 1
        if self._ring_timer is not None:
            self._clock.cancel(self._ring_timer)
            self._ring_timer = None
        self._cadence = None
        self.regs.write(r.RING_OSC_CTL, 0)
        if restore:
            self._write_linefeed_locked(self._before_ring)
        else:
            self._linefeed = self._before_ring

    # -- interrupts ------------------------------------------------------------------------------

    def service_interrupt(self) -> None:
        """INT went low: read and clear the pending sources, act, then report (gpiozero thread)."""
        events: list[HookEvent] = []
        fault: str | None = None
        with self._lock:
            if self._closed:
                return
            now = self._clock.now()
            pending = self.regs.read(r.IRQ_STATUS_2)
            other = (self.regs.read(r.IRQ_STATUS_1), self.regs.read(r.IRQ_STATUS_3))
            if pending:
                self.regs.write(r.IRQ_STATUS_2, pending)
            for reg, value in zip((r.IRQ_STATUS_1, r.IRQ_STATUS_3), other, strict=True):
                if value:
                    self.regs.write(reg, value)
            if pending & r.POWER_ALARMS:
                fault = self._power_alarm_locked(pending & r.POWER_ALARMS)
            if pending & r.RTIP and self._cadence is not None:
                self._stop_ring_locked(restore=True)  # ring trip: battery back at once
                if not self._off_hook:
                    self._off_hook = True
                    at = now - self.settings.ring_trip_debounce_ms / 1000
                    events.append(HookEvent(self.line, True, at))
            if pending & r.LCIP:
                closed = bool(self.regs.read(r.LOOP_STATUS) & r.LCR)
                if closed and self._cadence is not None:
                    self._stop_ring_locked(restore=True)
                if closed != self._off_hook:
                    self._off_hook = closed
                    at = now - self.settings.loop_debounce_ms / 1000
                    events.append(HookEvent(self.line, closed, at))
        for event in events:
            self._emit(event)
        if fault is not None and self.on_fault is not None:
            self.on_fault(fault)

    def _power_alarm_locked(self, bits: int) -> str:
        transistors = [f"Q{n + 1}" for n in range(6) if bits & (r.POWER_ALARMS & (0x04 << n))]
        reason = f"power alarm on {', '.join(transistors)} (line driver overheating: short or damaged line)"
        self._stop_ring_locked(restore=False)
        self._write_linefeed_locked(Linefeed.OPEN)
        self.regs.write(r.IRQ_ENABLE_2, r.RTIP | r.LCIP)  # one report, not a storm
        self._fault = reason
        log.error("line %d: %s; line shut down", self.line, reason)
        return reason

    # -- teardown ----------------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            try:
                self._stop_ring_locked(restore=False)
                self._write_linefeed_locked(Linefeed.OPEN)
            except Exception:  # a dead bus must not stop the rest of the board closing
                log.exception("line %d: could not open the line on close", self.line)
            self._closed = True
        if self._interrupt is not None and self._interrupt.when_activated is not None:
            self._interrupt.when_activated = None


def _chip_can_time(cadence: RingCadence) -> bool:
    """One (on, off) pair within the chip's 16-bit 125 us timers."""
    if len(cadence.segments) != 1:
        return False
    on, off = cadence.segments[0]
    return on <= r.TIMER_MAX and off <= r.TIMER_MAX


def _bursts(start: float, cadence: RingCadence) -> Iterator[tuple[float, bool]]:
    """(time, ringing) edges of a multi-segment cadence, from `start`, computed without drift."""
    cycle = 0
    while True:
        t = start + cycle * cadence.period
        for on, off in cadence.segments:
            yield t, True
            if off > 0:
                yield t + on, False
            t += on + off
        cycle += 1


# -- board -----------------------------------------------------------------------------------------


@dataclass
class Si3215Board(Board):
    clock: Clock | None = None
    owns_clock: bool = False
    devices: list[Any] = field(default_factory=list)

    def close(self) -> None:
        super().close()
        for device in reversed(self.devices):
            device.close()
        self.devices.clear()
        if self.owns_clock and self.clock is not None:
            self.clock.close()


def spidev_bus(bus: int, cs: int, speed_hz: int = 1_000_000) -> SpiBus:
    """Open /dev/spidevB.C (mode 3, as the ProSLIC samples on the rising SCLK edge)."""
    path = f"/dev/spidev{bus}.{cs}"
    if not os.path.exists(path):
        raise HardwareError(
            f"no SPI device {path}: enable SPI (dtparam=spi=on in config.txt) or fix spi_bus/spi_cs"
        )
    try:
        import spidev
    except ImportError as exc:
        raise HardwareError("the Si3215 board needs the spidev module (python3-spidev)") from exc
    dev = spidev.SpiDev()
    try:
        dev.open(bus, cs)
        dev.mode = 3
        dev.max_speed_hz = speed_hz
    except OSError as exc:
        raise HardwareError(f"cannot open SPI device {path}: {exc}") from exc
    return dev


_SETTING_KEYS = {
    "pcm_format": str,
    "timeslot": int,
    "tx_start": int,
    "rx_start": int,
    "tx_gain_db": float,
    "rx_gain_db": float,
    "impedance": str,
    "loop_current_ma": int,
    "ring_peak_volts": float,
    "vbath": int,
    "loop_debounce_ms": float,
    "ring_trip_debounce_ms": float,
}


def _settings_from_table(table: dict[str, Any], where: str) -> Si3215Settings:
    values: dict[str, Any] = {}
    for key, kind in _SETTING_KEYS.items():
        if key not in table:
            continue
        value = table[key]
        ok = (
            isinstance(value, str)
            if kind is str
            else (
                not isinstance(value, bool)
                and isinstance(value, int | float)
                and (kind is float or isinstance(value, int))
            )
        )
        if not ok:
            raise HardwareError(
                f"{where}.{key} must be {'text' if kind is str else 'a number'}, got {value!r}"
            )
        values[key] = float(value) if kind is float else value
    try:
        return Si3215Settings(**values)
    except ValueError as exc:
        raise HardwareError(f"{where}: {exc}") from exc


def _int_field(table: dict[str, Any], key: str, where: str, default: int | None = None) -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise HardwareError(f"{where}.{key} must be a whole number >= 0, got {value!r}")
    return value


def _pin_field(table: dict[str, Any], key: str, where: str) -> str | int:
    value = table.get(key)
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        raise HardwareError(f'{where}.{key} must be a GPIO pin like "GPIO17" or 17, got {value!r}')
    return value


def open_si3215_board(
    profile: BoardProfile,
    *,
    clock: Clock | None = None,
    pin_factory: Any = None,
    spi_factory: Callable[[int, int], SpiBus] | None = None,
    audio_opener: Any = None,
) -> Si3215Board:
    """Factory named by `hal.profile.DRIVERS`.

    Profile: `[si3215]` with `reset` (GPIO, shared by the chips); one `[[line]]` per chip with
    `spi_bus`, `spi_cs`, `interrupt` (GPIO), `playback`/`capture` (ALSA devices on the PCM bus)
    and the `Si3215Settings` keys. Missing SPI devices, GPIO chip or sound card are reported by
    name before anything is powered.
    """
    try:
        from gpiozero import DigitalInputDevice, DigitalOutputDevice
    except ImportError as exc:
        raise HardwareError("the Si3215 driver needs gpiozero (python3-gpiozero)") from exc

    from tipring.hal.ag1171 import require_gpio_chip
    from tipring.hal.alsa import audio_port_from_table

    name = profile.name
    board_table = profile.settings.get("si3215", {})
    lines = profile.settings.get("line")
    if not isinstance(board_table, dict):
        raise HardwareError(f"board {name!r}: [si3215] must be a table")
    if not isinstance(lines, list) or len(lines) != profile.lines:
        raise HardwareError(
            f"board {name!r}: needs one [[line]] table per line ({profile.lines}), "
            f"got {len(lines) if isinstance(lines, list) else lines!r}"
        )
    if spi_factory is None:
        spi_factory = spidev_bus
    if pin_factory is None:
        require_gpio_chip()
    owns_clock = clock is None
    board_clock = clock if clock is not None else RealClock()
    ports: list[LinePort] = []
    board = Si3215Board(name, "si3215", ports, board_clock, owns_clock)
    try:
        reset_pin = _pin_field(board_table, "reset", f"board {name!r}: [si3215]")
        reset = DigitalOutputDevice(reset_pin, initial_value=False, pin_factory=pin_factory)
        board.devices.append(reset)
        slics: list[Si3215Slic] = []
        for index, table in enumerate(lines):
            where = f"board {name!r}: line[{index}]"
            if not isinstance(table, dict):
                raise HardwareError(f"{where} must be a table")
            settings = _settings_from_table(table, where)
            bus, cs = _int_field(table, "spi_bus", where, 0), _int_field(table, "spi_cs", where)
            spi = spi_factory(bus, cs)
            kwargs = {} if audio_opener is None else {"opener": audio_opener}
            audio = audio_port_from_table(index, table, where, **kwargs)
            audio.start()  # probe the ALSA device (and start PCLK/FSYNC where the Pi drives them)
            audio.stop()
            interrupt = DigitalInputDevice(
                _pin_field(table, "interrupt", where), pull_up=True, pin_factory=pin_factory
            )
            board.devices.append(interrupt)
            regs = ProSlicRegisters(spi, f"ProSLIC on /dev/spidev{bus}.{cs}")
            slic = Si3215Slic(
                index,
                regs,
                board_clock,
                settings=settings,
                reset=reset if index == 0 else None,
                interrupt=interrupt,
            )
            slics.append(slic)
            ports.append(LinePort(index, slic, audio))
        for slic in slics:
            slic.start()
    except BaseException:
        board.close()
        raise
    return board
