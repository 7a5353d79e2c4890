"""The simulated board (`--board sim`): SLIC and audio port in memory, with a virtual handset.

It lets the line, phone and runtime layers run end to end with no hardware: tests drive a
`VirtualHandset` (lift, hang up, flash, touch-tone and rotary dialling, speak, listen) and watch
its ringer, on a `VirtualClock` so they are deterministic and instant; the demo and the web
virtual phone run the same code on a `RealClock`.

Model, kept close to real hardware so the firmware cannot tell the difference:
- The handset's mouth is a timeline: audio queued at time T starts at T (or when the audio queued
  before it ends) and goes on whether or not anyone captures it. The audio port samples that
  timeline one 20 ms period at a time; on hook, or with no battery, it captures silence.
- The SLIC senses the hook switch only when the line has battery: with linefeed OPEN no edge is
  seen (`off_hook` keeps its last value); when battery returns it senses the switch again and
  reports an edge if the state changed meanwhile.
- Ringing runs on the clock per `RingCadence`; going off hook at any point of the cadence (burst
  or silent part) trips it at once, then the off-hook edge is reported.
- Locks: the SLIC and port never call the handset while holding their own lock, and listeners
  (hook events, ringer callbacks) are called with no sim lock held that they could need.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import threading
import wave
from array import array
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from tipring.hal.api import (
    DEFAULT_PLAYOUT_LEAD,
    PERIOD_BYTES,
    PERIOD_SAMPLES,
    PERIOD_SECONDS,
    SAMPLE_RATE,
    AudioPort,
    AudioStopped,
    Board,
    GuardedSlic,
    HardwareError,
    HookEvent,
    Linefeed,
    LinePort,
    RingCadence,
    playout_lead_frames,
    playout_lead_setting,
)
from tipring.hal.simclock import Clock, RealClock, TimerHandle, VirtualClock

if TYPE_CHECKING:
    from tipring.hal.profile import BoardProfile

__all__ = [
    "DBM0_PEAK",
    "DTMF_FREQUENCIES",
    "RealClock",
    "SimAudioPort",
    "SimBoard",
    "SimSlic",
    "VirtualClock",
    "VirtualHandset",
    "create_sim_board",
    "dbm0_to_peak",
    "open_sim_board",
]

log = logging.getLogger(__name__)

DBM0_PEAK = 32768 * 10 ** (-3.14 / 20)  # peak of a 0 dBm0 sine: G.711 full scale is +3.14 dBm0

DTMF_ROWS = (697.0, 770.0, 852.0, 941.0)
DTMF_COLUMNS = (1209.0, 1336.0, 1477.0, 1633.0)
_DTMF_KEYPAD = ("123A", "456B", "789C", "*0#D")
DTMF_FREQUENCIES: dict[str, tuple[float, float]] = {
    key: (row, col)
    for row, keys in zip(DTMF_ROWS, _DTMF_KEYPAD, strict=True)
    for col, key in zip(DTMF_COLUMNS, keys, strict=True)
}

AudioSource = str | os.PathLike[str] | bytes | bytearray | memoryview | array

DEFAULT_RECORD_SECONDS = 600.0  # what a handset remembers hearing: bounded for long demos
DEFAULT_BUFFER_PERIODS = 4  # device buffer depth, capture and playout, like a 4-period ALSA buffer

_BIG_ENDIAN = sys.byteorder == "big"
_EPSILON = 1e-9  # seconds: float slack when comparing times built by different sums


ND_CAR_MAX_BURST_S = 0.75  # NTT CAR bursts are 0.5 s; normal ringing (IR) bursts 1 s
ND_RESPONSE_S = 0.1  # CAR burst end -> the number-display phone closes the loop
ND_GIVE_UP_S = 5.0  # ... and opens it again by then even if no data came
ND_SILENCE_PEAK = 200  # a period with no sample above this is silence to the FSK receiver
TONE_ALERT_HZ = (2130.0, 2750.0)  # DT-AS / TAS / CAS: the dual tone a display phone listens for
TONE_ALERT_MIN_DBM0 = -30.0  # each tone is sent at about -15 dBm0


def _tone_level_dbm0(pcm: array, frequency: float) -> float:
    """Level of one frequency in a period (Goertzel), as the phone's tone-alert detector sees it."""
    w = 2 * math.pi * frequency / SAMPLE_RATE
    coeff = 2 * math.cos(w)
    s1 = s2 = 0.0
    for x in pcm:
        s1, s2 = x + coeff * s1 - s2, s1
    power = max(s1 * s1 + s2 * s2 - coeff * s1 * s2, 0.0)
    amplitude = 2 * math.sqrt(power) / max(len(pcm), 1)
    return 20 * math.log10(max(amplitude, 1e-9) / DBM0_PEAK)


