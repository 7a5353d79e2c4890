"""SDES key exchange for SRTP: the a=crypto attribute (RFC 4568).

The SIP signalling path is TLS-protected when SRTP is used, so the keys can travel inline. The
two suites every SIP phone and PBX implements are AES_CM_128_HMAC_SHA1_80 and _32 (RFC 4568
section 6.2): a 128-bit master key and a 112-bit master salt, sent together as base64 of 30 bytes.
Keys never appear in a repr; the SDP text itself is masked for logs by `model.redact`.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass

from .model import SdpError

# Suite -> master key + salt length in bytes (RFC 4568 section 6.2).
SUITES: dict[str, int] = {
    "AES_CM_128_HMAC_SHA1_80": 30,
    "AES_CM_128_HMAC_SHA1_32": 30,
}
# Session parameters that only hint and change nothing in how SRTP runs (RFC 4568 6.3.7: WSH).
_HARMLESS_SESSION_PARAMS = ("WSH=",)
_LIFETIME = re.compile(r"(2\^)?([0-9]{1,20})")
_MKI = re.compile(r"([0-9]{1,20}):([0-9]{1,3})")

RandomBytes = Callable[[int], bytes]


@dataclass(frozen=True)
class KeyParams:
    """One inline key: master key || master salt, with optional lifetime and MKI."""

    key_salt: bytes
    lifetime: int | None = None  # packets; None = the suite's default maximum
    mki: tuple[int, int] | None = None  # (value, length in bytes)

    def serialize(self) -> str:
        text = "inline:" + base64.b64encode(self.key_salt).decode("ascii")
        if self.lifetime is not None:
            power = self.lifetime.bit_length() - 1
            exact = self.lifetime > 0 and 1 << power == self.lifetime
            text += f"|2^{power}" if exact else f"|{self.lifetime}"
        if self.mki is not None:
            text += f"|{self.mki[0]}:{self.mki[1]}"
        return text

    def __repr__(self) -> str:
        return (f"KeyParams(key_salt=<{len(self.key_salt)} bytes>, lifetime={self.lifetime}, "
                f"mki={self.mki})")


@dataclass(frozen=True)
class Crypto:
    """One a=crypto line: a tag the answer refers back to, a suite and its key(s)."""

    tag: int
    suite: str
    keys: tuple[KeyParams, ...]
    session_params: tuple[str, ...] = ()

    @property
    def usable(self) -> bool:
        """Whether we can run SRTP with it: known suite, right key size, no session parameter
        that would change the transform (we implement RFC 4568's defaults only)."""
        size = SUITES.get(self.suite)
        if size is None or not self.keys:
            return False
        if any(len(k.key_salt) != size for k in self.keys):
            return False
        return all(p.startswith(_HARMLESS_SESSION_PARAMS) for p in self.session_params)

    def serialize(self) -> str:
        """The attribute value (after "a=crypto:")."""
        parts = [str(self.tag), self.suite, ";".join(k.serialize() for k in self.keys)]
        return " ".join(parts + list(self.session_params))


def parse_crypto(value: str) -> Crypto:
    """Parse an a=crypto value; raises SdpError (without echoing the key) when malformed."""
    fields = value.split()
    if len(fields) < 3:
        raise SdpError("a=crypto needs a tag, a suite and key parameters")
    tag_text, suite, key_text, *session_params = fields
    if not tag_text.isascii() or not tag_text.isdigit() or len(tag_text) > 9:
        raise SdpError(f"a=crypto tag {tag_text!r} is not 1 to 9 digits")
    keys = []
    for key_param in key_text.split(";"):
        method, colon, info = key_param.partition(":")
        if not colon or method.lower() != "inline":
            raise SdpError(f"a=crypto key method {method!r} is not inline")
        key_b64, *options = info.split("|")
        try:
            key_salt = base64.b64decode(key_b64 + "=" * (-len(key_b64) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise SdpError("a=crypto key is not base64") from None
        if not key_salt:
            raise SdpError("a=crypto key is empty")
        lifetime: int | None = None
        mki: tuple[int, int] | None = None
        for option in options:
            if (match := _MKI.fullmatch(option)) and mki is None:
                length = int(match.group(2))
                if not 1 <= length <= 128:
                    raise SdpError(f"a=crypto MKI length {length} is outside 1..128")
                mki = (int(match.group(1)), length)
            elif (match := _LIFETIME.fullmatch(option)) and lifetime is None and mki is None:
                exponent = int(match.group(2))
                if match.group(1) and exponent > 64:
                    raise SdpError(f"a=crypto lifetime 2^{exponent} is absurd")
                lifetime = 1 << exponent if match.group(1) else exponent
            else:
                raise SdpError(f"a=crypto key option {option!r} is neither a lifetime nor an MKI")
        keys.append(KeyParams(key_salt, lifetime, mki))
    return Crypto(int(tag_text), suite, tuple(keys), tuple(session_params))


def new_crypto(tag: int, suite: str, random_bytes: RandomBytes) -> Crypto:
    """A fresh key for `suite`, drawn from the injected random source (default `secrets`)."""
    size = SUITES.get(suite)
    if size is None:
        raise SdpError(f"SRTP suite {suite} is not supported")
    key_salt = random_bytes(size)
    if len(key_salt) != size:
        raise SdpError(f"random source gave {len(key_salt)} bytes, {size} needed")
    return Crypto(tag, suite, (KeyParams(key_salt),))
