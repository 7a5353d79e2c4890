"""SRTP glue: SDES keys from the SDP drive libsrtp; forged, damaged and replayed packets are
refused; keys are never shown."""

from __future__ import annotations

import logging
import random

import pytest

from tipring.media.rtcp import ReceiverReport, serialize_compound
from tipring.media.rtp import RtpPacket, parse_rtp
from tipring.media.srtp import AUTH_TAG_BYTES, SrtpError, SrtpSession
from tipring.sdp.crypto import KeyParams
from tipring.sdp.negotiation import SrtpKeys

SUITES = ["AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32"]


def pair(suite: str, seed: int = 1) -> tuple[SrtpSession, SrtpSession]:
    rng = random.Random(seed)
    a, b = KeyParams(rng.randbytes(30)), KeyParams(rng.randbytes(30))
    return SrtpSession(SrtpKeys(suite, a, b)), SrtpSession(SrtpKeys(suite, b, a))


def rtp(seq: int) -> bytes:
    return RtpPacket(0, seq, seq * 160, 0xCAFE, payload=bytes(range(160))).serialize()


@pytest.mark.parametrize("suite", SUITES)
def test_round_trip_encrypts_and_authenticates(suite: str) -> None:
    alice, bob = pair(suite)
    plain = rtp(1)
    wire = alice.protect(plain)
    assert len(wire) == len(plain) + AUTH_TAG_BYTES[suite]  # RFC 3711 / RFC 4568 tag sizes
    assert wire[:12] == plain[:12]  # the header stays in clear
    assert wire[12:172] != plain[12:172]  # the payload does not
    assert parse_rtp(bob.unprotect(wire)) == parse_rtp(plain)
    rtcp = serialize_compound([ReceiverReport(0xCAFE)])
    assert bob.unprotect_rtcp(alice.protect_rtcp(rtcp)) == rtcp


@pytest.mark.parametrize("suite", SUITES)
def test_damaged_forged_and_replayed_packets_are_refused(suite: str) -> None:
    alice, bob = pair(suite)
    wire = alice.protect(rtp(7))
    damaged = bytearray(wire)
    damaged[20] ^= 0x01
    with pytest.raises(SrtpError, match="rejected"):
        bob.unprotect(bytes(damaged))
    eve, _ = pair(suite, seed=99)  # someone without the negotiated key
    with pytest.raises(SrtpError):
        bob.unprotect(eve.protect(rtp(8)))
    assert parse_rtp(bob.unprotect(wire)).sequence == 7
    with pytest.raises(SrtpError):  # the same packet again: replay protection
        bob.unprotect(wire)


def test_unusable_keys_are_refused_with_a_reason() -> None:
    good = KeyParams(bytes(30))
    with pytest.raises(SrtpError, match="not supported"):
        SrtpSession(SrtpKeys("F8_128_HMAC_SHA1_80", good, good))
    with pytest.raises(SrtpError, match="remote SRTP key is 16 bytes"):
        SrtpSession(SrtpKeys(SUITES[0], good, KeyParams(bytes(16))))
    with pytest.raises(SrtpError, match="MKI"):
        SrtpSession(SrtpKeys(SUITES[0], KeyParams(bytes(30), mki=(1, 4)), good))


def test_keys_never_shown(caplog: pytest.LogCaptureFixture) -> None:
    key = bytes(range(30))
    session = SrtpSession(SrtpKeys(SUITES[0], KeyParams(key), KeyParams(key)))
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("tipring.test").info("session %r %s", session, session)
    for shown in (repr(session), str(session), caplog.text):
        assert key.hex() not in shown and "AAECAwQF" not in shown  # raw or base64
