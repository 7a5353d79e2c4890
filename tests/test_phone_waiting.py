"""Call waiting on one line (issue 7 item 3), on scripted SIP events and a recording agent: the
second call's tone, CAS and off-hook caller ID, flash to take it and to swap (the other call on
hold by re-INVITE), and what hanging up with a call on hold or waiting does."""

from __future__ import annotations

import dataclasses

from test_phone import RTP, T0, RecordingAgent, caller, dial, incoming, media, phone, run
from test_phone_support import commands, fxs, linefeeds, mdmf, rings, tones
from tipring.hal.api import Linefeed
from tipring.line.fxs import LineState
from tipring.line.signals import MuteFarEnd, PlayTone, SendCallerId, StopRing, StopTone
from tipring.phone import AttachMedia, DetachMedia, LineSetup, Phone, SendDigit
from tipring.sip.session import CallAnswered, CallEnded, IncomingCall, MediaChanged
from tipring.sip.uri import parse_uri

CAROL = caller("sip:3035550199@pbx.test", "Carol Jones")
HELD = dataclasses.replace(media(), send=True, receive=False)  # our side after a=sendonly


def in_call(**features) -> tuple[Phone, RecordingAgent, str]:
    """The subscriber dialled 2001 and is talking (line connected, media attached)."""
    features.setdefault("call_waiting", True)
    p, agent = phone(**features)
    dial(p, "2001#")
    [call] = p.calls
    p.sip_event(CallAnswered(call, media()), T0 + 5)
    assert p.lines[0].fxs.state is LineState.CONNECTED
    return p, agent, call


def second(p: Phone, at: float, call: str = "in-2") -> list:
    return p.sip_event(incoming(call, caller=CAROL), at)


def flash(p: Phone, at: float) -> list:
    """A 0.5 s hook flash, and whatever the line decides up to a second later."""
    out = p.hook(0, False, at) + p.hook(0, True, at + 0.5)
    return out + run(p, at + 1.5)


def waiting_call(**features) -> tuple[Phone, RecordingAgent, str]:
    p, agent, first = in_call(**features)
    second(p, T0 + 10)
    run(p, T0 + 12)
    return p, agent, first


def answered_second(**features) -> tuple[Phone, RecordingAgent, str]:
    """Talking to the second caller; the first call on hold (its hold answered)."""
    p, agent, first = waiting_call(**features)
    flash(p, T0 + 20)
    p.sip_event(CallAnswered("in-2", media(port=30010)), T0 + 21)
    p.sip_event(MediaChanged(first, HELD), T0 + 21)
    return p, agent, first


# --- the waiting call's alerting ----------------------------------------------------------

def test_a_second_call_waits_with_tone_cas_and_off_hook_caller_id() -> None:
    p, agent, first = in_call()
    out = second(p, T0 + 10)
    assert agent.made("reject") == []
    assert agent.made("ring") == [("ring", "in-2", T0 + 10)]  # 180 Ringing to the caller
    assert p.calls["in-2"].state == "waiting" and p.calls[first].state == "connected"
    # The far end is muted under the call-waiting tone; nothing rings, no media changes.
    assert MuteFarEnd(True) in commands(out) and tones(out) == ["call_waiting"]
    assert rings(out) == [] and [a for a in out if not hasattr(a, "commands")] == []
    assert p.lines[0].fxs.state is LineState.CALL_WAITING
    # CAS after the tone; the phone ACKs with DTMF D; the FSK follows, off hook.
    cas_at = p.next_deadline()
    out = p.timer(cas_at)
    assert tones(out) == ["cas"]
    ack = p.dtmf(0, "D", cas_at + 0.15)  # CAS is 80 ms; the ACK comes within the window
    assert ack == []  # the ACK is the line's, not a digit for the far end
    out = run(p, T0 + 12)
    [burst] = [c for c in commands(out) if isinstance(c, SendCallerId)]
    assert not burst.on_hook
    fields = mdmf(burst)
    assert fields[0x02] == b"3035550199" and fields[0x07] == b"Carol Jones"
    assert MuteFarEnd(False) in commands(out)
    assert p.lines[0].fxs.state is LineState.CONNECTED


def test_without_call_waiting_a_second_call_is_busy() -> None:
    p, agent, first = in_call(call_waiting=False)
    assert second(p, T0 + 10) == []
    assert agent.made("reject") == [("reject", "in-2", 486, "Busy Here", T0 + 10)]
    assert list(p.calls) == [first] and p.lines[0].fxs.state is LineState.CONNECTED


