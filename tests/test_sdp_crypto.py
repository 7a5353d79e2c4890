"""a=crypto (RFC 4568): parsing the RFC's example, key generation, refusal of bad lines."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tipring.sdp import Crypto, KeyParams, SdpError, new_crypto, parse_crypto

# RFC 4568 section 4 example key (RFC example value).
RFC4568_KEY = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR"


def test_rfc4568_example_with_lifetime_and_mki() -> None:
    crypto = parse_crypto(f"1 AES_CM_128_HMAC_SHA1_80 inline:{RFC4568_KEY}|2^20|1:4")
    assert (crypto.tag, crypto.suite) == (1, "AES_CM_128_HMAC_SHA1_80")
    [key] = crypto.keys
    assert key.key_salt == base64.b64decode(RFC4568_KEY)
    assert len(key.key_salt) == 30  # 16-byte master key + 14-byte master salt
    assert key.lifetime == 2**20
    assert key.mki == (1, 4)
    assert crypto.usable
    assert crypto.serialize() == f"1 AES_CM_128_HMAC_SHA1_80 inline:{RFC4568_KEY}|2^20|1:4"


def test_decimal_lifetime_mki_only_and_several_keys() -> None:
    other = base64.b64encode(bytes(range(30))).decode()
    crypto = parse_crypto(f"7 AES_CM_128_HMAC_SHA1_32 inline:{RFC4568_KEY}|1000;"
                          f"inline:{other}|5:2")
    assert [(k.lifetime, k.mki) for k in crypto.keys] == [(1000, None), (None, (5, 2))]
    assert crypto.keys[1].key_salt == bytes(range(30))
    assert crypto.usable


@pytest.mark.parametrize(("value", "usable"), [
    (f"1 AES_CM_128_HMAC_SHA1_80 inline:{RFC4568_KEY}", True),
    (f"1 AES_CM_128_HMAC_SHA1_80 inline:{RFC4568_KEY} WSH=64", True),      # a hint only
    (f"1 AES_CM_128_HMAC_SHA1_80 inline:{RFC4568_KEY} UNENCRYPTED_SRTP", False),
    (f"1 AES_256_CM_HMAC_SHA1_80 inline:{RFC4568_KEY}", False),            # suite we lack
    ("1 AES_CM_128_HMAC_SHA1_80 inline:" + base64.b64encode(bytes(20)).decode(), False),
])
def test_usable(value: str, usable: bool) -> None:
    assert parse_crypto(value).usable is usable


@pytest.mark.parametrize("value", [
    "1 AES_CM_128_HMAC_SHA1_80",                                 # truncated
    f"x AES_CM_128_HMAC_SHA1_80 inline:{RFC4568_KEY}",           # tag not digits
    f"1234567890 AES_CM_128_HMAC_SHA1_80 inline:{RFC4568_KEY}",  # tag too long
    f"1 AES_CM_128_HMAC_SHA1_80 uri:{RFC4568_KEY}",              # key method
    "1 AES_CM_128_HMAC_SHA1_80 inline:not*base64!",
    "1 AES_CM_128_HMAC_SHA1_80 inline:",
    f"1 AES_CM_128_HMAC_SHA1_80 inline:{RFC4568_KEY}|2^x",
    f"1 AES_CM_128_HMAC_SHA1_80 inline:{RFC4568_KEY}|1:0",       # MKI length 0
    f"1 AES_CM_128_HMAC_SHA1_80 inline:{RFC4568_KEY}|1:4|2^20",  # MKI before lifetime
])
def test_bad_crypto_lines(value: str) -> None:
    with pytest.raises(SdpError) as refusal:
        parse_crypto(value)
    assert RFC4568_KEY not in str(refusal.value)


def test_new_key_is_30_random_bytes_from_the_injected_source() -> None:
    asked: list[int] = []

    def source(n: int) -> bytes:
        asked.append(n)
        return bytes(range(100, 100 + n))

    crypto = new_crypto(3, "AES_CM_128_HMAC_SHA1_80", source)
    assert asked == [30]
    assert crypto.keys == (KeyParams(bytes(range(100, 130))),)
    inline = crypto.serialize().split("inline:")[1]
    assert base64.b64decode(inline) == bytes(range(100, 130))
    assert len(inline) == 40
    assert parse_crypto(crypto.serialize()) == crypto


def test_new_key_refuses_unknown_suite_and_short_randomness() -> None:
    with pytest.raises(SdpError):
        new_crypto(1, "F8_128_HMAC_SHA1_80", bytes)
    with pytest.raises(SdpError):
        new_crypto(1, "AES_CM_128_HMAC_SHA1_80", lambda n: b"short")


def test_key_hidden_in_repr() -> None:
    crypto = parse_crypto(f"1 AES_CM_128_HMAC_SHA1_80 inline:{RFC4568_KEY}")
    raw = base64.b64decode(RFC4568_KEY)
    assert RFC4568_KEY not in repr(crypto)
    assert repr(raw) not in repr(crypto) and raw.hex() not in repr(crypto)


@given(st.integers(1, 10**9 - 1), st.binary(min_size=1, max_size=40),
       st.one_of(st.none(), st.integers(0, 2**48)),
       st.one_of(st.none(), st.tuples(st.integers(0, 10**6), st.integers(1, 128))))
def test_crypto_round_trip(tag: int, key: bytes, lifetime: int | None,
                           mki: tuple[int, int] | None) -> None:
    crypto = Crypto(tag, "AES_CM_128_HMAC_SHA1_80", (KeyParams(key, lifetime, mki),))
    assert parse_crypto(crypto.serialize()) == crypto
