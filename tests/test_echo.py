"""Line echo canceller against the ITU-T G.168 Annex D echo path models, with real speech, and
against spandsp's echo canceller on the same signals in the same run."""

from __future__ import annotations

import math

import numpy as np
import pytest

import echo_models as em
from tipring.media.dsp import ffi, lib

SECONDS = 10
LINE_NOISE = 20.0  # RMS of the near end's background, about -62 dBm0


@pytest.fixture(scope="module")
def models() -> dict[str, np.ndarray]:
    found = em.g168_models()
    assert sorted(found) == [f"d{i}" for i in range(2, 10)]
    return found


@pytest.fixture(scope="module")
def far() -> np.ndarray:
    return em.speech(["vm-*"], SECONDS)


@pytest.fixture(scope="module")
def noise() -> np.ndarray:
    return np.random.default_rng(1).normal(0, LINE_NOISE, SECONDS * 8000)


def cancel(far: np.ndarray, near: np.ndarray, tail_ms: int = 32, nlp: bool = False):
    ec = ffi.new("tr_ec_t *")
    lib.tr_ec_init(ec, tail_ms, 1 if nlp else 0)
    f, n = em.to_int16(far), em.to_int16(near).copy()
    for i in range(0, len(f), 160):  # one call per 20 ms frame, as the capture path makes
        lib.tr_ec_process(ec, ffi.from_buffer("int16_t[]", f[i : i + 160]),
                          ffi.from_buffer("int16_t[]", n[i : i + 160]), len(f[i : i + 160]))
    return n.astype(np.float64), ec


def convergence_s(far: np.ndarray, echo: np.ndarray, residual: np.ndarray) -> float:
    """When the 100 ms ERLE (windows with far-end speech) first reaches 20 dB."""
    for k in range(0, len(far) - 800, 800):
        if np.mean(far[k : k + 800] ** 2) > 1e5 and em.erle_db(echo[k : k + 800],
                                                               residual[k : k + 800]) >= 20:
            return k / 8000
    return math.inf


def test_every_g168_echo_path_is_cancelled(models: dict[str, np.ndarray], far: np.ndarray,
                                           noise: np.ndarray) -> None:
    late = slice(5 * 8000, SECONDS * 8000)
    for name, path in models.items():
        echo = em.echo_of(far, path, erl_db=6)
        out, ec = cancel(far, echo + noise)
        erle = em.erle_db(echo[late], out[late] - noise[late])
        assert erle >= 30, f"{name}: ERLE {erle:.1f} dB"
        assert convergence_s(far, echo, out - noise) <= 2.0, name
        assert ec.bypass == 0


@pytest.mark.parametrize("name", ["d2", "d5", "d8"])
def test_better_and_faster_than_spandsp_on_the_same_signals(
    models: dict[str, np.ndarray], far: np.ndarray, noise: np.ndarray, name: str
) -> None:
    echo = em.echo_of(far, models[name], erl_db=6)
    near = echo + noise
    ours, _ = cancel(far, near)
    spandsp = em.SpandspEchoCanceller(256, em.SpandspEchoCanceller.ADAPTION)
    theirs = spandsp.process(em.to_int16(far), em.to_int16(near))
    spandsp.close()
    last = slice(6 * 8000, SECONDS * 8000)
    our_erle = em.erle_db(echo[last], ours[last] - noise[last])
    their_erle = em.erle_db(echo[last], theirs[last] - noise[last])
    print(f"{name}: ERLE ours {our_erle:.1f} dB, spandsp {their_erle:.1f} dB")
    assert our_erle >= their_erle + 3
    assert convergence_s(far, echo, ours - noise) < convergence_s(far, echo, theirs - noise)


