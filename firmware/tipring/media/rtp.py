"""RTP packets (RFC 3550 section 5) as plain data: parse from bytes, serialize to bytes.

Nothing here keeps state or touches sockets; the media thread parses what arrives and the session
builds what it sends. Anything malformed raises `RtpError`, which the caller counts and drops: a
packet from the network must never raise anything else.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

RTP_VERSION = 2
HEADER = struct.Struct("!BBHII")  # V/P/X/CC, M/PT, sequence, timestamp, SSRC


class RtpError(ValueError):
    """A datagram that is not a well-formed RTP packet; the reason says what is wrong."""


@dataclass(frozen=True)
class RtpPacket:
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrc: tuple[int, ...] = ()
    extension: tuple[int, bytes] | None = None  # (profile-defined id, data: a multiple of 4 bytes)
    padding: int = 0  # padding octets to add (sending) or that were removed (received)

    def serialize(self) -> bytes:
        if len(self.csrc) > 15:
            raise RtpError(f"{len(self.csrc)} CSRCs, at most 15 fit")
        if not 0 <= self.padding <= 255:
            raise RtpError(f"padding {self.padding} is outside 0..255")
        first = (RTP_VERSION << 6) | (0x20 if self.padding else 0) | len(self.csrc)
        if self.extension is not None:
            first |= 0x10
        out = bytearray(pack_header(first, self.payload_type, self.sequence, self.timestamp,
                                    self.ssrc, self.marker))
        for c in self.csrc:
            out += struct.pack("!I", c & 0xFFFFFFFF)
        if self.extension is not None:
            ident, data = self.extension
            if len(data) % 4:
                raise RtpError(f"header extension of {len(data)} bytes is not a multiple of 4")
            out += struct.pack("!HH", ident & 0xFFFF, len(data) // 4) + data
        out += self.payload
        if self.padding:
            out += bytes(self.padding - 1) + bytes([self.padding])
        return bytes(out)


def pack_header(first: int, payload_type: int, sequence: int, timestamp: int, ssrc: int,
                marker: bool = False) -> bytes:
    """The fixed 12 bytes; `first` is the V/P/X/CC byte (0x80: version 2 and nothing after the
    header, which is every packet we send, so the session calls this directly)."""
    if not 0 <= payload_type <= 127:
        raise RtpError(f"payload type {payload_type} is outside 0..127")
    return HEADER.pack(first, (0x80 if marker else 0) | payload_type, sequence & 0xFFFF,
                       timestamp & 0xFFFFFFFF, ssrc & 0xFFFFFFFF)


def parse_rtp(data: bytes) -> RtpPacket:
    """Parse one RTP packet; raises RtpError with the reason for anything malformed."""
    if len(data) < HEADER.size:
        raise RtpError(f"{len(data)} bytes is shorter than the 12-byte RTP header")
    first, second, sequence, timestamp, ssrc = HEADER.unpack_from(data)
    if first == 0x80 and not 72 <= second & 0x7F <= 76:
        # Version 2 and nothing after the fixed header: nearly every packet, so the short way.
        return RtpPacket(second & 0x7F, sequence, timestamp, ssrc, bytes(data[HEADER.size:]),
                         bool(second & 0x80))
    if first >> 6 != RTP_VERSION:
        raise RtpError(f"RTP version {first >> 6}, expected 2")
    if 72 <= second & 0x7F <= 76:
        # RFC 5761: these values would collide with RTCP packet types 200-204 when muxed.
        raise RtpError(f"payload type {second & 0x7F} looks like RTCP (RFC 5761)")
    end = len(data)
    padding = 0
    if first & 0x20:
        padding = data[-1]
        if padding == 0 or HEADER.size + padding > end:
            raise RtpError(f"padding count {padding} does not fit the packet")
        end -= padding
    at = HEADER.size
    count = first & 0x0F
    if at + 4 * count > end:
        raise RtpError(f"{count} CSRCs do not fit in {end} bytes")
    csrc = struct.unpack_from(f"!{count}I", data, at)
    at += 4 * count
    extension = None
    if first & 0x10:
        if at + 4 > end:
            raise RtpError("header extension flag set but no extension header")
        ident, words = struct.unpack_from("!HH", data, at)
        at += 4
        if at + 4 * words > end:
            raise RtpError(f"header extension of {words} words does not fit")
        extension = (ident, bytes(data[at : at + 4 * words]))
        at += 4 * words
    return RtpPacket(
        payload_type=second & 0x7F,
        sequence=sequence,
        timestamp=timestamp,
        ssrc=ssrc,
        payload=bytes(data[at:end]),
        marker=bool(second & 0x80),
        csrc=tuple(csrc),
        extension=extension,
        padding=padding,
    )


def looks_like_rtcp(data: bytes) -> bool:
    """RFC 5761 section 4: with RTP and RTCP on one port, packet types 192-223 are RTCP."""
    return len(data) >= 2 and data[0] >> 6 == RTP_VERSION and 192 <= data[1] <= 223
