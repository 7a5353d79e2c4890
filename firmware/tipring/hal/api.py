"""Hardware interfaces every board driver implements: the SLIC (line control) and the audio port.

Stdlib only, so the rest of the firmware imports on any machine. Drivers (sim, ag1171, si3215, alsa)
implement these; `line` and `phone` see only these types. Hook events carry the monotonic time of
the edge as the hardware saw it, because pulse dialling and hook flash are decoded from the gaps
between edges in `line`, not here.
"""

from __future__ import annotations

import abc
import enum
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

SAMPLE_RATE = 8000
PERIOD_SAMPLES = 160  # 20 ms at 8 kHz
PERIOD_SECONDS = PERIOD_SAMPLES / SAMPLE_RATE
BYTES_PER_SAMPLE = 2  # signed 16-bit, native (little) endian
PERIOD_BYTES = PERIOD_SAMPLES * BYTES_PER_SAMPLE
# Playout queued ahead of each capture period's end (the sim and ALSA ports keep this level):
# the playout latency, and how late the media thread's write may come. One period by default.
DEFAULT_PLAYOUT_LEAD = PERIOD_SECONDS


class HardwareError(RuntimeError):
    """A board or chip is missing, misconfigured or reports a fault; the message says which."""


def playout_lead_frames(seconds: float) -> int:
    """A playout lead in samples: at least one, at most one period (ValueError otherwise)."""
    frames = round(seconds * SAMPLE_RATE) if isinstance(seconds, int | float) else 0
    if isinstance(seconds, bool) or not 1 <= frames <= PERIOD_SAMPLES:
        raise ValueError(f"playout_lead must be more than 0 and at most one period "
                         f"({PERIOD_SECONDS} s), got {seconds!r}")
    return frames


def playout_lead_setting(table: Any, where: str) -> float:
    """`playout_lead_ms` of a board-profile table, in seconds (the default when absent)."""
    lead_ms = table.get("playout_lead_ms", DEFAULT_PLAYOUT_LEAD * 1000)
    try:
        if isinstance(lead_ms, bool) or not isinstance(lead_ms, int | float):
            raise ValueError
        playout_lead_frames(lead_ms / 1000)
    except ValueError:
        raise HardwareError(f"{where}.playout_lead_ms must be a number more than 0 and at most "
                            f"{PERIOD_SECONDS * 1000:g}, got {lead_ms!r}") from None
    return lead_ms / 1000


class Linefeed(enum.Enum):
    """SLIC linefeed states (the names the ProSLIC datasheets use)."""

    OPEN = "open"  # line disconnected: no battery (also used after a power alarm)
    FORWARD_ACTIVE = "forward-active"  # normal talk/idle battery
    ON_HOOK_TRANSMISSION = "on-hook-transmission"  # audio path live while on hook (caller ID, VMWI)
    REVERSE_ACTIVE = "reverse-active"  # polarity reversed (answer supervision, some caller-ID standards)
    RINGING = "ringing"  # ring voltage applied; driven by `Slic.ring`, not set directly


@dataclass(frozen=True)
class HookEvent:
    """A debounced hook switch edge: `off_hook` is the new state, `at` the monotonic time it happened."""

    line: int
    off_hook: bool
    at: float


@dataclass(frozen=True)
class RingCadence:
    """Ringing pattern: (on, off) seconds pairs repeated until stopped; `frequency_hz` 20 or 25 Hz."""

    segments: tuple[tuple[float, float], ...]
    frequency_hz: float = 20.0

    def __post_init__(self) -> None:
        if not self.segments:
            raise ValueError("a ring cadence needs at least one (on, off) segment")
        for on, off in self.segments:
            if on <= 0 or off < 0:
                raise ValueError(f"bad ring cadence segment ({on}, {off}): on > 0 and off >= 0")
        if not 15.0 <= self.frequency_hz <= 60.0:
            raise ValueError(f"ring frequency {self.frequency_hz} Hz is outside 15..60 Hz")

    @property
    def period(self) -> float:
        return sum(on + off for on, off in self.segments)


HookListener = Callable[[HookEvent], None]
FaultListener = Callable[[str], None]


