"""The `***` voice menu, driven with a virtual clock: what each key says, the timeouts, and the
physical-presence password reset (only the full hook sequence in time resets)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from tipring.phone.voicemenu import (
    CANCELLED,
    CONFIRM_RESET,
    GOODBYE,
    GREETING,
    HANG_UP_NOW,
    HANG_UP_WINDOW_S,
    IDLE_TIMEOUT_S,
    INVALID,
    LIFT_COUNTED,
    LIFTS_WINDOW_S,
    MENU_CLIPS,
    PASSWORD_REMOVED,
    PROMPT_LIMIT_S,
    DeviceFacts,
    MenuAction,
    MenuEnded,
    ResetPassword,
    Say,
    VoiceMenu,
    address_clips,
    registration_clips,
    spell,
    spoken_addresses,
)

SOUNDS = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
FACTS = DeviceFacts(addresses=("192.168.1.20",), registrations=(("home", True), ("work-2", False)),
                    version="0.1.0")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self, seconds: float = 0.0) -> float:
        self.now += seconds
        return self.now


def said(actions: list[MenuAction]) -> tuple[str, ...]:
    """The clips of the only action, which must be a Say."""
    assert len(actions) == 1 and isinstance(actions[0], Say), actions
    return actions[0].clips


def started(facts: DeviceFacts = FACTS) -> tuple[VoiceMenu, Clock]:
    clock = Clock()
    menu = VoiceMenu(lambda: facts)
    assert said(menu.start(clock())) == GREETING
    assert menu.prompt_finished(clock(16.0)) == []
    return menu, clock


def armed() -> tuple[VoiceMenu, Clock]:
    """Key 9 then 1: the menu waits for the hang-up."""
    menu, clock = started()
    assert said(menu.digit("9", clock(1.0))) == CONFIRM_RESET
    assert menu.prompt_finished(clock(5.0)) == []
    assert said(menu.digit("1", clock(1.0))) == HANG_UP_NOW
    assert menu.awaiting_presence
    return menu, clock


def lifts(menu: VoiceMenu, clock: Clock, count: int, step: float = 2.0) -> list[MenuAction]:
    """`count` lift-and-hang-up cycles after the first hang-up; the actions of the last lift."""
    last: list[MenuAction] = []
    for i in range(count):
        last = menu.lifted(clock(step))
        if i < count - 1:
            assert menu.hung_up(clock(1.0)) == []
    return last


def reset_count(actions: list[MenuAction]) -> int:
    return sum(isinstance(a, ResetPassword) for a in actions)


# -- what is said ----------------------------------------------------------------------------

def test_every_clip_the_menu_names_exists_in_the_debian_prompts():
    assert SOUNDS.is_dir(), "install asterisk-core-sounds-en-wav (listed in .ci/setup)"
    missing = sorted(c for c in MENU_CLIPS if not (SOUNDS / f"{c}.wav").is_file())
    assert missing == []


def test_greeting_lists_keys_and_menu_is_active():
    clock = Clock()
    menu = VoiceMenu(lambda: FACTS)
    assert not menu.active and menu.next_deadline() is None
    clips = said(menu.start(clock()))
    assert clips[0] == "hello"
    for key in "1239":
        assert ("vm-press", f"digits/{key}", "for") == clips[clips.index(f"digits/{key}") - 1:
                                                              clips.index(f"digits/{key}") + 2]
    assert menu.active and not menu.awaiting_presence


def test_key_1_reads_the_ipv4_address_digit_by_digit():
    menu, clock = started()
    assert said(menu.digit("1", clock(1.0))) == (
        "letters/i", "letters/p",
        "digits/1", "digits/9", "digits/2", "letters/dot", "digits/1", "digits/6", "digits/8",
        "letters/dot", "digits/1", "letters/dot", "digits/2", "digits/0")


def test_addresses_ipv4_all_ipv6_only_without_ipv4_and_never_link_local():
    assert spoken_addresses(["10.0.0.2", "2001:db8::5", "192.168.1.20"]) == ["10.0.0.2",
                                                                             "192.168.1.20"]
    assert spoken_addresses(["fe80::1%eth0", "2001:DB8:0:0::5", "::1"]) == ["2001:db8::5"]
    assert spoken_addresses(["nonsense", "", "300.1.1.1", "fe80::2"]) == []
    two = address_clips(["10.0.0.2", "10.0.0.3"])
    assert two == ("letters/i", "letters/p", *spell("10.0.0.2"), "vm-and", *spell("10.0.0.3"))
    assert address_clips(["2001:db8::a"])[2:] == (
        "digits/2", "digits/0", "digits/0", "digits/1", "letters/ascii58", "letters/d",
        "letters/b", "digits/8", "letters/ascii58", "letters/ascii58", "letters/a")


def test_no_address_says_no_ip():
    menu, clock = started(DeviceFacts(addresses=("fe80::1",), registrations=(), version="1"))
    assert said(menu.digit("1", clock(1.0))) == ("vm-no", "letters/i", "letters/p")


def test_key_2_spells_each_account_and_its_registration():
    menu, clock = started()
    assert said(menu.digit("2", clock(1.0))) == (
        "letters/h", "letters/o", "letters/m", "letters/e", "is", "activated",
        "letters/w", "letters/o", "letters/r", "letters/k", "letters/dash", "digits/2",
        "is", "de-activated")
    assert registration_clips([]) == ("vm-no", "spy-sip")
    assert registration_clips([("A_b", True)]) == ("letters/a", "letters/ascii95", "letters/b",
                                                   "is", "activated")


def test_key_3_reads_the_version_and_facts_are_fresh_on_each_key():
    versions = iter(["0.1.0", "0.2.0rc1+g7"])
    menu = VoiceMenu(lambda: DeviceFacts((), (), next(versions)))
    clock = Clock()
    menu.start(clock())
    assert said(menu.digit("3", clock(1.0))) == ("letters/v", "digits/0", "letters/dot",
                                                 "digits/1", "letters/dot", "digits/0")
    assert said(menu.digit("3", clock(1.0))) == (
        "letters/v", "digits/0", "letters/dot", "digits/2", "letters/dot", "digits/0",
        "letters/r", "letters/c", "digits/1", "letters/plus", "letters/g", "digits/7")


def test_spelling_skips_characters_without_a_clip():
    assert spell("a b!é") == ("letters/a", "letters/b")


def test_key_0_repeats_the_greeting_and_unknown_keys_are_refused():
    menu, clock = started()
    assert said(menu.digit("0", clock(1.0))) == GREETING
    for key in ("4", "5", "8", "A", "D", "", "12"):
        assert said(menu.digit(key, clock(1.0))) == INVALID
    assert menu.active


@pytest.mark.parametrize("key", ["#", "*"])
def test_pound_or_star_says_goodbye_then_ends(key: str):
    menu, clock = started()
    assert said(menu.digit(key, clock(1.0))) == GOODBYE
    assert menu.active
    assert menu.digit("1", clock(0.5)) == []  # leaving: keys no longer count
    assert menu.prompt_finished(clock(1.0)) == [MenuEnded()]
    assert not menu.active and menu.next_deadline() is None


def test_hanging_up_ends_the_menu_at_once():
    menu, clock = started()
    menu.digit("1", clock(1.0))
    assert menu.hung_up(clock(1.0)) == [MenuEnded()]
    assert not menu.active
    assert menu.lifted(clock(1.0)) == [] and menu.digit("1", clock()) == []
    assert menu.prompt_finished(clock()) == [] and menu.hung_up(clock()) == []


# -- timeouts ---------------------------------------------------------------------------------

def test_idle_timeout_counts_from_the_end_of_the_prompt():
    clock = Clock()
    menu = VoiceMenu(lambda: FACTS)
    t0 = clock()
    menu.start(t0)
    assert menu.next_deadline() == t0 + PROMPT_LIMIT_S  # playing: only the prompt watchdog
    assert menu.timer(clock(IDLE_TIMEOUT_S + 5)) == []  # a long greeting is not idleness
    finished = clock(1.0)
    menu.prompt_finished(finished)
    assert menu.next_deadline() == finished + IDLE_TIMEOUT_S
    assert menu.timer(clock(IDLE_TIMEOUT_S - 0.5)) == []
    assert said(menu.timer(clock(0.5))) == GOODBYE
    assert menu.prompt_finished(clock(1.0)) == [MenuEnded()]


def test_a_key_restarts_the_idle_timeout():
    menu, clock = started()
    menu.timer(clock(IDLE_TIMEOUT_S - 1))
    menu.digit("3", clock(0.5))
    menu.prompt_finished(clock(4.0))
    assert menu.timer(clock(IDLE_TIMEOUT_S - 1)) == []
    assert said(menu.timer(clock(1.0))) == GOODBYE


def test_a_prompt_that_never_reports_finished_counts_as_finished():
    menu, clock = started()
    said_at = clock(1.0)
    menu.digit("#", said_at)
    assert menu.next_deadline() == said_at + PROMPT_LIMIT_S
    assert menu.timer(clock(PROMPT_LIMIT_S - 1)) == []
    assert menu.timer(clock(1.0)) == [MenuEnded()]


def test_unconfirmed_reset_times_out_back_to_the_menu():
    menu, clock = started()
    menu.digit("9", clock(1.0))
    menu.prompt_finished(clock(5.0))
    assert said(menu.timer(clock(IDLE_TIMEOUT_S))) == CANCELLED
    assert menu.active and not menu.awaiting_presence
    menu.prompt_finished(clock(1.0))
    assert said(menu.digit("3", clock(1.0)))[0] == "letters/v"  # the main menu again


# -- the presence sequence ---------------------------------------------------------------------

def test_full_sequence_resets_once_and_confirms_on_the_third_lift():
    menu, clock = armed()
    assert menu.prompt_finished(clock(2.0)) == []
    assert menu.hung_up(clock(3.0)) == []
    assert menu.awaiting_presence
    assert said(menu.lifted(clock(2.0))) == LIFT_COUNTED
    assert menu.hung_up(clock(1.5)) == []
    assert said(menu.lifted(clock(2.0))) == LIFT_COUNTED
    assert menu.hung_up(clock(1.5)) == []
    actions = menu.lifted(clock(2.0))  # 9 s after the first hang-up
    assert actions == [ResetPassword(), Say(PASSWORD_REMOVED)]
    assert not menu.awaiting_presence and menu.active
    assert menu.lifted(clock()) == [] and menu.digit("9", clock()) == []
    assert menu.prompt_finished(clock(2.0)) == [MenuEnded()]
    assert not menu.active


def test_hanging_up_during_the_confirmation_ends_without_waiting_for_it():
    menu, clock = armed()
    menu.hung_up(clock(1.0))
    menu.lifted(clock(1.0))
    menu.hung_up(clock(1.0))
    menu.lifted(clock(1.0))
    menu.hung_up(clock(1.0))
    assert reset_count(menu.lifted(clock(1.0))) == 1
    assert menu.hung_up(clock(0.5)) == [MenuEnded()]


def test_confirmation_needs_key_1():
    for key in ("2", "9", "*", "#", "0"):
        menu, clock = started()
        menu.digit("9", clock(1.0))
        assert said(menu.digit(key, clock(1.0))) == CANCELLED
        assert not menu.awaiting_presence
        assert menu.hung_up(clock(1.0)) == [MenuEnded()]  # an ordinary hang-up now


def test_last_lift_at_the_window_edge_is_too_late():
    menu, clock = armed()
    hang_up = clock(1.0)
    menu.hung_up(hang_up)
    lifts(menu, clock, 2)
    menu.hung_up(clock(1.0))
    clock.now = hang_up + LIFTS_WINDOW_S
    actions = menu.lifted(clock())
    assert reset_count(actions) == 0
    assert said(actions) == CANCELLED  # off hook: heard
    assert menu.prompt_finished(clock(1.0)) == [MenuEnded()]


def test_last_lift_just_inside_the_window_resets():
    menu, clock = armed()
    hang_up = clock(1.0)
    menu.hung_up(hang_up)
    lifts(menu, clock, 2)
    menu.hung_up(clock(1.0))
    clock.now = hang_up + LIFTS_WINDOW_S - 0.01
    assert reset_count(menu.lifted(clock())) == 1


def test_window_expiring_on_hook_ends_silently():
    menu, clock = armed()
    hang_up = clock(1.0)
    menu.hung_up(hang_up)
    lifts(menu, clock, 2)
    menu.hung_up(clock(1.0))
    assert menu.next_deadline() == hang_up + LIFTS_WINDOW_S
    assert menu.timer(clock() + 0.5) == []
    assert menu.timer(hang_up + LIFTS_WINDOW_S) == [MenuEnded()]
    assert not menu.active
    assert menu.lifted(hang_up + LIFTS_WINDOW_S + 1) == []  # a later lift is just a lift


def test_window_expiring_off_hook_says_cancelled():
    menu, clock = armed()
    hang_up = clock(1.0)
    menu.hung_up(hang_up)
    menu.lifted(clock(1.0))  # and keeps the handset up
    assert said(menu.timer(hang_up + LIFTS_WINDOW_S)) == CANCELLED
    assert not menu.awaiting_presence
    assert menu.hung_up(hang_up + LIFTS_WINDOW_S + 1) == [MenuEnded()]


def test_not_hanging_up_in_time_cancels_back_to_the_menu():
    menu, clock = armed()
    confirmed = clock()
    menu.prompt_finished(clock(2.0))
    assert menu.next_deadline() == confirmed + HANG_UP_WINDOW_S
    assert said(menu.timer(confirmed + HANG_UP_WINDOW_S)) == CANCELLED
    assert menu.active and not menu.awaiting_presence
    menu.prompt_finished(confirmed + HANG_UP_WINDOW_S + 1)
    assert said(menu.digit("1", confirmed + HANG_UP_WINDOW_S + 2))[:2] == ("letters/i",
                                                                         "letters/p")


def test_a_late_hang_up_ends_without_starting_the_count_even_if_the_timer_was_missed():
    menu, clock = armed()
    confirmed = clock()
    assert menu.hung_up(confirmed + HANG_UP_WINDOW_S + 0.1) == [MenuEnded()]
    assert not menu.active
    assert menu.lifted(confirmed + HANG_UP_WINDOW_S + 1) == []


def test_a_late_last_lift_does_not_reset_even_if_the_timer_was_missed():
    menu, clock = armed()
    hang_up = clock(1.0)
    menu.hung_up(hang_up)
    lifts(menu, clock, 2)
    menu.hung_up(clock(1.0))
    assert reset_count(menu.lifted(hang_up + LIFTS_WINDOW_S + 3)) == 0


@pytest.mark.parametrize("count", [1, 2])
def test_too_few_lifts_never_reset(count: int):
    menu, clock = armed()
    menu.hung_up(clock(1.0))
    actions = lifts(menu, clock, count)
    assert reset_count(actions) == 0
    menu.hung_up(clock(1.0))
    t = clock()
    while menu.active and (deadline := menu.next_deadline()) is not None:
        assert reset_count(menu.timer(max(deadline, t))) == 0
        t = max(deadline, t)
    assert not menu.active


def test_lifting_before_hanging_up_is_out_of_order():
    menu, clock = armed()
    assert said(menu.lifted(clock(1.0))) == CANCELLED
    assert not menu.awaiting_presence and menu.active


def test_two_lifts_without_a_hang_up_between_cancel():
    menu, clock = armed()
    menu.hung_up(clock(1.0))
    menu.lifted(clock(1.0))
    actions = menu.lifted(clock(1.0))
    assert reset_count(actions) == 0 and said(actions) == CANCELLED


def test_two_hang_ups_in_a_row_cancel():
    menu, clock = armed()
    menu.hung_up(clock(1.0))
    assert menu.hung_up(clock(1.0)) == [MenuEnded()]
    assert not menu.active


@pytest.mark.parametrize("when", ["armed", "on hook", "after a lift"])
def test_a_key_during_the_sequence_cancels(when: str):
    menu, clock = armed()
    if when != "armed":
        menu.hung_up(clock(1.0))
    if when == "after a lift":
        menu.lifted(clock(1.0))
    actions = menu.digit("1", clock(0.5))
    assert reset_count(actions) == 0
    assert not menu.awaiting_presence
    if when == "on hook":
        assert actions == [MenuEnded()]
    else:
        assert said(actions) == CANCELLED
    menu.hung_up(clock(1.0))
    for _ in range(3):
        assert reset_count(menu.lifted(clock(1.0))) == 0
        menu.hung_up(clock(1.0))


def test_only_the_exact_sequence_resets_among_all_orders_of_its_events():
    """Every sequence of eight menu inputs drawn from key 9, key 1, hang-up and lift, one
    second apart: exactly one resets, 9 1 then hang-up/lift three times."""
    menu_events = ("9", "1", "hung_up", "lifted")
    wanted = ("9", "1", "hung_up", "lifted", "hung_up", "lifted", "hung_up", "lifted")
    resetting = []
    for sequence in itertools.product(menu_events, repeat=len(wanted)):
        menu = VoiceMenu(lambda: FACTS)
        actions = menu.start(0.0)
        for t, event in enumerate(sequence, start=1):
            if event in ("hung_up", "lifted"):
                actions += getattr(menu, event)(float(t))
            else:
                actions += menu.digit(event, float(t))
        assert reset_count(actions) <= 1
        if reset_count(actions):
            resetting.append(sequence)
    assert resetting == [wanted]


def test_hook_flashes_count_as_hang_up_and_lift():
    menu, clock = armed()
    assert said(menu.flashed(clock(1.0))) == LIFT_COUNTED  # hung up and lifted: lift 1
    assert said(menu.flashed(clock(1.0))) == LIFT_COUNTED
    assert menu.flashed(clock(1.0)) == [ResetPassword(), Say(PASSWORD_REMOVED)]
    assert menu.flashed(clock(1.0)) == []


def test_flashes_mix_with_hang_ups_and_still_need_three_lifts_in_time():
    menu, clock = armed()
    hang_up = clock(1.0)
    menu.hung_up(hang_up)
    menu.lifted(clock(1.0))
    assert reset_count(menu.flashed(clock(1.0))) == 0  # lift 2
    assert menu.flashed(hang_up + LIFTS_WINDOW_S) == [MenuEnded()]  # too late: no reset
    assert not menu.active


def test_a_flash_outside_the_reset_does_nothing():
    menu, clock = started()
    assert menu.flashed(clock(1.0)) == []
    assert menu.active and not menu.awaiting_presence


def test_a_new_start_clears_a_pending_sequence():
    menu, clock = armed()
    menu.hung_up(clock(1.0))
    menu.lifted(clock(1.0))
    assert said(menu.start(clock(1.0))) == GREETING
    assert not menu.awaiting_presence
    menu.hung_up(clock(1.0))
    assert reset_count(menu.lifted(clock(1.0))) == 0
