"""Python facade over the C DSP core `tipring._dsp`.

The extension is required: there is no pure-Python fallback in the firmware, because a fallback
would run the audio path an order of magnitude slower and hide a broken build until a call drops.
Functions here work on caller-provided buffers (bytes-like in, writable bytes-like or cffi
buffers out) and make exactly one C call each; the media thread keeps its buffers across frames.
"""

from __future__ import annotations

import datetime
import enum
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

try:
    from tipring._dsp import ffi, lib
except ImportError as exc:  # pragma: no cover - exercised only on a broken install
    raise ImportError(
        "tipring._dsp (the C DSP extension) is not built: reinstall TipRing with a C compiler and "
        "the Python headers available (on Debian: apt-get install build-essential python3-dev "
        f"libffi-dev), then `pip install .` ({exc})"
    ) from exc

ABI_VERSION = 8

if lib.tr_dsp_abi_version() != ABI_VERSION:  # pragma: no cover - a stale build
    raise ImportError(
        f"tipring._dsp ABI {lib.tr_dsp_abi_version()} does not match the firmware's {ABI_VERSION}: "
        "rebuild the extension (pip install .)"
    )

lib.tr_dsp_init()

__all__ = [
    "DEFAULT_LEG",
    "DTMF_HIGH",
    "DTMF_KEYS",
    "DTMF_LOW",
    "FOREVER",
    "FRAME",
    "MAX_LEGS",
    "MAX_TONE_COMPONENTS",
    "MAX_TONE_SEGMENTS",
    "SAMPLE_RATE",
    "Absence",
    "AudioPath",
    "CallerId",
    "DtmfDetector",
    "FskModulator",
    "FskStandard",
    "Law",
    "ToneEvent",
    "ToneEventKind",
    "ToneGenerator",
    "ToneSegment",
    "cadence",
    "cas_tone",
    "checksum",
    "decode",
    "dtmf_segments",
    "encode",
    "etsi_dtmf_clip",
    "ffi",
    "lib",
    "mdmf_message",
    "sdmf_message",
]


class Law(enum.Enum):
    """G.711 companding law, valued by its RTP/SDP encoding name (RFC 3551 static types 0 and 8)."""

    ULAW = "PCMU"
    ALAW = "PCMA"

    @property
    def payload_type(self) -> int:
        return 0 if self is Law.ULAW else 8


_ENCODERS = {Law.ULAW: lib.tr_ulaw_encode, Law.ALAW: lib.tr_alaw_encode}
_DECODERS = {Law.ULAW: lib.tr_ulaw_decode, Law.ALAW: lib.tr_alaw_decode}


def encode(law: Law, pcm: object, out: object) -> int:
    """Encode S16 native-endian samples from `pcm` into G.711 codes in `out`; returns the count.

    `out` must be writable and hold at least one byte per sample.
    """
    nbytes = memoryview(pcm).nbytes
    if nbytes % 2:
        raise ValueError(f"linear audio must be whole 16-bit samples, got {nbytes} bytes")
    src = ffi.from_buffer("int16_t[]", pcm)
    dst = ffi.from_buffer("uint8_t[]", out, require_writable=True)
    n = len(src)
    if len(dst) < n:
        raise ValueError(f"output holds {len(dst)} codes, {n} samples need {n}")
    _ENCODERS[law](src, dst, n)
    return n


def decode(law: Law, codes: object, out: object) -> int:
    """Decode G.711 codes into S16 native-endian samples in `out`; returns the count."""
    src = ffi.from_buffer("uint8_t[]", codes)
    dst = ffi.from_buffer("int16_t[]", out, require_writable=True)
    n = len(src)
    if len(dst) < n:
        raise ValueError(f"output holds {len(dst)} samples, {n} codes need {n}")
    _DECODERS[law](src, dst, n)
    return n


# --- Tone generator (issue 3 item 4) ------------------------------------------------------------

SAMPLE_RATE = 8000
FRAME = 160  # samples in one 20 ms period
MAX_TONE_COMPONENTS = 4
MAX_TONE_SEGMENTS = 32
FOREVER = math.inf


@dataclass(frozen=True)
class ToneSegment:
    """One cadence step: up to 4 (frequency Hz, level dBm0) components on for `on` s, then `off` s
    of silence. `on=FOREVER` (or None) sounds until stopped (steady dial tone). SIT is three
    segments, each with its own single frequency and no gap; an empty `components` is a pause."""

    components: tuple[tuple[float, float], ...]
    on: float | None
    off: float = 0.0


