"""One RTP session of a call: what we send, the one source we receive, and its RTCP.

Pure: the media thread hands in datagrams with their source address and the monotonic time, and
sends what comes back. Decisions that matter for security and NAT live here:
- symmetric RTP: we send to where the peer's RTP comes from once we latch onto it, and the
  runtime sends from the port we receive on;
- latching is restricted by default to the IP address the SDP named (a NAT may change the port,
  but RTP from another host is someone else's and is dropped); `latch="any"` opens it for
  peers behind address-rewriting NATs, `latch="off"` never moves;
- every malformed, unexpected or foreign packet is counted by reason and dropped, never raised.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

from tipring.media import rtcp
from tipring.media.reception import ReceptionStats
from tipring.media.rtp import RtpError, RtpPacket, pack_header, parse_rtp

COMFORT_NOISE = 13  # RFC 3389 payload type
RTCP_INTERVAL = 5.0  # seconds, randomized by [0.5, 1.5] (RFC 3550 6.2 and 6.3.1)

Address = tuple[str, int]
Latch = Literal["sdp-address", "any", "off"]


@dataclass(frozen=True)
class StreamConfig:
    payload_type: int  # the negotiated codec (0 PCMU, 8 PCMA)
    remote: Address  # RTP address and port from the remote SDP
    remote_rtcp: Address | None = None  # default: the RTP port + 1
    event_payload_type: int | None = None  # RFC 4733 telephone-event, when negotiated
    clock_rate: int = 8000
    cname: str = "tipring"
    latch: Latch = "sdp-address"


@dataclass
class StreamStats:
    sent_packets: int = 0
    sent_octets: int = 0
    received_packets: int = 0
    ssrc_changes: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    round_trip_time: float | None = None  # seconds, from the peer's report blocks
    remote_fraction_lost: float | None = None  # what the peer says it lost of ours, 0..1
    remote_jitter_ms: float | None = None


class RtpStream:
    def __init__(self, config: StreamConfig, rng: random.Random | None = None) -> None:
        rng = rng or random.SystemRandom()
        self.config = config
        self.ssrc = rng.getrandbits(32)  # RFC 3550 5.1: random SSRC, sequence and timestamp
        self.sequence = rng.getrandbits(16)
        self.timestamp = rng.getrandbits(32)
        self.destination: Address = config.remote
        self.latched = False
        self.remote_ssrc: int | None = None
        self.reception = ReceptionStats(clock_rate=config.clock_rate)
        self.stats = StreamStats()
        self.remote_bye = False
        self._rng = rng
        self._sent_since_report = False
        self._last_sr: tuple[int, float] | None = None  # (middle 32 bits of its NTP time, when)
        self._next_report: float | None = None
        allowed = {config.payload_type, COMFORT_NOISE}
        if config.event_payload_type is not None:
            allowed.add(config.event_payload_type)
        self._allowed_types = frozenset(allowed)

    @property
    def rtcp_destination(self) -> Address:
        if self.config.remote_rtcp is not None and not self.latched:
            return self.config.remote_rtcp
        host, port = self.destination
        return (host, port + 1)

    # --- sending -------------------------------------------------------------------------------

    def outgoing(self, payload: bytes, samples: int = 160, marker: bool = False,
                 payload_type: int | None = None, timestamp: int | None = None) -> bytes:
        """Build the next packet. Audio advances the timestamp by `samples`; telephone-events
        pass their own (fixed) `timestamp` and do not advance it."""
        # Every packet we send has the plain 12-byte header: packed directly, without an
        # RtpPacket, as this runs for every packet of every call.
        header = pack_header(0x80,
                             self.config.payload_type if payload_type is None else payload_type,
                             self.sequence, self.timestamp if timestamp is None else timestamp,
                             self.ssrc, marker)
        self.sequence = (self.sequence + 1) & 0xFFFF
        if timestamp is None:
            self.timestamp = (self.timestamp + samples) & 0xFFFFFFFF
        stats = self.stats
        stats.sent_packets += 1
        stats.sent_octets += len(payload)
        self._sent_since_report = True
        return header + payload

    def skip(self, samples: int) -> None:
        """Advance the timestamp for audio not sent (silence suppression, hold)."""
        self.timestamp = (self.timestamp + samples) & 0xFFFFFFFF

    # --- receiving -----------------------------------------------------------------------------

    def incoming(self, data: bytes, source: Address, now: float) -> RtpPacket | None:
        """A received datagram: the packet to play, or None (counted by reason)."""
        try:
            packet = parse_rtp(data)
        except RtpError:
            self.stats.dropped["malformed"] += 1
            return None
        if not self._source_allowed(source):
            self.stats.dropped["foreign source"] += 1
            return None
        if packet.payload_type not in self._allowed_types:
            self.stats.dropped["unexpected payload type"] += 1
            return None
        if self.remote_ssrc is None:
            self.remote_ssrc = packet.ssrc
        elif packet.ssrc != self.remote_ssrc:
            # A new SSRC from the allowed peer (e.g. a PBX switching sources on transfer) is
            # taken as it comes: the jitter buffer resets on it; statistics restart with it.
            self.remote_ssrc = packet.ssrc
            self.reception = ReceptionStats(clock_rate=self.config.clock_rate)
            self.stats.ssrc_changes += 1
        self.reception.update(packet.sequence, packet.timestamp, now)
        self.stats.received_packets += 1
        return packet

    def _source_allowed(self, source: Address) -> bool:
        if source == self.destination:
            return True
        if self.config.latch == "off" or self.latched:
            return False
        if self.config.latch == "sdp-address" and source[0] != self.config.remote[0]:
            return False
        self.destination = source  # latch: send where the peer really is (NAT)
        self.latched = True
        return True

    # --- RTCP ----------------------------------------------------------------------------------

    def next_report_time(self, now: float) -> float:
        if self._next_report is None:
            self._next_report = now + RTCP_INTERVAL * self._rng.uniform(0.5, 1.5) / 2
        return self._next_report

    def report(self, now: float, wall: float, bye: bool = False) -> bytes:
        """Our compound RTCP: SR if we sent since the last one, else RR; SDES CNAME; BYE."""
        self._next_report = now + RTCP_INTERVAL * self._rng.uniform(0.5, 1.5)
        blocks: tuple[rtcp.ReportBlock, ...] = ()
        if self.remote_ssrc is not None and self.reception.received:
            lsr, dlsr = 0, 0
            if self._last_sr is not None:
                lsr = self._last_sr[0]
                dlsr = int((now - self._last_sr[1]) * 65536)
            blocks = (self.reception.report_block(self.remote_ssrc, lsr, dlsr),)
        first: rtcp.RtcpPacket
        if self._sent_since_report:
            first = rtcp.SenderReport(self.ssrc, rtcp.ntp_timestamp(wall), self.timestamp,
                                      self.stats.sent_packets, self.stats.sent_octets, blocks)
        else:
            first = rtcp.ReceiverReport(self.ssrc, blocks)
        self._sent_since_report = False
        packets: list[rtcp.RtcpPacket] = [
            first,
            rtcp.SourceDescription(((self.ssrc, ((rtcp.SDES_CNAME, self.config.cname.encode()),)),)),
        ]
        if bye:
            packets.append(rtcp.Goodbye((self.ssrc,)))
        return rtcp.serialize_compound(packets)

    def incoming_rtcp(self, data: bytes, source: Address, now: float, wall: float) -> None:
        try:
            packets = rtcp.parse_compound(data)
        except rtcp.RtcpError:
            self.stats.dropped["malformed rtcp"] += 1
            return
        if source[0] != self.destination[0]:
            self.stats.dropped["foreign rtcp"] += 1
            return
        for packet in packets:
            if isinstance(packet, rtcp.SenderReport):
                self._last_sr = (rtcp.middle32(packet.ntp_timestamp), now)
            if isinstance(packet, rtcp.SenderReport | rtcp.ReceiverReport):
                for block in packet.reports:
                    if block.ssrc == self.ssrc:
                        self.stats.round_trip_time = rtcp.round_trip_time(
                            rtcp.ntp_timestamp(wall), block)
                        self.stats.remote_fraction_lost = block.fraction_lost / 256
                        self.stats.remote_jitter_ms = block.jitter * 1000 / self.config.clock_rate
            if isinstance(packet, rtcp.Goodbye) and self.remote_ssrc in packet.ssrcs:
                self.remote_bye = True
