"""Caller ID: SDMF/MDMF message bytes, the Bell 202 and V.23 FSK modulator in C, ETSI DTMF caller
ID and the CAS alerting tone. spandsp's ADSI receiver (CLASS = Bell 202, CLIP = V.23, CLIP-DTMF)
is the oracle for everything we put on the line; it verifies the checksum and drops bad messages.
"""

from __future__ import annotations

import array
import cmath
import datetime
import math
import random

import pytest
import spandsp_oracle as sd

from tipring.media import dsp
from tipring.media.dsp import (
    Absence,
    CallerId,
    FskModulator,
    FskStandard,
    Law,
    ToneGenerator,
    cas_tone,
    checksum,
    dtmf_segments,
    etsi_dtmf_clip,
    mdmf_message,
    sdmf_message,
)

FS = 8000
PEAK_0DBM0 = 32768 * 10 ** (-3.14 / 20)
WHEN = datetime.datetime(2026, 11, 21, 9, 7)
RX = {FskStandard.BELL202: sd.ADSI_STANDARD_CLASS, FskStandard.V23: sd.ADSI_STANDARD_CLIP}


def modulate(message: bytes, frame: int = 160, **kw: object) -> array.array:
    mod = FskModulator()
    total = mod.start(message, **kw)
    out = array.array("h")
    buf = array.array("h", bytes(2 * frame))
    running = True
    while running:
        running = mod.generate(buf)
        out.extend(buf)
    assert len(out) >= total
    return out


def padded(x: array.array) -> array.array:
    """Half a second of silence either side, as between rings."""
    gap = array.array("h", bytes(2 * 4000))
    return gap + x + gap


def fields(msg: bytes, standard: int) -> list[tuple[int, bytes]]:
    return sd.adsi_fields(msg, standard)


# --- message bytes --------------------------------------------------------------------------------


def test_sdmf_matches_the_published_gr30_example() -> None:
    """September 30, 12:24, 609-555-1212: the SDMF example of Bellcore GR-30, checksum 0x51."""
    msg = sdmf_message(CallerId(number="6095551212", when=datetime.datetime(2026, 9, 30, 12, 24)))
    assert msg == bytes.fromhex("04 12 30 39 33 30 31 32 32 34 36 30 39 35 35 35 31 32 31 32 51")


def test_checksum_makes_every_message_sum_to_zero() -> None:
    rng = random.Random(1)
    for _ in range(200):
        number = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 20)))
        name = "".join(rng.choice("ABCDEFGH IJK.-'") for _ in range(rng.randint(1, 50)))
        msg = mdmf_message(CallerId(number=number, name=name, when=WHEN))
        assert sum(msg) % 256 == 0
        assert msg[1] == len(msg) - 3
        assert checksum(msg[:-1]) == msg[-1]


def test_mdmf_layout() -> None:
    msg = mdmf_message(CallerId(number="5551234", name="ANN", when=WHEN))
    assert msg[:-1] == bytes([0x80, 24, 1, 8]) + b"11210907" + bytes([2, 7]) + b"5551234" + bytes(
        [7, 3]
    ) + b"ANN"


@pytest.mark.parametrize(
    "cid",
    [
        CallerId(number="12", when=None),
        CallerId(number="12345678901", when=WHEN),
        CallerId(number="12a", when=WHEN),
    ],
)
def test_sdmf_rejects_what_it_cannot_carry(cid: CallerId) -> None:
    with pytest.raises(ValueError):
        sdmf_message(cid)


def test_mdmf_rejects_bad_name_and_number() -> None:
    with pytest.raises(ValueError):
        mdmf_message(CallerId(number="555-1234"))
    with pytest.raises(ValueError):
        mdmf_message(CallerId(number="5551234", name="X" * 51))
    with pytest.raises(ValueError):
        mdmf_message(CallerId(number="5551234", name="tab\there"))


# --- FSK decoded by spandsp -------------------------------------------------------------------------

CASES = [
    CallerId(number="2125551212", name="SMITH JOHN", when=WHEN),
    CallerId(number="+441632960123", name="O'Brien-Smythe, Dr.", when=WHEN),
    CallerId(number_absence=Absence.PRIVATE, name_absence=Absence.PRIVATE, when=WHEN),
    CallerId(number_absence=Absence.UNAVAILABLE, name_absence=Absence.UNAVAILABLE, when=WHEN),
    CallerId(number="5551234"),
]


