"""Per-frame cost of the tone, DTMF and caller-ID kernels of the C core, next to spandsp's DTMF
receiver and generator (Debian libspandsp2, called through ctypes) measured in the same run.

Prints microseconds per 20 ms frame (160 samples) through the raw cffi call on buffers the media
thread keeps, and the ratio ours/spandsp where spandsp has the same job (higher is faster). The
spandsp figures include ctypes' call overhead, which is larger than cffi's; the bulk row (one
call over a minute of audio) shows the kernels without it.

Run: .venv/bin/python bench/dsp_kernels.py [--seconds 0.5]
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import math
import sys

from timing import best_rate

from tipring.media.dsp import (
    FskModulator,
    FskStandard,
    ToneGenerator,
    ToneSegment,
    dtmf_segments,
    ffi,
    lib,
)

FRAME = 160


def load_spandsp() -> ctypes.CDLL:
    name = ctypes.util.find_library("spandsp")
    if name is None:
        sys.exit("baseline missing: spandsp not found (apt-get install libspandsp-dev)")
    sd = ctypes.CDLL(name)
    vp, i16p = ctypes.c_void_p, ctypes.POINTER(ctypes.c_int16)
    sd.dtmf_rx_init.restype = vp
    sd.dtmf_rx_init.argtypes = [vp, vp, vp]
    sd.dtmf_rx.argtypes = [vp, i16p, ctypes.c_int]
    sd.dtmf_tx_init.restype = vp
    sd.dtmf_tx_init.argtypes = [vp]
    sd.dtmf_tx_put.argtypes = [vp, ctypes.c_char_p, ctypes.c_int]
    sd.dtmf_tx.argtypes = [vp, i16p, ctypes.c_int]
    return sd


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=0.5, help="time per measurement")
    args = ap.parse_args()
    sd = load_spandsp()
    rows: list[tuple[str, float, float | None]] = []

    # A minute of DTMF digits with gaps: the detector's busiest realistic input.
    gen = ToneGenerator()
    gen.start(dtmf_segments("0123456789*#ABCD", on=0.05, off=0.05), repeat_from=0)
    audio = ffi.new("int16_t[]", 60 * 8000)
    lib.tr_tone_generate(gen._gen, audio, 60 * 8000, 0)
    frame = ffi.new("int16_t[]", FRAME)
    ffi.memmove(frame, audio, 2 * FRAME)
    frame_ct = (ctypes.c_int16 * FRAME).from_buffer_copy(ffi.buffer(frame))

    rx = ffi.new("tr_dtmf_rx_t *")
    lib.tr_dtmf_rx_init(rx)
    events = ffi.new("tr_dtmf_event_t[]", 16)
    ours = best_rate(lambda: lib.tr_dtmf_rx(rx, frame, FRAME, events, 16), args.seconds)
    srx = sd.dtmf_rx_init(None, None, None)
    base = best_rate(lambda: sd.dtmf_rx(srx, frame_ct, FRAME), args.seconds)
    rows.append(("DTMF/fax detect, per frame", 1e6 / ours, ours / base))
    n = 60 * 8000
    ours = best_rate(lambda: lib.tr_dtmf_rx(rx, audio, n, events, 16), args.seconds)
    audio_ct = (ctypes.c_int16 * n).from_buffer_copy(ffi.buffer(audio))
    base = best_rate(lambda: sd.dtmf_rx(srx, audio_ct, n), args.seconds)
    rows.append(("DTMF/fax detect, bulk (per 160 samples)", 1e6 / ours / (n / FRAME), ours / base))

    gen.start(dtmf_segments("5", on=math.inf), repeat_from=None)
    ours = best_rate(lambda: lib.tr_tone_generate(gen._gen, frame, FRAME, 0), args.seconds)
    stx = sd.dtmf_tx_init(None)

    def spandsp_tx() -> None:
        if sd.dtmf_tx(stx, frame_ct, FRAME) < FRAME:
            sd.dtmf_tx_put(stx, b"5" * 100, 100)

    base = best_rate(spandsp_tx, args.seconds)
    rows.append(("tone generate, 2 components", 1e6 / ours, ours / base))
    gen.start([ToneSegment(((400.0, -10.0), (375.0, -16.0), (425.0, -16.0), (1000.0, -20.0)),
                           math.inf)])
    ours = best_rate(lambda: lib.tr_tone_generate(gen._gen, frame, FRAME, 1), args.seconds)
    rows.append(("tone generate, 4 components, mixed", 1e6 / ours, None))

    mod = FskModulator()

    def fsk() -> None:
        if not lib.tr_fsk_tx(mod._tx, frame, FRAME):
            mod.start(bytes(200), FskStandard.BELL202)

    fsk()
    ours = best_rate(fsk, args.seconds)
    rows.append(("caller-ID FSK, per frame", 1e6 / ours, None))

    print(f"python {sys.version.split()[0]}, {FRAME}-sample frames; ratio = spandsp time / ours")
    width = max(len(r[0]) for r in rows)
    print(f"{'measurement':<{width}}  {'us/frame':>9}  {'vs spandsp':>10}")
    for label, us, ratio in rows:
        rtxt = f"{ratio:>9.2f}x" if ratio is not None else f"{'-':>10}"
        print(f"{label:<{width}}  {us:>9.2f}  {rtxt}")


if __name__ == "__main__":
    main()
