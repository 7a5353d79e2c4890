"""Hook-edge decoding: rotary digits, hook flash and hang-up from edge timing alone."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tipring.line.pulse import HookDecoder, HookFlash, HungUp, Lifted, PulseDigit
from tipring.line.regions import PulseMapping

T0 = 1000.0


def rotary_edges(pulse_counts: list[int], start: float, pps: float, break_ratio: float,
                 gap: float) -> tuple[list[tuple[bool, float]], float]:
    """Hook edges of a rotary dial sending trains of `pulse_counts` breaks."""
    edges: list[tuple[bool, float]] = []
    t = start
    for count in pulse_counts:
        for _ in range(count):
            edges.append((False, t))
            edges.append((True, t + break_ratio / pps))
            t += 1 / pps
        t += gap - (1 - break_ratio) / pps
    return edges, t


def decode(decoder: HookDecoder, edges: list[tuple[bool, float]], until: float) -> list:
    out = []
    for off_hook, at in edges:
        deadline = decoder.next_deadline()
        while deadline is not None and deadline <= at:
            out += decoder.expire(deadline)
            deadline = decoder.next_deadline()
        out += decoder.edge(off_hook, at)
    out += decoder.expire(until)
    return out


def lifted_decoder(mapping: PulseMapping = PulseMapping.STANDARD) -> HookDecoder:
    decoder = HookDecoder(mapping)
    assert decoder.edge(True, T0) == [Lifted(T0)]
    return decoder


@pytest.mark.parametrize("pps", [8.0, 10.0, 12.0])
@pytest.mark.parametrize("ratio", [0.6, 0.67])
def test_rotary_digits_at_8_to_12_pps_and_both_break_ratios(pps: float, ratio: float) -> None:
    decoder = lifted_decoder()
    edges, end = rotary_edges([1, 10, 5], T0 + 1, pps, ratio, gap=0.2)
    got = decode(decoder, edges, end + 1)
    assert [s.digit for s in got if isinstance(s, PulseDigit)] == ["1", "0", "5"]
    assert not [s for s in got if not isinstance(s, PulseDigit)]


def test_digit_is_reported_one_gap_after_its_last_make() -> None:
    decoder = lifted_decoder()
    edges, _ = rotary_edges([3], T0 + 1, 10.0, 0.6, gap=0.7)
    for off_hook, at in edges:
        assert decoder.edge(off_hook, at) == []
    last_make = edges[-1][1]
    assert decoder.next_deadline() == pytest.approx(last_make + 0.15)
    assert decoder.expire(last_make + 0.149) == []
    assert decoder.expire(last_make + 0.15) == [PulseDigit("3", pytest.approx(last_make + 0.15))]


@pytest.mark.parametrize(("mapping", "trains", "digits"), [
    (PulseMapping.NEW_ZEALAND, [9, 10, 5], "105"),  # NZ: 10 - n breaks, 0 = 10
    (PulseMapping.SWEDEN, [2, 1, 6], "105"),  # SE: n + 1 breaks, 0 = 1
])
def test_national_pulse_mappings(mapping: PulseMapping, trains: list[int], digits: str) -> None:
    decoder = lifted_decoder(mapping)
    edges, end = rotary_edges(trains, T0 + 1, 10.0, 0.6, gap=0.3)
    got = decode(decoder, edges, end + 1)
    assert "".join(s.digit for s in got if isinstance(s, PulseDigit)) == digits


def test_flash_inside_the_window_and_hang_up_beyond_it() -> None:
    decoder = lifted_decoder()
    assert decoder.edge(False, T0 + 1) == []
    assert decoder.edge(True, T0 + 1.5) == [HookFlash(T0 + 1.5)]
    assert decoder.edge(False, T0 + 3) == []
    assert decoder.next_deadline() == pytest.approx(T0 + 3 + 1.1)
    assert decoder.expire(T0 + 4.09) == []
    assert decoder.expire(T0 + 4.1) == [HungUp(T0 + 3)]
    assert not decoder.off_hook
    assert decoder.edge(True, T0 + 5) == [Lifted(T0 + 5)]


def test_configured_flash_window_is_honoured() -> None:
    decoder = HookDecoder(flash_min_s=0.3, flash_max_s=0.6)
    decoder.edge(True, T0)
    decoder.edge(False, T0 + 1)
    assert decoder.edge(True, T0 + 1.2) == []  # 200 ms: neither a pulse nor a flash here
    decoder.edge(False, T0 + 2)
    assert decoder.expire(T0 + 2.6) == [HungUp(T0 + 2)]


def test_hang_up_in_the_middle_of_a_digit_drops_it() -> None:
    decoder = lifted_decoder()
    edges, _ = rotary_edges([4], T0 + 1, 10.0, 0.6, gap=0.3)
    for off_hook, at in edges[:-2]:
        decoder.edge(off_hook, at)
    decoder.edge(False, edges[-2][1])
    assert decoder.expire(edges[-2][1] + 2) == [HungUp(edges[-2][1])]


def test_flash_right_after_a_digit_reports_the_digit_first() -> None:
    decoder = lifted_decoder()
    edges, _ = rotary_edges([2], T0 + 1, 10.0, 0.6, gap=0.3)
    for off_hook, at in edges:
        decoder.edge(off_hook, at)
    t = edges[-1][1] + 0.05  # before the inter-digit gap has run out
    decoder.edge(False, t)
    got = decoder.edge(True, t + 0.5)
    assert [type(s) for s in got] == [PulseDigit, HookFlash]
    assert got[0].digit == "2"


@settings(max_examples=200, deadline=None)
@given(
    digits=st.text(alphabet="0123456789", min_size=1, max_size=8),
    pps=st.floats(8.0, 12.0),
    ratio=st.floats(0.6, 0.67),
    gaps=st.lists(st.floats(0.2, 2.0), min_size=8, max_size=8),
    mapping=st.sampled_from(list(PulseMapping)),
)
def test_any_dial_inside_the_tolerances_decodes(digits: str, pps: float, ratio: float,
                                                gaps: list[float], mapping: PulseMapping) -> None:
    decoder = lifted_decoder(mapping)
    edges: list[tuple[bool, float]] = []
    t = T0 + 1
    for digit, gap in zip(digits, gaps, strict=False):
        train, t = rotary_edges([mapping.pulses(digit)], t, pps, ratio, gap)
        edges += train
    got = decode(decoder, edges, t + 1)
    assert "".join(s.digit for s in got if isinstance(s, PulseDigit)) == digits
    assert all(isinstance(s, PulseDigit) for s in got)
