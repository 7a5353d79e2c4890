"""Two ATAs calling each other: phones + user agents on the virtual network and clock.

Each `Station` is pumped the way the runtime must pump the real thing: datagrams into the agent,
every agent event into the phone, agent and line timers on one clock, the agent's datagrams out
after every step. The subscribers are scripted hook and DTMF inputs.
"""

from __future__ import annotations

import datetime
import random

import pytest

from test_phone_support import commands, fxs, linefeeds, mdmf, rings, tones
from sipnet import VirtualNetwork
from tipring.config.secret import Secret
from tipring.hal.api import Linefeed
from tipring.line.fxs import LineState
from tipring.line.signals import SendCallerId, StopRing
from tipring.phone import AttachMedia, DetachMedia, LineSetup, Phone
from tipring.sdp import MediaPolicy
from tipring.sip.agent import UserAgent
from tipring.sip.registration import RegistrationSettings
from tipring.sip.session import IncomingCall

A = ("10.0.0.1", 5060, "udp")
B = ("10.0.0.2", 5060, "udp")
RTP_A = ("10.0.0.1", 16000)
RTP_B = ("10.0.0.2", 17000)


def user_agent(address, number: str, display: str, seed: int) -> UserAgent:
    agent = UserAgent(address, rng=random.Random(seed))
    agent.add_account(RegistrationSettings(account="acct", user=number, domain="pbx.test",
                                           display_name=display, password=Secret("pw"),
                                           keepalive_s=0), [], allow_sip_from="any")
    return agent


class Station:
    """One ATA: its agent and phone, attached to the network as one endpoint."""

    def __init__(self, net: VirtualNetwork, address, number: str, display: str, rtp, seed: int,
                 **features) -> None:
        self.net = net
        self.agent = user_agent(address, number, display, seed)
        self.phone = Phone(self.agent, {0: LineSetup(fxs(), "acct", rtp, **features)},
                           local_time=lambda: datetime.datetime(2026, 11, 21, 9, 30))
        self.actions: list = []
        net.attach(address, self)

    @property
    def line(self):
        return self.phone.lines[0].fxs

    def _take(self, actions: list) -> None:
        self.actions += actions

    def _events(self, now: float) -> None:
        while (event := self.agent.next_event()) is not None:
            self._take(self.phone.sip_event(event, now))

    # the network endpoint
    def receive(self, data: bytes, source, now: float) -> None:
        self.agent.receive(data, source, now)
        self._events(now)

    def datagrams_to_send(self):
        return self.agent.datagrams_to_send()

    def get_timer(self) -> float | None:
        times = [t for t in (self.agent.get_timer(), self.phone.next_deadline()) if t is not None]
        return min(times, default=None)

    def handle_timer(self, now: float) -> None:
        self.agent.handle_timer(now)
        self._events(now)
        self._take(self.phone.timer(now))
        self._events(now)

    # the subscriber
    def lift(self) -> None:
        self._take(self.phone.hook(0, True, self.net.now))
        self._events(self.net.now)

    def hang_up(self) -> None:
        self._take(self.phone.hook(0, False, self.net.now))

    def dial(self, digits: str, gap: float = 0.3) -> None:
        for digit in digits:
            self.net.run_for(gap)
            self._take(self.phone.dtmf(0, digit, self.net.now))
            self._events(self.net.now)

    def of(self, kind) -> list:
        return [a for a in self.actions if isinstance(a, kind)]


class Responder:
    """A bare far-end agent that answers every call as the test scripts it."""

    def __init__(self, net: VirtualNetwork, address, script) -> None:
        self.agent = user_agent(address, "2001", "", 7)
        self.script = script
        net.attach(address, self)

    def receive(self, data, source, now):
        self.agent.receive(data, source, now)
        while (event := self.agent.next_event()) is not None:
            if isinstance(event, IncomingCall):
                self.script(self.agent, event.call, now)

    def datagrams_to_send(self):
        return self.agent.datagrams_to_send()

    def get_timer(self):
        return self.agent.get_timer()

    def handle_timer(self, now):
        self.agent.handle_timer(now)


