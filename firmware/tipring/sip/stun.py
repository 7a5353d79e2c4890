"""STUN Binding keep-alives on the SIP UDP flow (RFC 5389, as RFC 5626 4.4.2 uses them).

An outbound (RFC 5626) UA keeps a UDP flow alive with STUN Binding requests sent to the SIP
port of the server it registered with. The answer proves the flow still works and carries
the address the server sees us at: when that changes, a NAT has moved our mapping and the
registration has to be refreshed over the new one. Only what a keep-alive needs is here:
build a Binding request, recognise STUN on a SIP socket, read a Binding success response's
(XOR-)MAPPED-ADDRESS. Pure: no sockets, no clock.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

MAGIC_COOKIE = 0x2112A442
BINDING_REQUEST = 0x0001
BINDING_SUCCESS = 0x0101
MAPPED_ADDRESS = 0x0001
XOR_MAPPED_ADDRESS = 0x0020
HEADER = struct.Struct("!HHI12s")


@dataclass(frozen=True)
class BindingResponse:
    transaction_id: bytes
    mapped: tuple[str, int] | None  # the address the server saw us at, when it said


def binding_request(transaction_id: bytes) -> bytes:
    """A Binding request without attributes (20 bytes)."""
    if len(transaction_id) != 12:
        raise ValueError("a STUN transaction ID is 12 bytes")
    return HEADER.pack(BINDING_REQUEST, 0, MAGIC_COOKIE, transaction_id)


def is_stun(data: bytes) -> bool:
    """RFC 5389 6/7.3: the first two bits are zero and the magic cookie is in place, which
    no SIP message (it starts with a letter) can look like."""
    return len(data) >= 20 and data[0] < 0x40 and \
        struct.unpack_from("!I", data, 4)[0] == MAGIC_COOKIE


def parse_binding_response(data: bytes) -> BindingResponse | None:
    """A Binding success response, or None for anything else (or anything malformed)."""
    if not is_stun(data):
        return None
    kind, length, _, transaction_id = HEADER.unpack_from(data)
    if kind != BINDING_SUCCESS or length % 4 or 20 + length > len(data):
        return None
    mapped = plain = None
    offset, end = 20, 20 + length
    while offset + 4 <= end:
        attribute, size = struct.unpack_from("!HH", data, offset)
        value = data[offset + 4:offset + 4 + size]
        if len(value) < size:
            return None
        if attribute == XOR_MAPPED_ADDRESS:
            mapped = _address(value, transaction_id, xor=True)
        elif attribute == MAPPED_ADDRESS:
            plain = _address(value, transaction_id, xor=False)
        offset += 4 + size + (-size % 4)  # attributes are padded to 4 bytes
    return BindingResponse(transaction_id, mapped or plain)


def _address(value: bytes, transaction_id: bytes, *, xor: bool) -> tuple[str, int] | None:
    if len(value) < 8:
        return None
    family, port = value[1], struct.unpack_from("!H", value, 2)[0]
    raw = value[4:]
    if family == 0x01 and len(raw) >= 4:
        raw = raw[:4]
    elif family == 0x02 and len(raw) >= 16:
        raw = raw[:16]
    else:
        return None
    if xor:
        port ^= MAGIC_COOKIE >> 16
        key = struct.pack("!I", MAGIC_COOKIE) + transaction_id
        raw = bytes(a ^ b for a, b in zip(raw, key, strict=False))
    return str(ipaddress.ip_address(raw)), port