class Slic(abc.ABC):
    """Line control of one FXS port.

    `on_hook_event` is called from whatever thread the driver's hardware library uses; the runtime
    hands events to the asyncio loop with `call_soon_threadsafe`. Ringing runs in the driver (or
    chip) with the given cadence until `stop_ring`; a driver stops ringing by itself on ring trip
    (the phone going off hook while ringing) and reports the off-hook edge.
    """

    line: int
    on_hook_event: HookListener | None = None
    # A chip that can detect line faults (power alarm, thermal shutdown) shuts the line down by
    # itself and reports the reason here; the status page shows it. Simple SLICs never call it.
    on_fault: FaultListener | None = None

    @property
    def fault(self) -> str | None:
        """The fault that shut the line down, or None."""
        return None

    @property
    @abc.abstractmethod
    def off_hook(self) -> bool:
        """The current debounced hook state."""

    @property
    @abc.abstractmethod
    def linefeed(self) -> Linefeed:
        """The linefeed state now (RINGING while a ring burst or its cadence is running)."""

    @abc.abstractmethod
    def set_linefeed(self, state: Linefeed) -> None:
        """Apply a linefeed state other than RINGING; stops any ringing first."""

    @abc.abstractmethod
    def ring(self, cadence: RingCadence) -> None:
        """Start ringing with `cadence` (first burst now), repeating until `stop_ring` or ring trip."""

    @abc.abstractmethod
    def stop_ring(self) -> None:
        """Stop ringing and return to the linefeed state from before ringing."""

    @property
    @abc.abstractmethod
    def ringing(self) -> bool:
        """True while a ring cadence is active (during both its on and off parts)."""

    def close(self) -> None:  # noqa: B027 - optional: not every driver has something to release
        """Release the hardware; the line is left open (no battery)."""

    def _emit(self, event: HookEvent) -> None:
        listener = self.on_hook_event
        if listener is not None:
            listener(event)


class GuardedSlic(Slic):
    """The state every driver keeps the same way: hook, linefeed and ring cadence behind one
    lock (hook edges arrive on the hardware library's thread, commands on the event loop's),
    and the argument checks of `set_linefeed` and `ring`. The driver makes `_lock` (a Lock or
    RLock) and sets the three fields; it writes them only while holding the lock."""

    _lock: threading.Lock | threading.RLock
    _off_hook: bool
    _linefeed: Linefeed  # the state applied when not ringing
    _cadence: RingCadence | None  # not None while ringing

    @property
    def off_hook(self) -> bool:
        with self._lock:
            return self._off_hook

    @property
    def linefeed(self) -> Linefeed:
        with self._lock:
            return Linefeed.RINGING if self._cadence is not None else self._linefeed

    @property
    def ringing(self) -> bool:
        with self._lock:
            return self._cadence is not None

    @staticmethod
    def _check_linefeed(state: Linefeed) -> None:
        if not isinstance(state, Linefeed):
            raise TypeError(f"set_linefeed takes a Linefeed, not {state!r}")
        if state is Linefeed.RINGING:
            raise ValueError("RINGING is applied by ring(cadence), not set_linefeed()")

    @staticmethod
    def _check_cadence(cadence: RingCadence) -> None:
        if not isinstance(cadence, RingCadence):
            raise TypeError(f"ring takes a RingCadence, not {cadence!r}")


class AudioPort(abc.ABC):
    """8 kHz mono S16 audio of one line, one 20 ms period at a time.

    `read` blocks until the device has captured a whole period: the audio device is the media clock.
    `write` queues one period for playout and blocks only when the device buffer is full. Overruns
    (capture data lost) and underruns (playout starved) are counted and recovered from by the driver.
    """

    line: int
    overruns: int = 0
    underruns: int = 0

    @abc.abstractmethod
    def start(self) -> None:
        """Open/prepare the device; idempotent."""

    @abc.abstractmethod
    def read(self) -> bytes:
        """Block until one capture period is available and return it (PERIOD_BYTES bytes)."""

    @abc.abstractmethod
    def write(self, period: bytes) -> None:
        """Queue one playout period (PERIOD_BYTES bytes)."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop the device and wake a blocked `read` (which then raises `AudioStopped`)."""

    def close(self) -> None:
        self.stop()


class AudioStopped(Exception):
    """Raised by a blocked `AudioPort.read` when the port is stopped, so the media thread can exit."""


@dataclass
class LinePort:
    """One FXS port of a board: its SLIC and its audio."""

    index: int
    slic: Slic
    audio: AudioPort


@dataclass
class Board:
    """A running board: its profile name and its ports. `close` releases every port."""

    name: str
    driver: str
    lines: list[LinePort]

    def close(self) -> None:
        for port in self.lines:
            port.audio.close()
            port.slic.close()