@pytest.mark.parametrize("standard", [FskStandard.BELL202, FskStandard.V23])
@pytest.mark.parametrize("cid", CASES)
def test_spandsp_decodes_our_mdmf(standard: FskStandard, cid: CallerId) -> None:
    msg = mdmf_message(cid)
    got = sd.adsi_rx(padded(modulate(msg, standard=standard)), RX[standard])
    assert got == [msg[:-1]]  # spandsp hands over the message without its checksum
    parsed = dict(fields(got[0], RX[standard])[1:])
    if cid.when:
        assert parsed[1] == b"11210907"
    if cid.number:
        assert parsed[2] == cid.number.encode()
    else:
        assert parsed[4] == cid.number_absence.value.encode()
    if cid.name:
        assert parsed[7] == cid.name.encode()
    elif cid.name_absence:
        assert parsed[8] == cid.name_absence.value.encode()


@pytest.mark.parametrize(
    "cid",
    [
        CallerId(number="6095551212", when=WHEN),
        CallerId(number_absence=Absence.PRIVATE, when=WHEN),
        CallerId(number_absence=Absence.UNAVAILABLE, when=WHEN),
    ],
)
def test_spandsp_decodes_our_sdmf(cid: CallerId) -> None:
    msg = sdmf_message(cid)
    got = sd.adsi_rx(padded(modulate(msg)), sd.ADSI_STANDARD_CLASS)
    assert got == [msg[:-1]]
    (mtype, _), (_, body) = fields(got[0], sd.ADSI_STANDARD_CLASS)
    assert mtype == 0x04
    assert body == b"11210907" + (cid.number or cid.number_absence.value).encode()


def test_a_corrupted_message_is_refused_by_the_oracle() -> None:
    """The positive tests mean something: spandsp drops a message whose checksum is wrong."""
    msg = bytearray(mdmf_message(CASES[0]))
    msg[-1] ^= 0x01
    assert sd.adsi_rx(padded(modulate(bytes(msg))), sd.ADSI_STANDARD_CLASS) == []


@pytest.mark.parametrize("standard", [FskStandard.BELL202, FskStandard.V23])
def test_off_hook_format_no_seizure_80_marks(standard: FskStandard) -> None:
    msg = mdmf_message(CASES[0])
    x = modulate(msg, standard=standard, seizure_bits=0, mark_bits=80)
    assert sd.adsi_rx(padded(x), RX[standard]) == [msg[:-1]]


def test_decodes_at_low_level_in_noise_through_g711() -> None:
    """-28 dBm0 with white noise 25 dB below, through mu-law and back."""
    msg = mdmf_message(CASES[1])
    x = padded(modulate(msg, level_dbm0=-28.0))
    rng = random.Random(3)
    sigma = PEAK_0DBM0 * 10 ** (-53 / 20) / math.sqrt(2)
    noisy = array.array("h", [max(-32768, min(32767, round(v + rng.gauss(0, sigma)))) for v in x])
    codes = bytearray(len(noisy))
    dsp.encode(Law.ULAW, noisy, codes)
    back = array.array("h", bytes(2 * len(codes)))
    dsp.decode(Law.ULAW, codes, back)
    assert sd.adsi_rx(back, sd.ADSI_STANDARD_CLASS) == [msg[:-1]]


# --- the waveform ---------------------------------------------------------------------------------


def test_burst_length_and_level() -> None:
    """Exactly ceil(bits * 8000 / 1200) samples; the steady part at the requested level."""
    msg = mdmf_message(CASES[0])
    bits = 300 + 180 + 10 * len(msg) + 10
    mod = FskModulator()
    total = mod.start(msg, level_dbm0=-13.5)
    assert total == math.ceil(bits * FS / 1200)
    x = modulate(msg, level_dbm0=-13.5)
    assert any(x[total - 3 : total]) and not any(x[total:])
    body = x[100 : total - 100]
    rms_db = 10 * math.log10(sum(v * v for v in body) / len(body))
    assert abs(rms_db - 20 * math.log10(PEAK_0DBM0 * 10 ** (-13.5 / 20) / math.sqrt(2))) < 0.2