def cadence(
    components: Sequence[tuple[float, float]],
    periods: Sequence[tuple[float | None, float]],
) -> list[ToneSegment]:
    """Segments for one frequency set played with a list of (on s, off s) periods."""
    comps = tuple(components)
    return [ToneSegment(comps, on, off) for on, off in periods]


def fill_tone_plan(
    plan: Any, segments: Sequence[ToneSegment], repeat_from: int | None, ramp: float
) -> None:
    """Write a cadence into a `tr_tone_plan_t`, refusing what the C core cannot play."""
    if not 1 <= len(segments) <= MAX_TONE_SEGMENTS:
        raise ValueError(f"a cadence has 1..{MAX_TONE_SEGMENTS} segments, got {len(segments)}")
    if repeat_from is not None and not 0 <= repeat_from < len(segments):
        raise ValueError(f"repeat_from {repeat_from} is not a segment index")
    ffi.memmove(plan, bytes(ffi.sizeof("tr_tone_plan_t")), ffi.sizeof("tr_tone_plan_t"))
    for i, seg in enumerate(segments):
        if len(seg.components) > MAX_TONE_COMPONENTS:
            raise ValueError(f"segment {i}: at most {MAX_TONE_COMPONENTS} components")
        dst = plan.seg[i]
        for c, (freq, level) in enumerate(seg.components):
            if not 0 <= freq < SAMPLE_RATE / 2:
                raise ValueError(f"segment {i}: frequency {freq} Hz is outside 0..4000 Hz")
            dst.comp[c].freq_hz = freq
            dst.comp[c].level_dbm0 = level
        dst.n_comp = len(seg.components)
        dst.on_samples = -1 if seg.on is None or math.isinf(seg.on) else _samples(seg.on)
        dst.off_samples = _samples(seg.off)
        if dst.on_samples == 0 and dst.off_samples == 0:
            raise ValueError(f"segment {i} is empty")
    plan.n_seg = len(segments)
    plan.loop_from = -1 if repeat_from is None else repeat_from
    plan.ramp_samples = _samples(ramp)


class ToneGenerator:
    """Phase-continuous tone cadence, one C call per frame; state lives in a cffi struct."""

    def __init__(self) -> None:
        self._gen = ffi.new("tr_tone_gen_t *")
        self._plan = ffi.new("tr_tone_plan_t *")
        self.active = False

    def start(
        self,
        segments: Sequence[ToneSegment],
        repeat_from: int | None = 0,
        ramp: float = 0.003,
    ) -> None:
        """Start a cadence; after the last segment it restarts at `repeat_from` (None: it ends).

        Times are rounded to whole samples; `ramp` is the raised-cosine rise and fall (s).
        """
        fill_tone_plan(self._plan, segments, repeat_from, ramp)
        if lib.tr_tone_start(self._gen, self._plan) != 0:  # pragma: no cover - checked above
            raise ValueError("the C core rejected the tone plan")
        self.active = True

    def stop(self) -> None:
        self.active = False

    def generate(self, out: object, mix: bool = False) -> bool:
        """Write (or with `mix`, add) the next len(out) samples; False once the cadence has ended.

        A stopped or finished generator writes silence (or leaves `out` alone when mixing).
        """
        dst = ffi.from_buffer("int16_t[]", out, require_writable=True)
        if not self.active:
            if not mix:
                ffi.memmove(dst, bytes(2 * len(dst)), 2 * len(dst))
            return False
        self.active = bool(lib.tr_tone_generate(self._gen, dst, len(dst), int(mix)))
        return self.active


def _samples(seconds: float) -> int:
    if seconds < 0 or math.isnan(seconds) or seconds * SAMPLE_RATE > 2**31 - 1:
        raise ValueError(f"duration {seconds} s is out of range")
    return round(seconds * SAMPLE_RATE)


# --- DTMF and fax tone detector (issue 3 item 3) -------------------------------------------------


class ToneEventKind(enum.Enum):
    DIGIT_START = 1
    DIGIT_END = 2
    FAX_CNG = 3  # calling tone, 1100 Hz, reported once per burst after 400 ms
    FAX_CED = 4  # answer tone, 2100 Hz, reported after 500 ms (phase reversals: echo canceller)


