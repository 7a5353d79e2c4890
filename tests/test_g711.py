"""G.711 in the C core against the ITU-T G.191 reference files (all 65,536 inputs, both laws)."""

from __future__ import annotations

import array
import sys
import zlib
from pathlib import Path

import pytest

from tipring.media import dsp
from tipring.media.dsp import Law

LAWS = [(Law.ULAW, "u"), (Law.ALAW, "a")]

# CRC-32 of the reference files as published in shared/vectors/README.md: a corrupted or
# truncated copy must fail loudly rather than make the comparison meaningless.
CRC = {
    "sweep.src": 0xC8BA7682,
    "sweep-r.a": 0x74719FE4,
    "sweep-r.u": 0xCD170E15,
    "sweep-r.rea": 0xABCEAA69,
    "sweep-r.reu": 0x63641C01,
}


def words(vectors: Path, name: str) -> array.array:
    raw = (vectors / "g711" / name).read_bytes()
    if name in CRC:
        assert zlib.crc32(raw) == CRC[name], f"{name} does not match its published CRC-32"
    a = array.array("h")
    a.frombytes(raw)
    if sys.byteorder != "little":  # the files are little-endian words
        a.byteswap()
    assert len(a) == 65536
    return a


def test_sweep_covers_every_16_bit_input(vectors: Path) -> None:
    assert sorted(words(vectors, "sweep.src")) == list(range(-32768, 32768))


@pytest.mark.parametrize("law,tag", LAWS)
def test_encode_matches_reference(vectors: Path, law: Law, tag: str) -> None:
    src = words(vectors, "sweep.src")
    ref = words(vectors, f"sweep-r.{tag}")
    assert all(0 <= w <= 255 for w in ref), "the reference codes sit in the low byte"
    out = bytearray(len(src))
    assert dsp.encode(law, src, out) == 65536
    mismatches = [i for i in range(65536) if out[i] != ref[i]]
    assert mismatches == []


@pytest.mark.parametrize("law,tag", LAWS)
def test_decode_matches_reference(vectors: Path, law: Law, tag: str) -> None:
    codes = bytes(w & 0xFF for w in words(vectors, f"sweep-r.{tag}"))
    ref = words(vectors, f"sweep-r.{tag}-{tag}")
    out = array.array("h", bytes(2 * len(codes)))
    assert dsp.decode(law, codes, out) == 65536
    assert out == ref


@pytest.mark.parametrize("law,tag", LAWS)
def test_round_trip_matches_reference(vectors: Path, law: Law, tag: str) -> None:
    src = words(vectors, "sweep.src")
    ref = words(vectors, f"sweep-r.re{tag}")
    codes = bytearray(65536)
    dsp.encode(law, src, codes)
    out = array.array("h", bytes(2 * 65536))
    dsp.decode(law, codes, out)
    assert out == ref


@pytest.mark.parametrize("law", [Law.ULAW, Law.ALAW])
def test_every_code_is_a_fixed_point_of_decode_then_encode(law: Law) -> None:
    # A decoded code re-encodes to itself, except mu-law's negative zero (0x7F), which G.711
    # folds onto positive zero (0xFF) because both decode to 0.
    codes = bytes(range(256))
    pcm = array.array("h", bytes(512))
    dsp.decode(law, codes, pcm)
    again = bytearray(256)
    dsp.encode(law, pcm, again)
    expected = bytearray(codes)
    if law is Law.ULAW:
        expected[0x7F] = 0xFF
    assert again == expected


def test_frame_sized_calls_agree_with_bulk(vectors: Path) -> None:
    src = words(vectors, "sweep.src")
    bulk = bytearray(65536)
    dsp.encode(Law.ULAW, src, bulk)
    frame = bytearray(160)
    for start in range(0, 65536 - 160, 160 * 37):
        dsp.encode(Law.ULAW, src[start : start + 160], frame)
        assert frame == bulk[start : start + 160]


def test_payload_types() -> None:
    assert (Law.ULAW.payload_type, Law.ALAW.payload_type) == (0, 8)
    assert Law("PCMA") is Law.ALAW


def test_odd_byte_count_is_refused() -> None:
    with pytest.raises(ValueError, match="whole 16-bit samples, got 3 bytes"):
        dsp.encode(Law.ULAW, b"\x00\x01\x02", bytearray(2))


def test_short_output_is_refused_and_untouched() -> None:
    out = bytearray(b"\xaa" * 3)
    with pytest.raises(ValueError, match="output holds 3 codes"):
        dsp.encode(Law.ALAW, bytes(8), out)
    assert out == b"\xaa" * 3
    pcm = bytearray(4)
    with pytest.raises(ValueError, match="output holds 2 samples"):
        dsp.decode(Law.ALAW, bytes(3), pcm)


def test_read_only_output_is_refused() -> None:
    with pytest.raises(BufferError):
        dsp.encode(Law.ULAW, bytes(4), bytes(2))