@pytest.fixture
def net() -> VirtualNetwork:
    return VirtualNetwork(latency=0.01)


def caller(net: VirtualNetwork, **features) -> Station:
    alice = Station(net, A, "1001", "Alice", RTP_A, 1, **features)
    alice.agent.learn_addresses("pbx.test", [B])  # DNS, as the runtime resolves it
    return alice


def test_a_calls_b_b_answers_a_hangs_up(net: VirtualNetwork) -> None:
    alice = caller(net)
    bob = Station(net, B, "2001", "Bob", RTP_B, 2)
    alice.lift()
    alice.dial("2001#")
    net.run_for(0.5)
    # B rings at once, with A's caller ID in the first silence (US: Bellcore after ring 1).
    assert bob.line.state is LineState.RINGING
    assert tones(alice.actions) == ["dial", "ringback"]  # dial tone, then B's 180
    net.run_for(6)
    [burst] = [c for c in commands(bob.actions) if isinstance(c, SendCallerId)]
    fields = mdmf(burst)
    assert (fields[0x02], fields[0x07], fields[0x01]) == (b"1001", b"Alice", b"11210930")
    assert len(rings(bob.actions)) == 2  # ring, data, ring again
    bob.lift()
    net.run_for(0.5)
    assert StopRing() in commands(bob.actions)
    # Both connected, each media stream pointing at the other's RTP socket with one codec.
    assert alice.line.state is LineState.CONNECTED and bob.line.state is LineState.CONNECTED
    [a_media], [b_media] = alice.of(AttachMedia), bob.of(AttachMedia)
    assert (a_media.local, b_media.local) == (RTP_A, RTP_B)
    assert (a_media.media.remote_address, a_media.media.remote_port) == RTP_B
    assert (b_media.media.remote_address, b_media.media.remote_port) == RTP_A
    assert a_media.media.codec == b_media.media.codec == "PCMU"
    assert a_media.media.payload_type == b_media.media.payload_type == 0
    assert a_media.media.telephone_event_pt == b_media.media.telephone_event_pt == 101
    assert not a_media.early and not b_media.early
    assert alice.line.tone is None  # ringback stopped at the answer
    # A hangs up; B hears the disconnect (open loop) and then dial tone.
    net.run_for(10)
    alice.hang_up()
    net.run_for(1.5)
    assert alice.of(DetachMedia) == [DetachMedia(0, a_media.call)]
    assert bob.of(DetachMedia) == [DetachMedia(0, b_media.call)]
    assert linefeeds(bob.actions)[-1] == Linefeed.OPEN and bob.line.state is LineState.PARKED
    net.run_for(2)
    assert tones(bob.actions)[-1] == "dial"
    assert alice.phone.calls == {} and bob.phone.calls == {}
    assert not alice.agent.sessions and not bob.agent.sessions
    assert [p.first_line.split()[0] for p in net.sent("10.0.0.1")] == [
        "INVITE", "ACK", "BYE"]


def test_b_hangs_up_first(net: VirtualNetwork) -> None:
    alice = caller(net)
    bob = Station(net, B, "2001", "Bob", RTP_B, 2)
    alice.lift()
    alice.dial("2001#")
    net.run_for(3)
    bob.lift()
    net.run_for(5)
    bob.hang_up()
    net.run_for(1.5)
    assert linefeeds(alice.actions)[-1] == Linefeed.OPEN
    assert alice.line.state is LineState.PARKED and len(alice.of(DetachMedia)) == 1


def test_b_off_hook_gives_a_busy_tone(net: VirtualNetwork) -> None:
    alice = caller(net)
    bob = Station(net, B, "2001", "Bob", RTP_B, 2)
    bob.lift()
    alice.lift()
    alice.dial("2001#")
    net.run_for(1)
    assert tones(alice.actions)[-1] == "busy" and alice.phone.calls == {}
    assert rings(bob.actions) == []