@dataclass(frozen=True)
class ToneEvent:
    """A detector event. `at` counts samples from the detector's start; `offset` is the same
    instant relative to the first sample of the frame just fed (negative: an earlier frame, as a
    digit is confirmed about 25 ms after it begins)."""

    kind: ToneEventKind
    digit: str  # "0"-"9", "*", "#", "A"-"D"; "" for fax tones
    at: int
    offset: int
    duration: int = 0  # DIGIT_END: samples the digit lasted
    low_dbm0: float = 0.0  # DIGIT_START: low-group level; fax: tone level
    high_dbm0: float = 0.0  # DIGIT_START: high-group level


class DtmfDetector:
    """Per-line DTMF/CNG/CED detector on 8 kHz linear audio; one C call per frame."""

    MAX_EVENTS = 16

    def __init__(self, min_level_dbm0: float = -42.0) -> None:
        self._rx = ffi.new("tr_dtmf_rx_t *")
        self._events = ffi.new("tr_dtmf_event_t[]", self.MAX_EVENTS)
        self._min_level = min_level_dbm0
        self.reset()

    def reset(self) -> None:
        lib.tr_dtmf_rx_init(self._rx)
        self._rx.min_level_dbm0 = self._min_level

    @property
    def samples(self) -> int:
        """Samples fed since the start."""
        return int(self._rx.samples)

    def feed(self, pcm: object) -> list[ToneEvent]:
        src = ffi.from_buffer("int16_t[]", pcm)
        frame_start = int(self._rx.samples)
        n = lib.tr_dtmf_rx(self._rx, src, len(src), self._events, self.MAX_EVENTS)
        return tone_events(self._events, n, frame_start)


def tone_events(events: Any, n: int, frame_start: int) -> list[ToneEvent]:
    """The first `n` C detector events as `ToneEvent`s, offsets relative to `frame_start`."""
    return [
        ToneEvent(
            ToneEventKind(e.kind),
            chr(e.code) if e.code else "",
            int(e.at),
            int(e.at) - frame_start,
            int(e.duration),
            round(float(e.low_dbm0), 2),
            round(float(e.high_dbm0), 2),
        )
        for e in events[0:n]
    ]


DTMF_LOW = (697.0, 770.0, 852.0, 941.0)
DTMF_HIGH = (1209.0, 1336.0, 1477.0, 1633.0)
DTMF_KEYS = ("123A", "456B", "789C", "*0#D")


def dtmf_segments(
    digits: str,
    on: float = 0.07,
    off: float = 0.07,
    low_dbm0: float = -8.0,
    high_dbm0: float = -6.0,
) -> list[ToneSegment]:
    """Tone segments sending `digits` (0-9 * # A-D) as DTMF, `on` s each with `off` s gaps.

    The default levels follow common practice for a telephone: high group 2 dB above the low.
    """
    segments = []
    for ch in digits.upper():
        for r, row in enumerate(DTMF_KEYS):
            if ch in row:
                pair = ((DTMF_LOW[r], low_dbm0), (DTMF_HIGH[row.index(ch)], high_dbm0))
                segments.append(ToneSegment(pair, on, off))
                break
        else:
            raise ValueError(f"{ch!r} is not a DTMF digit")
    return segments


# --- Caller ID (issue 3 item 5) ------------------------------------------------------------------


class FskStandard(enum.Enum):
    """Caller-ID FSK at 1200 baud, valued by (mark Hz, space Hz)."""

    BELL202 = (1200.0, 2200.0)  # Telcordia GR-30 (North America)
    V23 = (1300.0, 2100.0)  # ITU-T V.23, ETSI EN 300 659-1

    @property
    def mark_hz(self) -> float:
        return self.value[0]

    @property
    def space_hz(self) -> float:
        return self.value[1]


class Absence(enum.Enum):
    """Reason a number or name is not delivered (MDMF/SDMF and ETSI parameter value)."""

    PRIVATE = "P"
    UNAVAILABLE = "O"


@dataclass(frozen=True)
class CallerId:
    """What the phone should display. `when` is local time, supplied by the caller (the pure
    layers read no clock); a missing number or name may carry its reason of absence."""

    number: str | None = None
    name: str | None = None
    when: datetime.datetime | None = None
    number_absence: Absence | None = None
    name_absence: Absence | None = None


