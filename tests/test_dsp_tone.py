"""Tone generator in the C core: levels, frequencies, cadence edges, phase continuity, mixing.

The oracle is arithmetic done here: an ideal sine computed sample by sample with `math.sin`, a DFT
at the nominal frequency over whole seconds, and RMS levels from the dBm0 definition (0 dBm0 is a
sine of peak 32768 * 10^(-3.14/20), G.711 full scale being +3.14 dBm0).
"""

from __future__ import annotations

import array
import cmath
import math
import random

import pytest

from tipring.media.dsp import FOREVER, ToneGenerator, ToneSegment, cadence

FS = 8000
PEAK_0DBM0 = 32768 * 10 ** (-3.14 / 20)


def peak(dbm0: float) -> float:
    return PEAK_0DBM0 * 10 ** (dbm0 / 20)


def play(segments: list[ToneSegment], n: int, frame: int = 160, **kw: object) -> array.array:
    gen = ToneGenerator()
    gen.start(segments, **kw)
    out = array.array("h")
    buf = array.array("h", bytes(2 * frame))
    while len(out) < n:
        gen.generate(buf)
        out.extend(buf)
    return out[:n]


def dft_amplitude(x: array.array | list[float], freq: float, start: int = 0, n: int | None = None) -> float:
    """Peak amplitude of the `freq` component over x[start:start+n] (single-bin DFT)."""
    n = len(x) - start if n is None else n
    w = -2j * math.pi * freq / FS
    acc = sum(x[start + k] * cmath.exp(w * k) for k in range(n))
    return 2 * abs(acc) / n


def rms_db(x: array.array | list[float]) -> float:
    return 10 * math.log10(sum(v * v for v in x) / len(x))


@pytest.mark.parametrize("level", [-40.0, -20.0, -10.0, 0.0, 3.0])
def test_single_tone_level_within_0_2_db(level: float) -> None:
    x = play([ToneSegment(((1004.0, level),), FOREVER)], FS, ramp=0.0)
    expected = 20 * math.log10(peak(level) / math.sqrt(2))
    assert abs(rms_db(x) - expected) < 0.2
    assert abs(20 * math.log10(dft_amplitude(x, 1004.0) / peak(level))) < 0.2


def test_dual_tone_components_and_frequencies() -> None:
    """US dial tone 350 + 440 Hz at -13 dBm0 each: each line at its level, exactly on frequency."""
    x = play([ToneSegment(((350.0, -13.0), (440.0, -13.0)), FOREVER)], FS, ramp=0.0)
    for f in (350.0, 440.0):
        got = dft_amplitude(x, f)
        assert abs(20 * math.log10(got / peak(-13.0))) < 0.2
        # Over one second a 0.5 Hz error would cost ~4 dB at the nominal bin; the neighbours are low.
        assert dft_amplitude(x, f + 0.5) < 0.7 * got
        assert dft_amplitude(x, f - 0.5) < 0.7 * got
    assert dft_amplitude(x, 395.0) < 0.01 * peak(-13.0)


def test_am_tone_as_three_components() -> None:
    """400 Hz modulated by 25 Hz (UK-style) is the carrier plus two sidebands."""
    comps = ((400.0, -12.0), (375.0, -18.0), (425.0, -18.0))
    x = play([ToneSegment(comps, FOREVER)], FS, ramp=0.0)
    for f, level in comps:
        assert abs(20 * math.log10(dft_amplitude(x, f) / peak(level))) < 0.2


def test_steady_tone_matches_ideal_sine_across_frames() -> None:
    """Phase continuity: ten seconds in 160-sample frames stay within 1 LSB of the ideal sine."""
    f, level = 697.0, -6.0
    n = 10 * FS
    x = play([ToneSegment(((f, level),), FOREVER)], n, ramp=0.0)
    a = peak(level)
    worst = max(abs(x[k] - a * math.sin(2 * math.pi * f * k / FS)) for k in range(n))
    assert worst <= 1.0
    # and no step at any frame boundary larger than the sine's own slope allows
    slope = a * 2 * math.pi * f / FS
    assert max(abs(x[k + 1] - x[k]) for k in range(159, n - 1, 160)) <= slope + 1


def test_stutter_dial_tone_then_steady() -> None:
    """Stutter dial tone: three 100 ms bursts with 100 ms gaps, then steady (on=None) for ever."""
    comps = ((350.0, -13.0), (440.0, -13.0))
    segs = cadence(comps, [(0.1, 0.1)] * 3 + [(None, 0.0)])
    x = play(segs, 2 * FS, ramp=0.0)
    for k in range(3):
        assert not any(x[1600 * k + 800 : 1600 * k + 1600])
        assert all(any(x[a : a + 4]) for a in range(1600 * k, 1600 * k + 800, 4))
    assert all(any(x[a : a + 4]) for a in range(4800, 2 * FS, 4))


def test_output_does_not_depend_on_frame_size() -> None:
    segs = cadence(((440.0, -10.0), (480.0, -10.0)), [(0.4, 0.2), (0.4, 2.0)])
    ref = play(segs, 3 * FS, frame=160)
    rng = random.Random(7)
    gen = ToneGenerator()
    gen.start(segs)
    out = array.array("h")
    while len(out) < len(ref):
        buf = array.array("h", bytes(2 * rng.randint(1, 400)))
        gen.generate(buf)
        out.extend(buf)
    assert max(abs(a - b) for a, b in zip(ref, out, strict=False)) <= 1


def on_windows(periods: list[tuple[float, float]], total: int, repeat: bool) -> list[tuple[int, int]]:
    windows, t = [], 0
    while t < total:
        for on, off in periods:
            windows.append((t, t + round(on * FS)))
            t += round((on + off) * FS)
        if not repeat:
            break
    return windows