def dbm0_to_peak(level_dbm0: float) -> float:
    """Peak amplitude (in S16 units) of a sine at `level_dbm0`."""
    return DBM0_PEAK * 10 ** (level_dbm0 / 20)


def _clip16(value: float) -> int:
    return max(-32768, min(32767, round(value)))


def _samples_from_le(data: bytes) -> array:
    if len(data) % 2:
        raise ValueError(f"S16LE audio must have an even number of bytes, got {len(data)}")
    samples = array("h")
    samples.frombytes(data)
    if _BIG_ENDIAN:
        samples.byteswap()
    return samples


def _le_bytes(samples: array) -> bytes:
    if _BIG_ENDIAN:
        samples = array("h", samples)
        samples.byteswap()
    return samples.tobytes()


def read_wav(path: str | os.PathLike[str]) -> array:
    """Samples of an 8 kHz mono 16-bit PCM WAV; anything else is refused, not resampled.

    Resampling or downmixing here would hide a test fixture that is not what its author thinks.
    """
    try:
        with wave.open(os.fspath(path), "rb") as wav:
            rate, channels = wav.getframerate(), wav.getnchannels()
            bits, compression = 8 * wav.getsampwidth(), wav.getcomptype()
            if (rate, channels, bits, compression) != (SAMPLE_RATE, 1, 16, "NONE"):
                layout = "mono" if channels == 1 else f"{channels} channels"
                extra = "" if compression == "NONE" else f" {wav.getcompname()}"
                raise ValueError(
                    f"{os.fspath(path)}: expected {SAMPLE_RATE} Hz mono 16-bit PCM, "
                    f"got {rate} Hz {layout} {bits}-bit{extra}"
                )
            data = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as exc:
        raise ValueError(f"{os.fspath(path)}: not a readable PCM WAV file ({exc})") from exc
    return _samples_from_le(data)


