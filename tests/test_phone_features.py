"""Star codes and the incoming-call features: do-not-disturb, forwarding (all, busy, no
answer), anonymous-call rejection, caller-ID hiding, call return, redial, voicemail, fallback
account. A recording agent stands in for the SIP stack."""

from __future__ import annotations

import datetime

import pytest

from test_phone import RTP, T0, RecordingAgent, caller, incoming, media
from test_phone_support import PLAN, commands, rings, tones
from tipring.config.schema import FeatureCodes
from tipring.line.digitmap import DigitMap
from tipring.line.fxs import FxsLine, LineState
from tipring.line.regions import profile
from tipring.line.signals import StopRing
from tipring.phone import AttachMedia, LineSetup, Phone
from tipring.phone.actions import ClearWebPassword, PlayPrompt, SaveLineSetting, StopPrompt
from tipring.phone.features import digit_rules
from tipring.phone.voicemenu import DeviceFacts
from tipring.sip.session import CallAnswered, CallEnded, TransferProgress

CODES = FeatureCodes().codes()


class FeatureAgent(RecordingAgent):
    """The recording agent, plus what features ask of it (keyword arguments kept)."""

    def __init__(self, accounts=("acct",), failed=()) -> None:
        super().__init__(accounts)
        self.failed = set(failed)

    def invite(self, account, target, media, now, **options):
        call = super().invite(account, target, media, now)
        self.requests[-1] = (*self.requests[-1], options)
        return call

    def registration(self, account):
        return type("Registration", (), {"state": "failed" if account in self.failed
                                         else "registered"})()

    def __getattr__(self, name):
        if name in ("redirect", "transfer", "notify_transfer"):
            return lambda *args, **kw: self.requests.append((name, *args, kw))
        return super().__getattr__(name)


def station(agent=None, **features) -> tuple[Phone, FeatureAgent]:
    agent = agent or FeatureAgent()
    region = profile("US")
    line = FxsLine(region, DigitMap.compile(PLAN, region.emergency_numbers,
                                            features=digit_rules(CODES)))
    setup = LineSetup(line, "acct", RTP, **features)
    return Phone(agent, {0: setup}, local_time=lambda: datetime.datetime(2026, 3, 4, 5, 6),
                 codes=CODES), agent


def dial(p: Phone, keys: str, at: float = T0) -> list:
    out = p.hook(0, True, at)
    for i, key in enumerate(keys):
        out += p.dtmf(0, key, at + 1 + i * 0.2)
    return out


def hang_up(p: Phone, at: float) -> list:
    out = p.hook(0, False, at)
    return out + p.timer(at + 2)


# --- star codes that switch a setting ---------------------------------------------------------

@pytest.mark.parametrize(("keys", "field", "value"), [
    ("*78", "do_not_disturb", True), ("*79", "do_not_disturb", False),
    ("*77", "anonymous_rejection", True), ("*87", "anonymous_rejection", False),
    ("*725551234#", "forward_all", "5551234"), ("*73", "forward_all", ""),
    ("*905550000#", "forward_busy", "5550000"), ("*93", "forward_no_answer", ""),
])
def test_star_code_switches_the_setting_saves_it_and_confirms(keys, field, value) -> None:
    p, agent = station(forward_all="99", forward_no_answer="98")
    out = dial(p, keys)
    assert getattr(p.lines[0], field) == value
    assert [a for a in out if isinstance(a, SaveLineSetting)] == [SaveLineSetting(0, field, value)]
    assert tones(out) == ["dial", "stutter_dial"]  # confirmation, then dial tone again
    assert p.lines[0].fxs.state is LineState.DIAL_TONE and agent.made("invite") == []


def test_a_number_can_be_dialled_after_a_star_code() -> None:
    p, agent = station()
    dial(p, "*78")
    for i, key in enumerate("5551234#"):
        p.dtmf(0, key, T0 + 5 + i * 0.2)
    assert [r[2] for r in agent.made("invite")] == ["5551234"]


def test_code_not_given_a_number_does_not_complete() -> None:
    p, _agent = station()
    dial(p, "*72")
    assert p.lines[0].forward_all == "" and p.lines[0].fxs.state is LineState.DIALING