@pytest.mark.parametrize("ramp", [0.0, 0.004])
def test_cadence_edges_exact_in_samples(ramp: float) -> None:
    """UK ringback 0.4 on 0.2 off 0.4 on 2.0 off: silence exactly outside the on windows."""
    periods = [(0.4, 0.2), (0.4, 2.0)]
    total = 8 * FS
    x = play(cadence(((400.0, -19.0), (450.0, -19.0)), periods), total, ramp=ramp)
    inside = bytearray(total)
    for a, b in on_windows(periods, total, repeat=True):
        inside[a:min(b, total)] = b"\x01" * (min(b, total) - a)
        if b <= total:
            assert any(x[a : a + 2]), f"window at {a} starts late"
            assert any(x[b - 2 : b]), f"window ending at {b} ends early"
    assert all(v == 0 for v, flag in zip(x, inside, strict=True) if not flag)
    if ramp:
        r = round(ramp * FS)
        a, b = on_windows(periods, total, repeat=True)[1]
        # raised cosine: the first samples are small, full level after the ramp
        assert max(abs(v) for v in x[a : a + 3]) < 0.1 * 2 * peak(-19.0)
        assert max(abs(v) for v in x[a + r : b - r]) > 0.9 * 2 * peak(-19.0)
        env_rise = [abs(v) for v in x[a : a + r]]
        assert max(env_rise) <= 2 * peak(-19.0) + 1


def test_sit_segments_each_sound_their_own_frequency() -> None:
    """SIT: 913.8, 1370.6, 1776.7 Hz for 274, 274, 380 ms in sequence, then silence, not repeated."""
    sit = [
        ToneSegment(((913.8, -24.0),), 0.274),
        ToneSegment(((1370.6, -24.0),), 0.274),
        ToneSegment(((1776.7, -24.0),), 0.380, off=0.1),
    ]
    gen = ToneGenerator()
    gen.start(sit, repeat_from=None, ramp=0.002)
    out = array.array("h")
    buf = array.array("h", bytes(320))
    running = []
    for _ in range(60):
        running.append(gen.generate(buf))
        out.extend(buf)
    bounds = [(0, 2192), (2192, 4384), (4384, 7424)]
    for (a, b), f in zip(bounds, (913.8, 1370.6, 1776.7), strict=True):
        amp = dft_amplitude(out, f, a + 40, b - a - 80)
        assert abs(20 * math.log10(amp / peak(-24.0))) < 0.3
        for other in {913.8, 1370.6, 1776.7} - {f}:
            assert dft_amplitude(out, other, a + 40, b - a - 80) < 0.05 * amp
    assert not any(out[7424:])
    # no click where one frequency hands over to the next: never steeper than the top tone
    slope = peak(-24.0) * 2 * math.pi * 1776.7 / FS
    assert max(abs(out[k + 1] - out[k]) for k in range(len(out) - 1)) <= slope + 1
    # the cadence ends after the 100 ms gap, at sample 8224, inside frame 51
    assert running == [True] * 51 + [False] * 9


def test_loud_howler_saturates_without_wrapping() -> None:
    """A receiver-off-hook howler at +6 dBm0 per component clips at full scale, never wraps."""
    comps = ((1400.0, 6.0), (2060.0, 6.0), (2450.0, 6.0), (2600.0, 6.0))
    x = play([ToneSegment(comps, FOREVER)], FS, ramp=0.0)
    assert max(x) == 32767 and min(x) == -32768
    for k in range(0, FS, 7):
        ideal = sum(peak(lv) * math.sin(2 * math.pi * f * k / FS) for f, lv in comps)
        assert abs(x[k] - max(-32768.0, min(32767.0, ideal))) <= 2


def test_mix_adds_to_audio_with_saturation() -> None:
    seg = [ToneSegment(((440.0, -10.0),), FOREVER)]
    alone = play(seg, 160, ramp=0.0)
    speech = array.array("h", [(k * 397) % 20000 - 10000 for k in range(160)])
    speech[5] = 32767
    gen = ToneGenerator()
    gen.start(seg, ramp=0.0)
    buf = array.array("h", speech)
    gen.generate(buf, mix=True)
    for k in range(160):
        assert buf[k] == max(-32768, min(32767, speech[k] + alone[k]))


def test_finished_and_stopped_generators_give_silence() -> None:
    gen = ToneGenerator()
    gen.start([ToneSegment(((1000.0, 0.0),), 0.01)], repeat_from=None)
    buf = array.array("h", [123] * 160)
    assert gen.generate(buf) is False  # 80 samples of tone, then the end inside this frame
    assert any(buf[:80]) and not any(buf[80:])
    buf = array.array("h", [123] * 160)
    gen.generate(buf, mix=True)
    assert list(buf) == [123] * 160
    gen.start([ToneSegment(((1000.0, 0.0),), FOREVER)])
    gen.stop()
    gen.generate(buf)
    assert not any(buf)


@pytest.mark.parametrize(
    "segments",
    [
        [],
        [ToneSegment(((1000.0, 0.0),) * 5, 1.0)],
        [ToneSegment(((4500.0, 0.0),), 1.0)],
        [ToneSegment(((1000.0, 0.0),), 0.0, 0.0)],
        [ToneSegment(((1000.0, 0.0),), -1.0)],
        [ToneSegment(((1000.0, 0.0),), 0.1, 0.1)] * 33,
    ],
)
def test_invalid_plans_are_rejected(segments: list[ToneSegment]) -> None:
    with pytest.raises(ValueError):
        ToneGenerator().start(segments)
