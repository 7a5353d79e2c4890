"""Python facade over the C DSP core `tipring._dsp`.

The extension is required: there is no pure-Python fallback in the firmware, because a fallback
would run the audio path an order of magnitude slower and hide a broken build until a call drops.
Functions here work on caller-provided buffers (bytes-like in, writable bytes-like or cffi
buffers out) and make exactly one C call each; the media thread keeps its buffers across frames.
"""

from __future__ import annotations

import enum

try:
    from tipring._dsp import ffi, lib
except ImportError as exc:  # pragma: no cover - exercised only on a broken install
    raise ImportError(
        "tipring._dsp (the C DSP extension) is not built: reinstall TipRing with a C compiler and "
        "the Python headers available (on Debian: apt-get install build-essential python3-dev "
        f"libffi-dev), then `pip install .` ({exc})"
    ) from exc

ABI_VERSION = 1

if lib.tr_dsp_abi_version() != ABI_VERSION:  # pragma: no cover - a stale build
    raise ImportError(
        f"tipring._dsp ABI {lib.tr_dsp_abi_version()} does not match the firmware's {ABI_VERSION}: "
        "rebuild the extension (pip install .)"
    )

lib.tr_dsp_init()

__all__ = ["Law", "decode", "encode", "ffi", "lib"]


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
