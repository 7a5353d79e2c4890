"""DTMF and fax tone detector: interoperation with spandsp both ways, Mitel CM7291-style checks
built here (decode, bandwidth, twist, dynamic range, guard times, S/N), talk-off on real speech,
CNG/CED.

Test signals are computed here with `math.sin` (independent of the C tone generator) or come from
spandsp's DTMF generator; spandsp's receiver decodes what our generator sends.
"""

from __future__ import annotations

import array
import math
import random
import wave
from pathlib import Path

import pytest
import spandsp_oracle as sd

from tipring.media import dsp
from tipring.media.dsp import (
    DTMF_HIGH,
    DTMF_KEYS,
    DTMF_LOW,
    DtmfDetector,
    Law,
    ToneEvent,
    ToneEventKind,
    ToneGenerator,
    dtmf_segments,
)

FS = 8000
PEAK_0DBM0 = 32768 * 10 ** (-3.14 / 20)
ALL_DIGITS = "123A456B789C*0#D"
SPEECH = Path("/usr/share/asterisk/sounds/en_US_f_Allison")


def amp(dbm0: float) -> float:
    return PEAK_0DBM0 * 10 ** (dbm0 / 20)


def freqs_of(digit: str) -> tuple[float, float]:
    for r, row in enumerate(DTMF_KEYS):
        if digit in row:
            return DTMF_LOW[r], DTMF_HIGH[row.index(digit)]
    raise ValueError(digit)


def burst(tones: list[tuple[float, float]], ms: float, rng: random.Random) -> list[float]:
    """Sum of sines (freq, dBm0) for `ms`, random phases."""
    n = round(ms * FS / 1000)
    parts = [(2 * math.pi * f / FS, amp(lv), rng.uniform(0, 2 * math.pi)) for f, lv in tones]
    return [sum(a * math.sin(w * k + p) for w, a, p in parts) for k in range(n)]


def silence(ms: float) -> list[float]:
    return [0.0] * round(ms * FS / 1000)


def pcm(x: list[float], noise_dbm0: float | None = None, seed: int = 1) -> array.array:
    rng = random.Random(seed)
    sigma = 0.0 if noise_dbm0 is None else amp(noise_dbm0) / math.sqrt(2)
    return array.array(
        "h", [max(-32768, min(32767, round(v + (rng.gauss(0, sigma) if sigma else 0)))) for v in x]
    )


def run(samples: array.array, frame: int = 160, det: DtmfDetector | None = None) -> list[ToneEvent]:
    det = det or DtmfDetector()
    events: list[ToneEvent] = []
    for k in range(0, len(samples), frame):
        events += det.feed(samples[k : k + frame])
    events += det.feed(array.array("h", bytes(2 * 800)))  # flush the end of the last digit
    return events


def digits(samples: array.array, **kw: object) -> str:
    return "".join(e.digit for e in run(samples, **kw) if e.kind is ToneEventKind.DIGIT_START)


def digit_signal(digit: str, ms: float = 60, dbm0: float = -10.0, twist: float = 0.0,
                 dev: tuple[float, float] = (0.0, 0.0), seed: int = 0) -> list[float]:
    """One digit (with a 60 ms lead-in and tail of silence); twist = high minus low (dB)."""
    lo, hi = freqs_of(digit)
    rng = random.Random(seed)
    tones = [(lo * (1 + dev[0]), dbm0), (hi * (1 + dev[1]), dbm0 + twist)]
    return silence(60) + burst(tones, ms, rng) + silence(60)


# --- interoperation with spandsp ------------------------------------------------------------------


@pytest.mark.parametrize("level,twist", [(-3, 0), (-10, 2), (-25, -4), (-30, 0)])
def test_decodes_spandsp_generated_digits(level: int, twist: int) -> None:
    x = sd.dtmf_tx(ALL_DIGITS * 2, level_dbm0=level, twist_db=twist, on_ms=50, off_ms=55)
    assert digits(x) == ALL_DIGITS * 2


