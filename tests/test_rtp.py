"""RTP/RTCP wire formats (RFC 3550), reception statistics (appendix A) and RFC 4733 events."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tipring.media import rtcp
from tipring.media.reception import ReceptionStats
from tipring.media.rtp import RtpError, RtpPacket, looks_like_rtcp, parse_rtp
from tipring.media.telephone_event import (
    DigitEnded,
    DigitStarted,
    EventError,
    EventReceiver,
    EventSender,
    event_code,
    parse_event,
)

# --- RTP ---------------------------------------------------------------------------------------


def test_minimal_packet_layout_matches_rfc_3550_5_1() -> None:
    wire = RtpPacket(payload_type=0, sequence=0x1234, timestamp=0xDEADBEEF, ssrc=0x01020304,
                     payload=b"\xff" * 160, marker=True).serialize()
    assert wire[:12] == bytes.fromhex("80 80 1234 deadbeef 01020304".replace(" ", ""))
    assert len(wire) == 172


def test_csrc_extension_and_padding_round_trip() -> None:
    packet = RtpPacket(8, 65535, 1, 7, payload=b"abc", csrc=(1, 2, 3),
                       extension=(0xBEDE, b"\x10\x01\x00\x00"), padding=4)
    wire = packet.serialize()
    assert wire[0] == 0x80 | 0x20 | 0x10 | 3
    assert wire[-1] == 4
    assert parse_rtp(wire) == packet


@pytest.mark.parametrize("data,reason", [
    (b"\x80\x00\x00", "shorter than the 12-byte RTP header"),
    (bytes([0x40, 0]) + bytes(10), "RTP version 1"),
    (bytes([0x80, 72]) + bytes(10), "looks like RTCP"),
    (bytes([0x8F, 0]) + bytes(10), "15 CSRCs do not fit"),
    (bytes([0x90, 0]) + bytes(10), "no extension header"),
    (bytes([0x90, 0]) + bytes(10) + b"\x00\x00\x00\x05", "extension of 5 words"),
    (bytes([0xA0, 0]) + bytes(10) + b"\x00\x00\x00\x00", "padding count 0"),
    (bytes([0xA0, 0]) + bytes(10) + b"\x00\x00\x00\x09", "padding count 9"),
])
def test_malformed_rtp_is_refused_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(RtpError, match=reason):
        parse_rtp(data)


@given(st.builds(RtpPacket, payload_type=st.integers(0, 127).filter(lambda t: not 72 <= t <= 76),
                 sequence=st.integers(0, 0xFFFF), timestamp=st.integers(0, 0xFFFFFFFF),
                 ssrc=st.integers(0, 0xFFFFFFFF), payload=st.binary(max_size=64),
                 marker=st.booleans(), csrc=st.lists(st.integers(0, 0xFFFFFFFF), max_size=15)
                 .map(tuple), padding=st.integers(0, 32)))
def test_rtp_round_trip(packet: RtpPacket) -> None:
    assert parse_rtp(packet.serialize()) == packet


@settings(max_examples=500)
@given(st.binary(max_size=80))
def test_any_datagram_parses_or_raises_rtp_error(data: bytes) -> None:
    try:
        parse_rtp(data)
    except RtpError:
        pass


def test_rtcp_demultiplexing_rule() -> None:
    assert looks_like_rtcp(bytes([0x80, 200, 0, 6]))
    assert not looks_like_rtcp(bytes([0x80, 0x00, 0, 1]))  # PT 0 (PCMU)
    assert not looks_like_rtcp(bytes([0x80, 0x80 | 8, 0, 1]))  # PCMA with the marker bit


# --- RTCP --------------------------------------------------------------------------------------

BLOCK = rtcp.ReportBlock(ssrc=0xAABBCCDD, fraction_lost=64, cumulative_lost=-3,
                         highest_sequence=0x0001_0005, jitter=42, lsr=0xB7052030, dlsr=0x00054000)


def test_sender_report_size_and_fields() -> None:
    sr = rtcp.SenderReport(0x11223344, 0xE8F7_0000_8000_0000, 160_000, 100, 16_000, (BLOCK,))
    wire = rtcp.serialize(sr)
    # header 4 + sender info 24 + one report block 24 (RFC 3550 6.4.1); length = words - 1
    assert len(wire) == 52
    assert wire[:4] == bytes([0x81, 200, 0, 12])
    assert rtcp.parse_compound(wire) == [sr]


def test_compound_with_sdes_and_bye_round_trips() -> None:
    packets = [rtcp.ReceiverReport(5, (BLOCK,)),
               rtcp.SourceDescription(((5, ((rtcp.SDES_CNAME, b"tipring@192.0.2.1"),)),)),
               rtcp.Goodbye((5,), b"hang-up")]
    wire = rtcp.serialize_compound(packets)
    assert len(wire) % 4 == 0
    parsed = rtcp.parse_compound(wire)
    assert parsed == packets
    assert parsed[1].cname(5) == b"tipring@192.0.2.1"
    assert parsed[0].reports[0].cumulative_lost == -3


@pytest.mark.parametrize("data,reason", [
    (rtcp.serialize(rtcp.Goodbye((1,))), "must start with SR or RR"),
    (rtcp.serialize(rtcp.ReceiverReport(1))[:-1] + b"", "trailing bytes|runs past"),
    (bytes([0x80, 201, 0, 9]) + bytes(4), "runs past the datagram"),
    (bytes([0x40, 201, 0, 1]) + bytes(4), "RTCP version 1"),
    (bytes([0x81, 201, 0, 1]) + bytes(4), "1 report blocks do not fit"),
    (b"", "empty"),
])
def test_malformed_rtcp_is_refused(data: bytes, reason: str) -> None:
    with pytest.raises(rtcp.RtcpError, match=reason):
        rtcp.parse_compound(data)


def test_round_trip_time_example_of_rfc_3550_6_4_1() -> None:
    # A = 0xb710:8000 (46864.500 s), LSR = 0xb705:2030 (46853.125 s), DLSR = 0x0005:4000 (5.250 s)
    arrival = 0xB710_8000 << 16
    # The RFC rounds the decimals; exactly, 0x0006:1fd0 is 6.1243 s.
    assert rtcp.round_trip_time(arrival, BLOCK) == pytest.approx(6.125, abs=0.001)
    assert rtcp.round_trip_time(arrival, rtcp.ReportBlock(1, 0, 0, 0, 0)) is None


def test_ntp_timestamp_of_the_unix_epoch() -> None:
    assert rtcp.ntp_timestamp(0.5) == (2_208_988_800 << 32) | 0x8000_0000
    assert rtcp.middle32(rtcp.ntp_timestamp(0.5)) == ((2_208_988_800 & 0xFFFF) << 16) | 0x8000


# --- reception statistics ----------------------------------------------------------------------

def feed(stats: ReceptionStats, seqs: list[int], transit: float = 0.03) -> None:
    for i, seq in enumerate(seqs):
        stats.update(seq % 65536, (seq * 160) % (1 << 32), i * 0.02 + transit)


def test_losses_are_counted_across_a_sequence_wrap() -> None:
    stats = ReceptionStats()
    seqs = [s for s in range(65500, 65500 + 200) if s % 50 != 7]  # 4 lost, crossing 65535 -> 0
    feed(stats, seqs)
    assert stats.cycles == 65536
    assert stats.expected == 199  # the first packet is spent on probation
    assert stats.cumulative_lost == 4
    block = stats.report_block(1)
    assert block.highest_sequence == 65536 + (65500 + 199) % 65536
    assert block.fraction_lost == (4 * 256) // 199
    assert stats.report_block(1).fraction_lost == 0  # nothing new lost since the last report


def test_duplicates_can_make_cumulative_loss_negative() -> None:
    stats = ReceptionStats()
    feed(stats, [1, 2, 3, 3, 3, 4])
    assert stats.cumulative_lost == -2


def test_a_new_sender_sequence_is_accepted_after_two_packets() -> None:
    stats = ReceptionStats()
    feed(stats, list(range(100, 120)))
    assert not stats.update(40_000, 0, 1.0)  # a jump: not believed yet
    assert stats.update(40_001, 160, 1.02)  # confirmed: the source restarted
    assert stats.base_seq == 40_001 and stats.received == 1


def test_jitter_is_zero_for_steady_arrivals_and_tracks_alternating_delay() -> None:
    steady = ReceptionStats()
    feed(steady, list(range(1, 200)))
    assert steady.jitter == 0
    alternating = ReceptionStats()
    for i in range(400):
        alternating.update(i + 1, (i + 1) * 160, i * 0.02 + (0.01 if i % 2 else 0.0))
    # |D| is 10 ms = 80 timestamp units every time, so J converges to 80.
    assert alternating.jitter == pytest.approx(80, abs=0.5)


# --- RFC 4733 telephone-events ------------------------------------------------------------------

def test_event_payload_layout() -> None:
    sender = EventSender(period=160, volume=10)
    sender.start("#", timestamp=8000)
    (first,) = sender.tick()
    assert first.marker and first.timestamp == 8000
    assert first.payload == bytes([11, 10, 0, 160])  # '#' = 11, E=0, volume 10, duration 160


def test_sender_durations_and_three_end_packets() -> None:
    sender = EventSender(period=160)
    sender.start("5", timestamp=1000, min_duration=320)
    packets = [p for _ in range(4) for p in sender.tick()]
    sender.stop()
    while sender.active:
        packets += sender.tick()
    parsed = [parse_event(p.payload) for p in packets]
    assert {p.timestamp for p in packets} == {1000}
    assert [p.marker for p in packets] == [True] + [False] * 6
    assert [e.duration for e in parsed] == [160, 320, 480, 640, 640, 640, 640]
    assert [e.end for e in parsed] == [False] * 4 + [True] * 3
    assert {e.event for e in parsed} == {5}


def test_minimum_duration_is_kept_when_the_key_is_released_at_once() -> None:
    sender = EventSender(period=160)
    sender.start("1", timestamp=0, min_duration=640)
    sender.stop()
    packets = []
    while sender.active:
        packets += sender.tick()
    assert [parse_event(p.payload).duration for p in packets] == [160, 320, 480, 640, 640, 640, 640]


def test_long_event_is_cut_into_segments() -> None:
    sender = EventSender(period=160)
    sender.start("flash", timestamp=100)
    packets = [p for _ in range(420) for p in sender.tick()]  # 420 * 160 > 65535
    starts = sorted({p.timestamp for p in packets})
    assert starts == [100, 100 + 409 * 160]
    boundary = [parse_event(p.payload).duration for p in packets if p.timestamp == 100]
    assert max(boundary) == 409 * 160 <= 0xFFFF
    assert sum(p.marker for p in packets) == 1


def test_receiver_dedupes_and_reports_one_digit() -> None:
    sender = EventSender(period=160)
    sender.start("9", timestamp=5000)
    packets = [p for _ in range(5) for p in sender.tick()]
    sender.stop()
    while sender.active:
        packets += sender.tick()
    receiver = EventReceiver()
    events = []
    for n, p in enumerate(packets + packets[-2:]):  # plus retransmitted ends arriving late
        events += receiver.receive(p.timestamp, p.payload, now=n * 0.02)
    assert events == [DigitStarted("9", 5000), DigitEnded("9", 5000, 800)]


def test_receiver_ends_a_digit_whose_end_packets_were_lost() -> None:
    receiver = EventReceiver(timeout=0.25)
    payload = struct.pack("!BBH", 3, 10, 480)
    assert receiver.receive(777, payload, now=1.0) == [DigitStarted("3", 777)]
    assert receiver.poll(1.2) == []
    assert receiver.poll(1.3) == [DigitEnded("3", 777, 480)]


def test_a_new_event_ends_the_previous_one() -> None:
    receiver = EventReceiver()
    receiver.receive(100, struct.pack("!BBH", 1, 10, 160), now=0.0)
    events = receiver.receive(900, struct.pack("!BBH", 2, 10, 160), now=0.1)
    assert events == [DigitEnded("1", 100, 160), DigitStarted("2", 900)]


def test_bad_events() -> None:
    with pytest.raises(EventError):
        parse_event(b"\x01\x02")
    with pytest.raises(EventError):
        event_code("E")
    assert event_code("flash") == 16 and event_code("*") == 10 and event_code("d") == 15
