"""The phone's call control on scripted SIP events and line inputs (a recording agent)."""

from __future__ import annotations

import dataclasses
import datetime
import itertools

import pytest

from test_phone_support import PLAN, commands, fxs, linefeeds, mdmf, rings, tones
from tipring.config.schema import AccountConfig
from tipring.hal.api import Linefeed
from tipring.line.fxs import LineState
from tipring.line.signals import DialedNumber, SendCallerId, StartRing, StopRing, StopTone
from tipring.media.dsp import Absence
from tipring.phone import AttachMedia, DetachMedia, LineSetup, Phone, SendDigit
from tipring.sdp import NegotiatedMedia
from tipring.sip.headers import NameAddr
from tipring.sip.session import CallAnswered, CallEnded, CallProgress, IncomingCall, MediaChanged
from tipring.sip.uri import parse_uri

T0 = 100.0
RTP = ("192.0.2.10", 16000)


class Live:
    """The agent's sessions: every call is live unless a test ends it."""

    def __init__(self) -> None:
        self.ended: set[str] = set()

    def __contains__(self, call: object) -> bool:
        return call not in self.ended


class RecordingAgent:
    """Stands in for `UserAgent`: records what the phone asks of it."""

    def __init__(self, accounts=("acct",)) -> None:
        self.accounts = {a: object() for a in accounts}
        self.sessions = Live()
        self.requests: list[tuple] = []
        self._ids = itertools.count(1)

    def invite(self, account, target, media, now):
        call = f"out-{next(self._ids)}"
        self.requests.append(("invite", account, target, media, now))
        return call

    def __getattr__(self, name):
        if name in ("ring", "answer", "reject", "hangup", "send_dtmf", "cancel", "hold",
                    "resume"):
            return lambda *args: self.requests.append((name, *args))
        raise AttributeError(name)

    def made(self, name):
        return [r for r in self.requests if r[0] == name]


def media(address="198.51.100.7", port=30000, pt=0, events=101) -> NegotiatedMedia:
    return NegotiatedMedia(0, address, port, "PCMU" if pt == 0 else "PCMA", pt, events,
                           frozenset(range(16)), None, {pt: "PCMU"})


def phone(account="acct", region="US", plan=PLAN, agent=None, **features):
    agent = agent or RecordingAgent()
    line = LineSetup(fxs(region, plan), account, RTP, **features)
    return Phone(agent, {0: line}, local_time=lambda: datetime.datetime(2026, 3, 4, 5, 6)), agent


def dial(p: Phone, digits: str, at: float = T0) -> list:
    out = p.hook(0, True, at)
    for i, d in enumerate(digits):
        out += p.dtmf(0, d, at + 1 + i * 0.2)
    return out


def run(p: Phone, until: float) -> list:
    out = []
    while (d := p.next_deadline()) is not None and d <= until:
        out += p.timer(d)
    return out


def caller(uri: str, name: str | None = None) -> NameAddr:
    return NameAddr(parse_uri(uri), name)


def incoming(call="in-1", account="acct", **kw) -> IncomingCall:
    kw.setdefault("caller", caller("sip:2125551234@pbx.test", "Bob Smith"))
    return IncomingCall(call, account, callee=parse_uri("sip:acct@192.0.2.10"), **kw)


# --- outgoing ------------------------------------------------------------------------------

def test_dialled_number_is_invited_on_the_line_account_with_its_rtp_address() -> None:
    p, agent = phone(codecs=("PCMA",))
    out = dial(p, "2001#")
    assert tones(out) == ["dial"]
    [(_, account, target, policy, now)] = agent.made("invite")
    assert (account, target, now) == ("acct", "2001", T0 + 1 + 4 * 0.2)
    assert (policy.address, policy.port, policy.codecs) == ("192.0.2.10", 16000, ("PCMA",))
    [call] = p.calls.values()
    assert (call.line, call.direction, call.state, call.number) == (0, "outgoing", "calling",
                                                                    "2001")