def test_do_not_disturb_wins_over_call_waiting() -> None:
    p, agent, _ = in_call(do_not_disturb=True)
    second(p, T0 + 10)
    assert agent.made("reject") == [("reject", "in-2", 486, "Busy Here", T0 + 10)]


def test_call_waiting_needs_a_call_to_wait_behind() -> None:
    """Off hook with dial tone (no call) is still busy: there is nothing to wait behind."""
    p, agent = phone(call_waiting=True)
    p.hook(0, True, T0)
    second(p, T0 + 1)
    assert agent.made("reject") == [("reject", "in-2", 486, "Busy Here", T0 + 1)]


def test_a_third_call_is_busy() -> None:
    p, agent, _ = waiting_call()
    p.sip_event(incoming("in-3"), T0 + 13)
    assert agent.made("reject") == [("reject", "in-3", 486, "Busy Here", T0 + 13)]
    p, agent, _ = answered_second()
    p.sip_event(incoming("in-3"), T0 + 30)
    assert agent.made("reject") == [("reject", "in-3", 486, "Busy Here", T0 + 30)]


def test_waiting_caller_giving_up_stops_the_signal_and_the_call_goes_on() -> None:
    p, agent, first = in_call()
    second(p, T0 + 10)
    out = p.sip_event(CallEnded("in-2", 487, "Request Terminated", "remote"), T0 + 10.3)
    assert StopTone() in commands(out) and MuteFarEnd(False) in commands(out)
    assert [a for a in out if isinstance(a, DetachMedia)] == []
    assert p.lines[0].fxs.state is LineState.CONNECTED and list(p.calls) == [first]
    assert commands(run(p, T0 + 60)) == []  # no CAS, no repeated beep
    assert agent.made("hangup") == [] and agent.made("hold") == []


# --- flash: take the waiting call, swap ---------------------------------------------------

def test_flash_holds_the_call_and_answers_the_waiting_one() -> None:
    p, agent, first = waiting_call()
    out = flash(p, T0 + 20)
    assert agent.made("hold") == [("hold", first, T0 + 20.5)]
    [(_, call, policy, now)] = agent.made("answer")
    assert (call, (policy.address, policy.port), now) == ("in-2", RTP, T0 + 20.5)
    assert DetachMedia(0, first) in out
    assert p.calls[first].held and p.calls["in-2"].state == "answering"
    out = p.sip_event(CallAnswered("in-2", media(port=30010)), T0 + 21)
    assert out == [AttachMedia(0, "in-2", media(port=30010), RTP, early=False)]
    # The hold's answer does not put the held call's stream back on the line.
    assert p.sip_event(MediaChanged(first, HELD), T0 + 21) == []
    assert p.calls[first].media == HELD
    # Digits go to the call the subscriber is talking to.
    assert p.dtmf(0, "5", T0 + 25) == [SendDigit(0, "in-2", "5", 100)]


def test_flash_while_the_tone_still_sounds_stops_it() -> None:
    p, agent, _ = in_call()
    second(p, T0 + 10)
    out = p.hook(0, False, T0 + 10.1) + p.hook(0, True, T0 + 10.6)
    assert StopTone() in commands(out) and MuteFarEnd(False) in commands(out)
    assert [r[1] for r in agent.made("answer")] == ["in-2"]
    assert commands(run(p, T0 + 60)) == []  # the alerting is over: no CAS, no FSK


def test_further_flashes_swap_between_the_two_calls() -> None:
    p, agent, first = answered_second()
    out = flash(p, T0 + 30)
    assert agent.made("hold") == [("hold", first, T0 + 20.5), ("hold", "in-2", T0 + 30.5)]
    assert agent.made("resume") == [("resume", first, T0 + 30.5)]
    assert out == [DetachMedia(0, "in-2"), AttachMedia(0, first, HELD, RTP, early=False)]
    assert p.calls["in-2"].held and not p.calls[first].held
    # The resume's answer brings the media back to both ways.
    assert p.sip_event(MediaChanged(first, media()), T0 + 31) == [
        AttachMedia(0, first, media(), RTP, early=False)]
    assert p.sip_event(MediaChanged("in-2", HELD), T0 + 31) == []
    assert p.dtmf(0, "7", T0 + 32) == [SendDigit(0, first, "7", 100)]
    # And back again.
    out = flash(p, T0 + 40)
    assert agent.made("resume")[-1] == ("resume", "in-2", T0 + 40.5)
    assert agent.made("hold")[-1] == ("hold", first, T0 + 40.5)
    assert out[0] == DetachMedia(0, first) and out[-1].call == "in-2"
    assert agent.made("hangup") == []


