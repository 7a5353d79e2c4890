"""Per-frame cost of the audio paths, and what packet loss concealment buys, in one run.

1. Microseconds per 20 ms frame (160 samples) of the two calls the media thread makes:
   tr_capture (echo canceller with a 32 ms tail and NLP, DTMF/fax detection, G.711 encode) and
   tr_playout (jitter buffer get with decode or concealment, caller ID, tones), call overhead
   included, for one call and for a three-way conference (two legs: two jitter buffers, the
   sums, two encodes; PCMU and PCMA). Target (issue 3): under 20 us each for one call.
   Baseline in the same run: CPython's audioop encode of one frame (a floor: it does a fraction
   of the work).
2. PESQ-NB (ITU-T P.862 via `pesq`) of real speech after 0, 3 and 10 % random packet loss, with
   the G.711 concealment and with silence in place of lost packets. Target: concealment gains
   at least 0.3 MOS at 3 % loss.

Run: .venv/bin/pip install -e '.[bench]' && .venv/bin/python bench/pipeline.py
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # idle BLAS threads would skew the timings
import numpy as np
import pesq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from jitter import speech  # the benchmarks share their speech source

from tipring.media.dsp import Law, decode, encode, ffi, lib

FRAME = 160


def best_us(fn, calls: int = 2000, rounds: int = 5) -> float:
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - t0) / calls * 1e6)
    return best


def frame_costs(pcm: np.ndarray, legs: int) -> tuple[float, float]:
    """The two per-frame entry points on buffers the media thread keeps, with a call (or a
    conference) in full flow: far-end speech arriving and played on every leg, its echo
    captured, NLP and DTMF detection on. Returns (capture us, playout + puts us)."""
    path = ffi.new("tr_path_t *")
    lib.tr_path_init(path, 0, 32, 20, 1, 20, 200, 0)
    for slot in range(1, legs):
        lib.tr_path_attach_leg(path, slot, 8)  # the second far end speaks PCMA
    frames = [pcm[i : i + FRAME] for i in range(0, len(pcm) - FRAME, FRAME)]
    codes = {0: [], 8: []}
    for f in frames:
        c = ffi.new("uint8_t[]", FRAME)
        lib.tr_ulaw_encode(ffi.from_buffer("int16_t[]", f.tobytes()), c, FRAME)
        codes[0].append(bytes(ffi.buffer(c)))
        lib.tr_alaw_encode(ffi.from_buffer("int16_t[]", f.tobytes()), c, FRAME)
        codes[8].append(bytes(ffi.buffer(c)))
    echoes = [ffi.new("int16_t[]", (f // 2).tolist()) for f in frames]  # an echo 6 dB down
    payload = ffi.new("uint8_t[]", lib.TR_PATH_LEGS * FRAME)
    events = ffi.new("tr_dtmf_event_t[]", 8)
    out = ffi.new("int16_t[]", FRAME)
    jbs = [(ffi.addressof(path.leg[slot], "jb"), 8 * slot) for slot in range(legs)]
    state = {"n": 0}

    def capture() -> None:
        lib.tr_capture(path, echoes[state["n"] % len(echoes)], payload, events, 8)

    def playout() -> None:
        n = state["n"]
        state["n"] += 1
        for slot, (jb, law) in enumerate(jbs):  # the far ends say different things
            lib.tr_jb_put(jb, 1 + slot, n & 0xFFFF, (n * FRAME) & 0xFFFFFFFF, 0, law,
                          codes[law][(n + 97 * slot) % len(frames)], FRAME, n * 20_000)
        lib.tr_playout(path, n * 20_000 + 40_000, out)

    for _ in range(500):  # converge, so the measurement is of a call in progress
        playout()
        capture()
    return best_us(capture), best_us(playout)


def audioop_floor(pcm: np.ndarray) -> float | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import audioop
        except ImportError:
            return None
    frame = pcm[:FRAME].tobytes()
    return best_us(lambda: audioop.lin2ulaw(frame, 2))


def with_loss(codes: bytes, loss: float, conceal: bool, seed: int) -> np.ndarray:
    rng = random.Random(seed)
    plc = ffi.new("tr_plc_t *")
    lib.tr_plc_init(plc)
    frame = ffi.new("int16_t[]", FRAME)
    out = np.zeros(len(codes), dtype=np.int16)
    for i in range(0, len(codes) - FRAME + 1, FRAME):
        if rng.random() < loss:
            if conceal:
                lib.tr_plc_conceal(plc, frame, FRAME, 1)
            else:
                ffi.memmove(frame, bytes(2 * FRAME), 2 * FRAME)
                lib.tr_plc_good(plc, frame, frame, FRAME)
        else:
            lib.tr_ulaw_decode(codes[i : i + FRAME], frame, FRAME)
            lib.tr_plc_good(plc, frame, frame, FRAME)
        out[i : i + FRAME] = np.frombuffer(ffi.buffer(frame), dtype=np.int16)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=30.0, help="speech for the PESQ runs")
    args = ap.parse_args()
    pcm = speech(args.seconds)

    print("per 20 ms frame (best of 5 rounds of 2000 calls):")
    single, conference = frame_costs(pcm, 1), frame_costs(pcm, 2)
    print(f"  {'':<46} {'1 call':>9} {'3-way':>9} {'ratio':>6}")
    for i, label in enumerate(("tr_capture: echo cancel, DTMF detect, encode",
                               "tr_playout + tr_jb_put: buffers, decode, tones")):
        print(f"  {label:<46} {single[i]:6.2f} us {conference[i]:6.2f} us "
              f"{conference[i] / single[i]:5.2f}x")
    floor = audioop_floor(pcm)
    if floor is not None:
        print(f"  {'baseline: audioop.lin2ulaw of one frame':<46} {floor:6.2f} us")

    codes = bytearray(len(pcm))
    encode(Law.ULAW, pcm, codes)
    reference = np.zeros(len(pcm), dtype=np.int16)
    decode(Law.ULAW, bytes(codes), reference)
    print("PESQ-NB of real speech after random packet loss (mean of 3 loss patterns):")
    print(f"  {'loss':>5} {'silence':>8} {'PLC':>6} {'gain':>6}")
    for loss in (0.0, 0.03, 0.10):
        scores = {}
        for conceal in (False, True):
            runs = [pesq.pesq(8000, reference.astype(np.float32),
                              with_loss(bytes(codes), loss, conceal, seed).astype(np.float32), "nb")
                    for seed in (1, 2, 3)]
            scores[conceal] = sum(runs) / len(runs)
        print(f"  {loss:>5.0%} {scores[False]:>8.2f} {scores[True]:>6.2f} "
              f"{scores[True] - scores[False]:>+6.2f}")


if __name__ == "__main__":
    main()
