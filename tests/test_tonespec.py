"""Tone strings: the vendors' documented examples, refused strings with positions, round trips."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tipring.line.tonespec import (
    MAX_PLAN_SEGMENTS,
    CadencePlan,
    CadenceSegment,
    Tone,
    ToneSection,
    ToneSequence,
    ToneSpecError,
    ToneStep,
    amplitude_modulated,
    cadence_plan,
    format_grandstream,
    format_tonescript,
    parse_grandstream,
    parse_tonescript,
)

# --- Cisco ToneScript: examples from the Cisco SPA100 series (SPA112) administration guide,
# "ToneScript" and the Regional defaults, with the guide's own reading of each as the oracle.


def test_cisco_dial_tone_example() -> None:
    # "Example 1-Dial tone: 350@-19,440@-19;10(*/0/1+2)": 2 frequencies, one 10 s section,
    # one segment on forever with frequencies 1 and 2.
    sequence = parse_tonescript("350@-19,440@-19;10(*/0/1+2)")
    assert sequence == ToneSequence((
        ToneSection((ToneStep(((350.0, -19.0), (440.0, -19.0)), None),), 10.0),
    ))


def test_cisco_stutter_tone_example() -> None:
    # "Example 2-Stutter tone: 350@-19,440@-19;2(.1/.1/1+2);10(*/0/1+2)": section 1 is 2 s of
    # 0.1 s on / 0.1 s off, section 2 is 10 s on forever; total 12 s.
    sequence = parse_tonescript("350@-19,440@-19;2(.1/.1/1+2);10(*/0/1+2)")
    both = ((350.0, -19.0), (440.0, -19.0))
    assert sequence.sections == (
        ToneSection((ToneStep(both, 0.1), ToneStep((), 0.1)), 2.0),
        ToneSection((ToneStep(both, None),), 10.0),
    )


def test_cisco_busy_and_single_frequency_examples() -> None:
    busy = parse_tonescript("480@-19,620@-19;10(.5/.5/1+2)")
    assert busy.sections[0].steps == (
        ToneStep(((480.0, -19.0), (620.0, -19.0)), 0.5), ToneStep((), 0.5))
    single = parse_tonescript("425@-10;10(*/0/1)")
    assert single.sections[0].steps == (ToneStep(((425.0, -10.0),), None),)


def test_cisco_sit_example_is_three_single_frequency_steps_then_silence() -> None:
    # SIT1 default: 985, 1428, 1777 Hz at -16 dBm, 380 ms each, then 4 s of silence, for 20 s.
    sit = parse_tonescript("985@-16,1428@-16,1777@-16;20(.380/0/1,.380/0/2,.380/0/3,0/4/0)")
    assert sit.sections == (ToneSection((
        ToneStep(((985.0, -16.0),), 0.38),
        ToneStep(((1428.0, -16.0),), 0.38),
        ToneStep(((1777.0, -16.0),), 0.38),
        ToneStep((), 4.0),
    ), 20.0),)
    assert sit.frequencies == (985.0, 1428.0, 1777.0)


def test_cisco_decimal_levels_and_spaces_after_commas() -> None:
    # The guide allows levels with one decimal and white space around the commas.
    sequence = parse_tonescript("440@-10.5, 480@-3;*(1/2/1+2)")
    assert sequence.sections[0].steps[0].components == ((440.0, -10.5), (480.0, -3.0))
    assert sequence.sections[0].duration_s is None


# --- Grandstream: the HT80x call-progress tone syntax (cadence in 10 ms units).


def test_grandstream_continuous_dial_tone() -> None:
    tone = parse_grandstream("f1=350@-13,f2=440@-13,c=0/0;")
    assert tone == Tone(((350.0, -13.0), (440.0, -13.0)))
    assert tone.continuous


def test_grandstream_busy_cadence_is_in_tens_of_milliseconds() -> None:
    # HT80x default busy tone: 480+620 Hz, c=50/50 -> 0.5 s on, 0.5 s off (US busy, ANSI T1.401).
    tone = parse_grandstream("f1=480@-24,f2=620@-24,c=50/50;")
    assert tone.components == ((480.0, -24.0), (620.0, -24.0))
    assert tone.cadence == ((0.5, 0.5),)


@pytest.mark.parametrize(("text", "frequencies", "cadence"), [
    # Grandstream provisioning template defaults (P343..P349), whose comment gives the syntax
    # "f1=val,f2=val[,c=on1/off1[-on2/off2[-on3/off3]]]; (... cadence on and off are in 10ms)".
    ("f1=350,f2=440;", (350.0, 440.0), ()),  # dial tone
    ("f1=350,f2=440,c=10/10;", (350.0, 440.0), ((0.1, 0.1),)),  # message waiting
    ("f1=440,f2=480,c=200/400;", (440.0, 480.0), ((2.0, 4.0),)),  # ring back
    ("f1=440,f2=440,c=25/525;", (440.0, 440.0), ((0.25, 5.25),)),  # call waiting
    ("f1=480,f2=620,c=50/50;", (480.0, 620.0), ((0.5, 0.5),)),  # busy
    ("f1=480,f2=620,c=25/25;", (480.0, 620.0), ((0.25, 0.25),)),  # reorder
])
def test_grandstream_documented_defaults(text: str, frequencies: tuple, cadence: tuple) -> None:
    tone = parse_grandstream(text)
    assert tone.frequencies == frequencies
    assert tone.cadence == cadence


def test_grandstream_three_cadence_pairs_and_four_frequencies() -> None:
    tone = parse_grandstream("f1=400@-10,f2=450@-10,f3=500@-20,f4=550@-20,c=40/20-40/200-10/10;")
    assert len(tone.components) == 4
    assert tone.cadence == ((0.4, 0.2), (0.4, 2.0), (0.1, 0.1))


def test_grandstream_without_cadence_or_level() -> None:
    tone = parse_grandstream("f1=425")
    assert tone == Tone(((425.0, -13.0),))


BAD_TONESCRIPTS = [
    # (text, position, a word the message must contain)
    ("", 0, "frequency"),
    ("350-19;10(*/0/1)", 3, "'@'"),
    ("350@;10(*/0/1)", 4, "level"),
    ("350@-19", 7, "';'"),
    ("350@-19;10*/0/1)", 10, "'('"),
    ("350@-19;10(*/0/2)", 15, "frequency number"),
    ("350@-19;10(*/0/1", 16, "')'"),
    ("350@-19;10(*/0/1);x", 18, "section duration"),
    ("350@-19;10(.5/.5/1);2(*/0/1);3(*/0/1)", 28, "at most 2"),
    ("350@-19;10(.5/./1)", 15, "digit after the decimal point"),
    ("9000@-19;10(*/0/1)", 0, "range"),
    ("350@-19,440@-19;10(*/1/1+2)", 21, "off time of 0"),
    ("350@-19;10(.5/.5/1+1)", 19, "unused frequency"),
    ("1@-1,2@-1,3@-1,4@-1,5@-1,6@-1,7@-1;1(1/1/1)", 29, "at most 6"),
    ("350@-19,440@-19,480@-19,620@-19,700@-19;1(*/0/1+2+3+4+5)", 54, "at most 4"),
]


@pytest.mark.parametrize(("text", "position", "word"), BAD_TONESCRIPTS)
def test_bad_tonescripts_are_refused_with_the_position(text: str, position: int,
                                                       word: str) -> None:
    with pytest.raises(ToneSpecError) as caught:
        parse_tonescript(text)
    assert caught.value.position == position
    assert word in str(caught.value)
    assert f"position {position}" in str(caught.value)


BAD_GRANDSTREAM = [
    ("", 0, "'f1='"),
    ("f5=350", 1, "1..4"),
    ("f1350@-13", 2, "'='"),
    ("f1=@-13", 3, "frequency"),
    ("f1=350@,c=0/0;", 7, "level"),
    ("f1=350@-13,c=50", 15, "'/'"),
    ("f1=350@-13,c=1/1-1/1-1/1-1/1;", 24, "at most 3"),
    ("f1=350@-13,f1=440@-13", 11, "repeated"),
    ("f1=350@-13;x", 11, "end"),
    ("c=0/0;", 0, "at least one frequency"),
    ("f2=350@-13", 0, "without gaps"),
    ("f1=350@-13,c=0/50;", 13, "above 0"),
    ("f1=350@-99", 3, "range"),
]


@pytest.mark.parametrize(("text", "position", "word"), BAD_GRANDSTREAM)
def test_bad_grandstream_strings_are_refused_with_the_position(text: str, position: int,
                                                               word: str) -> None:
    with pytest.raises(ToneSpecError) as caught:
        parse_grandstream(text)
    assert caught.value.position == position
    assert word in str(caught.value)


def test_formatting_the_vendor_examples_gives_them_back() -> None:
    for text in ("350@-19,440@-19;10(*/0/1+2)", "480@-19,620@-19;10(.5/.5/1+2)",
                 "350@-19,440@-19;2(.1/.1/1+2);10(*/0/1+2)", "425@-10;10(*/0/1)"):
        assert format_tonescript(parse_tonescript(text)) == text
    assert format_grandstream(parse_grandstream("f1=350@-13,f2=440@-13,c=0/0;")) == \
        "f1=350@-13,f2=440@-13,c=0/0;"


def test_a_play_once_tone_becomes_a_timed_section() -> None:
    tone = Tone(((440.0, -13.0),), ((0.3, 0.2), (0.3, 0.0)), repeat=False)
    assert tone.sequence().sections[0].duration_s == pytest.approx(0.8)
    assert parse_tonescript(format_tonescript(tone)) == tone.sequence()
    with pytest.raises(ValueError, match="play-once"):
        format_grandstream(tone)


def test_amplitude_modulation_matches_its_spectrum() -> None:
    # Independent check: synthesise (1 + m cos wm t) cos wc t directly and compare it sample by
    # sample with the sum of the three components (levels relative: 0 dB carrier).
    carrier, modulation, depth = 400.0, 16.0, 0.8
    components = amplitude_modulated(carrier, modulation, 0.0, depth)
    assert [f for f, _ in components] == [400.0, 384.0, 416.0]
    for n in range(800):
        t = n / 8000
        direct = (1 + depth * math.cos(2 * math.pi * modulation * t)) * \
            math.cos(2 * math.pi * carrier * t)
        summed = sum(10 ** (level / 20) * math.cos(2 * math.pi * f * t) for f, level in components)
        assert summed == pytest.approx(direct, abs=1e-3)


# --- the C generator's plan (segments + restart index) ------------------------------------------


def test_plan_of_a_repeating_cadence_loops_from_the_start() -> None:
    busy = parse_tonescript("480@-19,620@-19;*(.5/.5/1+2)")
    both = ((480.0, -19.0), (620.0, -19.0))
    assert cadence_plan(busy) == CadencePlan((CadenceSegment(both, 0.5, 0.5),), 0)
    assert cadence_plan(Tone(both)) == CadencePlan((CadenceSegment(both, None, 0.0),), None)


def test_plan_of_the_cisco_stutter_tone() -> None:
    # 2 s of 0.1/0.1 is ten on/off segments, then the steady tone (which ends the plan: it
    # sounds for ever, so there is nothing to loop).
    stutter = parse_tonescript("350@-19,440@-19;2(.1/.1/1+2);*(*/0/1+2)")
    both = ((350.0, -19.0), (440.0, -19.0))
    plan = cadence_plan(stutter)
    assert plan.segments == (CadenceSegment(both, 0.1, 0.1),) * 10 + (
        CadenceSegment(both, None, 0.0),)
    assert plan.repeat_from is None


def test_plan_of_a_timed_sit_is_cut_at_the_section_length() -> None:
    # Cisco SIT1: a 5.14 s cycle inside a 20 s section: three whole cycles, then the fourth is cut
    # 20 s after the start (3 x 5.14 + 3 x 0.38 = 16.56, leaving 3.44 s of its 4 s silence).
    sit = parse_tonescript("985@-16,1428@-16,1777@-16;20(.380/0/1,.380/0/2,.380/0/3,0/4/0)")
    plan = cadence_plan(sit)
    assert len(plan.segments) == 12 and plan.repeat_from is None
    assert sum((s.on_s or 0) + s.off_s for s in plan.segments) == pytest.approx(20.0)
    assert plan.segments[-1] == CadenceSegment(((1777.0, -16.0),), 0.38, pytest.approx(3.44))
    assert [s.components[0][0] for s in plan.segments[:3]] == [985.0, 1428.0, 1777.0]


def test_plan_refuses_more_segments_than_the_c_side_holds() -> None:
    many = parse_tonescript("400@-10;10(.1/.1/1)")  # 50 on/off segments
    with pytest.raises(ValueError, match=str(MAX_PLAN_SEGMENTS)):
        cadence_plan(many)


# --- round trips -------------------------------------------------------------------------------

frequencies = st.integers(min_value=100, max_value=3400).map(float)
levels = st.integers(min_value=-40, max_value=0).map(float)
components = st.lists(st.tuples(frequencies, levels), min_size=1, max_size=4,
                      unique_by=lambda c: c[0]).map(tuple)
tens_of_ms = st.integers(min_value=1, max_value=900).map(lambda n: n / 100)
pauses = st.one_of(st.just(0.0), tens_of_ms)


@given(components, st.lists(st.tuples(tens_of_ms, pauses), max_size=3).map(tuple))
def test_grandstream_round_trip(parts: tuple, cadence: tuple) -> None:
    tone = Tone(parts, cadence)
    assert parse_grandstream(format_grandstream(tone)) == tone


milliseconds = st.integers(min_value=1, max_value=20000).map(lambda n: n / 1000)


@given(components, st.lists(st.tuples(milliseconds, st.one_of(st.just(0.0), milliseconds)),
                            max_size=6).map(tuple), st.booleans())
def test_tonescript_round_trip_of_tones(parts: tuple, cadence: tuple, repeat: bool) -> None:
    tone = Tone(parts, cadence, repeat)
    assert parse_tonescript(format_tonescript(tone)) == tone.sequence()


step = st.tuples(st.one_of(st.just(()), components), milliseconds).map(lambda s: ToneStep(*s))


@given(st.lists(st.lists(step, min_size=1, max_size=4).map(tuple), min_size=1, max_size=2),
       st.one_of(st.none(), milliseconds))
def test_tonescript_round_trip_of_sequences(step_lists: list, last_duration: float | None
                                            ) -> None:
    sections = [ToneSection(steps, 10.0) for steps in step_lists[:-1]]
    sections.append(ToneSection(step_lists[-1], last_duration))
    sequence = ToneSequence(tuple(sections))
    try:
        text = format_tonescript(sequence)
    except ValueError:
        return  # all silence, or more frequencies or segments than ToneScript holds
    assert parse_tonescript(text) == sequence


@given(components, st.lists(st.tuples(tens_of_ms, tens_of_ms), min_size=1, max_size=3).map(tuple),
       st.booleans())
def test_plan_of_a_tone_is_its_cadence(parts: tuple, cadence: tuple, repeat: bool) -> None:
    plan = cadence_plan(Tone(parts, cadence, repeat))
    assert plan.segments == tuple(CadenceSegment(parts, on, off) for on, off in cadence)
    assert plan.repeat_from == (0 if repeat else None)