def test_spandsp_decodes_our_generated_digits() -> None:
    gen = ToneGenerator()
    gen.start(dtmf_segments(ALL_DIGITS * 2, on=0.05, off=0.05), repeat_from=None)
    out = array.array("h")
    buf = array.array("h", bytes(320))
    while gen.generate(buf):
        out.extend(buf)
    out.extend(buf)
    assert sd.dtmf_rx(out) == ALL_DIGITS * 2
    assert digits(out) == ALL_DIGITS * 2


@pytest.mark.parametrize("law", [Law.ULAW, Law.ALAW])
def test_decodes_after_g711_at_low_level(law: Law) -> None:
    """What arrives from a SLIC codec or an RTP peer: -30 dBm0 digits through G.711 and back."""
    x = sd.dtmf_tx(ALL_DIGITS, level_dbm0=-30, twist_db=2, on_ms=45, off_ms=50)
    codes = bytearray(len(x))
    dsp.encode(law, x, codes)
    back = array.array("h", bytes(2 * len(codes)))
    dsp.decode(law, codes, back)
    assert digits(back) == ALL_DIGITS


def test_event_times_and_levels() -> None:
    """START at the tone's first sample and END at its last, to within one 102-sample block;
    levels as sent within 0.5 dB; offsets are relative to the frame just fed."""
    x = pcm(silence(100) + burst([(770.0, -12.0), (1336.0, -9.0)], 100, random.Random(3)) + silence(200))
    det = DtmfDetector()
    events, fed = [], 0
    for k in range(0, len(x), 160):
        for e in det.feed(x[k : k + 160]):
            assert e.offset == e.at - fed
            events.append(e)
        fed += 160
    start, end = events
    assert start.kind is ToneEventKind.DIGIT_START and start.digit == "5"
    assert end.kind is ToneEventKind.DIGIT_END and end.digit == "5"
    assert abs(start.at - 800) < 102 and abs(end.at - 1600) < 102
    assert end.duration == end.at - start.at
    assert abs(start.low_dbm0 + 12.0) < 0.5 and abs(start.high_dbm0 + 9.0) < 0.5
    assert start.offset < 0  # confirmed a block or two after it began


def test_result_does_not_depend_on_frame_size() -> None:
    x = sd.dtmf_tx("9#3D", -12, 0, 45, 50)
    ref = run(x)
    assert [(e.kind, e.digit) for e in ref] == [
        (k, d) for d in "9#3D" for k in (ToneEventKind.DIGIT_START, ToneEventKind.DIGIT_END)
    ]
    for frame in (1, 37, 80, 101, 333):
        got = run(x, frame=frame)
        assert [(e.kind, e.digit, e.at) for e in got] == [(e.kind, e.digit, e.at) for e in ref]


# --- Mitel CM7291-style checks --------------------------------------------------------------------


def test_decode_all_sixteen_digits() -> None:
    x = pcm([v for d in ALL_DIGITS for v in digit_signal(d, 50, -10.0, seed=ord(d))])
    assert digits(x) == ALL_DIGITS


@pytest.mark.parametrize("group", ["low", "high"])
def test_bandwidth_accepts_1_5_and_rejects_3_5_percent(group: str) -> None:
    """Each of the 8 frequencies deviated while its partner stays nominal (Q.24 limits); prints
    where acceptance actually stops."""
    accepted_at: dict[float, bool] = {}
    for pct in (1.5, 2.0, 2.25, 2.5, 2.75, 3.0, 3.5):
        for d in ("1", "5", "9", "D"):
            for sign in (-1, 1):
                dev = (sign * pct / 100, 0.0) if group == "low" else (0.0, sign * pct / 100)
                got = digits(pcm(digit_signal(d, 60, -12.0, dev=dev, seed=int(pct * 10))))
                if pct == 1.5:
                    assert got == d, f"{d} at {sign * pct}% ({group} group) was not accepted"
                elif pct == 3.5:
                    assert got == "", f"{d} at {sign * pct}% ({group} group) was accepted"
                accepted_at[pct] = accepted_at.get(pct, True) and got == d
    print(f"\n{group} group: every tone accepted up to "
          f"{max(p for p, ok in accepted_at.items() if ok)}%, rejected at "
          f"{sorted(p for p, ok in accepted_at.items() if not ok)}%")


