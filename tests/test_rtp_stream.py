"""The RTP session of a call: sending, latching (NAT) with its security default, RTCP and RTT."""

from __future__ import annotations

import random

import pytest

from tipring.media import rtcp
from tipring.media.rtp import RtpPacket, parse_rtp
from tipring.media.stream import RtpStream, StreamConfig

PEER = ("192.0.2.10", 40000)


def stream(latch: str = "sdp-address", seed: int = 1, **kw: object) -> RtpStream:
    return RtpStream(StreamConfig(payload_type=0, remote=PEER, event_payload_type=101,
                                  latch=latch, **kw), rng=random.Random(seed))  # type: ignore[arg-type]


def rtp(pt: int = 0, seq: int = 1, ts: int = 160, ssrc: int = 0x1234) -> bytes:
    return RtpPacket(pt, seq, ts, ssrc, payload=bytes(160)).serialize()


def test_outgoing_sequence_and_timestamp() -> None:
    s = stream()
    s.sequence, s.timestamp = 0xFFFF, 0xFFFFFFF0
    first = parse_rtp(s.outgoing(b"\xff" * 160, marker=True))
    second = parse_rtp(s.outgoing(b"\xff" * 160))
    event = parse_rtp(s.outgoing(b"\x05\x0a\x00\xa0", payload_type=101, timestamp=1234))
    third = parse_rtp(s.outgoing(b"\xff" * 160))
    assert [first.sequence, second.sequence, event.sequence, third.sequence] == [0xFFFF, 0, 1, 2]
    assert second.timestamp == (first.timestamp + 160) & 0xFFFFFFFF == 0x90  # wrapped
    assert event.timestamp == 1234 and event.payload_type == 101
    assert third.timestamp == second.timestamp + 160  # the event did not move the clock
    assert first.marker and not second.marker
    assert {first.ssrc, second.ssrc} == {s.ssrc}
    assert s.stats.sent_packets == 4


def test_ssrc_sequence_and_timestamp_start_at_random() -> None:
    a, b = stream(seed=1), stream(seed=2)
    assert (a.ssrc, a.sequence, a.timestamp) != (b.ssrc, b.sequence, b.timestamp)


def test_packets_from_the_sdp_address_are_accepted() -> None:
    s = stream()
    packet = s.incoming(rtp(), PEER, now=1.0)
    assert packet is not None and packet.sequence == 1
    assert s.destination == PEER and not s.latched


def test_latches_to_a_nat_rewritten_port_of_the_sdp_host() -> None:
    s = stream()
    assert s.incoming(rtp(), ("192.0.2.10", 51000), now=1.0) is not None
    assert s.destination == ("192.0.2.10", 51000) and s.latched
    # Once latched, the stream stays: another port of the same host is refused.
    assert s.incoming(rtp(seq=2), ("192.0.2.10", 52000), now=1.02) is None
    assert s.stats.dropped["foreign source"] == 1


def test_rtp_from_another_host_is_dropped_by_default() -> None:
    s = stream()
    assert s.incoming(rtp(), ("198.51.100.7", 40000), now=1.0) is None
    assert s.destination == PEER
    assert s.stats.dropped["foreign source"] == 1


def test_any_host_may_be_latched_when_opened() -> None:
    s = stream(latch="any")
    assert s.incoming(rtp(), ("198.51.100.7", 40002), now=1.0) is not None
    assert s.destination == ("198.51.100.7", 40002)


def test_latching_off_never_moves() -> None:
    s = stream(latch="off")
    assert s.incoming(rtp(), ("192.0.2.10", 51000), now=1.0) is None
    assert s.destination == PEER


@pytest.mark.parametrize("data,reason", [
    (b"\x80\x00", "malformed"),
    (rtp(pt=18), "unexpected payload type"),
])
def test_bad_packets_are_counted_and_dropped(data: bytes, reason: str) -> None:
    s = stream()
    assert s.incoming(data, PEER, now=1.0) is None
    assert s.stats.dropped[reason] == 1