SDMF_CALL_SETUP = 0x04
MDMF_CALL_SETUP = 0x80
PARAM_DATE_TIME = 0x01
PARAM_NUMBER = 0x02
PARAM_NUMBER_ABSENCE = 0x04
PARAM_NAME = 0x07
PARAM_NAME_ABSENCE = 0x08
_NUMBER_CHARS = frozenset("0123456789*#+")


def checksum(frame: bytes) -> int:
    """Two's complement of the byte sum modulo 256, so that the whole message sums to zero."""
    return -sum(frame) & 0xFF


def _date_time(when: datetime.datetime) -> bytes:
    return f"{when.month:02d}{when.day:02d}{when.hour:02d}{when.minute:02d}".encode()


def _number(number: str) -> bytes:
    if not number or len(number) > 20 or set(number) - _NUMBER_CHARS:
        raise ValueError(f"caller number {number!r} must be 1-20 of 0-9 * # +")
    return number.encode()


def _finish(msg_type: int, body: bytes) -> bytes:
    if len(body) > 255:
        raise ValueError(f"caller-ID message body of {len(body)} bytes exceeds 255")
    frame = bytes([msg_type, len(body)]) + body
    return frame + bytes([checksum(frame)])


def sdmf_message(cid: CallerId) -> bytes:
    """Single Data Message Format (GR-30): date/time, then the number or 'P'/'O'; no name."""
    if cid.when is None:
        raise ValueError("SDMF always carries the date and time")
    if cid.number:
        tail = _number(cid.number)
        if len(tail) > 10:
            raise ValueError("an SDMF number has at most 10 digits")
    else:
        tail = (cid.number_absence or Absence.UNAVAILABLE).value.encode()
    return _finish(SDMF_CALL_SETUP, _date_time(cid.when) + tail)


def mdmf_message(cid: CallerId) -> bytes:
    """Multiple Data Message Format call setup (GR-30 MDMF, ETSI EN 300 659-3): date/time,
    number or its absence reason, name or its absence reason. Names are ASCII (others become
    '?') up to 50 characters, ETSI's limit; GR-30 displays show 15, so the line layer trims."""
    params = bytearray()

    def add(ptype: int, value: bytes) -> None:
        params.extend((ptype, len(value)))
        params.extend(value)

    if cid.when is not None:
        add(PARAM_DATE_TIME, _date_time(cid.when))
    if cid.number:
        add(PARAM_NUMBER, _number(cid.number))
    else:
        add(PARAM_NUMBER_ABSENCE, (cid.number_absence or Absence.UNAVAILABLE).value.encode())
    if cid.name:
        name = cid.name.encode("ascii", "replace")
        if len(name) > 50 or any(b < 0x20 or b > 0x7E for b in name):
            raise ValueError(f"caller name {cid.name!r} must be 1-50 printable ASCII characters")
        add(PARAM_NAME, name)
    elif cid.name_absence is not None:
        add(PARAM_NAME_ABSENCE, cid.name_absence.value.encode())
    return _finish(MDMF_CALL_SETUP, bytes(params))


def load_fsk(tx: Any, message: bytes, standard: FskStandard, seizure_bits: int, mark_bits: int,
             postamble_bits: int, level_dbm0: float) -> None:
    """Configure a `tr_fsk_tx_t` for one caller-ID burst (started by the caller)."""
    if not 0 < len(message) <= 256:
        raise ValueError(f"message of {len(message)} bytes: 1..256 expected")
    tx.mark_hz, tx.space_hz = standard.value
    tx.level_dbm0 = level_dbm0
    tx.seizure_bits, tx.mark_bits = seizure_bits, mark_bits
    tx.stop_bits, tx.postamble_bits = 1, postamble_bits
    ffi.memmove(tx.data, message, len(message))
    tx.len = len(message)