def test_flash_before_the_waiting_call_is_up_does_nothing_more() -> None:
    p, agent, _ = waiting_call()
    flash(p, T0 + 20)
    assert flash(p, T0 + 20.8) == []  # in-2 is still being answered: nothing to swap to
    assert len(agent.made("hold")) == 1 and agent.made("resume") == []


def test_flash_in_a_single_call_holds_it_for_recall_dial_tone_and_flash_takes_it_back() -> None:
    p, agent, first = in_call()
    out = flash(p, T0 + 10)
    assert agent.made("hold") == [("hold", first, T0 + 10.5)] and p.calls[first].held
    assert out[0] == DetachMedia(0, first) and tones(out) == ["stutter_dial"]
    assert p.lines[0].fxs.state is LineState.DIAL_TONE and p.lines[0].fxs.recall
    out = flash(p, T0 + 15)  # changed their mind: back to the call
    assert agent.made("resume") == [("resume", first, T0 + 15.5)] and not p.calls[first].held
    assert p.lines[0].fxs.state is LineState.CONNECTED
    assert isinstance(out[-1], AttachMedia) and out[-1].call == first


# --- the other party leaves -----------------------------------------------------------------

def test_held_party_hanging_up_leaves_the_talk_undisturbed() -> None:
    p, _, first = answered_second()
    out = p.sip_event(CallEnded(first, 200, "BYE", "remote"), T0 + 30)
    assert out == [] and list(p.calls) == ["in-2"]
    assert p.lines[0].fxs.state is LineState.CONNECTED
    # Nothing left to swap to: a flash is now the single call's (hold, recall dial tone).
    assert tones(flash(p, T0 + 40)) == ["stutter_dial"] and p.calls["in-2"].held


def test_talking_party_hanging_up_keeps_the_held_call_and_a_flash_takes_it_back() -> None:
    p, agent, first = answered_second()
    out = p.sip_event(CallEnded("in-2", 200, "BYE", "remote"), T0 + 30)
    assert out == [DetachMedia(0, "in-2")]  # no disconnect signal: a call is still on the line
    assert p.lines[0].fxs.state is LineState.CONNECTED and list(p.calls) == [first]
    out = flash(p, T0 + 35)
    assert agent.made("resume") == [("resume", first, T0 + 35.5)]
    assert out == [AttachMedia(0, first, HELD, RTP, early=False)]


def test_talking_party_hanging_up_with_one_waiting_a_flash_answers_it() -> None:
    p, agent, first = in_call()
    second(p, T0 + 10)
    p.sip_event(CallEnded(first, 200, "BYE", "remote"), T0 + 11)
    assert list(p.calls) == ["in-2"] and p.lines[0].fxs.state is not LineState.PARKED
    flash(p, T0 + 13)
    assert agent.made("hold") == [] and [r[1] for r in agent.made("answer")] == ["in-2"]


def test_last_held_party_hanging_up_is_a_disconnect() -> None:
    p, _, first = answered_second()
    p.sip_event(CallEnded("in-2", 200, "BYE", "remote"), T0 + 30)
    out = p.sip_event(CallEnded(first, 200, "BYE", "remote"), T0 + 31)
    assert linefeeds(out) == [Linefeed.OPEN] and p.calls == {}
    assert DetachMedia(0, first) not in out  # its stream left the line when it was held


# --- hanging up with a call on hold or waiting ----------------------------------------------

def test_hanging_up_with_a_call_on_hold_rings_back_and_lifting_resumes_it() -> None:
    p, agent, first = answered_second()  # talking to Carol (in-2), 2001 on hold
    p.sip_event(MediaChanged("in-2", media(port=30010)), T0 + 22)
    flash(p, T0 + 30)  # talking to 2001, Carol on hold
    p.sip_event(MediaChanged(first, media()), T0 + 31)
    out = p.hook(0, False, T0 + 40) + run(p, T0 + 41.2)
    assert agent.made("hangup") == [("hangup", first, T0 + 41.1)]
    assert DetachMedia(0, first) in out
    assert [r.cadence for r in rings(out)] == [p.lines[0].fxs.profile.ring]
    assert p.lines[0].fxs.state is LineState.RINGING and list(p.calls) == ["in-2"]
    out = run(p, T0 + 48)  # on-hook caller ID of the held caller in the first silence
    [burst] = [c for c in commands(out) if isinstance(c, SendCallerId)]
    assert burst.on_hook and mdmf(burst)[0x02] == b"3035550199"
    out = p.hook(0, True, T0 + 49)
    assert StopRing() in commands(out)
    assert agent.made("resume")[-1] == ("resume", "in-2", T0 + 49)
    assert agent.made("answer") == [("answer", "in-2", agent.made("answer")[0][2],
                                     T0 + 20.5)]  # no second answer
    assert out[-1] == AttachMedia(0, "in-2", p.calls["in-2"].media, RTP, early=False)
    assert not p.calls["in-2"].held and p.lines[0].fxs.state is LineState.CONNECTED


