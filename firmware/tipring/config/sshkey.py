"""OpenSSH public keys (one `authorized_keys` line each): read, checked and fingerprinted.

The device's SSH server takes keys only, so a key the administrator pastes is the one way in:
it is read here completely (the key type, the base64 blob, the type string inside the blob,
the key material's size) so a truncated paste or a weak key is refused with a reason when it
is saved, not discovered at the first failed login. The fingerprint is OpenSSH's
(`ssh-keygen -l`: SHA-256 of the blob, unpadded base64), so the page shows what the
administrator's own tools print. Pure: no files, no programs.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

RSA_MIN_BITS = 2048
MAX_LINE = 8192  # an RSA-16384 key is about 2,800 characters
# ECDSA curve -> (bits, length of the uncompressed point 04 || X || Y)
_CURVES = {"nistp256": (256, 65), "nistp384": (384, 97), "nistp521": (521, 133)}
KEY_TYPES = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
             "ecdsa-sha2-nistp521", "ssh-rsa")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # a tab may separate the fields
# What `ssh-keygen -l` puts in brackets after the fingerprint.
_FAMILY = {"ssh-ed25519": "ED25519", "ssh-rsa": "RSA"}


class SshKeyError(ValueError):
    """Not a usable public key; the message is the reason, written to follow a field name."""


@dataclass(frozen=True)
class SshPublicKey:
    key_type: str
    bits: int
    blob: bytes
    comment: str

    @property
    def fingerprint(self) -> str:
        """`SHA256:...` exactly as `ssh-keygen -l` prints it."""
        digest = hashlib.sha256(self.blob).digest()
        return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")

    @property
    def family(self) -> str:
        return _FAMILY.get(self.key_type, "ECDSA")

    def line(self) -> str:
        """The key as one `authorized_keys` line."""
        text = f"{self.key_type} {base64.b64encode(self.blob).decode()}"
        return f"{text} {self.comment}" if self.comment else text


class _Reader:
    """SSH wire format (RFC 4251 section 5): uint32-length-prefixed strings and mpints."""

    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def string(self, what: str) -> bytes:
        if self.at + 4 > len(self.data):
            raise SshKeyError(f"is cut short: the key data ends before its {what}")
        size = int.from_bytes(self.data[self.at:self.at + 4], "big")
        start, self.at = self.at + 4, self.at + 4 + size
        if self.at > len(self.data):
            raise SshKeyError(f"is cut short: the key data ends inside its {what}")
        return self.data[start:self.at]

    def mpint(self, what: str) -> int:
        raw = self.string(what)
        if raw[:1] and raw[0] & 0x80:
            raise SshKeyError(f"has a negative {what}")
        return int.from_bytes(raw, "big")

    def end(self) -> None:
        if self.at != len(self.data):
            raise SshKeyError(f"has {len(self.data) - self.at} bytes of extra data after the key")


def _material_bits(key_type: str, reader: _Reader) -> int:
    """Check the key material after the type string; returns the key size in bits."""
    if key_type == "ssh-ed25519":
        if len(reader.string("public key")) != 32:
            raise SshKeyError("has an Ed25519 public key that is not 32 bytes long")
        return 256
    if key_type == "ssh-rsa":
        exponent, modulus = reader.mpint("RSA exponent"), reader.mpint("RSA modulus")
        if exponent < 3 or exponent % 2 == 0:
            raise SshKeyError(f"has an unusable RSA exponent ({exponent})")
        bits = modulus.bit_length()
        if bits < RSA_MIN_BITS:
            raise SshKeyError(f"is an RSA key of {bits} bits: at least {RSA_MIN_BITS} are "
                              "needed (make one with ssh-keygen -t ed25519)")
        return bits
    curve = key_type.removeprefix("ecdsa-sha2-")
    named = reader.string("curve name")
    if named != curve.encode():
        raise SshKeyError(f"names the curve {named.decode('ascii', 'replace')!r} "
                          f"inside a {key_type} key")
    bits, point_length = _CURVES[curve]
    point = reader.string("public point")
    if len(point) != point_length or point[0] != 4:
        raise SshKeyError(f"has a {curve} public point that is not an uncompressed "
                          f"{point_length}-byte point")
    return bits


def parse_public_key(line: str) -> SshPublicKey:
    """One key as `ssh-keygen` writes it: `TYPE BASE64 [comment]`; raises SshKeyError."""
    if len(line) > MAX_LINE:
        raise SshKeyError(f"is {len(line)} characters long: a public key is at most {MAX_LINE}")
    if _CONTROL.search(line):
        raise SshKeyError("must be a single line without control characters")
    parts = line.strip().split(None, 2)
    if not parts:
        raise SshKeyError("is empty")
    key_type = parts[0]
    if key_type not in KEY_TYPES:
        if any(t in line for t in KEY_TYPES):
            reason = ("must start with the key type: options before it (such as "
                             "command=...) are not supported")
        elif "PRIVATE KEY" in line:
            reason = "is a private key: paste the public key (the .pub file) only"
        else:
            reason = (f"must start with one of the key types {', '.join(KEY_TYPES)}, "
                             f"got {key_type[:40]!r}")
        raise SshKeyError(reason)
    if len(parts) < 2:
        raise SshKeyError(f"has the type {key_type} but no key data after it")
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        raise SshKeyError("has key data that is not valid base64 (cut short or "
                          "mistyped?)") from None
    reader = _Reader(blob)
    inner = reader.string("type")
    if inner != key_type.encode():
        raise SshKeyError(f"says {key_type} but its data holds a "
                          f"{inner.decode('ascii', 'replace')[:40]!r} key")
    bits = _material_bits(key_type, reader)
    reader.end()
    return SshPublicKey(key_type, bits, blob, parts[2].strip() if len(parts) > 2 else "")