def write_wav(path: str | os.PathLike[str], data: bytes) -> None:
    """Write S16LE audio as an 8 kHz mono 16-bit WAV (what any audio tool opens)."""
    with wave.open(os.fspath(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(data)


def dtmf_tone(digit: str, samples: int, level_dbm0: tuple[float, float]) -> array:
    """One DTMF digit, `samples` long, low and high group at the given levels.

    Each sine is taken at the middle of its sample interval so the first and last samples are not
    zero crossings: a tone's edges are then measurable to the sample.
    """
    low, high = DTMF_FREQUENCIES[digit]
    a_low, a_high = dbm0_to_peak(level_dbm0[0]), dbm0_to_peak(level_dbm0[1])
    w_low, w_high = 2 * math.pi * low / SAMPLE_RATE, 2 * math.pi * high / SAMPLE_RATE
    return array(
        "h",
        (
            _clip16(a_low * math.sin(w_low * (n + 0.5)) + a_high * math.sin(w_high * (n + 0.5)))
            for n in range(samples)
        ),
    )


@dataclass(slots=True)
class _Segment:
    """Audio on the mouth timeline: `samples` starting at clock time `start`."""

    start: float
    samples: array

    @property
    def end(self) -> float:
        return self.start + len(self.samples) / SAMPLE_RATE


class VirtualHandset:
    """The analog phone plugged into one simulated port, driven by a test, demo or web page.

    Thread-safe: it may be driven from the asyncio thread while the media thread reads and writes
    audio and the clock thread fires timed hook pulses.
    """

    def __init__(
        self, line: int, clock: Clock, *, record_seconds: float = DEFAULT_RECORD_SECONDS
    ) -> None:
        if record_seconds <= 0:
            raise ValueError(f"record_seconds must be > 0, got {record_seconds}")
        self.line = line
        self.clock = clock
        self.on_ring: Callable[[float], None] | None = None  # called with each burst's start time
        self.on_ring_stop: Callable[[float], None] | None = None  # ... and with its end time
        # A BT SIN 227 caller-display phone: after the idle-state tone alert (2130 + 2750 Hz,
        # heard on hook) it closes the loop for this long (its DC wetting pulse). None: a phone
        # that does not (every other standard).
        self.wetting_pulse_s: float | None = None
        self._alert_heard = False
        # An NTT number-display phone (JP): it answers the call-arrival signal (short ring
        # bursts) by closing the loop, takes the caller-ID data off hook, then opens the loop
        # again and waits for the real ringing. False: an ordinary phone, which just rings.
        self.number_display = False
        self._nd_exchange = 0  # bumped per primary response, so a stale timeout does nothing
        self._nd_receiving = False
        self._nd_heard_data = False
        self._lock = threading.Lock()
        # Serialises hook changes with their delivery to the SLIC, so edges arrive in order even
        # when the clock thread (pulses) and a caller (hang up) race. Re-entrant for listeners.
        self._hook_lock = threading.RLock()
        self._slic: SimSlic | None = None
        self._off_hook = False  # the hook switch
        self._lifted = False  # the user's intent: stays True through flash and dial pulses
        self._linefeed = Linefeed.OPEN  # what the SLIC applies to the wires
        self._linefeed_seq = 0
        self._bell = False
        self._ring_seq = 0
        self._bursts: list[tuple[float, float | None]] = []
        self._timers: list[TimerHandle] = []
        self._generation = 0  # bumped by hang_up: timed hook edges from before are void
        self._hook_busy_until = -math.inf  # end of the last scheduled flash / pulse train
        self._voice: deque[_Segment] = deque()
        self._dtmf: deque[_Segment] = deque()
        keep = max(1, round(record_seconds / PERIOD_SECONDS))
        self._heard: deque[tuple[float, bytes]] = deque(maxlen=keep)
        self._on_hook_heard: deque[tuple[float, bytes]] = deque(maxlen=keep)

    # -- hook switch ---------------------------------------------------------------------------

    @property
    def off_hook(self) -> bool:
        """The hook switch now (False during a flash or a dial pulse break)."""
        with self._lock:
            return self._off_hook

    def lift(self) -> None:
        self._set_hook(True, self.clock.now())

    def hang_up(self) -> None:
        """Go on hook; pending flashes and dial pulses are abandoned, unsent audio is dropped."""
        with self._hook_lock:
            self._cancel_timed()
            with self._lock:
                self._lifted = False
                self._voice.clear()
                self._dtmf.clear()
            self._set_hook(False, self.clock.now())

    def flash(self, duration: float = 0.5) -> float:
        """Hook flash: on hook for `duration` s, then off hook again; returns when it ends.

        Starts now, or after a flash or pulse train still in progress.
        """
        if not duration > 0:
            raise ValueError(f"flash duration must be > 0 s, got {duration}")
        with self._lock:
            self._require_lifted("flash")
            start = max(self.clock.now(), self._hook_busy_until)
            end = start + duration
            self._hook_busy_until = end
            generation = self._generation
        self._hook_at(start, False, generation)
        self._hook_at(end, True, generation)
        return end

    def dial_rotary(
        self, digits: str, pps: float = 10.0, break_ratio: float = 0.6, interdigit: float = 0.7
    ) -> float:
        """Dial like a rotary dial: timed hook pulses on the clock; returns when the last ends.

        Each pulse is a break (on hook) of `break_ratio / pps` s then a make (off hook) of
        `(1 - break_ratio) / pps` s; digit N gives N pulses, "0" ten. `interdigit` is the off-hook
        time from the end of a digit's last break to the next digit's first break. The first
        break is now, or `interdigit` after a pulse train or flash still in progress.
        """
        if not isinstance(digits, str) or not digits:
            raise ValueError("dial_rotary needs a non-empty string of digits 0-9")
        bad = sorted({d for d in digits if d not in "0123456789"})
        if bad:
            raise ValueError(f"a rotary dial has only 0-9, cannot dial {''.join(bad)!r}")
        if not pps > 0:
            raise ValueError(f"pps must be > 0, got {pps}")
        if not 0 < break_ratio < 1:
            raise ValueError(f"break_ratio must be between 0 and 1, got {break_ratio}")
        if not interdigit >= 0:
            raise ValueError(f"interdigit must be >= 0 s, got {interdigit}")
        pulse, brk = 1 / pps, break_ratio / pps
        edges: list[tuple[float, bool]] = []
        with self._lock:
            self._require_lifted("dial")
            now = self.clock.now()
            digit_start = max(now, self._hook_busy_until + interdigit)
            last_break_end = digit_start
            for digit in digits:
                for k in range(10 if digit == "0" else int(digit)):
                    edges.append((digit_start + k * pulse, False))
                    last_break_end = digit_start + k * pulse + brk
                    edges.append((last_break_end, True))
                digit_start = last_break_end + interdigit
            self._hook_busy_until = last_break_end
            generation = self._generation
        for when, off_hook in edges:
            self._hook_at(when, off_hook, generation)
        return last_break_end

    def _require_lifted(self, what: str) -> None:
        if not self._lifted:
            raise RuntimeError(
                f"line {self.line}: cannot {what} with the handset on hook "
                "(nothing reaches the line): lift() first"
            )

    def _hook_at(self, when: float, off_hook: bool, generation: int) -> None:
        now = self.clock.now()
        if when <= now:
            self._set_hook(off_hook, now, generation)
            return
        timer = self.clock.call_at(when, partial(self._timed_hook, off_hook, generation))
        with self._lock:
            if generation == self._generation:
                self._timers = [t for t in self._timers if t.when > now and not t.cancelled]
                self._timers.append(timer)
                return
        self.clock.cancel(timer)

    def _timed_hook(self, off_hook: bool, generation: int) -> None:
        self._set_hook(off_hook, self.clock.now(), generation)

    def _cancel_timed(self) -> None:
        with self._lock:
            self._generation += 1
            timers, self._timers = self._timers, []
            self._hook_busy_until = -math.inf
        for timer in timers:
            self.clock.cancel(timer)

    def _set_hook(self, off_hook: bool, at: float, generation: int | None = None) -> None:
        with self._hook_lock:
            with self._lock:
                if generation is not None and generation != self._generation:
                    return
                if generation is None and off_hook:
                    self._lifted = True
                if self._off_hook == off_hook:
                    return
                self._off_hook = off_hook
                slic = self._slic
            if slic is not None:
                slic._hook_sense(off_hook, at)

    # -- mouth: what the phone transmits --------------------------------------------------------

    def dial_dtmf(
        self,
        digits: str,
        on: float = 0.08,
        off: float = 0.08,
        level_dbm0: tuple[float, float] = (-9.0, -7.0),
    ) -> float:
        """Send touch-tone digits as real DTMF audio; returns when the last gap ends.

        Each digit is `on` s of its row + column tones (`level_dbm0` = low group, high group)
        followed by `off` s of silence, queued after any DTMF still being sent. Digits: 0-9 * #
        A-D (a-d accepted).
        """
        if not isinstance(digits, str) or not digits:
            raise ValueError("dial_dtmf needs a non-empty string of digits 0-9 * # A-D")
        keys = digits.upper()
        bad = sorted({d for d in keys if d not in DTMF_FREQUENCIES})
        if bad:
            raise ValueError(f"not DTMF digits: {''.join(bad)!r} (use 0-9 * # A-D)")
        on_samples, off_samples = round(on * SAMPLE_RATE), round(off * SAMPLE_RATE)
        if on_samples < 1 or off_samples < 0:
            raise ValueError(f"DTMF needs on > 0 s and off >= 0 s, got on={on}, off={off}")
        low, high = level_dbm0
        gap = array("h", bytes(2 * off_samples))
        samples = array("h")
        for key in keys:
            samples += dtmf_tone(key, on_samples, (low, high))
            samples += gap
        with self._lock:
            self._require_lifted("dial")
            return self._queue_locked(self._dtmf, samples)

    def speak(self, source: AudioSource) -> float:
        """Say something into the mouthpiece; returns when it ends.

        `source` is a WAV file (8 kHz mono 16-bit PCM only), raw S16LE bytes or an array('h').
        It is queued after earlier speech and mixed with any DTMF. Speech on hook is allowed (the
        person talks while lifting) but reaches the line only while off hook.
        """
        if isinstance(source, array):
            if source.typecode != "h":
                raise ValueError(f"speak() needs array('h') samples, got array({source.typecode!r})")
            samples = array("h", source)
        elif isinstance(source, bytes | bytearray | memoryview):
            samples = _samples_from_le(bytes(source))
        elif isinstance(source, str | os.PathLike):
            samples = read_wav(source)
        else:
            raise TypeError(f"speak() takes a WAV path, S16LE bytes or array('h'), not {source!r}")
        with self._lock:
            return self._queue_locked(self._voice, samples)

    def _queue_locked(self, stream: deque[_Segment], samples: array) -> float:
        now = self.clock.now()
        while stream and stream[0].end <= now:
            stream.popleft()  # already said, heard or not
        start = max(now, stream[-1].end) if stream else now
        stream.append(_Segment(start, samples))
        return start + len(samples) / SAMPLE_RATE

    def _mouth(self, t0: float, first: int, count: int) -> bytes:
        """Samples `first`..`first+count` of a port timeline that starts at clock time `t0`."""
        end = first + count
        pieces: list[list[tuple[int, array]]] = [[], []]  # per stream: (offset, samples)
        with self._lock:
            live = self._off_hook and self._linefeed is not Linefeed.OPEN
            for stream, found in zip((self._voice, self._dtmf), pieces, strict=True):
                while stream:
                    head = stream[0]
                    if round((head.start - t0) * SAMPLE_RATE) + len(head.samples) > first:
                        break
                    stream.popleft()
                if not live:
                    continue
                for segment in stream:
                    start = round((segment.start - t0) * SAMPLE_RATE)
                    if start >= end:
                        break
                    low, high = max(first, start), min(end, start + len(segment.samples))
                    if low < high:
                        found.append((low - first, segment.samples[low - start : high - start]))
        out = array("h", bytes(2 * count))
        if not live:
            return out.tobytes()
        if not (pieces[0] and pieces[1]):  # one stream: its segments never overlap, copy them
            for offset, samples in pieces[0] or pieces[1]:
                out[offset : offset + len(samples)] = samples
            return _le_bytes(out)
        # Speech and DTMF at once (the phone's mixer): sum and clip.
        mix = [0] * count
        for offset, samples in pieces[0] + pieces[1]:
            for i, value in enumerate(samples, offset):
                mix[i] += value
        return _le_bytes(array("h", (max(-32768, min(32767, v)) for v in mix)))

    # -- ear: what the phone hears ----------------------------------------------------------------

    def _ear(self, period: bytes, at: float) -> None:
        with self._lock:
            if self._linefeed is Linefeed.OPEN:
                return  # no battery, no audio path
            (self._heard if self._off_hook else self._on_hook_heard).append((at, period))
            pulse = self.wetting_pulse_s if not self._off_hook else None
            generation = self._generation
            receiving = self._nd_receiving and self._off_hook
            exchange = self._nd_exchange
        if pulse is not None:
            self._watch_for_tone_alert(period, at, pulse, generation)
        if receiving:
            self._watch_for_data_end(period, at, exchange, generation)

    def _watch_for_data_end(self, period: bytes, at: float, exchange: int,
                            generation: int) -> None:
        """Number display: the first silent period after the data ends the reception."""
        loud = max(abs(x) for x in _samples_from_le(period)) > ND_SILENCE_PEAK
        with self._lock:
            done = self._nd_heard_data and not loud
            self._nd_heard_data = self._nd_heard_data or loud
        if done:
            self._hook_at(at, False, generation)  # stale if the exchange was already released
            with self._lock:
                if exchange == self._nd_exchange:
                    self._nd_receiving = False

    def _watch_for_tone_alert(self, period: bytes, at: float, pulse: float,
                              generation: int) -> None:
        """SIN 227 terminal: when the tone alert heard on hook ends, draw the wetting pulse."""
        pcm = _samples_from_le(period)
        alert = all(_tone_level_dbm0(pcm, f) > TONE_ALERT_MIN_DBM0 for f in TONE_ALERT_HZ)
        with self._lock:
            ended = self._alert_heard and not alert
            self._alert_heard = alert
        if ended:
            self._hook_at(at, True, generation)
            self._hook_at(at + pulse, False, generation)

    def heard(self, since: float | None = None) -> bytes:
        """S16LE audio the firmware played to the phone while off hook (from `since`, if given)."""
        with self._lock:
            periods = list(self._heard)
        return _join_since(periods, since)

    def caller_id_audio(self, since: float | None = None) -> bytes:
        """S16LE audio played while on hook: on-hook transmission such as caller ID or VMWI."""
        with self._lock:
            periods = list(self._on_hook_heard)
        return _join_since(periods, since)

    def save_heard(self, path: str | os.PathLike[str], since: float | None = None) -> None:
        """Write `heard(since)` as an 8 kHz mono 16-bit WAV."""
        write_wav(path, self.heard(since))

    def clear_heard(self) -> None:
        with self._lock:
            self._heard.clear()
            self._on_hook_heard.clear()

    # -- ringer and line state ---------------------------------------------------------------

    @property
    def ringing(self) -> bool:
        """True while ring voltage is on (a burst), unlike `Slic.ringing` which spans the cadence."""
        with self._lock:
            return self._bell

    @property
    def ring_bursts(self) -> list[tuple[float, float | None]]:
        """(start, end) of each ring burst heard, oldest first; end is None while it rings."""
        with self._lock:
            return list(self._bursts)

    @property
    def linefeed(self) -> Linefeed:
        """The linefeed state on the wires (RINGING during a ring cadence)."""
        with self._lock:
            return self._linefeed

    def _connect(self, slic: SimSlic, linefeed: Linefeed) -> None:
        with self._lock:
            self._slic = slic
            self._linefeed = linefeed

    def _apply_linefeed(self, state: Linefeed, at: float, seq: int) -> None:
        with self._hook_lock:
            with self._lock:
                if seq <= self._linefeed_seq:
                    return  # overtaken by a later change delivered on another thread
                self._linefeed_seq = seq
                self._linefeed = state
                off_hook = self._off_hook
                slic = self._slic
            if slic is not None:
                slic._hook_sense(off_hook, at)  # battery may be back: the SLIC looks again

    def _ring_voltage(self, on: bool, at: float, seq: int) -> None:
        with self._lock:
            if seq <= self._ring_seq or on == self._bell:
                self._ring_seq = max(seq, self._ring_seq)
                return
            self._ring_seq = seq
            self._bell = on
            if on:
                self._bursts.append((at, None))
                del self._bursts[:-1000]  # bounded for long demos
            elif self._bursts:
                self._bursts[-1] = (self._bursts[-1][0], at)
            callback = self.on_ring if on else self.on_ring_stop
            respond = (not on and self.number_display and not self._lifted
                       and not self._nd_receiving and bool(self._bursts)
                       and at - self._bursts[-1][0] <= ND_CAR_MAX_BURST_S)
            if respond:
                self._nd_receiving, self._nd_heard_data = True, False
                self._nd_exchange += 1
            exchange, generation = self._nd_exchange, self._generation
        if callback is not None:
            callback(at)
        if respond:  # a call-arrival burst: primary response, and give up if no data comes
            self._hook_at(at + ND_RESPONSE_S, True, generation)
            self.clock.call_at(at + ND_GIVE_UP_S, partial(self._nd_release, exchange, generation))

    def _nd_release(self, exchange: int, generation: int) -> None:
        """Number display: the data is in (or never came): open the loop again."""
        with self._lock:
            if not self._nd_receiving or exchange != self._nd_exchange:
                return
            self._nd_receiving = False
        self._set_hook(False, self.clock.now(), generation)


def _join_since(periods: list[tuple[float, bytes]], since: float | None) -> bytes:
    if since is None:
        return b"".join(data for _, data in periods)
    return b"".join(data for at, data in periods if at >= since - _EPSILON)


def _ring_edges(start: float, cadence: RingCadence) -> Iterator[tuple[float, bool]]:
    """(time, ring voltage on) for each change after the first burst starts at `start`.

    Times are computed from `start`, not from the previous edge, so a long ring does not drift.
    A segment with no silent part runs into the next burst; a cadence with no silence at all is
    one continuous burst.
    """
    transitions: list[tuple[float, bool]] = []
    offset = 0.0
    for on, off in cadence.segments:
        transitions.append((offset, True))
        offset += on
        if off > 0:
            transitions.append((offset, False))
            offset += off
    if all(on for _, on in transitions):
        return
    period, state, cycle = cadence.period, True, 0
    while True:
        base = start + cycle * period
        for offset, on in transitions:
            if on != state:
                state = on
                yield base + offset, on
        cycle += 1


class SimSlic(GuardedSlic):
    """An in-memory SLIC: linefeed, ring cadence with ring trip, hook sensing of the handset.

    Starts in FORWARD_ACTIVE (as a real driver leaves the line after initialising the chip).
    """

    def __init__(self, line: int, clock: Clock, handset: VirtualHandset) -> None:
        self.line = line
        self.on_hook_event = None
        self._clock = clock
        self._handset = handset
        self._lock = threading.Lock()
        self._linefeed = Linefeed.FORWARD_ACTIVE
        self._before_ring = Linefeed.FORWARD_ACTIVE
        self._off_hook = False
        self._cadence: RingCadence | None = None
        self._edges: Iterator[tuple[float, bool]] | None = None
        self._ring_generation = 0
        self._ring_timer: TimerHandle | None = None
        self._burst_on = False
        self._seq = 0  # orders the notifications the handset receives from different threads
        handset._connect(self, self._linefeed)

    @property
    def ring_cadence(self) -> RingCadence | None:
        """The cadence running now, if any (for status pages and the virtual phone)."""
        with self._lock:
            return self._cadence

    def set_linefeed(self, state: Linefeed) -> None:
        self._check_linefeed(state)
        now = self._clock.now()
        pending: list[Callable[[], None]] = []
        with self._lock:
            if self._cadence is not None:
                self._stop_ring_locked(now, pending)
            self._linefeed = state
            pending.append(self._linefeed_notice(state, now))
        _run_all(pending)

    def ring(self, cadence: RingCadence) -> None:
        self._check_cadence(cadence)
        now = self._clock.now()
        pending: list[Callable[[], None]] = []
        with self._lock:
            if self._off_hook:
                # The phone is already off hook: a real SLIC trips at once, so no burst is heard.
                log.info("line %d: not ringing, the phone is off hook", self.line)
                return
            before = self._before_ring if self._cadence is not None else self._linefeed
            if self._cadence is not None:
                self._stop_ring_locked(now, pending)
            self._before_ring = before
            self._cadence = cadence
            self._edges = _ring_edges(now, cadence)
            pending.append(self._linefeed_notice(Linefeed.RINGING, now))
            self._set_burst_locked(True, now, pending)
            self._schedule_edge_locked()
        _run_all(pending)

    def stop_ring(self) -> None:
        pending: list[Callable[[], None]] = []
        with self._lock:
            if self._cadence is None:
                return
            self._stop_ring_locked(self._clock.now(), pending)
        _run_all(pending)

    def close(self) -> None:
        self.set_linefeed(Linefeed.OPEN)

    def _linefeed_notice(self, state: Linefeed, at: float) -> Callable[[], None]:
        self._seq += 1
        return partial(self._handset._apply_linefeed, state, at, self._seq)

    def _set_burst_locked(self, on: bool, at: float, pending: list[Callable[[], None]]) -> None:
        self._burst_on = on
        self._seq += 1
        pending.append(partial(self._handset._ring_voltage, on, at, self._seq))

    def _schedule_edge_locked(self) -> None:
        assert self._edges is not None
        edge = next(self._edges, None)
        if edge is None:
            return  # continuous ringing: nothing to time
        when, on = edge
        generation = self._ring_generation
        self._ring_timer = self._clock.call_at(when, partial(self._ring_edge, generation, on))

    def _ring_edge(self, generation: int, on: bool) -> None:
        pending: list[Callable[[], None]] = []
        with self._lock:
            if generation != self._ring_generation or self._cadence is None:
                return
            self._set_burst_locked(on, self._clock.now(), pending)
            self._schedule_edge_locked()
        _run_all(pending)

    def _stop_ring_locked(self, at: float, pending: list[Callable[[], None]]) -> None:
        self._ring_generation += 1
        if self._ring_timer is not None:
            self._clock.cancel(self._ring_timer)
            self._ring_timer = None
        if self._burst_on:
            self._set_burst_locked(False, at, pending)
        self._cadence = None
        self._edges = None
        self._linefeed = self._before_ring
        pending.append(self._linefeed_notice(self._linefeed, at))

    def _hook_sense(self, off_hook: bool, at: float) -> None:
        """The handset's hook switch as this SLIC can see it (called with no SLIC lock held)."""
        pending: list[Callable[[], None]] = []
        with self._lock:
            if self._cadence is None and self._linefeed is Linefeed.OPEN:
                return  # no battery, no loop current: the switch cannot be sensed
            if off_hook == self._off_hook:
                return
            self._off_hook = off_hook
            if off_hook and self._cadence is not None:
                self._stop_ring_locked(at, pending)  # ring trip
        _run_all(pending)
        self._emit(HookEvent(self.line, off_hook, at))


def _run_all(pending: list[Callable[[], None]]) -> None:
    for notify in pending:
        notify()


class SimAudioPort(AudioPort):
    """The line's audio device: captures the handset's mouth, plays to its ear, 20 ms periods.

    Its period schedule starts at `start()`: period k spans [t0 + k*20 ms, t0 + (k+1)*20 ms) and
    `read` returns it once that time has passed (on a virtual clock, `read` moves the clock there).

    Capture: if the reader falls more than `buffer_periods` behind, the oldest periods are lost and
    each lost period counts one overrun. Playout runs `playout_lead` behind the capture schedule:
    playout slot k spans [t0 + k*20 ms + lead, ...), and a written period plays in the first slot
    that has not begun, or after those already queued. That is a real device's playout: what is
    written now is heard once what the device already holds has played, and the lead (the fill
    level at each capture period's end) is both the playout latency and how late a write may come
    (one period by default, like an ALSA playout primed with one period). The port keeps that
    fill level: a period written while another still waits to begin is dropped and counted in
    `playout_trimmed`, since a media thread catching up after a stall (reading the periods the
    capture side buffered, and writing one for each) would otherwise keep the extra periods
    queued, and their latency, for the rest of the call; so `write` never blocks. Once playout
    has begun, each slot that begins with nothing written for it counts one underrun (checked at
    every read and write, so a media loop that reads then writes each period in time never
    underruns, and one that skips a write counts exactly one). A write racing `stop()` is
    dropped: the device is gone, and the next read raises AudioStopped.
    """

    def __init__(
        self,
        line: int,
        clock: Clock,
        handset: VirtualHandset,
        *,
        buffer_periods: int = DEFAULT_BUFFER_PERIODS,
        playout_lead: float = DEFAULT_PLAYOUT_LEAD,
    ) -> None:
        if buffer_periods < 1:
            raise ValueError(f"buffer_periods must be >= 1, got {buffer_periods}")
        self.playout_lead = playout_lead_frames(playout_lead) / SAMPLE_RATE
        self.line = line
        self.overruns = 0
        self.underruns = 0
        self.playout_trimmed = 0
        self.buffer_periods = buffer_periods
        self._clock = clock
        self._handset = handset
        self._cond = threading.Condition(threading.Lock())
        self._running = False
        self._session = 0
        self._t0 = 0.0
        self._next_capture = 0
        self._play_slot: int | None = None

    @property
    def running(self) -> bool:
        with self._cond:
            return self._running

    def start(self) -> None:
        with self._cond:
            if self._running:
                return
            self._running = True
            self._session += 1
            self._t0 = self._clock.now()
            self._next_capture = 0
            self._play_slot = None

    def stop(self) -> None:
        with self._cond:
            self._running = False
            self._cond.notify_all()

    def _stopped_test(self) -> Callable[[], bool]:
        session = self._session
        return lambda: not self._running or self._session != session

    def _slot_now(self) -> int:
        """Index of the period slot in progress = number of periods completed since start."""
        return math.floor((self._clock.now() - self._t0) / PERIOD_SECONDS + 1e-6)

    def _playout_begun(self) -> int:
        """Number of playout slots begun: the first slot a write can still fill."""
        elapsed = self._clock.now() - self._t0 - self.playout_lead
        return max(0, math.floor(elapsed / PERIOD_SECONDS + 1e-6) + 1)

    def _count_underruns(self, current: int) -> None:
        if self._play_slot is not None and self._play_slot < current:
            self.underruns += current - self._play_slot
            self._play_slot = current

    def read(self) -> bytes:
        with self._cond:
            stopped = self._stopped_test()
            if stopped():
                raise AudioStopped(f"line {self.line}: audio port is stopped")
            while (current := self._slot_now()) <= self._next_capture:
                boundary = self._t0 + (self._next_capture + 1) * PERIOD_SECONDS
                if not self._clock.wait_until(boundary, self._cond, stopped):
                    raise AudioStopped(f"line {self.line}: audio port stopped")
            behind = current - self._next_capture
            if behind > self.buffer_periods:
                self.overruns += behind - self.buffer_periods
                self._next_capture = current - self.buffer_periods
            index = self._next_capture
            self._next_capture += 1
            self._count_underruns(self._playout_begun())
            t0 = self._t0
            # Port lock -> handset lock is the only order these two are ever taken in.
            return self._handset._mouth(t0, index * PERIOD_SAMPLES, PERIOD_SAMPLES)

    def write(self, period: bytes) -> None:
        data = memoryview(period).tobytes()
        if len(data) != PERIOD_BYTES:
            raise ValueError(
                f"line {self.line}: expected one period of {PERIOD_BYTES} bytes "
                f"({PERIOD_SAMPLES} samples), got {len(data)} bytes"
            )
        with self._cond:
            stopped = self._stopped_test()
            if stopped():
                return
            begun = self._playout_begun()
            self._count_underruns(begun)
            if self._play_slot is None:
                self._play_slot = begun
            if self._play_slot > begun:  # a period already waits: this one would add latency
                self.playout_trimmed += 1
                return
            at = self._t0 + self._play_slot * PERIOD_SECONDS + self.playout_lead
            self._play_slot += 1
        self._handset._ear(data, at)


@dataclass
class SimBoard(Board):
    """The sim board plus what a test or the virtual phone needs: the handsets and the clock."""

    handsets: list[VirtualHandset]
    clock: Clock
    owns_clock: bool = False

    def close(self) -> None:
        super().close()
        for handset in self.handsets:
            handset._cancel_timed()
        if self.owns_clock:
            self.clock.close()


def create_sim_board(
    lines: int = 1,
    clock: Clock | None = None,
    *,
    name: str = "sim",
    record_seconds: float = DEFAULT_RECORD_SECONDS,
    playout_lead: float = DEFAULT_PLAYOUT_LEAD,
) -> SimBoard:
    """A sim board with `lines` (1 or 2) ports; a RealClock is created (and closed) if none given."""
    if isinstance(lines, bool) or not isinstance(lines, int) or not 1 <= lines <= 2:
        raise ValueError(f"the sim board has 1 or 2 lines, got {lines!r}")
    owns_clock = clock is None
    if clock is None:
        clock = RealClock()
    handsets: list[VirtualHandset] = []
    ports: list[LinePort] = []
    for index in range(lines):
        handset = VirtualHandset(index, clock, record_seconds=record_seconds)
        slic = SimSlic(index, clock, handset)
        audio = SimAudioPort(index, clock, handset, playout_lead=playout_lead)
        handsets.append(handset)
        ports.append(LinePort(index, slic, audio))
    return SimBoard(name, "sim", ports, handsets, clock, owns_clock)


def open_sim_board(profile: BoardProfile) -> SimBoard:
    """Factory named by `hal.profile.DRIVERS`: a real-time sim board from a board profile.

    Optional profile table `[sim]`: `record_seconds` (how much heard audio each handset keeps),
    `playout_lead_ms` (the audio ports' playout lead, more than 0 and at most 20).
    """
    table = profile.settings.get("sim", {})
    if not isinstance(table, dict):
        raise HardwareError(f"board profile {profile.name!r}: [sim] must be a table")
    record_seconds = table.get("record_seconds", DEFAULT_RECORD_SECONDS)
    if (
        isinstance(record_seconds, bool)
        or not isinstance(record_seconds, int | float)
        or not record_seconds > 0
    ):
        raise HardwareError(
            f"board profile {profile.name!r}: sim.record_seconds must be a number > 0, "
            f"got {record_seconds!r}"
        )
    return create_sim_board(
        profile.lines, name=profile.name, record_seconds=float(record_seconds),
        playout_lead=playout_lead_setting(table, f"board profile {profile.name!r}: sim"),
    )
