"""Silvertel Ag1171 (and KS0835F clone) SLIC driven through GPIO with gpiozero; audio over ALSA.

The Ag1171 has no registers: three logic pins and one status pin.
- SHK (out of the SLIC): switch hook, high while loop current flows (off hook).
- RM (into the SLIC): ring mode. High switches the DC/DC converter to ~72 V for ringing; the
  datasheet insists it is high *only* while ringing.
- F/R (into the SLIC): high = forward battery, low = reverse. In ring mode, toggling F/R at the
  ring frequency is what makes the ~60 Vrms ring signal, so this driver toggles it twice per
  ring cycle (every 25 ms at 20 Hz) from a clock timer.
- PD (optional, into the SLIC): power down; the only way to take battery off the line (OPEN).

Quirks handled here, and why:
- SHK bounces (hook switch contacts, dial pulse springs): every raw edge restarts a settle timer
  and only a level that holds for `debounce_s` is reported. The event carries the time of the
  *first* raw edge of the burst, because pulse dialling and flash are timed from real edges.
- While ring voltage is on, SHK also carries ring transients through the ringer's capacitor,
  so during a burst a level must hold for `ring_trip_s` before it counts: long enough to ignore
  transients, short enough that pick-up stops the ring well within 200 ms.
- The SLIC keeps ringing for as long as RM is high, even after pick-up (~100 ms on real parts
  if left to itself): on ring trip RM drops at once, F/R stops toggling.
- The ring frequency leaks into VOUT (the capture path): `RingGuardedAudio` returns silence
  while ringing and for `ring_leak_guard_s` after ringing stops, so the far end does not hear a
  20 Hz buzz or a ring-trip thump, and DTMF detection is not fed it.
"""

from __future__ import annotations