class FskModulator:
    """Caller-ID FSK burst, one C call per frame. On-hook (first ring gap or before ringing):
    300 seizure bits and 180 mark bits; off-hook call waiting (after the CAS tone): no seizure,
    80 mark bits."""

    def __init__(self) -> None:
        self._tx = ffi.new("tr_fsk_tx_t *")
        self.active = False

    def start(
        self,
        message: bytes,
        standard: FskStandard = FskStandard.BELL202,
        seizure_bits: int = 300,
        mark_bits: int = 180,
        postamble_bits: int = 10,
        level_dbm0: float = -13.5,
    ) -> int:
        """Load a message (bytes with checksum); returns the burst length in samples."""
        load_fsk(self._tx, message, standard, seizure_bits, mark_bits, postamble_bits,
                 level_dbm0)
        if lib.tr_fsk_tx_start(self._tx) != 0:
            raise ValueError("FSK settings out of range (bit counts, level above +3 dBm0)")
        self.active = True
        return int(self._tx.total_samples)

    def generate(self, out: object) -> bool:
        """Write the next len(out) samples (silence after the end); False once it has ended."""
        dst = ffi.from_buffer("int16_t[]", out, require_writable=True)
        if not self.active:
            ffi.memmove(dst, bytes(2 * len(dst)), 2 * len(dst))
            return False
        self.active = bool(lib.tr_fsk_tx(self._tx, dst, len(dst)))
        return self.active


def etsi_dtmf_clip(
    number: str | None = None,
    absence: Absence | None = None,
    start: str = "A",
) -> str:
    """DTMF caller ID string (ETSI EN 300 659-1 DTMF variant): `start` ('A', or 'D' where the
    operator uses it) + number + 'C'; without a number 'B' + '10' (private) or '00'
    (unavailable) + 'C'. Send it with `dtmf_segments`."""
    if start not in ("A", "D"):
        raise ValueError("the number starts with 'A' or 'D'")
    if number:
        if set(number) - set("0123456789") or len(number) > 20:
            raise ValueError(f"DTMF caller ID carries 1-20 decimal digits, not {number!r}")
        return f"{start}{number}C"
    return "B" + ("10" if absence is Absence.PRIVATE else "00") + "C"


def cas_tone(level_dbm0: float = -15.0, duration: float = 0.080) -> list[ToneSegment]:
    """CPE alerting signal for call-waiting caller ID: 2130 + 2750 Hz for 80 ms (GR-30)."""
    return [ToneSegment(((2130.0, level_dbm0), (2750.0, level_dbm0)), duration)]


# --- the audio path of one line (issue 3 item 7) ---------------------------------------------------


DEFAULT_LEG = ""  # the leg of a line with one call, as before lines carried legs
MAX_LEGS = int(lib.TR_PATH_LEGS)


class PathState:
    """`tr_path_t` as `AudioPath.state` shows it: every field of the struct, plus `jb`, the
    default leg's jitter buffer, where it was before a path carried legs."""

    __slots__ = ("_owner",)

    def __init__(self, owner: AudioPath) -> None:
        object.__setattr__(self, "_owner", owner)

    @property
    def jb(self) -> Any:
        return self._owner.leg_state(self._owner.default_leg).jb

    def __getattr__(self, name: str) -> Any:
        return getattr(self._owner._path, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._owner._path, name, value)


