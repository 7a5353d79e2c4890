"""The E-model MOS estimate against ITU-T G.107's worked figures, the burst ratio against loss
patterns whose Gilbert parameters are known, and the X-RTP-Stat summary's format."""

from __future__ import annotations

import contextlib
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tipring.media.quality import (
    DEFAULT_R,
    FRAMING_MS,
    G711_BPL_NO_PLC,
    G711_BPL_PLC,
    LossBursts,
    delay_impairment,
    loss_impairment,
    mos_estimate,
    one_way_delay_ms,
    parse_rtp_stat,
    rating,
    rating_to_mos,
    rtp_stat_header,
)


def test_default_rating_is_mos_4_41() -> None:
    """G.107: all parameters at their defaults give R = 93.2, which Annex B makes MOS 4.41."""
    assert DEFAULT_R == 93.2
    assert round(rating_to_mos(DEFAULT_R), 2) == 4.41
    assert rating(0.0, 0.0) == DEFAULT_R


@pytest.mark.parametrize(("r", "mos"), [
    # G.109 Table 1: the lower limit of each user-satisfaction category.
    (90, 4.34), (80, 4.03), (70, 3.60), (60, 3.10), (50, 2.58),
])
def test_rating_to_mos_matches_g109_categories(r: float, mos: float) -> None:
    assert rating_to_mos(r) == pytest.approx(mos, abs=0.01)


def test_rating_to_mos_is_clamped() -> None:
    assert rating_to_mos(-5) == 1.0
    assert rating_to_mos(0) == 1.0
    assert rating_to_mos(100) == 4.5
    assert rating_to_mos(120) == 4.5


def test_delay_impairment_starts_above_100_ms() -> None:
    assert delay_impairment(0) == 0.0
    assert delay_impairment(100) == 0.0
    # X = log2(Ta/100): Ta = 200 ms is X = 1, 400 ms is X = 2 (worked by hand from 7.4).
    x1 = 25 * (2 ** (1 / 6) - 3 * (1 + (1 / 3) ** 6) ** (1 / 6) + 2)
    assert delay_impairment(200) == pytest.approx(x1)
    assert delay_impairment(200) == pytest.approx(3.04, abs=0.01)
    assert delay_impairment(400) == pytest.approx(24.07, abs=0.01)


def test_loss_impairment_for_g711() -> None:
    assert loss_impairment(0) == 0.0
    # Ie,eff = Ie + (95 - Ie) * Ppl / (Ppl / BurstR + Bpl), Ie = 0 for G.711.
    assert loss_impairment(2, 1.0) == pytest.approx(95 * 2 / (2 + 25.1))
    assert loss_impairment(2, 1.0, bpl=G711_BPL_NO_PLC) == pytest.approx(95 * 2 / (2 + 4.3))
    # Bursty loss hurts more than the same loss spread out.
    assert loss_impairment(5, 4.0) > loss_impairment(5, 1.0)
    # Nonsense inputs are bounded, never an exception.
    assert loss_impairment(-3) == 0.0
    assert loss_impairment(150, 0.2) == loss_impairment(100, 1.0)
    assert G711_BPL_PLC == 25.1


def test_one_way_delay_sums_network_buffer_and_framing() -> None:
    assert one_way_delay_ms(None, 40) == 40 + FRAMING_MS
    assert one_way_delay_ms(300, 60) == 150 + 60 + FRAMING_MS


def test_mos_estimate_of_a_clean_lan_call_is_the_default() -> None:
    assert mos_estimate(round_trip_ms=2, buffer_delay_ms=40, loss_percent=0) == 4.41


def test_mos_estimate_of_an_impaired_call() -> None:
    # 5 % random loss, 400 ms round trip, 60 ms buffer: Ta = 200 + 60 + 40 = 300 ms.
    r = DEFAULT_R - delay_impairment(300) - 95 * 5 / (5 + 25.1)
    expected = round(1 + 0.035 * r + r * (r - 60) * (100 - r) * 7e-6, 2)
    got = mos_estimate(round_trip_ms=400, buffer_delay_ms=60, loss_percent=5)
    assert got == expected
    assert 3.0 < got < 4.0
    assert mos_estimate(round_trip_ms=400, buffer_delay_ms=60, loss_percent=5,
                        concealment=False) < got


@given(st.floats(0, 30), st.floats(0, 30), st.floats(0, 800), st.floats(0, 800))
def test_mos_never_improves_with_more_loss_or_delay(loss_a: float, loss_b: float,
                                                     rtt_a: float, rtt_b: float) -> None:
    low, high = sorted((loss_a, loss_b))
    near, far = sorted((rtt_a, rtt_b))
    best = mos_estimate(round_trip_ms=near, buffer_delay_ms=40, loss_percent=low)
    assert mos_estimate(round_trip_ms=far, buffer_delay_ms=40, loss_percent=high) <= best
    assert 1.0 <= best <= 4.5