def test_held_outgoing_call_is_rung_back_with_the_dialled_number() -> None:
    p, agent, first = answered_second()
    out = p.hook(0, False, T0 + 30) + run(p, T0 + 38)
    assert agent.made("hangup") == [("hangup", "in-2", T0 + 31.1)]
    [burst] = [c for c in commands(out) if isinstance(c, SendCallerId)]
    assert mdmf(burst)[0x02] == b"2001"
    p.hook(0, True, T0 + 39)
    assert agent.made("resume") == [("resume", first, T0 + 39)]


def test_held_caller_giving_up_during_the_ring_back_stops_it() -> None:
    p, _, first = answered_second()
    p.hook(0, False, T0 + 30)
    run(p, T0 + 32)
    out = p.sip_event(CallEnded(first, 200, "BYE", "remote"), T0 + 33)
    assert StopRing() in commands(out) and p.calls == {}
    assert p.lines[0].fxs.state is LineState.IDLE
    assert rings(run(p, T0 + 60)) == []


def test_hanging_up_with_one_waiting_ends_the_call_and_rings_for_the_waiting_one() -> None:
    p, agent, first = waiting_call()
    out = p.hook(0, False, T0 + 20) + run(p, T0 + 21.2)
    assert agent.made("hangup") == [("hangup", first, T0 + 21.1)]
    assert DetachMedia(0, first) in out and rings(out)
    assert list(p.calls) == ["in-2"] and p.calls["in-2"].state == "ringing"
    out = run(p, T0 + 28)
    [burst] = [c for c in commands(out) if isinstance(c, SendCallerId)]
    assert mdmf(burst)[0x07] == b"Carol Jones"
    p.hook(0, True, T0 + 29)
    assert [r[1] for r in agent.made("answer")] == ["in-2"]
    assert agent.made("hold") == [] and agent.made("resume") == []
    assert p.sip_event(CallAnswered("in-2", media(port=30010)), T0 + 29) == [
        AttachMedia(0, "in-2", media(port=30010), RTP, early=False)]


def test_waiting_call_rings_with_its_distinctive_ring() -> None:
    p, _, _ = in_call()
    p.sip_event(IncomingCall("in-2", "acct", CAROL, parse_uri("sip:acct@192.0.2.10"),
                             alert_info="<http://127.0.0.1/Bellcore-dr2>"), T0 + 10)
    out = p.hook(0, False, T0 + 20) + run(p, T0 + 21.2)
    expected = p.lines[0].fxs.profile.ring_for("Bellcore-dr2").cadence
    assert [r.cadence for r in rings(out)] == [expected]


def test_only_the_line_with_call_waiting_on_takes_a_second_call() -> None:
    agent = RecordingAgent()
    p = Phone(agent, {0: LineSetup(fxs(), "acct", RTP, call_waiting=True),
                      1: LineSetup(fxs(), "acct", ("192.0.2.10", 16002))})
    p.hook(1, True, T0)  # line 1 off hook, line 0 in a call
    dial(p, "2001#")
    [call] = p.calls
    p.sip_event(CallAnswered(call, media()), T0 + 5)
    out = second(p, T0 + 10)
    assert agent.made("reject") == [] and p.calls["in-2"].line == 0
    assert PlayTone in {type(c) for c in commands(out, line=0)} and commands(out, line=1) == []


def test_hanging_up_alone_with_the_held_call_rings_it_back() -> None:
    p, agent, first = answered_second()
    p.sip_event(CallEnded("in-2", 200, "BYE", "remote"), T0 + 30)
    out = p.hook(0, False, T0 + 35) + run(p, T0 + 36.2)
    assert agent.made("hangup") == []  # nothing was talking: the held call is not ended
    assert rings(out) and p.lines[0].fxs.state is LineState.RINGING
    out = p.hook(0, True, T0 + 38)
    assert agent.made("resume") == [("resume", first, T0 + 38)]
    assert out[-1] == AttachMedia(0, first, HELD, RTP, early=False)