class AudioPath:
    """All DSP of one line in one C struct, with one call per 20 ms period and direction.

    `capture` takes what the line captured and returns the G.711 payload to send and any
    detected DTMF/fax tones; `playout` returns what the line should play now (the network's
    audio from the jitter buffers, concealed where lost, with caller ID and tones on top, or a
    voice prompt instead). The media thread owns it; legs, tones, FSK, prompts and mutes are
    changed between frames.

    A path carries up to MAX_LEGS named call legs (a conference is two); a new path has the
    default leg "" attached in `law`, so a single call needs no leg names at all. Each leg has
    its own jitter buffer (`put`), law, direction and payload (`payload(leg)` after `capture`).
    """

    MAX_EVENTS = 8

    def __init__(self, law: Law = Law.ULAW, *, echo_tail_ms: int = 32, echo_delay_ms: int = 0,
                 nlp: bool = True, jitter_min_ms: int = 20, jitter_max_ms: int = 200,
                 jitter_fixed: bool = False, tx_gain_db: float = 0.0,
                 rx_gain_db: float = 0.0) -> None:
        self._path = ffi.new("tr_path_t *")
        lib.tr_path_init(self._path, law.payload_type, echo_tail_ms, echo_delay_ms, int(nlp),
                         jitter_min_ms, jitter_max_ms, int(jitter_fixed))
        lib.tr_path_set_gains(self._path, tx_gain_db, rx_gain_db)
        self._slots: dict[str, int] = {DEFAULT_LEG: 0}
        self._jbufs = [ffi.addressof(self._path.leg[slot], "jb") for slot in range(MAX_LEGS)]
        self._plan = ffi.new("tr_tone_plan_t *")
        self._events = ffi.new("tr_dtmf_event_t[]", self.MAX_EVENTS)
        self._payload = ffi.new("uint8_t[]", MAX_LEGS * FRAME)
        self._out = ffi.new("int16_t[]", FRAME)
        self._prompt: Any = None  # the playing prompt's samples: C reads them in place
        self.prompt_finished = False  # the last playout played a prompt's last sample
        self.law = law

    @property
    def state(self) -> PathState:
        """The C struct, for statistics (echo canceller, jitter buffers) and tests."""
        return PathState(self)

    # --- legs -----------------------------------------------------------------------------------

    @property
    def legs(self) -> tuple[str, ...]:
        """The attached legs, in slot order."""
        return tuple(sorted(self._slots, key=self._slots.__getitem__))

    @property
    def default_leg(self) -> str:
        """The leg `capture`'s payload and `jitter_buffer` are about: "" if attached, else the
        first attached leg."""
        if DEFAULT_LEG in self._slots or not self._slots:
            return DEFAULT_LEG
        return self.legs[0]

    def attach_leg(self, leg: str = DEFAULT_LEG, law: Law = Law.ULAW) -> None:
        """Start a leg sent in `law`, sending and receiving, with a fresh jitter buffer. An
        attached leg (a re-INVITE) keeps its jitter buffer: its far end is the same, and a new
        SSRC resets the buffer anyway."""
        slot = self._slots.get(leg)
        if slot is not None:
            state = self._path.leg[slot]
            state.law, state.send, state.receive = law.payload_type, 1, 1
        else:
            free = set(range(MAX_LEGS)) - set(self._slots.values())
            if not free:
                raise ValueError(f"a line carries at most {MAX_LEGS} legs; {self.legs} are "
                                 f"attached, so {leg!r} cannot be")
            slot = min(free)
            lib.tr_path_attach_leg(self._path, slot, law.payload_type)
            self._slots[leg] = slot
        if slot == self._slots.get(self.default_leg):
            self.law = law

    def detach_leg(self, leg: str | None = None) -> None:
        """Drop one leg (None: every leg); an unknown leg is already gone."""
        for name in list(self._slots) if leg is None else [leg]:
            slot = self._slots.pop(name, None)
            if slot is not None:
                lib.tr_path_detach_leg(self._path, slot)

    def set_direction(self, send: bool, receive: bool, leg: str = DEFAULT_LEG) -> None:
        """A leg that does not send is encoded for no one; one that does not receive is heard
        by no one (neither the handset nor the other leg)."""
        state = self.leg_state(leg)
        state.send, state.receive = int(send), int(receive)

    def leg_state(self, leg: str = DEFAULT_LEG) -> Any:
        """The leg's `tr_leg_t`: its jitter buffer and statistics, law, direction."""
        return self._path.leg[self._slot(leg)]

    def _slot(self, leg: str) -> int:
        try:
            return self._slots[leg]
        except KeyError:
            raise KeyError(f"no leg {leg!r} is attached (attached: {self.legs})") from None

    @property
    def jitter_buffer(self) -> Any:
        """The default leg's jitter buffer (`tr_jbuf_t *`)."""
        return ffi.addressof(self.leg_state(self.default_leg), "jb")

    # --- the two calls per frame ------------------------------------------------------------

    def capture(self, pcm: bytes) -> tuple[bytes, list[ToneEvent]]:
        """One captured period in; the default leg's payload and the detected tones out (every
        leg's payload of this frame is then in `payload`)."""
        tones = self.capture_tones(pcm)
        slot = self._slots.get(self.default_leg, 0)
        return ffi.buffer(self._payload + slot * FRAME, FRAME)[:], tones

    def capture_tones(self, pcm: bytes) -> list[ToneEvent]:
        """`capture` for a caller that takes each leg's payload from `payload`: the detected
        tones alone (the media thread's call, every frame)."""
        if len(pcm) != 2 * FRAME:
            raise ValueError(f"a capture period is {2 * FRAME} bytes, got {len(pcm)}")
        start = int(self._path.dtmf.samples)
        n = lib.tr_capture(self._path, ffi.from_buffer("int16_t[]", pcm), self._payload,
                           self._events, self.MAX_EVENTS)
        return tone_events(self._events, n, start) if n else []

    def payload(self, leg: str = DEFAULT_LEG) -> bytes:
        """What `leg` is sent for the last captured period: the handset and the other legs."""
        return ffi.buffer(self._payload + self._slot(leg) * FRAME, FRAME)[:]

    def playout(self, now: float) -> bytes:
        ended = lib.tr_playout(self._path, int(now * 1e6), self._out)
        self.prompt_finished = bool(ended & lib.TR_PLAYOUT_PROMPT_ENDED)
        if self.prompt_finished:
            self._prompt = None
        return ffi.buffer(self._out)[:]

    def put(self, ssrc: int, sequence: int, timestamp: int, marker: bool, payload_type: int,
            payload: bytes, arrival: float, leg: str = DEFAULT_LEG) -> int:
        """One received RTP packet into the leg's jitter buffer; returns the TR_JB_* result."""
        return int(lib.tr_jb_put(self._jbufs[self._slot(leg)], ssrc, sequence, timestamp,
                                 int(marker), payload_type, payload, len(payload),
                                 int(arrival * 1e6)))

    # --- what the handset hears besides the far ends ------------------------------------------

    def play_prompt(self, pcm: bytes) -> None:
        """Play 8 kHz mono S16LE samples instead of everything else, replacing a prompt in
        progress; `prompt_finished` is set by the playout that plays the last sample."""
        data = bytes(pcm)
        if not data or len(data) % 2:
            raise ValueError(f"a voice prompt is whole 16-bit samples, at least one; got "
                             f"{len(data)} bytes")
        samples = ffi.new("int16_t[]", len(data) // 2)
        ffi.memmove(samples, data, len(data))
        if sys.byteorder == "big":  # pragma: no cover - the boards are little-endian
            view = memoryview(ffi.buffer(samples)).cast("H")
            for i, v in enumerate(view):
                view[i] = ((v & 0xFF) << 8) | (v >> 8)
        lib.tr_path_start_prompt(self._path, samples, len(samples))
        self._prompt = samples  # C reads it until the prompt ends or is stopped

    def stop_prompt(self) -> None:
        lib.tr_path_stop_prompt(self._path)
        self._prompt = None

    @property
    def prompt_playing(self) -> bool:
        return bool(self._path.prompt_active)

    def start_tone(self, segments: Sequence[ToneSegment], repeat_from: int | None = 0,
                   ramp: float = 0.003) -> None:
        fill_tone_plan(self._plan, segments, repeat_from, ramp)
        if lib.tr_path_start_tone(self._path, self._plan) != 0:  # pragma: no cover
            raise ValueError("the C core rejected the tone plan")

    def stop_tone(self) -> None:
        self._path.tone_active = 0

    @property
    def tone_playing(self) -> bool:
        return bool(self._path.tone_active)

    def send_caller_id(self, message: bytes, standard: FskStandard = FskStandard.BELL202,
                       seizure_bits: int = 300, mark_bits: int = 180, postamble_bits: int = 10,
                       level_dbm0: float = -13.5) -> int:
        """Start an FSK burst in place of the playout audio; returns its length in samples."""
        fsk = ffi.addressof(self._path, "fsk")
        load_fsk(fsk, message, standard, seizure_bits, mark_bits, postamble_bits, level_dbm0)
        if lib.tr_path_start_fsk(self._path) != 0:
            raise ValueError("FSK settings out of range (bit counts, level above +3 dBm0)")
        return int(fsk.total_samples)

    @property
    def caller_id_sending(self) -> bool:
        return bool(self._path.fsk_active)

    def mute(self, transmit: bool | None = None, receive: bool | None = None) -> None:
        """`transmit`: the handset is heard by no leg (the legs still hear each other);
        `receive`: the handset hears no leg (tones, caller ID and prompts still play)."""
        if transmit is not None:
            self._path.mute_tx = int(transmit)
        if receive is not None:
            self._path.mute_rx = int(receive)

    def set_gains(self, tx_db: float, rx_db: float) -> None:
        lib.tr_path_set_gains(self._path, tx_db, rx_db)

    def comfort_noise(self, payload: bytes, leg: str = DEFAULT_LEG) -> None:
        """A received RFC 3389 comfort noise payload: its first byte is the level in -dBov."""
        lib.tr_path_comfort_noise(self._path, self._slot(leg), payload[0] if payload else 127)