# --- incoming-call features -------------------------------------------------------------------

def test_do_not_disturb_forwards_to_forward_busy_with_the_reason() -> None:
    p, agent = station(do_not_disturb=True, forward_busy="5550000")
    assert p.sip_event(incoming(), T0) == []
    assert agent.made("redirect") == [("redirect", "in-1", ["5550000"], T0,
                                       {"diversion": "do-not-disturb"})]
    assert rings([]) == [] and p.calls == {}


def test_forward_all_redirects_at_once_without_ringing() -> None:
    p, agent = station(forward_all="sip:desk@pbx.test")
    out = p.sip_event(incoming(), T0)
    assert rings(out) == [] and agent.made("ring") == []
    assert agent.made("redirect") == [("redirect", "in-1", ["sip:desk@pbx.test"], T0,
                                       {"diversion": "unconditional"})]


def test_busy_line_forwards_to_forward_busy() -> None:
    p, agent = station(forward_busy="5550000", call_waiting=False)
    p.hook(0, True, T0)
    p.sip_event(incoming(), T0 + 1)
    assert agent.made("redirect")[0][-1] == {"diversion": "user-busy"}
    assert agent.made("reject") == []


def test_no_answer_forwarding_after_the_ring_time() -> None:
    p, agent = station(forward_no_answer="5550000", no_answer_s=12)
    out = p.sip_event(incoming(), T0)
    assert rings(out) and p.next_deadline() is not None
    p.timer(T0 + 11.9)
    assert agent.made("redirect") == []
    out = p.timer(T0 + 12)
    assert StopRing() in commands(out) and p.lines[0].fxs.state is LineState.IDLE
    assert agent.made("redirect") == [("redirect", "in-1", ["5550000"], T0 + 12,
                                       {"diversion": "no-answer"})]
    assert p.calls == {}


def test_answering_in_time_stops_no_answer_forwarding() -> None:
    p, agent = station(forward_no_answer="5550000", no_answer_s=12)
    p.sip_event(incoming(), T0)
    p.hook(0, True, T0 + 5)
    p.timer(T0 + 30)
    assert agent.made("redirect") == [] and p.call_deadline() is None


def test_anonymous_caller_is_refused_with_433_when_rejection_is_on() -> None:
    p, agent = station(anonymous_rejection=True)
    p.sip_event(incoming(caller=caller("sip:anonymous@anonymous.invalid", "Anonymous")), T0)
    assert agent.made("reject") == [("reject", "in-1", 433, "Anonymity Disallowed", T0)]
    out = p.sip_event(incoming(call="in-2"), T0 + 1)  # a caller who shows the number rings
    assert rings(out) and "in-2" in p.calls


def test_anonymous_caller_rings_when_rejection_is_off() -> None:
    p, agent = station()
    out = p.sip_event(incoming(privacy=("id",)), T0)
    assert rings(out) and agent.made("reject") == []


# --- calls out ---------------------------------------------------------------------------------

def test_star_67_hides_our_identity_for_one_call() -> None:
    p, agent = station()
    dial(p, "*675551234#")
    [invite] = agent.made("invite")
    assert invite[2] == "5551234" and invite[-1] == {"anonymous": True}


def test_hide_caller_id_setting_applies_to_every_call_and_82_shows_it_once() -> None:
    p, agent = station(hide_caller_id=True)
    dial(p, "5551234#")
    hang_up(p, T0 + 5)
    dial(p, "*825551234#", T0 + 10)
    assert [r[-1] for r in agent.made("invite")] == [{"anonymous": True}, {}]


def test_emergency_calls_never_withhold_the_number() -> None:
    p, agent = station(hide_caller_id=True)
    dial(p, "911")
    assert agent.made("invite")[0][2] == "911" and agent.made("invite")[0][-1] == {}


def test_call_return_and_redial() -> None:
    p, agent = station()
    p.sip_event(incoming(), T0)
    p.sip_event(CallEnded("in-1", 487, "Request Terminated", "remote"), T0 + 1)
    dial(p, "*69", T0 + 10)
    hang_up(p, T0 + 15)
    dial(p, "*66", T0 + 20)
    assert [r[2] for r in agent.made("invite")] == ["2125551234", "2125551234"]