def test_b_with_do_not_disturb_is_busy(net: VirtualNetwork) -> None:
    alice = caller(net)
    bob = Station(net, B, "2001", "Bob", RTP_B, 2, do_not_disturb=True)
    alice.lift()
    alice.dial("2001#")
    net.run_for(1)
    assert tones(alice.actions)[-1] == "busy" and rings(bob.actions) == []


def test_a_gives_up_while_b_rings(net: VirtualNetwork) -> None:
    alice = caller(net)
    bob = Station(net, B, "2001", "Bob", RTP_B, 2)
    alice.lift()
    alice.dial("2001#")
    net.run_for(3)
    alice.hang_up()
    net.run_for(2)
    assert bob.line.state is LineState.IDLE and bob.phone.calls == {}
    assert StopRing() in commands(bob.actions)
    assert net.sent("10.0.0.1", "CANCEL")
    # Nothing more on B's line: no more rings or caller ID after the caller gave up.
    count = len(bob.actions)
    net.run_for(20)
    assert len(bob.actions) == count


@pytest.mark.parametrize(("status", "tone"), [
    (404, "sit"), (484, "sit"), (486, "busy"), (600, "busy"), (503, "congestion"),
    (500, "congestion"),
])
def test_failures_from_the_far_end(net: VirtualNetwork, status: int, tone: str) -> None:
    alice = caller(net)
    Responder(net, B, lambda agent, call, now: agent.reject(call, status, "Scripted", now))
    alice.lift()
    alice.dial("2001#")
    net.run_for(1)
    assert tones(alice.actions) == ["dial", tone]


def test_no_answer_from_the_network_is_congestion(net: VirtualNetwork) -> None:
    alice = caller(net)  # nothing at B: INVITE times out (Timer B, 64*T1)
    alice.lift()
    alice.dial("2001#")
    net.run_for(31)
    assert tones(alice.actions) == ["dial"]
    net.run_for(3)
    assert tones(alice.actions) == ["dial", "congestion"]


def test_early_media_replaces_local_ringback(net: VirtualNetwork) -> None:
    far = MediaPolicy(address="10.0.0.2", port=18000)

    def announce(agent: UserAgent, call: str, now: float) -> None:
        agent.ring(call, now)
        agent.early_media(call, far, now)

    alice = caller(net)
    Responder(net, B, announce)
    alice.lift()
    alice.dial("2001#")
    net.run_for(1)
    assert tones(alice.actions) == ["dial", "ringback"]
    [early] = alice.of(AttachMedia)
    assert early.early and (early.media.remote_address, early.media.remote_port) == (
        "10.0.0.2", 18000)
    assert alice.line.tone is None  # the far end's audio, not ours


def test_b_without_a_line_for_the_account_answers_480(net: VirtualNetwork) -> None:
    alice = caller(net)
    bob = Station(net, B, "2001", "Bob", RTP_B, 2)
    bob.phone.lines[0].account = ""
    alice.lift()
    alice.dial("2001#")
    net.run_for(1)
    assert [p.first_line for p in net.sent("10.0.0.2", "SIP/2.0 4")] == [
        "SIP/2.0 480 Temporarily Unavailable"]
    assert tones(alice.actions)[-1] == "congestion"


def test_hot_line_rings_b_on_lift(net: VirtualNetwork) -> None:
    alice = Station(net, A, "1001", "Alice", RTP_A, 1)
    alice.phone.lines[0].fxs = fxs(plan="(S0<:2001>)")
    alice.agent.learn_addresses("pbx.test", [B])
    bob = Station(net, B, "2001", "Bob", RTP_B, 2)
    alice.lift()
    net.run_for(0.2)
    assert bob.line.state is LineState.RINGING and tones(alice.actions) == ["ringback"]
    invite = net.sent("10.0.0.1", "INVITE")[0]
    assert invite.first_line == "INVITE sip:2001@pbx.test SIP/2.0"
    assert b'From: "Alice" <sip:1001@pbx.test>' in invite.data