@pytest.mark.parametrize("standard", [FskStandard.BELL202, FskStandard.V23])
def test_bits_on_the_sample_grid(standard: FskStandard) -> None:
    """A bit-by-bit demodulator here: bit k spans the samples i with floor(i * 1200 / 8000) == k,
    and a sine of frequency f obeys x[n-1] + x[n+1] = 2 cos(2 pi f / 8000) x[n], so the steps
    inside each bit give its frequency. Expect 0101... seizure, 180 marks, then start bit, 8 data
    bits LSB first and a stop bit for every byte."""
    msg = mdmf_message(CASES[0])
    x = modulate(msg, standard=standard)
    cos_mark, cos_space = (math.cos(2 * math.pi * f / FS) for f in standard.value)

    def bit(k: int) -> int:
        first, last = math.ceil(k * 20 / 3), math.ceil((k + 1) * 20 / 3) - 1
        num = sum(x[n] * (x[n - 1] + x[n + 1]) for n in range(first + 1, last + 1))
        den = 2 * sum(x[n] * x[n] for n in range(first + 1, last + 1))
        c = num / den
        return 1 if abs(c - cos_mark) < abs(c - cos_space) else 0

    bits = [bit(k) for k in range(480 + 10 * len(msg))]
    assert bits[:300] == [0, 1] * 150
    assert bits[300:480] == [1] * 180
    decoded = []
    for j in range(len(msg)):
        frame = bits[480 + 10 * j : 490 + 10 * j]
        assert frame[0] == 0 and frame[9] == 1
        decoded.append(sum(b << i for i, b in enumerate(frame[1:9])))
    assert bytes(decoded) == msg


def test_phase_continuous_and_frame_independent() -> None:
    msg = mdmf_message(CASES[1])
    ref = modulate(msg, standard=FskStandard.V23)
    a = PEAK_0DBM0 * 10 ** (-13.5 / 20)
    slope = a * 2 * math.pi * 2100 / FS
    assert max(abs(ref[k + 1] - ref[k]) for k in range(len(ref) - 1)) <= slope + 2
    for frame in (1, 7, 97, 333):
        got = modulate(msg, frame=frame, standard=FskStandard.V23)
        n = min(len(ref), len(got))
        assert max(abs(p - q) for p, q in zip(ref[:n], got[:n], strict=True)) <= 1


def test_modulator_rejects_bad_settings() -> None:
    with pytest.raises(ValueError):
        FskModulator().start(b"")
    with pytest.raises(ValueError):
        FskModulator().start(b"\x04\x00\xfc", level_dbm0=6.0)
    with pytest.raises(ValueError):
        FskModulator().start(b"\x04\x00\xfc", mark_bits=-1)


# --- ETSI DTMF caller ID ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "number,absence,start,expected",
    [
        ("0123456789", None, "A", "A0123456789C"),
        ("4670123456", None, "D", "D4670123456C"),
        (None, Absence.PRIVATE, "A", "B10C"),
        (None, Absence.UNAVAILABLE, "A", "B00C"),
    ],
)
def test_spandsp_decodes_our_dtmf_caller_id(
    number: str | None, absence: Absence | None, start: str, expected: str
) -> None:
    digits = etsi_dtmf_clip(number, absence, start)
    assert digits == expected
    gen = ToneGenerator()
    gen.start(dtmf_segments(digits, on=0.07, off=0.07), repeat_from=None)
    x = array.array("h")
    buf = array.array("h", bytes(320))
    while gen.generate(buf):
        x.extend(buf)
    got = sd.adsi_rx(padded(x), sd.ADSI_STANDARD_CLIP_DTMF)
    assert got == [expected.encode()]
    parsed = fields(got[0], sd.ADSI_STANDARD_CLIP_DTMF)
    assert parsed[0][0] == ord("C")  # message type: C-terminated
    assert parsed[1] == (ord(expected[0]), expected[1:-1].encode())


def test_dtmf_caller_id_rejects_non_digits() -> None:
    with pytest.raises(ValueError):
        etsi_dtmf_clip("12#4")
    with pytest.raises(ValueError):
        etsi_dtmf_clip("1234", start="B")


# --- CAS --------------------------------------------------------------------------------------------


def test_cas_tone_is_2130_plus_2750_for_80_ms() -> None:
    gen = ToneGenerator()
    gen.start(cas_tone(level_dbm0=-15.0), repeat_from=None, ramp=0.002)
    x = array.array("h", bytes(2 * 960))
    assert gen.generate(x) is False
    assert any(x[:2]) and any(x[638:640]) and not any(x[640:])
    steady = x[16:624]
    for f in (2130.0, 2750.0):
        acc = sum(steady[k] * cmath.exp(-2j * math.pi * f * k / FS) for k in range(len(steady)))
        level = 20 * math.log10(2 * abs(acc) / len(steady) / PEAK_0DBM0)
        assert abs(level + 15.0) < 0.3