def test_180_plays_local_ringback_and_answer_connects_and_attaches_media() -> None:
    p, _ = phone()
    dial(p, "2001#")
    [call] = p.calls
    out = p.sip_event(CallProgress(call, 180, "Ringing"), T0 + 3)
    assert tones(out) == ["ringback"]
    assert p.lines[0].fxs.tone == "ringback"
    out = p.sip_event(CallAnswered(call, media()), T0 + 9)
    assert StopTone() in commands(out)  # ringback stops on answer
    assert p.lines[0].fxs.state is LineState.CONNECTED
    assert out[-1] == AttachMedia(0, call, media(), RTP, early=False)


def test_183_with_early_media_stops_ringback_and_attaches_early() -> None:
    p, _ = phone()
    dial(p, "2001#")
    [call] = p.calls
    p.sip_event(CallProgress(call, 180, "Ringing"), T0 + 3)
    out = p.sip_event(CallProgress(call, 183, "Session Progress", media(port=30002)), T0 + 4)
    assert commands(out) == [StopTone()]
    assert out[-1] == AttachMedia(0, call, media(port=30002), RTP, early=True)
    # A later 180 must not drown the far end's audio in local ringback.
    assert p.sip_event(CallProgress(call, 180, "Ringing"), T0 + 5) == []
    # Digits typed during early media (an IVR) go out as RFC 4733 events.
    assert p.dtmf(0, "5", T0 + 6) == [SendDigit(0, call, "5", 100)]
    # The answer with the same media keeps the stream; the line is connected.
    out = p.sip_event(CallAnswered(call, media(port=30002)), T0 + 7)
    assert [a for a in out if isinstance(a, AttachMedia)] == []
    assert p.lines[0].fxs.state is LineState.CONNECTED


def test_answer_with_other_media_than_the_early_media_reattaches() -> None:
    p, _ = phone()
    dial(p, "2001#")
    [call] = p.calls
    p.sip_event(CallProgress(call, 183, "Session Progress", media(port=30002)), T0 + 4)
    out = p.sip_event(CallAnswered(call, media(port=30004)), T0 + 7)
    assert out[-1] == AttachMedia(0, call, media(port=30004), RTP, early=False)


def test_stream_config_for_the_runtime() -> None:
    attach = AttachMedia(0, "c", media(pt=8, events=101), RTP)
    config = attach.stream_config()
    assert config is not None
    assert (config.payload_type, config.remote, config.event_payload_type) == (
        8, ("198.51.100.7", 30000), 101)
    assert AttachMedia(0, "c", media(address=None), RTP).stream_config() is None


def test_183_without_sdp_gives_local_ringback() -> None:
    p, _ = phone()
    dial(p, "2001#")
    [call] = p.calls
    assert tones(p.sip_event(CallProgress(call, 183, "Session Progress"), T0 + 3)) == ["ringback"]


def test_hanging_up_ends_the_call_with_the_agent_and_detaches_media() -> None:
    p, agent = phone()
    dial(p, "2001#")
    [call] = p.calls
    p.sip_event(CallAnswered(call, media()), T0 + 5)
    out = p.hook(0, False, T0 + 20) + run(p, T0 + 22)
    assert out[-1] == DetachMedia(0, call)
    assert agent.made("hangup") == [("hangup", call, pytest.approx(T0 + 21.1))]  # flash window
    assert p.calls == {}
    # Whatever the agent reports about it afterwards is not news to the line.
    assert p.sip_event(CallEnded(call, 200, "BYE", "local"), T0 + 23) == []


def test_hanging_up_after_the_agent_let_the_call_go_asks_nothing_of_it() -> None:
    """The far end's BYE and the hang-up cross: the agent has already forgotten the call
    (its `hangup` would raise) while its CallEnded is still queued."""
    p, agent = phone()
    dial(p, "2001#")
    [call] = p.calls
    p.sip_event(CallAnswered(call, media()), T0 + 5)
    agent.sessions.ended.add(call)
    out = p.hook(0, False, T0 + 20) + run(p, T0 + 22)
    assert agent.made("hangup") == [] and out[-1] == DetachMedia(0, call)
    assert p.sip_event(CallEnded(call, 200, "BYE", "remote"), T0 + 22) == []


