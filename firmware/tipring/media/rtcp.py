"""RTCP packets (RFC 3550 section 6): SR, RR, SDES, BYE as plain data, compound parse/serialize.

The report blocks carry what call statistics are made of (loss, cumulative loss, jitter, and the
LSR/DLSR pair from which the round-trip time follows); `round_trip_time` does that arithmetic.
Malformed input raises `RtcpError` only.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

SR, RR, SDES, BYE, APP = 200, 201, 202, 203, 204
SDES_CNAME = 1
NTP_UNIX_OFFSET = 2_208_988_800  # seconds from 1900-01-01 to 1970-01-01


class RtcpError(ValueError):
    """A datagram that is not a well-formed (compound) RTCP packet."""


@dataclass(frozen=True)
class ReportBlock:
    ssrc: int
    fraction_lost: int  # 0..255: lost / expected since the last report, in 1/256
    cumulative_lost: int  # signed 24 bits: duplicates can make it negative
    highest_sequence: int  # extended: cycles << 16 | highest sequence number
    jitter: int  # interarrival jitter, timestamp units
    lsr: int = 0  # middle 32 bits of the NTP time of the last SR from this source
    dlsr: int = 0  # delay since that SR, 1/65536 s

    def serialize(self) -> bytes:
        lost = self.cumulative_lost & 0xFFFFFF
        return struct.pack("!IIIIII", self.ssrc, (self.fraction_lost & 0xFF) << 24 | lost,
                           self.highest_sequence & 0xFFFFFFFF, self.jitter & 0xFFFFFFFF,
                           self.lsr & 0xFFFFFFFF, self.dlsr & 0xFFFFFFFF)


@dataclass(frozen=True)
class SenderReport:
    ssrc: int
    ntp_timestamp: int  # 64-bit NTP time of this report
    rtp_timestamp: int  # the same instant on the RTP clock
    packet_count: int
    octet_count: int
    reports: tuple[ReportBlock, ...] = ()


@dataclass(frozen=True)
class ReceiverReport:
    ssrc: int
    reports: tuple[ReportBlock, ...] = ()


@dataclass(frozen=True)
class SourceDescription:
    chunks: tuple[tuple[int, tuple[tuple[int, bytes], ...]], ...]  # (ssrc, ((item type, text),))

    def cname(self, ssrc: int) -> bytes | None:
        for owner, items in self.chunks:
            if owner == ssrc:
                for kind, text in items:
                    if kind == SDES_CNAME:
                        return text
        return None


@dataclass(frozen=True)
class Goodbye:
    ssrcs: tuple[int, ...]
    reason: bytes = b""


@dataclass(frozen=True)
class OtherRtcp:
    """A packet type this endpoint does not act on (APP, feedback...), kept as it came."""

    packet_type: int
    count: int
    body: bytes


RtcpPacket = SenderReport | ReceiverReport | SourceDescription | Goodbye | OtherRtcp


def _frame(packet_type: int, count: int, body: bytes) -> bytes:
    if len(body) % 4:
        body += bytes(4 - len(body) % 4)
    return struct.pack("!BBH", 0x80 | count, packet_type, len(body) // 4) + body


def serialize(packet: RtcpPacket) -> bytes:
    if isinstance(packet, SenderReport):
        body = struct.pack("!IQIII", packet.ssrc, packet.ntp_timestamp, packet.rtp_timestamp,
                           packet.packet_count, packet.octet_count)
        return _frame(SR, len(packet.reports),
                      body + b"".join(r.serialize() for r in packet.reports))
    if isinstance(packet, ReceiverReport):
        return _frame(RR, len(packet.reports),
                      struct.pack("!I", packet.ssrc) + b"".join(r.serialize() for r in packet.reports))
    if isinstance(packet, SourceDescription):
        body = bytearray()
        for ssrc, items in packet.chunks:
            chunk = bytearray(struct.pack("!I", ssrc))
            for kind, text in items:
                if len(text) > 255:
                    raise RtcpError(f"SDES item of {len(text)} bytes, at most 255 fit")
                chunk += bytes([kind, len(text)]) + text
            chunk += bytes(4 - len(chunk) % 4)  # the null item, then pad to a word
            body += chunk
        return _frame(SDES, len(packet.chunks), bytes(body))
    if isinstance(packet, Goodbye):
        body = b"".join(struct.pack("!I", s) for s in packet.ssrcs)
        if packet.reason:
            body += bytes([len(packet.reason)]) + packet.reason
        return _frame(BYE, len(packet.ssrcs), body)
    return _frame(packet.packet_type, packet.count, packet.body)


def serialize_compound(packets: list[RtcpPacket]) -> bytes:
    return b"".join(serialize(p) for p in packets)


def _report_blocks(body: bytes, at: int, count: int) -> tuple[ReportBlock, ...]:
    if at + 24 * count > len(body):
        raise RtcpError(f"{count} report blocks do not fit")
    blocks = []
    for i in range(count):
        ssrc, lost_word, highest, jitter, lsr, dlsr = struct.unpack_from("!IIIIII", body, at + 24 * i)
        cumulative = lost_word & 0xFFFFFF
        if cumulative & 0x800000:
            cumulative -= 1 << 24
        blocks.append(ReportBlock(ssrc, lost_word >> 24, cumulative, highest, jitter, lsr, dlsr))
    return tuple(blocks)


def _parse_one(packet_type: int, count: int, body: bytes) -> RtcpPacket:
    if packet_type == SR:
        if len(body) < 24:
            raise RtcpError("sender report shorter than its sender info")
        ssrc, ntp, rtp_ts, packets, octets = struct.unpack_from("!IQIII", body)
        return SenderReport(ssrc, ntp, rtp_ts, packets, octets, _report_blocks(body, 24, count))
    if packet_type == RR:
        if len(body) < 4:
            raise RtcpError("receiver report without its SSRC")
        return ReceiverReport(struct.unpack_from("!I", body)[0], _report_blocks(body, 4, count))
    if packet_type == SDES:
        chunks, at = [], 0
        for _ in range(count):
            if at + 4 > len(body):
                raise RtcpError("SDES chunk cut short")
            ssrc = struct.unpack_from("!I", body, at)[0]
            at += 4
            items = []
            while True:
                if at >= len(body):
                    raise RtcpError("SDES chunk without its terminating null item")
                kind = body[at]
                if kind == 0:
                    at = (at + 4) & ~3  # skip the null item and the padding to the next word
                    break
                if at + 2 > len(body) or at + 2 + body[at + 1] > len(body):
                    raise RtcpError("SDES item cut short")
                items.append((kind, bytes(body[at + 2 : at + 2 + body[at + 1]])))
                at += 2 + body[at + 1]
            chunks.append((ssrc, tuple(items)))
        return SourceDescription(tuple(chunks))
    if packet_type == BYE:
        if 4 * count > len(body):
            raise RtcpError(f"BYE names {count} sources but holds fewer")
        ssrcs = struct.unpack_from(f"!{count}I", body)
        rest = body[4 * count :]
        reason = b""
        if rest:
            if 1 + rest[0] > len(rest):
                raise RtcpError("BYE reason cut short")
            reason = bytes(rest[1 : 1 + rest[0]])
        return Goodbye(tuple(ssrcs), reason)
    return OtherRtcp(packet_type, count, bytes(body))


def parse_compound(data: bytes) -> list[RtcpPacket]:
    """Parse a compound RTCP packet. RFC 3550 A.2: it must start with SR or RR, and its length
    fields must account for the datagram exactly."""
    packets: list[RtcpPacket] = []
    at = 0
    while at < len(data):
        if at + 4 > len(data):
            raise RtcpError("trailing bytes after the last RTCP packet")
        first, packet_type, words = struct.unpack_from("!BBH", data, at)
        if first >> 6 != 2:
            raise RtcpError(f"RTCP version {first >> 6}, expected 2")
        end = at + 4 + 4 * words
        if end > len(data):
            raise RtcpError(f"RTCP length {words} words runs past the datagram")
        body = data[at + 4 : end]
        if first & 0x20:
            if end != len(data):
                raise RtcpError("padding is only allowed on the last packet of a compound")
            if not body or body[-1] == 0 or body[-1] > len(body):
                raise RtcpError("bad RTCP padding count")
            body = body[: -body[-1]]
        if not packets and packet_type not in (SR, RR):
            raise RtcpError(f"a compound packet must start with SR or RR, not type {packet_type}")
        packets.append(_parse_one(packet_type, first & 0x1F, bytes(body)))
        at = end
    if not packets:
        raise RtcpError("empty RTCP datagram")
    return packets


def ntp_timestamp(unix_seconds: float) -> int:
    """64-bit NTP time (RFC 3550 4) for a wall-clock time given as Unix seconds."""
    whole = int(unix_seconds)
    fraction = int((unix_seconds - whole) * (1 << 32)) & 0xFFFFFFFF
    return ((whole + NTP_UNIX_OFFSET) & 0xFFFFFFFF) << 32 | fraction


def middle32(ntp: int) -> int:
    """The middle 32 bits of an NTP timestamp: the LSR field's unit (1/65536 s)."""
    return (ntp >> 16) & 0xFFFFFFFF


def round_trip_time(arrival_ntp: int, block: ReportBlock) -> float | None:
    """RFC 3550 6.4.1: RTT = A - LSR - DLSR, seconds; None when the peer has no SR of ours yet."""
    if block.lsr == 0:
        return None
    rtt = (middle32(arrival_ntp) - block.lsr - block.dlsr) & 0xFFFFFFFF
    if rtt & 0x80000000:  # negative: clocks or reports inconsistent
        return None
    return rtt / 65536
