"""Echo-path oracles for echo canceller tests: the ITU-T G.168 Annex D echo path models as
published in spandsp's g168models.h (read from the Debian package at test time, not copied), and
spandsp's own echo canceller through ctypes, for a comparison on the same signals."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import re
import sys
import wave
from pathlib import Path

import numpy as np

G168_HEADER = Path("/usr/include/spandsp/g168models.h")
SOUNDS = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
ZERO_DBM0 = 32768 * 10 ** (-3.14 / 20)  # peak of a 0 dBm0 sine


def g168_models() -> dict[str, np.ndarray]:
    """Impulse responses D2..D9 (coefficients times the model's gain)."""
    text = G168_HEADER.read_text()
    models = {}
    for name, body in re.findall(r"line_model_(d\d)_coeffs\[\]\s*=\s*\{([^}]*)\}", text):
        gain = float(re.search(rf"LINE_MODEL_{name.upper()}_GAIN\s+([0-9.Ee+-]+)f?", text)[1])
        coeffs = np.array([int(v) for v in re.findall(r"-?\d+", body)], dtype=np.float64)
        models[name] = coeffs * gain
    return models


def speech(names: list[str], seconds: float) -> np.ndarray:
    """Real 8 kHz speech: the named prompts (e.g. 'vm-*') back to back, cut to `seconds`."""
    chunks: list[np.ndarray] = []
    total = 0
    for pattern in names:
        for path in sorted(SOUNDS.glob(f"{pattern}.wav")):
            with wave.open(str(path)) as w:
                chunks.append(np.frombuffer(w.readframes(w.getnframes()), dtype="<i2"))
            total += len(chunks[-1])
            if total >= seconds * 8000:
                return np.concatenate(chunks)[: int(seconds * 8000)].astype(np.float64)
    raise FileNotFoundError(f"not enough speech for {names} in {SOUNDS}")


def echo_of(far: np.ndarray, path: np.ndarray, erl_db: float, delay: int = 40) -> np.ndarray:
    """The hybrid's echo of `far` through `path`, `delay` samples late, scaled to `erl_db`."""
    echo = np.convolve(np.concatenate([np.zeros(delay), far]), path)[: len(far)]
    scale = np.sqrt(np.sum(far**2) / np.sum(echo**2) / 10 ** (erl_db / 10))
    return echo * scale


def erle_db(echo: np.ndarray, residual: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(echo**2) / max(np.sum(residual**2), 1e-9)))


def to_int16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


class SpandspEchoCanceller:
    ADAPTION, NLP, CNG = 0x01, 0x02, 0x04

    def __init__(self, taps: int, mode: int) -> None:
        lib = ctypes.CDLL(ctypes.util.find_library("spandsp") or "libspandsp.so.2")
        lib.echo_can_init.restype = ctypes.c_void_p
        lib.echo_can_init.argtypes = [ctypes.c_int, ctypes.c_int]
        lib.echo_can_update.restype = ctypes.c_int16
        lib.echo_can_update.argtypes = [ctypes.c_void_p, ctypes.c_int16, ctypes.c_int16]
        lib.echo_can_free.argtypes = [ctypes.c_void_p]
        self.lib = lib
        self.state = lib.echo_can_init(taps, mode)

    def process(self, far: np.ndarray, near: np.ndarray) -> np.ndarray:
        # Debian's build prints debugging lines for every sample: send its stdout to /dev/null.
        update = self.lib.echo_can_update
        sys.stdout.flush()
        saved = os.dup(1)
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 1)
            out = [update(self.state, int(t), int(r)) for t, r in zip(far, near, strict=True)]
        finally:
            os.dup2(saved, 1)
            os.close(saved)
            os.close(devnull)
        return np.array(out, dtype=np.float64)

    def close(self) -> None:
        self.lib.echo_can_free(self.state)