@pytest.mark.parametrize("twist", [-8.0, -4.0, 0.0, 2.0, 4.0])
def test_twist_within_limits_is_accepted(twist: float) -> None:
    """High group from 8 dB below to 4 dB above the low group (twist +8/-4 dB)."""
    x = pcm([v for d in "1470" for v in digit_signal(d, 50, -14.0, twist=twist, seed=ord(d))])
    assert digits(x) == "1470"


@pytest.mark.parametrize("twist", [-16.0, 12.0])
def test_excessive_twist_is_rejected(twist: float) -> None:
    x = pcm([v for d in "1470" for v in digit_signal(d, 50, -14.0, twist=twist, seed=ord(d))])
    assert digits(x) == ""


def test_dynamic_range_at_least_35_db() -> None:
    """Per-tone levels from -3 dBm0 (no clipping) to -38 dBm0 all decode; -50 dBm0 does not."""
    accepted = []
    for level in range(-3, -39, -5):
        x = pcm([v for d in "2580" for v in digit_signal(d, 50, float(level), seed=level)])
        assert digits(x) == "2580", f"missed at {level} dBm0 per tone"
        accepted.append(level)
    x = pcm([v for d in "2580" for v in digit_signal(d, 50, -38.0, seed=2)])
    assert digits(x) == "2580"
    x = pcm([v for d in "2580" for v in digit_signal(d, 50, -50.0, seed=3)])
    assert digits(x) == ""
    print(f"\ndynamic range: {accepted[0]} .. -38 dBm0 per tone ({accepted[0] + 38} dB)")


def test_minimum_duration_accepts_40_ms_and_rejects_20_ms() -> None:
    """At every alignment against the block grid: 40 ms always decodes, 20 ms never does."""
    shortest_accepted = None
    for lead in range(0, 102, 13):
        for ms, want in ((40, "6"), (20, "")):
            x = pcm(silence(0) + [0.0] * lead + digit_signal("6", ms, -10.0, seed=lead))
            assert digits(x) == want, f"{ms} ms tone after {lead} samples"
        for ms in range(20, 41):
            if digits(pcm([0.0] * lead + digit_signal("6", ms, -10.0, seed=lead))) == "6":
                shortest_accepted = ms if shortest_accepted is None else min(shortest_accepted, ms)
                break
    print(f"\nshortest tone accepted at some alignment: {shortest_accepted} ms")


def test_minimum_gap_50_ms_separates_repeated_digits() -> None:
    rng = random.Random(9)
    pair = burst([(852.0, -10.0), (1477.0, -10.0)], 40, rng)
    for lead in range(0, 102, 17):
        x = pcm([0.0] * lead + pair + silence(50) + pair + silence(50) + pair)
        assert digits(x) == "999", f"lead {lead}"


def test_short_break_inside_a_digit_is_bridged() -> None:
    """A 10 ms drop-out (Q.24 interruption) inside a long digit does not make two digits."""
    rng = random.Random(4)
    tone = [(941.0, -10.0), (1209.0, -10.0)]
    for lead in range(0, 102, 17):
        x = pcm([0.0] * lead + burst(tone, 80, rng) + silence(10) + burst(tone, 80, rng))
        assert digits(x) == "*", f"lead {lead}"


def test_decodes_in_noise_at_15_db_snr() -> None:
    """100 digits, 50 ms on / 50 ms off, each tone -13 dBm0, white gaussian noise 15 dB below
    the total signal power (-10 dBm0): every digit, nothing extra."""
    rng = random.Random(15)
    seq = "".join(rng.choice(ALL_DIGITS) for _ in range(100))
    x = []
    for d in seq:
        lo, hi = freqs_of(d)
        x += burst([(lo, -13.0), (hi, -13.0)], 50, rng) + silence(50)
    assert digits(pcm(x, noise_dbm0=-10.0 - 15.0, seed=2)) == seq


def test_decodes_over_dial_tone_echo() -> None:
    """Digits at -8/-6 dBm0 while the dial tone (350 + 440 Hz) leaks back at -20 dBm0 each."""
    rng = random.Random(8)
    x: list[float] = []
    for d in "5551234":
        lo, hi = freqs_of(d)
        x += burst([(lo, -8.0), (hi, -6.0)], 50, rng) + silence(60)
    dial = burst([(350.0, -20.0), (440.0, -20.0)], len(x) * 1000 / FS, rng)
    assert digits(pcm([a + b for a, b in zip(x, dial, strict=True)])) == "5551234"
    assert digits(pcm(dial)) == ""


