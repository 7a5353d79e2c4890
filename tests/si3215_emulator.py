"""A register-level ProSLIC Si3215/Si3210 emulator: a fake spidev device that enforces the datasheet.

It is strict on purpose: any access the real chip would ignore, corrupt or be harmed by raises
`DatasheetViolation` (an AssertionError) inside the driver's `xfer2` call, so a driver bug fails
the test at the offending access. Rules enforced:
- SPI: one byte per chip-select frame (control byte, then data byte); no access while RESET is
  low; the RESET pulse must be at least `MIN_RESET_S` long.
- Registers: writes to read-only or reserved registers are refused.
- Indirect access: DR28/29/30 may not be written, nor DR28/29 read, while IAS (DR31 bit 0) is
  set; IAS stays set for `ias_busy_reads` reads of DR31 after each DR30 write; an indirect
  address that does not exist on the part is refused.
- Power-up order: DR92 (DC-DC PWM period) before clearing PDDCDC in DR14; VBAT then ramps up on
  the clock (only while PCLK runs).
- Calibration: CAL (DR96 bit 6) only with the DC-DC converter up and VBAT settled, the line
  OPEN, DR97's enables written first and some DR96 enable bits set; nothing may touch DR64
  while it runs; DR96 reads back 0 when done. DC-DC calibration (DR93 bit 7) self-clears.
- Linefeed: nothing but OPEN before calibration; RINGING only with RCO, RNGX and VBATH set.

Line model: the handset's hook switch, loop closure (DR68 LCR) and ring trip (RTP) after the
chip's debounce (DR69/DR70 x 1.25 ms), RTIP/LCIP interrupts in DR19 that pull the INT pin low
while enabled in DR22, ring cadence from the RAT/RIT timers (DR48-51) when RTAE/RTIE are set,
automatic ring-trip to forward active, and power alarms that drop the line to OPEN.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from tipring.hal import si3215_regs as r
from tipring.hal.simclock import TimerHandle, VirtualClock

MIN_RESET_S = 0.001

READ_ONLY = {r.SPI_MODE, 11, 24, r.IND_STATUS, r.LOOP_STATUS, *range(76, 92)}
RESERVED = {7, 12, 13, 16, 17, 25, *range(52, 64), 90, 91, 95, *range(109, 128)}
SI3210_INDIRECT = set(range(0, 44)) | {97}
SI3215_INDIRECT = set(r.SI3215_INDIRECT.values())


class DatasheetViolation(AssertionError):
    """The driver did something the ProSLIC datasheet forbids."""


@dataclass
class RingEdge:
    at: float
    on: bool


class Si3215Emulator:
    """One ProSLIC behind one chip select. `xfer2` is what the driver calls."""

    def __init__(
        self,
        clock: VirtualClock,
        *,
        si3215: bool = True,
        revision: int = 0x05,
        vbat_rise_s: float = 0.120,
        calibration_s: float = 0.250,
        ias_busy_reads: int = 2,
        pclk_running: bool = True,
        present: bool = True,
    ) -> None:
        self.clock = clock
        self.si3215 = si3215
        self.revision = revision
        self.vbat_rise_s = vbat_rise_s
        self.calibration_s = calibration_s
        self.ias_busy_reads = ias_busy_reads
        self.pclk_running = pclk_running
        self.present = present
        self.int_pin: Any = None  # a MockPin the emulator drives (low = interrupt)
        self.lock = threading.RLock()
        self.in_reset = False
        self._reset_at = 0.0
        self.log: list[tuple[str, int, int]] = []  # ("r"|"w", register, value)
        self.ring_edges: list[RingEdge] = []
        self.linefeed_writes: list[tuple[float, int]] = []
        self.off_hook = False
        self._power_on_reset()

    # -- state ------------------------------------------------------------------------------------

    def _power_on_reset(self) -> None:
        self.regs = [0] * 128
        for reg, value in r.RESET_VALUES.items():
            self.regs[reg] = value
        self.regs[r.SPI_MODE] = self.revision
        self.regs[r.PCM_MODE] = r.SI3215_FLAG if self.si3215 else 0
        self.regs[r.LOOP_DEBOUNCE] = 0x0A
        self.regs[r.RING_TRIP_DEBOUNCE] = 0x0A
        self.indirect: dict[int, int] = {}
        self._pending_byte: int | None = None
        self._ias_reads_left = 0
        self._pwm_set = False
        self._dcdc_on_at: float | None = None
        self._cal2_written = False
        self._cal_until: float | None = None
        self.calibrated = False
        self._dccal_until: float | None = None
        self._lfs = r.LF_OPEN
        self._lcr = False
        self._rtp = False
        self._cadence_timer: TimerHandle | None = None
        self._detect_timer: TimerHandle | None = None
        self._ringing_on = False

    def _ia(self, ir: int) -> int:
        """Map a Si3210-numbered IR the test asks about to this part's address."""
        return r.SI3215_INDIRECT[ir] if self.si3215 else ir

    def indirect_value(self, ir: int) -> int:
        return self.indirect.get(self._ia(ir), 0)

    @property
    def linefeed(self) -> int:
        """LFS: the state the line is really in (ringing bursts and silences included)."""
        return self._lfs

    @property
    def vbat(self) -> int:
        if self._dcdc_on_at is None or not self.pclk_running:
            return 0
        frac = min(1.0, (self.clock.now() - self._dcdc_on_at) / self.vbat_rise_s)
        return round(0xD0 * frac)

    # -- RESET pin ----------------------------------------------------------------------------------

    def reset_level(self, high: bool) -> None:
        """The RESET pin changed (wired from a MockPin subclass in the tests)."""
        with self.lock:
            if not high:
                self.in_reset = True
                self._reset_at = self.clock.now()
                return
            if self.in_reset:
                width = self.clock.now() - self._reset_at
                if width < MIN_RESET_S:
                    raise DatasheetViolation(
                        f"RESET pulse {width * 1e3:.3f} ms is shorter than {MIN_RESET_S * 1e3} ms"
                    )
                self.in_reset = False
                self._cancel_timers()
                self._power_on_reset()
        self._update_int()

    # -- SPI --------------------------------------------------------------------------------------

    def xfer2(self, data: list[int]) -> list[int]:
        if len(data) != 1:
            raise DatasheetViolation(
                f"SPI frame of {len(data)} bytes: the ProSLIC needs chip select released between bytes"
            )
        with self.lock:
            if not self.present:
                return [0xFF]
            if self.in_reset:
                raise DatasheetViolation("SPI access while RESET is held low")
            byte = data[0] & 0xFF
            if self._pending_byte is None:
                self._pending_byte = byte
                return [0xFF]
            control, self._pending_byte = self._pending_byte, None
            reg = control & 0x7F
            if control & r.READ:
                value = self._read(reg)
                self.log.append(("r", reg, value))
                result = [value]
            else:
                self.log.append(("w", reg, byte))
                self._write(reg, byte)
                result = [0xFF]
        self._update_int()
        return result

    def _read(self, reg: int) -> int:
        self._tick()
        if reg in RESERVED:
            raise DatasheetViolation(f"read of reserved register DR{reg}")
        if reg == r.IND_STATUS:
            if self._ias_reads_left > 0:
                self._ias_reads_left -= 1
                return r.IAS
            return 0
        if reg in (r.IND_DATA_LO, r.IND_DATA_HI) and self._ias_reads_left > 0:
            raise DatasheetViolation(f"DR{reg} read while an indirect access is pending (IAS set)")
        if reg == r.VBAT_SENSE:
            return self.vbat
        if reg == r.LINEFEED:
            return self._lfs << 4 | self.regs[r.LINEFEED] & 0x07
        if reg == r.LOOP_STATUS:
            return (r.LCR if self._lcr else 0) | (r.RTP if self._rtp else 0)
        if reg == r.CALIBRATION_1 and self._cal_until is not None:
            return self.regs[reg]
        if reg == r.DCDC_CONTROL and self._dccal_until is not None:
            return self.regs[reg] | r.DCCAL
        return self.regs[reg]

    def _write(self, reg: int, value: int) -> None:
        self._tick()
        if reg in READ_ONLY:
            raise DatasheetViolation(f"write of {value:#04x} to read-only register DR{reg}")
        if reg in RESERVED:
            raise DatasheetViolation(f"write of {value:#04x} to reserved register DR{reg}")
        if reg in (r.IND_DATA_LO, r.IND_DATA_HI, r.IND_ADDRESS) and self._ias_reads_left > 0:
            raise DatasheetViolation(
                f"DR{reg} written while an indirect access is pending (IAS set)"
            )
        if self._cal_until is not None and reg in (
            r.LINEFEED,
            r.CALIBRATION_1,
            r.CALIBRATION_2,
            r.POWER_DOWN_1,
        ):
            raise DatasheetViolation(f"DR{reg} written while calibration is running")
        handler = getattr(self, f"_write_{reg}", None)
        if handler is not None:
            handler(value)
        elif reg in (r.IRQ_STATUS_1, r.IRQ_STATUS_2, r.IRQ_STATUS_3):
            self.regs[reg] &= ~value & 0xFF  # write one to clear
        else:
            self.regs[reg] = value

    def _write_1(self, value: int) -> None:  # PCM mode: bit 7 is the part flag, read only
        self.regs[r.PCM_MODE] = (self.regs[r.PCM_MODE] & r.SI3215_FLAG) | (value & 0x7F)

    def _write_30(self, address: int) -> None:  # indirect address: start the transfer
        valid = SI3215_INDIRECT if self.si3215 else SI3210_INDIRECT
        if address not in valid:
            part = "Si3215" if self.si3215 else "Si3210"
            raise DatasheetViolation(f"indirect register {address} does not exist on the {part}")
        self.regs[r.IND_ADDRESS] = address
        last = self.log[-2] if len(self.log) >= 2 else None
        data_just_written = last is not None and last[0] == "w" and last[1] == r.IND_DATA_HI
        if data_just_written:
            self.indirect[address] = self.regs[r.IND_DATA_LO] | self.regs[r.IND_DATA_HI] << 8
        else:  # a read: the data registers fill when IAS clears
            value = self.indirect.get(address, 0)
            self.regs[r.IND_DATA_LO], self.regs[r.IND_DATA_HI] = value & 0xFF, value >> 8
        self._ias_reads_left = self.ias_busy_reads

    def _write_14(self, value: int) -> None:  # power down control
        if not value & r.PDDCDC and self._dcdc_on_at is None:
            if not self._pwm_set:
                raise DatasheetViolation(
                    "DC-DC converter powered up before its PWM period (DR92) was set"
                )
            self._dcdc_on_at = self.clock.now()
        elif value & r.PDDCDC:
            self._dcdc_on_at = None
            if self._lfs != r.LF_OPEN:
                raise DatasheetViolation("DC-DC converter powered down with the line not OPEN")
        self.regs[r.POWER_DOWN_1] = value

    def _write_92(self, value: int) -> None:
        if value == 0:
            raise DatasheetViolation("DC-DC PWM period 0")
        self._pwm_set = True
        self.regs[92] = value

    def _write_93(self, value: int) -> None:
        if value & r.DCCAL:
            if not self.calibrated:
                raise DatasheetViolation(
                    "DC-DC calibration (DR93 bit 7) before the main calibration"
                )
            self._dccal_until = self.clock.now() + 0.050
        self.regs[93] = value & ~r.DCCAL

    def _write_97(self, value: int) -> None:
        self._cal2_written = True
        self.regs[97] = value

    def _write_96(self, value: int) -> None:
        if not value & r.CAL_START:
            self.regs[96] = value
            return
        if self._dcdc_on_at is None or self.vbat < 0xC0:
            raise DatasheetViolation(
                "calibration started before the DC-DC converter is up (VBAT not settled)"
            )
        if self.regs[r.LINEFEED] & 0x07 != r.LF_OPEN:
            raise DatasheetViolation("calibration started with the line not OPEN")
        if not self._cal2_written:
            raise DatasheetViolation("calibration started before its enables in DR97 were written")
        if not value & 0x1F:
            raise DatasheetViolation("CAL set with no calibration selected in DR96 bits 4:0")
        self.regs[96] = value
        self._cal_until = self.clock.now() + self.calibration_s

    def _write_64(self, value: int) -> None:
        lf = value & 0x07
        if value & 0xF8:
            raise DatasheetViolation(f"DR64 {value:#04x}: bits 7:3 are the read-only LFS shadow")
        if lf != r.LF_OPEN and not self.calibrated:
            raise DatasheetViolation(f"linefeed {lf} applied before calibration")
        if lf != r.LF_OPEN and self.vbat < 0xC0:
            raise DatasheetViolation(f"linefeed {lf} applied without battery (DC-DC off)")
        if lf == r.LF_RINGING:
            rco, rngx = self.indirect_value(r.IR_RING_OSC), self.indirect_value(r.IR_RING_X)
            if not rco or not rngx or not self.regs[r.VBATH]:
                raise DatasheetViolation(
                    "ringing without the ring oscillator (RCO, RNGX) and VBATH programmed"
                )
        self.regs[r.LINEFEED] = lf
        self.linefeed_writes.append((self.clock.now(), lf))
        self._cancel_cadence()
        self._set_lfs(lf)
        if lf == r.LF_RINGING and self.regs[r.RING_OSC_CTL] & (r.RTAE | r.RTIE) == r.RTAE | r.RTIE:
            self._schedule_cadence(True)
        self._sense()

    # -- time and the line ------------------------------------------------------------------------

    def _tick(self) -> None:
        now = self.clock.now()
        if self._cal_until is not None and now >= self._cal_until:
            self._cal_until = None
            self.regs[96] = 0
            self.calibrated = True
        if self._dccal_until is not None and now >= self._dccal_until:
            self._dccal_until = None

    def _set_lfs(self, lfs: int) -> None:
        ringing = lfs == r.LF_RINGING
        if ringing != self._ringing_on:
            self._ringing_on = ringing
            self.ring_edges.append(RingEdge(self.clock.now(), ringing))
        self._lfs = lfs

    def _ticks(self, lo: int) -> float:
        return (self.regs[lo] | self.regs[lo + 1] << 8) * r.TIMER_TICK

    def _schedule_cadence(self, burst: bool) -> None:
        duration = self._ticks(r.RING_ON_LO if burst else r.RING_OFF_LO)
        self._cadence_timer = self.clock.call_later(duration, self._cadence_step)

    def _cadence_step(self) -> None:
        with self.lock:
            self._cadence_timer = None
            if self.regs[r.LINEFEED] != r.LF_RINGING:
                return
            burst = self._lfs != r.LF_RINGING  # the silence ended: ring again
            self._set_lfs(r.LF_RINGING if burst else r.LF_FORWARD_OHT)
            self._schedule_cadence(burst)
            self._sense()
        self._update_int()

    def _cancel_cadence(self) -> None:
        if self._cadence_timer is not None:
            self._cadence_timer.cancel()
            self._cadence_timer = None

    def _cancel_timers(self) -> None:
        self._cancel_cadence()
        if self._detect_timer is not None:
            self._detect_timer.cancel()
            self._detect_timer = None

    def set_hook(self, off_hook: bool) -> None:
        """The phone's hook switch (the test moves it)."""
        with self.lock:
            self.off_hook = off_hook
            self._sense()
        self._update_int()

    def _sense(self) -> None:
        """Start the chip's debounce for whatever detector the hook state now affects."""
        if self._detect_timer is not None:
            self._detect_timer.cancel()
            self._detect_timer = None
        if self._lfs == r.LF_OPEN:
            return  # no battery, no loop current to detect
        if self.regs[r.LINEFEED] == r.LF_RINGING and self.off_hook and not self._rtp:
            delay = self.regs[r.RING_TRIP_DEBOUNCE] * 1.25e-3
            self._detect_timer = self.clock.call_later(delay, self._ring_trip)
        elif self.regs[r.LINEFEED] != r.LF_RINGING and self.off_hook != self._lcr:
            delay = self.regs[r.LOOP_DEBOUNCE] * 1.25e-3
            self._detect_timer = self.clock.call_later(delay, self._loop_change)

    def _ring_trip(self) -> None:
        with self.lock:
            self._detect_timer = None
            self._rtp = True
            self.regs[r.IRQ_STATUS_2] |= r.RTIP
            if self.regs[r.AUTO_CONTROL] & 0x01:
                self._cancel_cadence()
                self.regs[r.LINEFEED] = r.LF_FORWARD_ACTIVE
                self._set_lfs(r.LF_FORWARD_ACTIVE)
                self._lcr = True
        self._update_int()

    def _loop_change(self) -> None:
        with self.lock:
            self._detect_timer = None
            self._lcr = self.off_hook
            self._rtp = False
            self.regs[r.IRQ_STATUS_2] |= r.LCIP
        self._update_int()

    def power_alarm(self, transistor: int) -> None:
        """Q1..Q6 overheats: the chip flags it and (automatic mode) opens the line."""
        with self.lock:
            self.regs[r.IRQ_STATUS_2] |= 0x04 << (transistor - 1)
            if self.regs[r.AUTO_CONTROL] & 0x04:
                self._cancel_cadence()
                self.regs[r.LINEFEED] = r.LF_OPEN
                self._set_lfs(r.LF_OPEN)
        self._update_int()

    def _update_int(self) -> None:
        if self.int_pin is None:
            return
        with self.lock:
            active = any(self.regs[s] & self.regs[e] for s, e in ((18, 21), (19, 22), (20, 23)))
        if active and self.int_pin.state:
            self.int_pin.drive_low()
        elif not active and not self.int_pin.state:
            self.int_pin.drive_high()

    # -- what tests look at ------------------------------------------------------------------------

    @property
    def ring_frequency(self) -> float:
        return r.ring_frequency(self.indirect_value(r.IR_RING_OSC))

    @property
    def ring_peak_volts(self) -> float:
        return r.ring_peak_volts(
            self.indirect_value(r.IR_RING_OSC), self.indirect_value(r.IR_RING_X)
        )