def test_call_return_with_no_caller_yet_plays_reorder() -> None:
    p, agent = station()
    out = dial(p, "*69")
    assert tones(out)[-1] == "congestion" and agent.made("invite") == []


def test_voicemail_code_dials_the_accounts_voicemail_number() -> None:
    p, agent = station(voicemail="8500")
    dial(p, "*98")
    assert agent.made("invite")[0][2] == "8500"


def test_star_70_turns_call_waiting_off_for_that_call() -> None:
    p, agent = station(call_waiting=True)
    dial(p, "*705551234#")
    [call] = p.calls
    p.sip_event(CallAnswered(call, media()), T0 + 5)
    p.sip_event(incoming(call="in-2"), T0 + 6)
    assert agent.made("reject") == [("reject", "in-2", 486, "Busy Here", T0 + 6)]


def test_fallback_account_places_calls_while_the_lines_registration_failed() -> None:
    agent = FeatureAgent(accounts=("acct", "backup"), failed={"acct"})
    p, _ = station(agent, fallback_account="backup")
    dial(p, "5551234#")
    assert agent.made("invite")[0][1] == "backup"


def test_no_account_in_service_gives_congestion_at_once() -> None:
    agent = FeatureAgent(failed={"acct"})
    p, _ = station(agent)
    out = dial(p, "5551234#")
    assert tones(out)[-1] == "congestion" and agent.made("invite") == []
    hang_up(p, T0 + 10)
    dial(p, "911", T0 + 30)  # emergency goes out on the failed account anyway
    assert [(r[1], r[2]) for r in agent.made("invite")] == [("acct", "911")]


def test_calls_to_the_fallback_account_ring_the_line() -> None:
    p, agent = station(fallback_account="backup")
    out = p.sip_event(incoming(account="backup"), T0)
    assert rings(out) and agent.made("ring") == [("ring", "in-1", T0)]


# --- transfer failures -------------------------------------------------------------------------

def test_a_failed_transfer_rings_the_held_party_back() -> None:
    p, agent = station()
    p.sip_event(incoming(), T0)
    p.hook(0, True, T0 + 1)
    p.sip_event(CallAnswered("in-1", media()), T0 + 1.1)
    p.hook(0, False, T0 + 5)  # flash: hold, recall dial tone
    p.hook(0, True, T0 + 5.5)
    for i, key in enumerate("5551234#"):
        p.dtmf(0, key, T0 + 6 + i * 0.2)
    hang_up(p, T0 + 10)  # blind transfer while it rings
    assert agent.made("transfer") == [("transfer", "in-1", "5551234", T0 + 12, {})]
    out = p.sip_event(TransferProgress("in-1", 486, "Busy Here"), T0 + 12)
    assert rings(out) and p.calls["in-1"].recalling


# --- the voice menu and spoken intercepts -------------------------------------------------------

FACTS = DeviceFacts(addresses=("192.168.1.20",), registrations=(("acct", True),),
                    version="0.1.0")


def menu_station(**features) -> tuple[Phone, FeatureAgent]:
    p, agent = station(**features)
    p.facts = lambda: FACTS
    return p, agent


def prompts(out: list) -> list[tuple[str, ...]]:
    return [a.clips for a in out if isinstance(a, PlayPrompt)]


def test_star_star_star_opens_the_voice_menu_and_key_1_reads_the_address() -> None:
    p, agent = menu_station()
    out = dial(p, "***")
    assert prompts(out) and prompts(out)[0][0] == "hello" and 0 in p.menus
    assert agent.made("invite") == []
    out = p.dtmf(0, "1", T0 + 3)  # a key during the greeting cuts it short
    assert prompts(out) == [("letters/i", "letters/p", "digits/1", "digits/9", "digits/2",
                             "letters/dot", "digits/1", "digits/6", "digits/8", "letters/dot",
                             "digits/1", "letters/dot", "digits/2", "digits/0")]
    assert p.prompt_finished(0, T0 + 10) == []
    out = hang_up(p, T0 + 12)
    assert StopPrompt(0) in out and 0 not in p.menus