import glob
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from tipring.hal.api import (
    PERIOD_BYTES,
    AudioPort,
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
    "Ag1171Board",
    "Ag1171Pins",
    "Ag1171Slic",
    "Ag1171Timing",
    "RingGuardedAudio",
    "open_ag1171_board",
    "ring_bursts",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Ag1171Pins:
    """GPIO pins of one line, in any form gpiozero accepts ("GPIO17", "BOARD11", 17)."""

    shk: str | int
    rm: str | int
    fr: str | int
    pd: str | int | None = None
    shk_active_high: bool = True  # SHK high = off hook; an inverting opto-coupler flips it
    pd_active_high: bool = True  # PD high = powered down


@dataclass(frozen=True)
class Ag1171Timing:
    debounce_s: float = 0.010  # contact bounce is a few ms; dial pulse breaks are >= 30 ms
    ring_trip_s: float = 0.050  # SHK must hold this long during a ring burst
    ring_leak_guard_s: float = 0.100  # capture muted this long after ringing stops

    def __post_init__(self) -> None:
        if not 0 < self.debounce_s <= 0.025:
            raise ValueError(
                f"debounce_s must be in (0, 0.025] s to keep dial pulses, got {self.debounce_s}"
            )
        if not 0 < self.ring_trip_s <= 0.150:
            raise ValueError(
                f"ring_trip_s must be in (0, 0.150] s (ring trip < 200 ms), got {self.ring_trip_s}"
            )
        if not 0 <= self.ring_leak_guard_s <= 1.0:
            raise ValueError(f"ring_leak_guard_s must be in [0, 1] s, got {self.ring_leak_guard_s}")


def ring_bursts(start: float, cadence: RingCadence) -> Iterator[tuple[float, float]]:
    """(burst start, burst end) times of a cadence from `start`, forever.

    Times are sums from `start`, never from the previous edge, so long ringing does not drift.
    Bursts separated by no silence are merged into one.
    """
    if all(off == 0 for _, off in cadence.segments):
        yield (start, float("inf"))  # no silence anywhere: one continuous burst
        return
    cycle = 0
    pending: tuple[float, float] | None = None
    while True:
        offset = start + cycle * cadence.period
        for on, off in cadence.segments:
            burst = (offset, offset + on)
            offset += on + off
            if pending is not None and abs(pending[1] - burst[0]) < 1e-9:
                pending = (pending[0], burst[1])
                continue
            if pending is not None:
                yield pending
            pending = burst
        cycle += 1


class Ag1171Slic(GuardedSlic):
    """One FXS line on an Ag1171. gpiozero callbacks and clock timers both run on library threads."""

    def __init__(
        self,
        line: int,
        pins: Ag1171Pins,
        clock: Clock,
        *,
        timing: Ag1171Timing | None = None,
        pin_factory: Any = None,
    ) -> None:
        try:
            from gpiozero import DigitalInputDevice, DigitalOutputDevice
        except ImportError as exc:
            raise HardwareError("the Ag1171 driver needs gpiozero (python3-gpiozero)") from exc

        self.line = line
        self.on_hook_event = None
        self.pins = pins
        self.timing = timing or Ag1171Timing()
        self._clock = clock
        self._lock = threading.RLock()
        self._devices: list[Any] = []
        try:
            self._rm = self._own(
                DigitalOutputDevice(pins.rm, initial_value=False, pin_factory=pin_factory)
            )
            self._fr = self._own(
                DigitalOutputDevice(pins.fr, initial_value=True, pin_factory=pin_factory)
            )
            self._pd = None
            if pins.pd is not None:
                self._pd = self._own(
                    DigitalOutputDevice(
                        pins.pd,
                        active_high=pins.pd_active_high,
                        initial_value=False,
                        pin_factory=pin_factory,
                    )
                )
            self._shk = self._own(
                DigitalInputDevice(
                    pins.shk,
                    pull_up=None,
                    active_state=pins.shk_active_high,
                    pin_factory=pin_factory,
                )
            )
        except Exception as exc:
            self._close_devices()
            raise HardwareError(
                f"line {line}: cannot claim the Ag1171 GPIO pins {pins}: {exc}"
            ) from exc
        self._linefeed = Linefeed.FORWARD_ACTIVE
        self._before_ring = Linefeed.FORWARD_ACTIVE
        self._off_hook = bool(self._shk.value)  # the debounced state
        self._raw = self._off_hook
        self._burst_started: float | None = None  # first raw edge since the last settled state
        self._settle: TimerHandle | None = None
        self._last_edge = float("-inf")
        self._cadence: RingCadence | None = None
        self._bursts: Iterator[tuple[float, float]] | None = None
        self._burst_end = 0.0
        self._in_burst = False
        self._ring_timer: TimerHandle | None = None
        self._ring_generation = 0
        self._mute_until = float("-inf")
        self._closed = False
        self._shk.when_activated = partial(self._raw_edge, True)
        self._shk.when_deactivated = partial(self._raw_edge, False)

    def _own(self, device: Any) -> Any:
        self._devices.append(device)
        return device

    # -- state -------------------------------------------------------------------------------

    def capture_muted(self, now: float | None = None) -> bool:
        """True while ring-frequency leak may be on the capture path (ringing, or just after)."""
        t = self._clock.now() if now is None else now
        with self._lock:
            return self._cadence is not None or t < self._mute_until

    # -- linefeed ------------------------------------------------------------------------------

    def set_linefeed(self, state: Linefeed) -> None:
        self._check_linefeed(state)
        events: list[HookEvent] = []
        with self._lock:
            if self._cadence is not None:
                self._stop_ring_locked(self._clock.now())
            was_open = self._linefeed is Linefeed.OPEN
            self._linefeed = state
            self._apply_idle_pins_locked()
            if was_open and state is not Linefeed.OPEN:
                events = self._resense_locked()
        for event in events:
            self._emit(event)

    def _apply_idle_pins_locked(self) -> None:
        """Pins for the current non-ringing linefeed; RM is low outside ringing, always."""
        self._rm.off()
        self._fr.value = self._linefeed is not Linefeed.REVERSE_ACTIVE
        if self._linefeed is Linefeed.OPEN and self._pd is None:
            log.warning(
                "line %d: OPEN requested but the profile wires no PD pin: battery stays on",
                self.line,
            )
        if self._pd is not None:
            self._pd.value = self._linefeed is Linefeed.OPEN

    def _resense_locked(self) -> list[HookEvent]:
        """Battery is back: the switch may have changed while SHK could not see it."""
        level = bool(self._shk.value)
        self._raw = level
        if level == self._off_hook:
            return []
        self._off_hook = level
        return [HookEvent(self.line, level, self._clock.now())]

    # -- ringing -------------------------------------------------------------------------------

    def ring(self, cadence: RingCadence) -> None:
        self._check_cadence(cadence)
        with self._lock:
            if self._closed:
                raise HardwareError(f"line {self.line}: the Ag1171 driver is closed")
            if self._off_hook:
                log.info("line %d: not ringing, the phone is off hook", self.line)
                return
            now = self._clock.now()
            before = self._before_ring if self._cadence is not None else self._linefeed
            if before is Linefeed.OPEN:
                raise HardwareError(
                    f"line {self.line}: cannot ring an OPEN line; apply battery first"
                )
            if self._cadence is not None:
                self._stop_ring_locked(now)
            self._before_ring = before
            self._cadence = cadence
            self._bursts = ring_bursts(now, cadence)
            self._ring_generation += 1
            self._next_burst_locked()

    def stop_ring(self) -> None:
        with self._lock:
            if self._cadence is not None:
                self._stop_ring_locked(self._clock.now())

    def _next_burst_locked(self) -> None:
        assert self._bursts is not None
        start, end = next(self._bursts)
        self._burst_end = end
        if start <= self._clock.now():
            self._burst_on_locked(start)  # the first burst starts now, not at the next tick
        else:
            self._schedule_locked(start, self._burst_on)

    def _schedule_locked(self, when: float, step: Any) -> None:
        self._ring_timer = self._clock.call_at(when, partial(step, self._ring_generation, when))

    def _burst_on(self, generation: int, at: float) -> None:
        with self._lock:
            if generation == self._ring_generation and self._cadence is not None:
                self._burst_on_locked(at)

    def _burst_on_locked(self, at: float) -> None:
        self._in_burst = True
        self._rm.on()
        self._toggle_locked(at, 0)

    def _toggle_locked(self, burst_start: float, k: int) -> None:
        """F/R edge number k of this burst; the next at burst_start + (k+1) half ring cycles."""
        assert self._cadence is not None
        half = 0.5 / self._cadence.frequency_hz
        self._fr.value = k % 2 == 0  # start on the forward level, then alternate
        nxt = burst_start + (k + 1) * half
        if nxt < self._burst_end - 1e-9:
            gen = self._ring_generation
            self._ring_timer = self._clock.call_at(
                nxt, partial(self._toggle, gen, burst_start, k + 1)
            )
        else:
            self._schedule_locked(self._burst_end, self._burst_off)

    def _toggle(self, generation: int, burst_start: float, k: int) -> None:
        with self._lock:
            if generation == self._ring_generation and self._cadence is not None:
                self._toggle_locked(burst_start, k)

    def _burst_off(self, generation: int, at: float) -> None:
        with self._lock:
            if generation != self._ring_generation or self._cadence is None:
                return
            self._in_burst = False
            self._rm.off()
            self._fr.value = self._before_ring is not Linefeed.REVERSE_ACTIVE
            self._mute_until = at + self.timing.ring_leak_guard_s
            if self._settle is not None:
                # A level pending through the burst's end is judged with the normal debounce now.
                self._clock.cancel(self._settle)
                when = max(at, self._last_edge + self.timing.debounce_s)
                self._settle = self._clock.call_at(when, self._settled)
            self._next_burst_locked()

    def _stop_ring_locked(self, at: float) -> None:
        self._ring_generation += 1
        if self._ring_timer is not None:
            self._clock.cancel(self._ring_timer)
            self._ring_timer = None
        self._cadence = None
        self._bursts = None
        self._in_burst = False
        self._linefeed = self._before_ring
        self._apply_idle_pins_locked()  # RM low first thing: the SLIC rings as long as RM is high
        self._mute_until = max(self._mute_until, at + self.timing.ring_leak_guard_s)

    # -- hook switch -------------------------------------------------------------------------

    def _raw_edge(self, level: bool) -> None:
        """Every SHK edge, bounces included (gpiozero's thread); settle before believing it."""
        with self._lock:
            if self._closed:
                return
            now = self._clock.now()
            self._raw = level
            if self._burst_started is None:
                self._burst_started = now
            self._last_edge = now
            if self._settle is not None:
                self._clock.cancel(self._settle)
            window = self.timing.ring_trip_s if self._in_burst else self.timing.debounce_s
            self._settle = self._clock.call_at(now + window, self._settled)

    def _settled(self) -> None:
        event: HookEvent | None = None
        with self._lock:
            self._settle = None
            started, self._burst_started = self._burst_started, None
            if self._closed or started is None or self._raw == self._off_hook:
                return  # a glitch that came back to where it was
            if self._linefeed is Linefeed.OPEN and self._cadence is None:
                return  # powered down: SHK means nothing; re-sensed when battery returns
            self._off_hook = self._raw
            if self._off_hook and self._cadence is not None:
                self._stop_ring_locked(self._clock.now())  # ring trip
            event = HookEvent(self.line, self._off_hook, started)
        self._emit(event)

    # -- teardown ------------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            if self._cadence is not None:
                self._stop_ring_locked(self._clock.now())
            self._linefeed = Linefeed.OPEN
            self._apply_idle_pins_locked()
            self._closed = True
            if self._settle is not None:
                self._clock.cancel(self._settle)
        self._close_devices()

    def _close_devices(self) -> None:
        for device in reversed(self._devices):
            device.close()
        self._devices.clear()


class RingGuardedAudio(AudioPort):
    """The line's audio with capture silenced while ring-frequency leak is on VOUT."""

    def __init__(self, inner: AudioPort, slic: Ag1171Slic) -> None:
        self.line = inner.line
        self.inner = inner
        self._slic = slic

    @property  # type: ignore[override]
    def overruns(self) -> int:
        return self.inner.overruns

    @property  # type: ignore[override]
    def underruns(self) -> int:
        return self.inner.underruns

    def start(self) -> None:
        self.inner.start()

    def read(self) -> bytes:
        period = self.inner.read()
        return bytes(PERIOD_BYTES) if self._slic.capture_muted() else period

    def write(self, period: bytes) -> None:
        self.inner.write(period)

    def stop(self) -> None:
        self.inner.stop()

    def close(self) -> None:
        self.inner.close()


@dataclass
class Ag1171Board(Board):
    clock: Clock | None = None
    owns_clock: bool = False

    def close(self) -> None:
        super().close()
        if self.owns_clock and self.clock is not None:
            self.clock.close()


def require_gpio_chip() -> None:
    """Name the missing piece before gpiozero's generic 'Unable to load any default pin factory'."""
    if os.environ.get("GPIOZERO_PIN_FACTORY", "").lower() == "mock":
        return
    if not glob.glob("/dev/gpiochip*"):
        raise HardwareError(
            "no GPIO chip: /dev/gpiochip* does not exist (not a Raspberry Pi, or the GPIO driver is "
            "not loaded); the Ag1171 board needs GPIO for SHK/RM/FR"
        )


def _pins_from_table(table: dict[str, Any], where: str) -> Ag1171Pins:
    def pin(key: str, required: bool = True) -> str | int | None:
        value = table.get(key)
        if value is None and not required:
            return None
        if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
            raise HardwareError(
                f'{where}.{key} must be a GPIO pin like "GPIO17" or 17, got {value!r}'
            )
        return value

    flags = {}
    for key in ("shk_active_high", "pd_active_high"):
        value = table.get(key, True)
        if not isinstance(value, bool):
            raise HardwareError(f"{where}.{key} must be true or false, got {value!r}")
        flags[key] = value
    return Ag1171Pins(pin("shk"), pin("rm"), pin("fr"), pin("pd", False), **flags)  # type: ignore[arg-type]


def _timing_from_table(table: Any, where: str) -> Ag1171Timing:
    if not isinstance(table, dict):
        raise HardwareError(f"{where} must be a table")
    values = {}
    for key in ("debounce_ms", "ring_trip_ms", "ring_leak_guard_ms"):
        if key in table:
            value = table[key]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise HardwareError(
                    f"{where}.{key} must be a number of milliseconds, got {value!r}"
                )
            values[key.removesuffix("_ms") + "_s"] = value / 1000
    try:
        return Ag1171Timing(**values)
    except ValueError as exc:
        raise HardwareError(f"{where}: {exc}") from exc


def open_ag1171_board(
    profile: BoardProfile,
    *,
    clock: Clock | None = None,
    pin_factory: Any = None,
    audio_opener: Any = None,
) -> Ag1171Board:
    """Factory named by `hal.profile.DRIVERS`; profile tables: `[ag1171]` timing, `[[line]]`.

    Each `[[line]]` entry: `shk`, `rm`, `fr`, optional `pd`, `playback`, `capture` (ALSA
    devices), optional `buffer_periods`. The ALSA devices are opened once here, so a missing
    sound card stops the board at start, not at the first call.
    """
    from tipring.hal.alsa import audio_port_from_table

    name = profile.name
    timing = _timing_from_table(profile.settings.get("ag1171", {}), f"board {name!r}: [ag1171]")
    lines = profile.settings.get("line")
    if not isinstance(lines, list) or len(lines) != profile.lines:
        raise HardwareError(
            f"board {name!r}: needs one [[line]] table per line ({profile.lines}), "
            f"got {len(lines) if isinstance(lines, list) else lines!r}"
        )
    if pin_factory is None:
        require_gpio_chip()
    owns_clock = clock is None
    board_clock = clock if clock is not None else RealClock()
    ports: list[LinePort] = []
    board = Ag1171Board(name, "ag1171", ports, board_clock, owns_clock)
    try:
        for index, table in enumerate(lines):
            where = f"board {name!r}: line[{index}]"
            if not isinstance(table, dict):
                raise HardwareError(f"{where} must be a table")
            pins = _pins_from_table(table, where)
            kwargs = {} if audio_opener is None else {"opener": audio_opener}
            audio = audio_port_from_table(index, table, where, **kwargs)
            audio.start()  # probe: fails here, naming the device, if the card is missing
            audio.stop()
            slic = Ag1171Slic(index, pins, board_clock, timing=timing, pin_factory=pin_factory)
            ports.append(LinePort(index, slic, RingGuardedAudio(audio, slic)))
    except BaseException:
        board.close()
        raise
    return board
