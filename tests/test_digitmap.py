"""Digit maps against the vendors' documented examples, plus properties any dial plan must keep."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tipring.line.digitmap import (
    DigitMap,
    DigitMapError,
    InterDigitTimer,
    Match,
    Outcome,
    WarmLine,
)

COMPLETE, PARTIAL, INVALID, BARRED = (Outcome.COMPLETE, Outcome.PARTIAL, Outcome.INVALID,
                                      Outcome.BARRED)
LONG, SHORT = InterDigitTimer.LONG, InterDigitTimer.SHORT

# The Cisco SPA112 default dial plan (SPA100 series admin guide, "Dial Plan" defaults).
CISCO_DEFAULT = "(*xx|[3469]11|0|00|[2-9]xxxxxx|1xxx[2-9]xxxxxxS0|xxxxxxxxxxxx.)"

# (plan, dialled, outcome, number sent, timer) transcribed from the documents named above each
# group; the expected values are the documents' own explanations of the examples.
VENDOR_EXAMPLES = [
    # Cisco SPA112 admin guide, "Dial Plan" (default plan, timers: long 10 s, short 3 s).
    (CISCO_DEFAULT, "*69", COMPLETE, "*69", None),  # *xx: star codes
    (CISCO_DEFAULT, "411", PARTIAL, None, SHORT),  # [3469]11 complete, xxxxxxxxxxxx. may grow
    (CISCO_DEFAULT, "5551234", PARTIAL, None, SHORT),  # 7-digit local, may grow to 12+
    (CISCO_DEFAULT, "1408", PARTIAL, None, LONG),  # nothing complete yet
    (CISCO_DEFAULT, "14085551234", COMPLETE, "14085551234", None),  # S0: dial at once
    (CISCO_DEFAULT, "011441234567890", PARTIAL, None, SHORT),  # xxxxxxxxxxxx. international
    (CISCO_DEFAULT, "*6", PARTIAL, None, LONG),
    (CISCO_DEFAULT, "*", PARTIAL, None, LONG),
    (CISCO_DEFAULT, "1*", INVALID, None, None),
    # "EXAMPLE 1: <8:1650>xxxxxxx ... If the user dials 85550112, the system transmits
    # 16505550112."
    ("<8:1650>xxxxxxx", "85550112", COMPLETE, "16505550112", None),
    # "EXAMPLE 2: <:1>xxxxxxxxxx ... If the user dials 9725550112, the system transmits
    # 19725550112."
    ("<:1>xxxxxxxxxx", "9725550112", COMPLETE, "19725550112", None),
    # "<:1408>[2-9]xxxxxx": 7-digit local numbers get the area code.
    ("<:1408>[2-9]xxxxxx", "5551234", COMPLETE, "14085551234", None),
    ("<:1408>[2-9]xxxxxx", "1551234", INVALID, None, None),
    # "1900xxxxxxx! The system rejects any 11-digit sequence that begins with 1900."
    ("1900xxxxxxx!", "19005551234", BARRED, None, None),
    # Linksys SPA9000 admin guide, "Using Dial Plans":
    # "( 0 | [49]11 | 1 [2-9]xx [2-9]xxxxxx ) ... disallows area codes and local numbers
    # starting with 0 or 1. It also allows 411, 911, and operator calls (0)."
    ("( 0 | [49]11 | 1 [2-9]xx [2-9]xxxxxx )", "0", COMPLETE, "0", None),
    ("( 0 | [49]11 | 1 [2-9]xx [2-9]xxxxxx )", "411", COMPLETE, "411", None),
    ("( 0 | [49]11 | 1 [2-9]xx [2-9]xxxxxx )", "12125551234", COMPLETE, "12125551234", None),
    ("( 0 | [49]11 | 1 [2-9]xx [2-9]xxxxxx )", "10", INVALID, None, None),
    ("( 0 | [49]11 | 1 [2-9]xx [2-9]xxxxxx )", "1212155", INVALID, None, None),
    # "( 1 [2-8]xx [2-9]xxxxxx ) allows US-style long distance, but blocks 9xx area codes"
    ("( 1 [2-8]xx [2-9]xxxxxx )", "19", INVALID, None, None),
    # "( 1 947 xxxxxxx ! | 1 xxx xxxxxxx ) allows arbitrary long distance dialing, but explicitly
    # blocks the 947 area code."
    ("( 1 947 xxxxxxx ! | 1 xxx xxxxxxx )", "19475551234", BARRED, None, None),
    ("( 1 947 xxxxxxx ! | 1 xxx xxxxxxx )", "12125551234", COMPLETE, "12125551234", None),
    # "( P5 <:1000> | xxxx ) ... a warm line to a local office operator (1000) after five
    # seconds, unless a four-digit extension is dialed by the user."
    ("( P5 <:1000> | xxxx )", "1234", COMPLETE, "1234", None),
    ("( P5 <:1000> | xxxx )", "12", PARTIAL, None, LONG),
    # Cisco SPA500 admin guide: "9, 1xxxxxxxxxx An 'outside line' dial tone is sounded after the
    # user presses 9" (the comma is not dialled and not sent).
    ("9, 1xxxxxxxxxx", "912125551234", COMPLETE, "912125551234", None),
    # Grandstream HT80x/HT812 admin guide, "Dial Plan":
    # "{[369]11 | 1617xxxxxxx} - Allow 311, 611, 911, and any 10-digit numbers of leading digits
    # 1617" (that is 11 digits in all)
    ("{[369]11 | 1617xxxxxxx}", "611", COMPLETE, "611", None),
    ("{[369]11 | 1617xxxxxxx}", "16175551234", COMPLETE, "16175551234", None),
    ("{[369]11 | 1617xxxxxxx}", "1618", INVALID, None, None),
    # "{^1900x+ | <=1617>xxxxxxx} - Block any number with leading digits 1900 and add prefix 1617
    # for any dialed 7-digit numbers"
    ("{^1900x+ | <=1617>xxxxxxx}", "5551234", COMPLETE, "16175551234", None),
    # "{1xxx[2-9]xxxxxx | <2=011>x+} ... If leading digit is 2, replace leading digit 2 with 011"
    ("{1xxx[2-9]xxxxxx | <2=011>x+}", "14085551234", COMPLETE, "14085551234", None),
    ("{1xxx[2-9]xxxxxx | <2=011>x+}", "14080551234", INVALID, None, None),
    # The guide's US home/office plan.
    ("{ ^1900x. | <=1617>[2-9]xxxxxx | 1[2-9]xx[2-9]xxxxxx | 011[2-9]x. | [3469]11 }",
     "2125551", COMPLETE, "16172125551", None),
    ("{ ^1900x. | <=1617>[2-9]xxxxxx | 1[2-9]xx[2-9]xxxxxx | 011[2-9]x. | [3469]11 }",
     "12125551234", COMPLETE, "12125551234", None),
    ("{ ^1900x. | <=1617>[2-9]xxxxxx | 1[2-9]xx[2-9]xxxxxx | 011[2-9]x. | [3469]11 }",
     "01144", PARTIAL, None, SHORT),
]


@pytest.mark.parametrize(("plan", "dialled", "outcome", "number", "timer"), VENDOR_EXAMPLES)
def test_vendor_examples(plan: str, dialled: str, outcome: Outcome, number: str | None,
                         timer: InterDigitTimer | None) -> None:
    result = DigitMap.compile(plan).match(dialled)
    assert result.outcome is outcome
    assert result.number == number
    assert result.timer is timer


# (plan, dialled, what the timer expiry decides, number) - the vendors' "Terminating Event:
# a timeout occurs ... If the sequence is complete ... the number is accepted".
EXPIRY_EXAMPLES = [
    (CISCO_DEFAULT, "411", COMPLETE, "411"),
    (CISCO_DEFAULT, "5551234", COMPLETE, "5551234"),
    (CISCO_DEFAULT, "0", COMPLETE, "0"),
    (CISCO_DEFAULT, "011441234567890", COMPLETE, "011441234567890"),
    (CISCO_DEFAULT, "1408", INVALID, None),  # "If the sequence is incomplete ... rejected"
    ("<9:>xx.", "95551234", COMPLETE, "5551234"),  # <9:> strips the outside-line 9
    ("{^1900x+ | <=1617>xxxxxxx}", "19005", BARRED, None),  # Grandstream ^ blocks
    ("{1xxx[2-9]xxxxxx | <2=011>x+}", "2441234", COMPLETE, "011441234"),
]


@pytest.mark.parametrize(("plan", "dialled", "outcome", "number"), EXPIRY_EXAMPLES)
def test_timer_expiry_resolves_a_partial_match(plan: str, dialled: str, outcome: Outcome,
                                               number: str | None) -> None:
    digit_map = DigitMap.compile(plan)
    assert digit_map.match(dialled).outcome is PARTIAL
    result = digit_map.expire(dialled)
    assert result.outcome is outcome
    assert result.number == number


def test_default_timers_and_deadline() -> None:
    # Cisco defaults: Interdigit_Long_Timer 10 s, Interdigit_Short_Timer 3 s.
    digit_map = DigitMap.compile(CISCO_DEFAULT)
    long_wait = digit_map.match("1408")
    assert (long_wait.timer, long_wait.timeout_s) == (LONG, 10.0)
    assert long_wait.deadline(100.0) == 110.0
    short_wait = digit_map.match("5551234")
    assert (short_wait.timer, short_wait.timeout_s) == (SHORT, 3.0)
    assert digit_map.match("*69").deadline(100.0) is None


def test_map_wide_timer_settings() -> None:
    # SPA962 guide: '"L:8,S:4,( . . . )" overrides both the long and the short time-out values';
    # SPA232D guide: "L:15, (9,8<:1408>[2-9]xxxxxx | ...)".
    both = DigitMap.compile("L:8,S:4,(xxxx|xxxxxxx)")
    assert both.match("12").timeout_s == 8.0
    assert both.match("1234").timeout_s == 4.0
    plan = "L:15, (9,8<:1408>[2-9]xxxxxx | 9,8,1[2-9]xxxxxxxxx | 9,8,011xx. | 9,8,xx.|[1-8]xx)"
    long_only = DigitMap.compile(plan)
    assert long_only.match("9").timeout_s == 15.0
    short_only = DigitMap.compile(
        "S:6,(9,8<:1408>[2-9]xxxxxx | 9,8,1[2-9]xxxxxxxxx | 9,8,011xx. | 9,8,xx.|[1-8]xx)")
    assert short_only.match("9855").timeout_s == 6.0  # 9,8,xx. complete, may grow
    assert short_only.match("9").timeout_s == 10.0  # default long timer kept


def test_timer_written_without_a_number_is_five_seconds() -> None:
    # SPA232D guide: "s: The number of seconds; if no number is entered after S, the default
    # timer of 5 seconds applies" (likewise after "L:" and "P").
    assert DigitMap.compile("(xxxS|xxxxxxx)").match("123").timeout_s == 5.0
    assert DigitMap.compile("L:,(xxxx)").match("1").timeout_s == 5.0
    assert DigitMap.compile("(P<:23> | xxxx)").warm_line == WarmLine(5.0, "23")


def test_outside_line_dial_tone_after_a_comma() -> None:
    digit_map = DigitMap.compile("9, 1xxxxxxxxxx")
    assert digit_map.match("9").dial_tone
    assert not digit_map.match("91").dial_tone


def test_local_short_timer_override_applies_from_its_position() -> None:
    # S0 after a sequence: "Set an instant timer for a particular sequence within the dial plan".
    digit_map = DigitMap.compile("(xxxxS0|xxxxxxx)")
    assert digit_map.match("1234") == Match(COMPLETE, number="1234", rule="xxxxS0")
    slow = DigitMap.compile("(xxxxS7|xxxxxxx)")
    assert slow.match("1234").timeout_s == 7.0


def test_hot_line_and_warm_line_are_exposed() -> None:
    # SPA9000 guide: "( S0 <:12125551234> ) implements a hot line phone, which automatically
    # calls 1 212 5551234"; "( P5 <:1000> | xxxx )" is a warm line after five seconds.
    hot = DigitMap.compile("( S0 <:12125551234> )")
    assert hot.hot_line == "12125551234"
    assert hot.match("") == Match(COMPLETE, number="12125551234", rule="S0 <:12125551234>")
    warm = DigitMap.compile("( P5 <:1000> | xxxx )")
    assert warm.warm_line == WarmLine(5.0, "1000")
    assert warm.hot_line is None
    assert warm.expire("").number == "1000"
    # SPA500 guide: "( P0 <:1000>) ... transmitted automatically ... when the phone goes off hook"
    assert DigitMap.compile("( P0 <:1000>)").hot_line == "1000"
    # "P9 | ..." without a number: off-hook timer only.
    assert DigitMap.compile("(P9 | xxxx)").warm_line == WarmLine(9.0, None)
    assert DigitMap.compile(CISCO_DEFAULT).hot_line is None
    assert DigitMap.compile(CISCO_DEFAULT).warm_line is None


def test_send_key_ends_dialling() -> None:
    digit_map = DigitMap.compile(CISCO_DEFAULT)
    assert digit_map.match("5551234#") == Match(COMPLETE, number="5551234", rule="[2-9]xxxxxx")
    assert digit_map.match("1408#").outcome is INVALID
    # A map that uses # itself keeps it as a key.
    hash_codes = DigitMap.compile("(*xx#|xxxx)")
    assert hash_codes.match("*72#").number == "*72#"
    assert hash_codes.match("123#").outcome is INVALID
    no_send_key = DigitMap.compile("(xxx.)", send_key=None)
    assert no_send_key.match("555#").outcome is INVALID


def test_emergency_numbers_are_never_barred_or_rejected() -> None:
    barring = DigitMap.compile("(911! | 1xxxxxxxxxx)")
    assert barring.match("911") == Match(COMPLETE, number="911", rule="911", emergency=True)
    nothing_allowed = DigitMap.compile("(1234)", emergency=("112", "110"))
    assert nothing_allowed.match("1").outcome is PARTIAL  # on the way to 112/110
    assert nothing_allowed.match("11").outcome is PARTIAL
    assert nothing_allowed.match("112").outcome is COMPLETE
    assert nothing_allowed.match("110").number == "110"
    assert nothing_allowed.match("113").outcome is INVALID
    assert nothing_allowed.expire("112").outcome is COMPLETE
    # A map rule complete on a prefix of an emergency number does not cut it short.
    prefix = DigitMap.compile("(0 | 0xxxxxxxxx)", emergency=("000",))
    assert prefix.match("0").outcome is PARTIAL
    assert prefix.match("000").emergency
    # Even when the timer (or the send key) decides, the emergency number goes through.
    assert DigitMap.compile("(911!)").expire("911").outcome is COMPLETE
    assert DigitMap.compile("(911!)").match("911#").outcome is COMPLETE


def test_sets_ranges_negation_and_repetition() -> None:
    digit_map = DigitMap.compile("([^1]xx|[2-46]x.|[*#]x)")
    assert digit_map.match("1").outcome is INVALID
    assert digit_map.match("5").outcome is PARTIAL  # [^1]xx
    assert digit_map.expire("3").number == "3"  # [2-46]x. with zero repeats
    assert digit_map.match("#5").number == "#5"
    assert DigitMap.compile("(xX)").match("12").number == "12"  # X as x


BAD_PLANS = [
    # (plan, position, a word the message must contain)
    ("", 0, "rule"),
    ("(xxx", 4, "')'"),
    ("(xx|)", 4, "rule"),
    ("(xx))", 4, "end"),
    ("(x[2-", 5, "digit"),
    ("([9-2]x)", 4, "range"),
    ("([2-9x)", 5, "']'"),
    ("(.x)", 1, "before '.'"),
    ("(x..)", 3, "before '.'"),
    ("(<9xx)", 5, "':'"),
    ("(<9:12)", 6, "'>'"),
    ("(<9:1?>)", 5, "to send"),
    ("(x!x)", 2, "at the end"),
    ("(xP5)", 2, "start of a rule"),
    ("(xS1.2.3)", 3, "seconds"),
    ("L:1..5,(xx)", 2, "seconds"),
    ("L:x,(xx)", 2, "','"),
    ("L:5 (xx)", 4, "','"),
    ("(x?x)", 2, "a key"),
    ("([]x)", 1, "matches some key"),
    ("{x+ | \\-}", 7, "'+' after"),
    ("{x+ | ++}", 6, "before '+'"),
    ("{x+", 3, "'}'"),
    ("{<2011>x+}", 6, "'='"),
    ("{x+} x", 5, "end after"),
    ("{x+!}", 3, "'+', '.', '|' or '}'"),
]


@pytest.mark.parametrize(("plan", "position", "word"), BAD_PLANS)
def test_bad_plans_are_refused_with_the_position(plan: str, position: int, word: str) -> None:
    with pytest.raises(DigitMapError) as caught:
        DigitMap.compile(plan)
    assert caught.value.position == position
    assert word in str(caught.value)
    assert f"position {position}" in str(caught.value)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="emergency"):
        DigitMap.compile("(x)", emergency=("9-1-1",))
    with pytest.raises(ValueError, match="send key"):
        DigitMap.compile("(x)", send_key="+")


# --- properties -------------------------------------------------------------------------------

PLANS = [
    CISCO_DEFAULT,
    "( 1 947 xxxxxxx ! | 1 xxx xxxxxxx | <9:>xx. | [2-9]xxxxxxS0 )",
    "{ ^1900x. | <=1617>[2-9]xxxxxx | 1[2-9]xx[2-9]xxxxxx | 011[2-9]x. | [3469]11 }",
    "L:8,S:2,(<8:1650>xxxxxxx | *xx | #xx# | 0 | 00 | [^0]xx.)",
]
keys = st.text(alphabet="0123456789*#", max_size=14)


@given(st.sampled_from(PLANS), keys)
def test_a_complete_number_never_passed_through_a_dead_end(plan: str, dialled: str) -> None:
    digit_map = DigitMap.compile(plan, send_key=None)
    if digit_map.match(dialled).outcome is not COMPLETE:
        return
    for end in range(len(dialled)):
        # Every prefix was still worth waiting on: never INVALID, BARRED or already COMPLETE.
        assert digit_map.match(dialled[:end]).outcome is PARTIAL


@given(st.sampled_from(PLANS), keys, keys)
def test_once_invalid_always_invalid(plan: str, dialled: str, more: str) -> None:
    digit_map = DigitMap.compile(plan, send_key=None)
    if digit_map.match(dialled).outcome is INVALID:
        assert digit_map.match(dialled + more).outcome is INVALID


@given(st.sampled_from(PLANS), keys)
def test_partial_always_names_a_timer_and_expiry_always_decides(plan: str, dialled: str
                                                               ) -> None:
    digit_map = DigitMap.compile(plan, send_key=None)
    result = digit_map.match(dialled)
    if result.outcome is PARTIAL:
        assert result.timer is not None and result.timeout_s is not None
        assert result.timeout_s > 0
        assert digit_map.expire(dialled).outcome is not PARTIAL
    else:
        assert result.timeout_s is None


@given(st.text(alphabet="0123456789", min_size=1, max_size=12), st.sampled_from(PLANS))
def test_emergency_numbers_always_complete_unchanged(number: str, plan: str) -> None:
    digit_map = DigitMap.compile(plan, emergency=(number,))
    assert digit_map.match(number) == Match(COMPLETE, number=number, rule=number, emergency=True)
    for end in range(1, len(number)):
        assert digit_map.match(number[:end]).outcome is PARTIAL


@given(st.text(alphabet="0123456789", min_size=1, max_size=10))
def test_a_plan_without_substitution_sends_what_was_dialled(dialled: str) -> None:
    assert DigitMap.compile("(xx.)").expire(dialled).number == dialled


def test_star_codes_complete_at_once_even_where_the_plan_could_take_more() -> None:
    plan = DigitMap.compile("(*x.|x.)", features=("*78", "***", "*72x."))
    assert plan.match("*78").outcome is Outcome.COMPLETE  # no short-timer wait for *x.
    assert plan.match("***") == Match(Outcome.COMPLETE, number="***", rule="***")
    # A code that takes a number waits for it, then completes on '#' or the timer.
    assert plan.match("*72").outcome is Outcome.PARTIAL
    assert plan.match("*725551234#").number == "*725551234"
    assert plan.expire("*725551234").rule == "*72x."
    # Other star strings still go to the plan.
    assert plan.expire("*12") == Match(Outcome.COMPLETE, number="*12", rule="*x.")


def test_star_codes_apply_whatever_the_plan_allows() -> None:
    plan = DigitMap.compile("(<9:>xxxxxxx)", features=("*78",))  # a plan with no '*' at all
    assert plan.match("*7").outcome is Outcome.PARTIAL
    assert plan.match("*78").number == "*78"
    assert plan.match("*5").outcome is Outcome.INVALID