def test_hanging_up_before_an_answer_cancels() -> None:
    p, agent = phone()
    dial(p, "2001#")
    [call] = p.calls
    p.sip_event(CallProgress(call, 180, "Ringing"), T0 + 3)
    out = p.hook(0, False, T0 + 5) + run(p, T0 + 7)
    assert agent.made("hangup") == [("hangup", call, pytest.approx(T0 + 6.1))]
    assert not [a for a in out if isinstance(a, DetachMedia)]  # no media was attached
    assert p.sip_event(CallEnded(call, 487, "Request Terminated", "local"), T0 + 8) == []
    assert p.lines[0].fxs.state is LineState.IDLE


def test_far_end_hang_up_detaches_and_signals_the_disconnect() -> None:
    p, _ = phone()
    dial(p, "2001#")
    [call] = p.calls
    p.sip_event(CallAnswered(call, media()), T0 + 5)
    out = p.sip_event(CallEnded(call, 200, "BYE", "remote"), T0 + 30)
    assert out[0] == DetachMedia(0, call)
    assert linefeeds(out) == [Linefeed.OPEN]  # US: open-loop disconnect (CPC)
    assert p.lines[0].fxs.state is LineState.PARKED
    assert tones(run(p, T0 + 32)) == ["dial"]  # then dial tone, as North American ATAs do


@pytest.mark.parametrize(("status", "tone"), [
    (486, "busy"), (600, "busy"), (603, "busy"),
    (503, "congestion"), (500, "congestion"), (408, "congestion"), (480, "congestion"),
    (404, "sit"), (484, "sit"), (410, "sit"),
])
def test_failures_play_what_the_cause_means(status: int, tone: str) -> None:
    p, _ = phone()
    dial(p, "2001#")
    [call] = p.calls
    p.sip_event(CallProgress(call, 180, "Ringing"), T0 + 3)
    out = p.sip_event(CallEnded(call, status, "x", "remote"), T0 + 4)
    assert tones(out) == [tone]
    assert p.calls == {}


def test_failure_after_early_media_detaches_and_plays_the_tone() -> None:
    p, _ = phone()
    dial(p, "2001#")
    [call] = p.calls
    p.sip_event(CallProgress(call, 183, "Session Progress", media()), T0 + 3)
    out = p.sip_event(CallEnded(call, 404, "Not Found", "remote"), T0 + 6)
    assert out[0] == DetachMedia(0, call) and tones(out) == ["sit"]


def test_a_line_without_an_account_plays_the_no_service_tone() -> None:
    p, agent = phone(account="")
    out = dial(p, "2001#")
    assert tones(out) == ["dial", "congestion"]
    assert agent.made("invite") == [] and p.calls == {}


def test_an_account_the_agent_does_not_have_is_no_service_too() -> None:
    p, agent = phone(account="gone")
    assert tones(dial(p, "2001#"))[-1] == "congestion" and agent.made("invite") == []


def test_emergency_number_goes_out_on_any_account_when_the_line_has_none() -> None:
    p, agent = phone(account="", agent=RecordingAgent(accounts=("other",)))
    dial(p, "911")  # complete at once: no send key, no timer
    [(_, account, target, *_)] = agent.made("invite")
    assert (account, target) == ("other", "911")
    assert next(iter(p.calls.values())).emergency


def test_emergency_is_placed_with_do_not_disturb_on_and_despite_a_barring_plan() -> None:
    p, agent = phone(do_not_disturb=True, plan="(9xx!|x.)")
    dial(p, "911")
    assert [r[2] for r in agent.made("invite")] == ["911"]


def test_hot_line_calls_on_lift() -> None:
    p, agent = phone(plan="(S0<:5551234>)")
    out = p.hook(0, True, T0)
    assert tones(out) == []  # no dial tone: the call goes at once
    assert [r[2:3] + r[4:] for r in agent.made("invite")] == [("5551234", T0)]