def test_without_prompts_there_is_no_menu() -> None:
    p, _ = station()
    out = dial(p, "***")
    assert tones(out)[-1] == "congestion" and p.menus == {}


def test_password_reset_needs_the_hook_sequence_at_the_phone() -> None:
    p, _ = menu_station()
    dial(p, "***")
    p.dtmf(0, "9", T0 + 3)
    out = p.dtmf(0, "1", T0 + 4)
    assert p.menus[0].awaiting_presence and not any(isinstance(a, ClearWebPassword) for a in out)
    p.prompt_finished(0, T0 + 6)
    resets: list = []
    t = T0 + 7
    resets += hang_up(p, t)
    for lift in range(3):  # lift, hang up, lift, hang up, lift: 1.5 s each way
        t += 1.5
        resets += p.hook(0, True, t)
        if lift < 2:
            t += 1.5
            resets += hang_up(p, t)
    assert [a for a in resets if isinstance(a, ClearWebPassword)] == [ClearWebPassword(0)]
    assert "dial" not in tones(resets)  # the lifts of the sequence get no dial tone


def test_a_hook_sequence_too_slow_never_resets_the_password() -> None:
    p, _ = menu_station()
    dial(p, "***")
    p.dtmf(0, "9", T0 + 3)
    p.dtmf(0, "1", T0 + 4)
    out, t = hang_up(p, T0 + 7), T0 + 7.0
    for _ in range(3):  # three lifts, but 8 s apart: past the 15 s window
        t += 4
        out += p.hook(0, True, t)
        t += 4
        out += hang_up(p, t)
    out += p.timer(t + 60)
    assert not any(isinstance(a, ClearWebPassword) for a in out) and p.menus == {}


def test_number_not_in_service_gets_sit_then_the_intercept_then_reorder() -> None:
    p, _ = menu_station()
    dial(p, "5551234#")
    [call] = p.calls
    out = p.sip_event(CallEnded(call, 404, "Not Found", "remote"), T0 + 5)
    assert tones(out) == ["sit"] and prompts(out) == []
    due = p.next_deadline()
    assert due is not None and T0 + 5 < due < T0 + 7  # after SIT's three tones
    out = p.timer(due)
    assert prompts(out) == [("ss-noservice",)]
    out = p.prompt_finished(0, due + 4)
    assert tones(out) == ["congestion"]


def test_hanging_up_during_sit_cancels_the_intercept() -> None:
    p, _ = menu_station()
    dial(p, "5551234#")
    [call] = p.calls
    p.sip_event(CallEnded(call, 484, "Address Incomplete", "remote"), T0 + 5)
    hang_up(p, T0 + 5.2)
    assert prompts(p.timer(T0 + 10)) == []


def test_a_star_code_at_recall_dial_tone_keeps_the_held_call_a_flash_away() -> None:
    p, _ = menu_station()
    p.sip_event(incoming(), T0)
    p.hook(0, True, T0 + 1)
    p.sip_event(CallAnswered("in-1", media()), T0 + 1.1)
    p.hook(0, False, T0 + 5)  # flash: hold, recall dial tone
    p.hook(0, True, T0 + 5.5)
    for i, key in enumerate("*78"):
        p.dtmf(0, key, T0 + 6 + i * 0.2)
    assert p.lines[0].do_not_disturb and p.calls["in-1"].held
    out = p.hook(0, False, T0 + 8) + p.hook(0, True, T0 + 8.5)  # flash: back to the call
    assert not p.calls["in-1"].held and any(isinstance(a, AttachMedia) for a in out)


def test_no_voice_menu_while_a_call_is_held() -> None:
    p, _ = menu_station()
    p.sip_event(incoming(), T0)
    p.hook(0, True, T0 + 1)
    p.sip_event(CallAnswered("in-1", media()), T0 + 1.1)
    p.hook(0, False, T0 + 5)
    p.hook(0, True, T0 + 5.5)
    out = []
    for i, key in enumerate("***"):
        out += p.dtmf(0, key, T0 + 6 + i * 0.2)
    assert p.menus == {} and tones(out)[-1] == "congestion"