def feed(bursts: LossBursts, sequences: list[int]) -> None:
    for sequence in sequences:
        bursts.update(sequence & 0xFFFF)


def test_burst_ratio_of_random_loss_is_one() -> None:
    bursts = LossBursts()
    feed(bursts, [s for s in range(1000) if s % 50 != 7])  # 20 single losses
    assert (bursts.runs, bursts.lost, bursts.expected) == (20, 20, 1000)
    assert bursts.loss_percent == pytest.approx(2.0)
    assert bursts.burst_ratio == 1.0


def test_burst_ratio_of_one_long_burst() -> None:
    bursts = LossBursts()
    feed(bursts, [s for s in range(1000) if not 500 <= s < 510])
    # p = 1 run / 990 received, q = 1 / 10 packets per run: BurstR = 1 / (p + q).
    assert bursts.burst_ratio == pytest.approx(1 / (1 / 990 + 0.1))


def test_late_packets_fill_their_place_and_duplicates_change_nothing() -> None:
    """Unlike RFC 3550's cumulative loss, a duplicate does not cancel a loss."""
    bursts = LossBursts()
    start = 0xFFF0  # across the 16-bit wrap
    sequences = [start + s for s in range(40) if s not in (20, 21, 22, 30)]
    sequences[10:10] = [start + 9, start + 9]  # duplicates
    sequences.append(start + 21)  # the middle of the run of three comes late: it splits
    feed(bursts, sequences)
    assert (bursts.lost, bursts.runs, bursts.received) == (3, 3, 37)
    assert bursts.highest == start + 39 and bursts.expected == 40
    feed(bursts, [start + 20, start + 22, start + 30])  # the rest come late: no loss left
    assert (bursts.lost, bursts.runs, bursts.burst_ratio) == (0, 0, 1.0)
    feed(bursts, [start + 20])  # a late duplicate
    assert (bursts.lost, bursts.received) == (0, 40)


def test_loss_window_stays_bounded() -> None:
    bursts = LossBursts()
    feed(bursts, [s for s in range(0, 200_000, 2)])  # every other packet lost
    assert bursts.lost == 99_999
    assert len(bursts.missing) <= LossBursts.WINDOW + 1


def test_x_rtp_stat_header_fields() -> None:
    figures = {"sent_packets": 1500, "sent_octets": 240000, "received_packets": 1490,
               "received_octets": 238400, "lost_packets": 10, "jitter_ms": 2.6,
               "buffer_delay_ms": 40.0, "round_trip_ms": 20.0, "late_packets": 3,
               "duplicate_packets": 2, "mos": 4.3}
    value = rtp_stat_header(figures, duration_s=30.4, codec="PCMU")
    assert value == ("PS=1500;OS=240000;PR=1490;OR=238400;PL=10;JI=3;LA=90;DU=30;"
                     "EN=PCMU;DE=PCMU;DUP=2;LATE=3;MOS=4.30")
    assert parse_rtp_stat(value)["MOS"] == "4.30"


def test_x_rtp_stat_header_without_figures() -> None:
    value = rtp_stat_header({"lost_packets": -2, "round_trip_ms": None, "mos": None},
                            duration_s=-1, codec="")
    fields = parse_rtp_stat(value)
    assert fields["PL"] == "0" and fields["DU"] == "0" and fields["EN"] == "-"
    assert "MOS" not in fields
    assert math.isclose(float(fields["LA"]), FRAMING_MS)


def test_parse_rtp_stat_takes_other_vendors_forms() -> None:
    assert parse_rtp_stat("PS=207;OS=49680;;PR=314;OR=50240;PL=0;JI=600;LA=40;") == {
        "PS": "207", "OS": "49680", "PR": "314", "OR": "50240", "PL": "0", "JI": "600",
        "LA": "40"}
    assert parse_rtp_stat("PS=1234,OS=34560,EN=G711U,bogus,=3")["EN"] == "G711U"


def test_live_statistics_carry_the_mos_and_octets() -> None:
    """Two media threads on loopback (the media-thread tests' call): a clean call is the
    E-model's default, and the octet counts are G.711's 160 bytes a packet."""
    from test_media_thread import call, wait_for

    from tipring.runtime.media import MediaStats

    with contextlib.contextmanager(call.__wrapped__)() as (_a, b):
        stats = [e for e in wait_for(b.events, MediaStats) if isinstance(e, MediaStats)][-1]
        assert stats.received_packets > 10
        assert stats.mos == 4.41
        assert stats.burst_ratio == 1.0 and stats.duplicates == 0
        assert stats.received_octets == 160 * stats.received_packets
        assert stats.sent_octets == 160 * stats.sent_packets