def test_warm_line_calls_after_its_delay_unless_the_user_dials() -> None:
    p, agent = phone(plan="(P5<:5551234>|x.)")
    assert tones(p.hook(0, True, T0)) == ["dial"]
    run(p, T0 + 4.9)
    assert agent.made("invite") == []
    run(p, T0 + 5)
    assert [r[2:3] + r[4:] for r in agent.made("invite")] == [("5551234", T0 + 5)]
    q, other = phone(plan="(P5<:5551234>|x.)")
    dial(q, "2001#")
    run(q, T0 + 30)
    assert [r[2] for r in other.made("invite")] == ["2001"]


def test_direct_ip_dialling_when_enabled() -> None:
    p, agent = phone(direct_ip=True)
    dial(p, "*47192*168*1*20#")  # Grandstream: *47, then the address with * for dots
    q, other = phone()
    dial(q, "*47192*168*1*20#")
    assert [r[2] for r in agent.made("invite")] == ["sip:192.168.1.20"]
    assert [r[2] for r in other.made("invite")] == ["*47192*168*1*20"]  # off: a number
    r, bad = phone(direct_ip=True)
    dial(r, "*47192*168*1#")  # not an address: dialled as a number
    assert [r[2] for r in bad.made("invite")] == ["*47192*168*1"]


def test_in_call_digits_follow_the_dtmf_mode() -> None:
    p, agent = phone(dtmf="info")
    dial(p, "2001#")
    [call] = p.calls
    p.sip_event(CallAnswered(call, media()), T0 + 5)
    assert p.dtmf(0, "7", T0 + 6) == []
    assert agent.made("send_dtmf") == [("send_dtmf", call, "7", 100, T0 + 6)]
    q, _ = phone()
    dial(q, "2001#")
    [call] = q.calls
    q.sip_event(CallAnswered(call, media(events=None)), T0 + 5)
    assert q.dtmf(0, "7", T0 + 6) == []  # no telephone-event negotiated: in band only


def test_media_change_reattaches() -> None:
    p, _ = phone()
    dial(p, "2001#")
    [call] = p.calls
    p.sip_event(CallAnswered(call, media()), T0 + 5)
    assert p.sip_event(MediaChanged(call, media(port=40000)), T0 + 6) == [
        AttachMedia(0, call, media(port=40000), RTP, early=False)]


# --- incoming ------------------------------------------------------------------------------

def test_incoming_call_rings_with_caller_id_and_sends_180() -> None:
    p, agent = phone()
    out = p.sip_event(incoming(), T0)
    assert agent.made("ring") == [("ring", "in-1", T0)]
    assert [r.cadence for r in rings(out)] == [p.lines[0].fxs.profile.ring]
    out = run(p, T0 + 6.5)
    [burst] = [c for c in commands(out) if isinstance(c, SendCallerId)]
    fields = mdmf(burst)
    assert fields[0x02] == b"2125551234" and fields[0x07] == b"Bob Smith"
    assert fields[0x01] == b"03040506"  # local time from the injected clock (MMDDhhmm)
    assert p.lines[0].fxs.state is LineState.RINGING


def test_alert_info_picks_the_distinctive_ring() -> None:
    p, _ = phone()
    out = p.sip_event(incoming(alert_info="<http://127.0.0.1/Bellcore-dr2>"), T0)
    expected = p.lines[0].fxs.profile.ring_for("Bellcore-dr2").cadence
    assert expected != p.lines[0].fxs.profile.ring
    assert [r.cadence for r in rings(out)] == [expected]


def test_private_caller_is_presented_as_private() -> None:
    p, _ = phone()
    p.sip_event(incoming(privacy=("id",)), T0)
    [burst] = [c for c in commands(run(p, T0 + 6.5)) if isinstance(c, SendCallerId)]
    fields = mdmf(burst)
    assert fields[0x04] == b"P" and fields[0x08] == b"P" and 0x02 not in fields


