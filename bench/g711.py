"""G.711 throughput of the C core against CPython's audioop, measured in the same run.

Prints Msamples/s for bulk encode/decode (1 Mi samples a call) and the cost of one 20 ms frame
(160 samples) including the call overhead, for the raw cffi call on buffers the media thread keeps,
for the checked facade, and for audioop. Targets (issue 2): bulk encode >= 10x audioop, per-frame
call < 1 us.

Run: .venv/bin/python bench/g711.py [--seconds 0.5]
audioop is in the standard library up to Python 3.12; on 3.13+ the `bench` extra installs
`audioop-lts`, the same module, for the baseline.
"""

from __future__ import annotations

import argparse
import array
import random
import sys
import warnings

from timing import best_rate

from tipring.media import dsp
from tipring.media.dsp import Law, ffi, lib

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import audioop
    except ImportError:
        sys.exit("baseline missing: audioop is not in this Python; pip install audioop-lts")

BULK = 1 << 20
FRAME = 160


def measure_law(law: Law, pcm: array.array, seconds: float) -> list[tuple[str, float, float, str]]:
    """Bulk and per-frame figures for one law, each with its audioop ratio."""
    if law is Law.ULAW:
        enc_raw, dec_raw = lib.tr_ulaw_encode, lib.tr_ulaw_decode
        a_enc, a_dec = audioop.lin2ulaw, audioop.ulaw2lin
    else:
        enc_raw, dec_raw = lib.tr_alaw_encode, lib.tr_alaw_decode
        a_enc, a_dec = audioop.lin2alaw, audioop.alaw2lin
    pcm_bytes = pcm.tobytes()
    codes = bytearray(len(pcm))
    out_pcm = array.array("h", bytes(2 * len(pcm)))
    frame_bytes = pcm_bytes[: 2 * FRAME]
    frame_codes = bytearray(FRAME)
    # Buffers the media thread keeps for the life of a call: the raw per-frame call uses them.
    c_pcm = ffi.new("int16_t[]", FRAME)
    c_codes = ffi.new("uint8_t[]", FRAME)
    ffi.memmove(c_pcm, frame_bytes, 2 * FRAME)
    name = law.value
    rows = []

    ours = best_rate(lambda: dsp.encode(law, pcm, codes), seconds, len(pcm))
    base = best_rate(lambda: a_enc(pcm_bytes, 2), seconds, len(pcm))
    rows.append((f"{name} bulk encode", ours / 1e6, ours / base, "Msamples/s"))
    code_bytes = bytes(codes)
    ours = best_rate(lambda: dsp.decode(law, code_bytes, out_pcm), seconds, len(pcm))
    base = best_rate(lambda: a_dec(code_bytes, 2), seconds, len(pcm))
    rows.append((f"{name} bulk decode", ours / 1e6, ours / base, "Msamples/s"))

    base = best_rate(lambda: a_enc(frame_bytes, 2), seconds, 1)
    raw = best_rate(lambda: enc_raw(c_pcm, c_codes, FRAME), seconds, 1)
    rows.append((f"{name} frame encode, raw call", 1e6 / raw, raw / base, "us/frame"))
    facade = best_rate(lambda: dsp.encode(law, frame_bytes, frame_codes), seconds, 1)
    rows.append((f"{name} frame encode, facade", 1e6 / facade, facade / base, "us/frame"))
    frame_code_bytes = bytes(frame_codes)
    base = best_rate(lambda: a_dec(frame_code_bytes, 2), seconds, 1)
    raw = best_rate(lambda: dec_raw(c_codes, c_pcm, FRAME), seconds, 1)
    rows.append((f"{name} frame decode, raw call", 1e6 / raw, raw / base, "us/frame"))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=0.5, help="time per measurement")
    args = ap.parse_args()

    rng = random.Random(711)
    # Speech-like level distribution: mostly quiet with some loud samples (not uniform noise).
    pcm = array.array("h", (max(-32768, min(32767, int(rng.gauss(0, 3000)))) for _ in range(BULK)))

    rows: list[tuple[str, float, float, str]] = []
    print(f"python {sys.version.split()[0]}, {BULK} samples bulk, {FRAME}-sample frames")
    for law in Law:
        rows += measure_law(law, pcm, args.seconds)
    width = max(len(r[0]) for r in rows)
    print(f"{'measurement':<{width}}  {'figure':>10}  {'vs audioop':>10}")
    for label, figure, ratio, unit in rows:
        print(f"{label:<{width}}  {figure:>10.3f}  {ratio:>9.1f}x  {unit}")


if __name__ == "__main__":
    main()