def test_noise_alone_gives_nothing() -> None:
    assert run(pcm(silence(10_000), noise_dbm0=-20.0, seed=3)) == []


# --- talk-off ----------------------------------------------------------------------------------------


def read_wav(path: Path) -> array.array:
    with wave.open(str(path), "rb") as w:
        assert w.getframerate() == FS and w.getsampwidth() == 2 and w.getnchannels() == 1
        x = array.array("h", w.readframes(w.getnframes()))
    return x


def test_talk_off_on_real_speech() -> None:
    """Every prompt of asterisk-core-sounds-en-wav (about 26 minutes of speech) through our
    detector and, for reference, spandsp's: false digits stay under the bound."""
    files = sorted(SPEECH.rglob("*.wav"))
    if not files:
        pytest.fail(f"no speech WAVs under {SPEECH}: install asterisk-core-sounds-en-wav")
    det = DtmfDetector()
    ref = sd.DtmfRx()
    ours: list[tuple[str, str]] = []
    fax: list[tuple[str, str]] = []
    total = 0
    gap = array.array("h", bytes(2 * 1600))
    try:
        for path in files:
            x = read_wav(path)
            total += len(x)
            for k in range(0, len(x), 160):
                for e in det.feed(x[k : k + 160]):
                    if e.kind is ToneEventKind.DIGIT_START:
                        ours.append((path.name, e.digit))
                    elif e.kind in (ToneEventKind.FAX_CNG, ToneEventKind.FAX_CED):
                        fax.append((path.name, e.kind.name))
            det.feed(gap)
            ref.feed(x)
            ref.feed(gap)
        theirs = ref.digits()
    finally:
        ref.close()
    minutes = total / FS / 60
    print(f"\ntalk-off: {len(files)} files, {minutes:.1f} min of speech: {len(ours)} false digits "
          f"(spandsp dtmf_rx: {len(theirs)}); fax tones: {len(fax)}; ours: {ours}")
    assert minutes > 20
    assert len(ours) <= 3
    assert fax == []


# --- fax tones -----------------------------------------------------------------------------------


def fax_events(x: array.array) -> list[ToneEvent]:
    return [e for e in run(x) if e.kind in (ToneEventKind.FAX_CNG, ToneEventKind.FAX_CED)]


def test_cng_reported_once_per_burst() -> None:
    """CNG: 1100 Hz, 0.5 s on, 3 s off, at -20 dBm0 with noise 20 dB down."""
    rng = random.Random(11)
    x = silence(200)
    for _ in range(3):
        x += burst([(1100.0, -20.0)], 500, rng) + silence(3000)
    events = fax_events(pcm(x, noise_dbm0=-40.0))
    assert [e.kind for e in events] == [ToneEventKind.FAX_CNG] * 3
    for i, e in enumerate(events):
        assert abs(e.at - (1600 + i * 28000)) < 102
        assert abs(e.low_dbm0 + 20.0) < 1.0
    assert digits(pcm(x)) == ""


def test_short_1100_hz_burst_is_not_cng() -> None:
    assert fax_events(pcm(silence(100) + burst([(1100.0, -15.0)], 250, random.Random(1)))) == []


def test_ced_with_phase_reversals_reported_once() -> None:
    """CED/ANS: 2100 Hz for 3.3 s with a phase reversal every 450 ms (V.25 /ANS)."""
    w, a = 2 * math.pi * 2100 / FS, amp(-12.0)
    x = silence(100) + [a * math.sin(w * k + math.pi * (k // 3600)) for k in range(26400)]
    events = fax_events(pcm(x))
    assert [e.kind for e in events] == [ToneEventKind.FAX_CED]
    assert abs(events[0].at - 800) < 102


def test_off_frequency_tones_are_not_fax() -> None:
    rng = random.Random(5)
    x = burst([(1000.0, -15.0)], 1000, rng) + silence(100) + burst([(2200.0, -15.0)], 1000, rng)
    assert fax_events(pcm(x)) == []