def test_pick_up_answers_with_the_line_policy_and_attaches() -> None:
    p, agent = phone()
    p.sip_event(incoming(), T0)
    out = p.hook(0, True, T0 + 3)
    assert StopRing() in commands(out)
    [(_, call, policy, now)] = agent.made("answer")
    assert (call, (policy.address, policy.port), now) == ("in-1", RTP, T0 + 3)
    assert p.calls["in-1"].state == "answering"
    out = p.sip_event(CallAnswered("in-1", media()), T0 + 3)
    assert out == [AttachMedia(0, "in-1", media(), RTP, early=False)]
    # The caller hangs up: disconnect signalled, media gone.
    out = p.sip_event(CallEnded("in-1", 200, "BYE", "remote"), T0 + 40)
    assert out[0] == DetachMedia(0, "in-1") and linefeeds(out) == [Linefeed.OPEN]


def test_called_party_hangs_up_with_bye() -> None:
    p, agent = phone()
    p.sip_event(incoming(), T0)
    p.hook(0, True, T0 + 3)
    p.sip_event(CallAnswered("in-1", media()), T0 + 3)
    out = p.hook(0, False, T0 + 10) + run(p, T0 + 12)
    assert agent.made("hangup") == [("hangup", "in-1", pytest.approx(T0 + 11.1))]
    assert DetachMedia(0, "in-1") in out and p.calls == {}


def test_pick_up_crossing_the_callers_cancel() -> None:
    """The agent has already ended the call (CANCEL) when the ring trip comes: nothing is
    answered (the agent would raise), and the queued CallEnded clears the line."""
    p, agent = phone()
    p.sip_event(incoming(), T0)
    agent.sessions.ended.add("in-1")
    p.hook(0, True, T0 + 3)
    assert agent.made("answer") == []
    out = p.sip_event(CallEnded("in-1", 487, "Request Terminated", "remote"), T0 + 3)
    assert linefeeds(out) == [Linefeed.OPEN] and p.calls == {}


def test_caller_gives_up_while_ringing() -> None:
    p, _ = phone()
    p.sip_event(incoming(), T0)
    out = p.sip_event(CallEnded("in-1", 487, "Request Terminated", "remote"), T0 + 2)
    assert StopRing() in commands(out)
    assert p.lines[0].fxs.state is LineState.IDLE and p.calls == {}
    assert run(p, T0 + 30) == []  # nothing left scheduled: no ring, no caller ID


def test_busy_when_off_hook() -> None:
    p, agent = phone()
    p.hook(0, True, T0)
    assert p.sip_event(incoming(), T0 + 1) == []
    assert agent.made("reject") == [("reject", "in-1", 486, "Busy Here", T0 + 1)]
    assert agent.made("ring") == [] and p.calls == {}


def test_busy_during_a_call() -> None:
    p, agent = phone()
    dial(p, "2001#")
    [call] = p.calls
    p.sip_event(CallAnswered(call, media()), T0 + 5)
    p.sip_event(incoming("in-2"), T0 + 6)
    assert agent.made("reject") == [("reject", "in-2", 486, "Busy Here", T0 + 6)]
    assert list(p.calls) == [call]


def test_do_not_disturb_refuses_incoming_calls() -> None:
    p, agent = phone(do_not_disturb=True)
    assert p.sip_event(incoming(), T0) == []
    assert agent.made("reject") == [("reject", "in-1", 486, "Busy Here", T0)]


def test_a_call_for_an_account_no_line_uses_gets_480() -> None:
    p, agent = phone(agent=RecordingAgent(accounts=("acct", "spare")))
    assert p.sip_event(incoming(account="spare"), T0) == []
    assert agent.made("reject") == [("reject", "in-1", 480, "Temporarily Unavailable", T0)]


def test_second_line_rings_when_the_first_is_busy() -> None:
    agent = RecordingAgent()
    p = Phone(agent, {0: LineSetup(fxs(), "acct", RTP), 1: LineSetup(fxs(), "acct",
                                                                      ("192.0.2.10", 16002))})
    p.hook(0, True, T0)
    out = p.sip_event(incoming(), T0 + 1)
    assert rings(out, line=1) and not rings(out, line=0)
    assert p.calls["in-1"].line == 1