def test_double_talk_passes_the_near_end_and_does_not_undo_convergence(
    models: dict[str, np.ndarray], noise: np.ndarray
) -> None:
    far = em.speech(["vm-*"], 12)
    talker = em.speech(["conf-*"], 3)  # a different voice at the near end, as loud as the far end
    talker *= np.sqrt(np.mean(far**2) / np.mean(talker**2))
    noise12 = np.random.default_rng(2).normal(0, LINE_NOISE, len(far))
    near_speech = np.zeros(len(far))
    near_speech[5 * 8000 : 8 * 8000] = talker
    echo = em.echo_of(far, models["d4"], erl_db=6)
    out, _ = cancel(far, echo + near_speech + noise12)
    residual = out - near_speech - noise12
    before, during, after = (slice(2 * 8000, 5 * 8000), slice(5 * 8000, 8 * 8000),
                             slice(9 * 8000, 12 * 8000))
    assert em.erle_db(echo[after], residual[after]) >= em.erle_db(echo[before],
                                                                  residual[before]) - 3
    # The near-end talker comes through with the echo and distortion 20 dB below it.
    snr = 10 * np.log10(np.sum(near_speech[during] ** 2) / np.sum(residual[during] ** 2))
    assert snr >= 20


def test_nlp_replaces_residual_echo_with_comfort_noise(models: dict[str, np.ndarray],
                                                      far: np.ndarray, noise: np.ndarray) -> None:
    echo = em.echo_of(far, models["d3"], erl_db=6)
    out, ec = cancel(far, echo + noise, nlp=True)
    talking = np.array([np.mean(far[k : k + 160] ** 2) > 1e6 for k in range(0, len(far), 160)])
    frames = [k for k in range(25, len(talking)) if talking[k]]  # after the first half second
    level = np.sqrt(np.mean(np.concatenate([out[k * 160 : (k + 1) * 160] for k in frames]) ** 2))
    assert ec.nlp_samples > 0
    assert 0.5 * LINE_NOISE <= level <= 2.0 * LINE_NOISE  # the line sounds alive, not silent
    without, _ = cancel(far, echo + noise, nlp=False)
    raw = np.sqrt(np.mean(np.concatenate([without[k * 160 : (k + 1) * 160] for k in frames]) ** 2))
    assert level < raw  # and quieter than the residual echo it replaces


def ansam(seconds: float, freq: float = 2100.0, reversals: bool = True) -> np.ndarray:
    n = np.arange(int(seconds * 8000))
    phase = np.pi * (n // 3600) if reversals else 0  # a reversal every 450 ms (ITU-T V.25)
    return 0.25 * em.ZERO_DBM0 * np.cos(2 * np.pi * freq * n / 8000 + phase)  # -12 dBm0


@pytest.mark.parametrize("freq", [2100.0, 2085.0, 2115.0])
def test_ansam_with_phase_reversals_disables_the_canceller(models: dict[str, np.ndarray],
                                                           freq: float) -> None:
    tone = ansam(3, freq)
    echo = em.echo_of(tone, models["d2"], erl_db=10)
    near = np.random.default_rng(3).normal(0, LINE_NOISE, len(tone)) + echo
    out, ec = cancel(tone, near)
    assert ec.bypass == 1
    # From the second reversal on, the captured signal passes untouched.
    settled = slice(int(1.2 * 8000), len(tone))
    assert np.array_equal(out[settled], em.to_int16(near)[settled].astype(np.float64))


def test_plain_2100_hz_without_reversals_keeps_it_enabled(models: dict[str, np.ndarray]) -> None:
    tone = ansam(3, reversals=False)  # fax CED / G.164: echo suppressors only, not cancellers
    echo = em.echo_of(tone, models["d2"], erl_db=10)
    _, ec = cancel(tone, echo)
    assert ec.bypass == 0


def test_bypass_ends_after_250_ms_of_quiet(models: dict[str, np.ndarray]) -> None:
    tone = np.concatenate([ansam(2), np.zeros(int(0.2 * 8000))])
    _, ec = cancel(tone, np.zeros(len(tone)))
    assert ec.bypass == 1  # 200 ms of quiet is not enough
    tone = np.concatenate([ansam(2), np.zeros(int(0.3 * 8000))])
    _, ec = cancel(tone, np.zeros(len(tone)))
    assert ec.bypass == 0


def test_tail_length_is_clamped() -> None:
    ec = ffi.new("tr_ec_t *")
    lib.tr_ec_init(ec, 1000, 0)
    assert ec.taps == lib.TR_EC_MAX_TAPS
    lib.tr_ec_init(ec, 1, 0)
    assert ec.taps == 64