def test_comfort_noise_and_events_are_accepted() -> None:
    s = stream()
    assert s.incoming(rtp(pt=13), PEER, now=1.0) is not None
    assert s.incoming(rtp(pt=101, seq=2), PEER, now=1.0) is not None


def test_new_remote_ssrc_restarts_statistics() -> None:
    s = stream()
    for i in range(10):
        s.incoming(rtp(seq=i + 1, ts=160 * i), PEER, now=i * 0.02)
    s.incoming(rtp(seq=500, ts=0, ssrc=0x9999), PEER, now=0.3)
    assert s.remote_ssrc == 0x9999 and s.stats.ssrc_changes == 1
    assert s.reception.received == 0  # the new source is on probation


def test_reports_sr_after_sending_rr_otherwise_with_cname_and_bye() -> None:
    s = stream(cname="line1@tipring")
    s.incoming(rtp(seq=1), PEER, now=1.0)
    s.incoming(rtp(seq=2, ts=320), PEER, now=1.02)
    s.outgoing(bytes(160))
    sr, sdes = rtcp.parse_compound(s.report(now=2.0, wall=1_700_000_000.0))
    assert isinstance(sr, rtcp.SenderReport) and sr.packet_count == 1
    assert sdes.cname(s.ssrc) == b"line1@tipring"
    rr, _, bye = rtcp.parse_compound(s.report(now=7.0, wall=1_700_000_005.0, bye=True))
    assert isinstance(rr, rtcp.ReceiverReport) and rr.reports[0].ssrc == 0x1234
    assert isinstance(bye, rtcp.Goodbye) and bye.ssrcs == (s.ssrc,)


def test_report_interval_is_randomised_around_five_seconds() -> None:
    s = stream()
    times = []
    now = 0.0
    for _ in range(50):
        s.report(now=now, wall=now)
        nxt = s.next_report_time(now)
        times.append(nxt - now)
        now = nxt
    assert all(2.5 <= t <= 7.5 for t in times)
    assert max(times) - min(times) > 1.0


def test_round_trip_time_from_the_peers_report() -> None:
    a, b = stream(seed=1), stream(seed=2)
    b_peer = ("192.0.2.10", 40001)  # a's RTCP as b sees it comes from the same host
    a.outgoing(bytes(160))
    # a's SR leaves at wall 1000.0, takes 100 ms; b answers 0.5 s later; 100 ms back.
    sr = a.report(now=50.0, wall=1000.0)
    for i in range(3):  # past the RFC 3550 probation, so b has a report block about a
        b.incoming(rtp(seq=i + 1, ts=160 * i, ssrc=a.ssrc), PEER, now=10.06 + 0.02 * i)
    b.incoming_rtcp(sr, b_peer, now=10.1, wall=0.0)
    rr = b.report(now=10.6, wall=0.0)
    a.incoming_rtcp(rr, PEER, now=50.7, wall=1000.7)
    assert a.stats.round_trip_time == pytest.approx(0.2, abs=0.001)


def test_remote_bye_and_foreign_rtcp() -> None:
    s = stream()
    s.incoming(rtp(), PEER, now=1.0)
    bye = rtcp.serialize_compound([rtcp.ReceiverReport(0x1234), rtcp.Goodbye((0x1234,))])
    s.incoming_rtcp(bye, ("203.0.113.5", 40001), now=2.0, wall=2.0)
    assert not s.remote_bye and s.stats.dropped["foreign rtcp"] == 1
    s.incoming_rtcp(bye, ("192.0.2.10", 40001), now=2.0, wall=2.0)
    assert s.remote_bye
    s.incoming_rtcp(b"\x80\xc9", ("192.0.2.10", 40001), now=2.0, wall=2.0)
    assert s.stats.dropped["malformed rtcp"] == 1