def test_events_from_a_runner_driven_line() -> None:
    """`line_event` is the same phone for a runtime whose LineRunner drives the FxsLine."""
    p, agent = phone()
    assert p.line_event(0, DialedNumber("2001", "2001#", "x."), T0) == []
    assert [r[2] for r in agent.made("invite")] == ["2001"]


# --- caller ID -----------------------------------------------------------------------------

def cid(uri, name=None, asserted=None, privacy=()):
    from tipring.phone import caller_id
    return caller_id(caller(uri, name), asserted, privacy)


def test_asserted_identity_wins_over_from() -> None:
    got = cid("sip:anything@pbx.test", "Spoofed", asserted=caller("tel:+12125551234", "Real"))
    assert (got.number, got.name) == ("+12125551234", "Real")


def test_anonymous_from_is_private() -> None:
    got = cid("sip:anonymous@anonymous.invalid", "Anonymous")
    assert (got.number, got.number_absence, got.name_absence) == (None, Absence.PRIVATE,
                                                                 Absence.PRIVATE)


def test_privacy_header_hides_even_an_asserted_identity() -> None:
    got = cid("sip:1001@pbx.test", asserted=caller("sip:1001@pbx.test"), privacy=("id",))
    assert got.number is None and got.number_absence is Absence.PRIVATE


def test_a_name_not_a_number_is_unavailable_number() -> None:
    got = cid("sip:alice@pbx.test")
    assert (got.number, got.number_absence, got.name) == (None, Absence.UNAVAILABLE, "alice")


def test_visual_separators_and_control_characters() -> None:
    got = cid("sip:+1-212-555-1234;isub=9@pbx.test;user=phone", "Tab\tName")
    assert got.number == "+12125551234"
    got = cid("sip:1001@pbx.test", "Jos\u00e9\x07")
    assert got.name is not None and all(" " <= ch <= "~" for ch in got.name)


@pytest.mark.parametrize(("region", "number", "shown"), [
    ("US", "+12125551234", b"2125551234"),
    ("GB", "+442079460000", b"02079460000"),
    ("GB", "+12125551234", b"0012125551234"),
])
def test_plus_numbers_are_shown_per_region(region: str, number: str, shown: bytes) -> None:
    p, _ = phone(region=region)
    p.sip_event(incoming(caller=caller(f"sip:{number}@pbx.test;user=phone")), T0)
    bursts = [c for c in commands(run(p, T0 + 8)) if isinstance(c, SendCallerId)]
    assert mdmf(bursts[0])[0x02] == shown


@pytest.mark.parametrize(("region", "before_ring"), [("US", False), ("GB", True)])
def test_caller_id_sits_in_the_ring_cycle_as_the_region_says(region: str,
                                                               before_ring: bool) -> None:
    p, _ = phone(region=region)
    out = p.sip_event(incoming(), T0) + run(p, T0 + 8)
    kinds = [type(c).__name__ for c in commands(out) if isinstance(c, SendCallerId | StartRing)]
    assert kinds.index("SendCallerId") < kinds.index("StartRing") if before_ring else \
        kinds[:2] == ["StartRing", "SendCallerId"]


def test_setup_from_a_configured_account() -> None:
    account = AccountConfig(id="main", user="1001", domain="pbx.test", codecs=("PCMA",),
                            dtmf="info", srtp="optional")
    setup = LineSetup.for_account(fxs(), account, RTP, direct_ip=True)
    policy = setup.policy()
    assert (setup.account, setup.direct_ip) == ("main", True)
    assert (policy.codecs, policy.dtmf, policy.srtp, policy.address, policy.port) == (
        ("PCMA",), "info", "optional", "192.0.2.10", 16000)
    disabled = dataclasses.replace(account, enabled=False)
    assert LineSetup.for_account(fxs(), disabled, RTP).account == ""
    assert LineSetup.for_account(fxs(), None, RTP).account == ""
