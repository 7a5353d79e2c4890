"""INVITE sessions: two agents calling each other over the virtual network."""

from __future__ import annotations

import hashlib
import random
import re

import pytest

from sipnet import VirtualNetwork
from tipring.config.secret import Secret
from tipring.sdp import MediaPolicy
from tipring.sip.agent import UserAgent
from tipring.sip.message import Request, build_response, parse_message
from tipring.sip.registration import RegistrationSettings
from tipring.sip.session import CallAnswered, CallEnded, CallProgress, IncomingCall, MediaChanged

A = ("10.0.0.1", 5060, "udp")
B = ("10.0.0.2", 5060, "udp")
C = ("10.0.0.3", 5060, "udp")
MEDIA_A = MediaPolicy(address="10.0.0.1", port=4000)
MEDIA_B = MediaPolicy(address="10.0.0.2", port=6000)


def agent(address, user, seed, **kw) -> UserAgent:
    ua = UserAgent(address, rng=random.Random(seed))
    ua.add_account(RegistrationSettings(account="line1", user=user, domain=address[0],
                                        password=Secret("pw"), keepalive_s=0),
                   [], allow_sip_from="any", **kw)
    return ua


def events(ua: UserAgent) -> list:
    out = []
    while (event := ua.next_event()) is not None:
        out.append(event)
    return out


@pytest.fixture
def pair():
    net = VirtualNetwork(latency=0.01)
    alice, bob = agent(A, "alice", 1), agent(B, "bob", 2)
    net.attach(A, alice)
    net.attach(B, bob)
    return net, alice, bob


def call(net, alice, bob, *, answer=True):
    call_id = alice.invite("line1", "sip:bob@10.0.0.2", MEDIA_A, net.now)
    net.run_for(0.1)
    [incoming] = events(bob)
    assert isinstance(incoming, IncomingCall)
    bob.ring(incoming.call, net.now)
    net.run_for(0.1)
    if answer:
        bob.answer(incoming.call, MEDIA_B, net.now)
        net.run_for(0.1)
    return call_id, incoming


def test_call_answered_and_hung_up_by_the_caller(pair):
    net, alice, bob = pair
    call_id, incoming = call(net, alice, bob)
    assert incoming.caller.uri.user == "alice" and incoming.callee.user == "bob"
    progress, answered = events(alice)
    assert isinstance(progress, CallProgress) and progress.status == 180
    assert isinstance(answered, CallAnswered)
    assert (answered.media.remote_address, answered.media.remote_port) == ("10.0.0.2", 6000)
    [bob_answered] = events(bob)
    assert (bob_answered.media.remote_address, bob_answered.media.remote_port) == ("10.0.0.1", 4000)
    # The ACK reached Bob, so his 200 was sent once and never retransmitted.
    net.run_for(10)
    assert len(net.sent("10.0.0.2", "SIP/2.0 200")) == 1
    assert len(net.sent("10.0.0.1", "ACK")) == 1
    alice.hangup(call_id, net.now)
    net.run_for(1)
    assert events(alice) == [CallEnded(call_id, 200, "BYE", "local")]
    assert events(bob) == [CallEnded(incoming.call, 200, "BYE", "remote")]
    bye = net.sent("10.0.0.1", "BYE")[0]
    assert bye.first_line == "BYE sip:bob@10.0.0.2:5060 SIP/2.0"  # the remote target
    assert not alice.sessions and not bob.sessions


def test_callee_hangs_up(pair):
    net, alice, bob = pair
    call_id, incoming = call(net, alice, bob)
    events(alice), events(bob)
    bob.hangup(incoming.call, net.now)
    net.run_for(1)
    assert events(alice) == [CallEnded(call_id, 200, "BYE", "remote")]
    assert len(net.sent("10.0.0.1", "SIP/2.0 200")) == 1


def test_caller_cancels_while_ringing(pair):
    net, alice, bob = pair
    call_id, incoming = call(net, alice, bob, answer=False)
    alice.cancel(call_id, net.now)
    net.run_for(1)
    assert events(bob) == [CallEnded(incoming.call, 487, "Request Terminated", "remote")]
    ended = [e for e in events(alice) if isinstance(e, CallEnded)]
    assert ended == [CallEnded(call_id, 487, "Request Terminated", "local")]
    cancel = parse_message(net.sent("10.0.0.1", "CANCEL")[0].data)
    invite = parse_message(net.sent("10.0.0.1", "INVITE")[0].data)
    assert cancel.via[0].branch == invite.via[0].branch  # RFC 3261 9.1
    assert str(cancel.cseq) == "1 CANCEL"
    assert len(net.sent("10.0.0.1", "ACK")) == 1  # the 487 is ACKed by the transaction


def test_cancel_waits_for_a_provisional_response():
    net = VirtualNetwork()
    alice = agent(A, "alice", 1)
    net.attach(A, alice)  # nobody at B
    call_id = alice.invite("line1", "sip:bob@10.0.0.2", MEDIA_A, 0.0)
    alice.cancel(call_id, 0.1)
    net.run(40)
    assert net.sent("10.0.0.1", "CANCEL") == []
    assert events(alice) == [CallEnded(call_id, 408, "Request Timeout", "network")]


def test_callee_rejects_busy(pair):
    net, alice, bob = pair
    call_id, incoming = call(net, alice, bob, answer=False)
    bob.reject(incoming.call, 486, "Busy Here", net.now)
    net.run_for(1)
    assert events(alice)[-1] == CallEnded(call_id, 486, "Busy Here", "remote")
    assert events(bob) == [CallEnded(incoming.call, 486, "Busy Here", "local")]


def test_hold_and_resume_with_reinvite(pair):
    net, alice, bob = pair
    call_id, _ = call(net, alice, bob)
    events(alice), events(bob)
    alice.hold(call_id, net.now)
    net.run_for(1)
    [held] = events(alice)
    assert isinstance(held, MediaChanged) and held.media.direction == "sendonly"
    [bob_held] = events(bob)
    assert bob_held.media.remote_hold and bob_held.media.direction == "recvonly"
    reinvite = parse_message(net.sent("10.0.0.1", "INVITE")[-1].data)
    assert str(reinvite.cseq) == "2 INVITE" and b"a=sendonly" in reinvite.body
    assert reinvite.to.tag is not None
    alice.resume(call_id, net.now)
    net.run_for(1)
    [resumed] = events(alice)
    assert resumed.media.direction == "sendrecv"
    assert events(bob)[0].media.direction == "sendrecv"
    assert len(net.sent("10.0.0.1", "ACK")) == 3  # initial INVITE + two re-INVITEs


def test_lost_200_is_retransmitted_and_acked(pair):
    net, alice, bob = pair
    first_200 = []

    def rule(packet):
        if packet.first_line.startswith("SIP/2.0 200") and not first_200:
            first_200.append(packet)
            return "drop"
        return None

    call_id = alice.invite("line1", "sip:bob@10.0.0.2", MEDIA_A, 0.0)
    net.run(0.1)
    [incoming] = events(bob)
    net.rule = rule
    bob.answer(incoming.call, MEDIA_B, net.now)
    net.run_for(5)
    assert times(net.sent("10.0.0.2", "SIP/2.0 200")) == [0.1, 0.6]  # T1 later, once more
    assert [type(e) for e in events(alice)] == [CallAnswered]
    assert len(net.sent("10.0.0.1", "ACK")) == 1
    assert alice.sessions[call_id].state == "confirmed"


def times(packets):
    return [round(p.sent_at, 3) for p in packets]


def test_no_ack_ends_the_call_with_bye(pair):
    net, alice, bob = pair
    net.rule = lambda p: "drop" if p.first_line.startswith("ACK") else None
    call_id, incoming = call(net, alice, bob)
    answered_at = 0.2
    net.run_for(40)
    ends = [e for e in events(bob) if isinstance(e, CallEnded)]
    assert ends == [CallEnded(incoming.call, 408, "No ACK", "network")]
    bye = net.sent("10.0.0.2", "BYE")
    assert len(bye) == 1 and bye[0].sent_at == pytest.approx(answered_at + 32, abs=0.001)
    assert events(alice)[-1] == CallEnded(call_id, 200, "BYE", "remote")


def test_incoming_invite_without_sdp_gets_our_offer_and_answer_in_ack(pair):
    net, _, bob = pair
    # A scripted caller that sends a bodiless INVITE: the offer must come in our 200.
    raw = (
        b"INVITE sip:bob@10.0.0.2 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 10.0.0.3:5060;branch=z9hG4bKlate1\r\n"
        b"From: <sip:carol@10.0.0.3>;tag=c1\r\nTo: <sip:bob@10.0.0.2>\r\n"
        b"Call-ID: late-offer\r\nCSeq: 1 INVITE\r\nContact: <sip:carol@10.0.0.3>\r\n"
        b"Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
    carol = Scripted()
    net.attach(C, carol)
    carol.out.append((raw, B))
    net.run_for(0.1)
    late = [e for e in events(bob) if isinstance(e, IncomingCall)]
    assert late and late[0].offer is False
    bob.answer("late-offer", MEDIA_B, net.now)
    net.run_for(0.1)
    ok = parse_message(carol.received[-1])
    assert ok.status == 200 and b"m=audio 6000" in ok.body
    answer_sdp = ok.body.replace(b"10.0.0.2", b"10.0.0.3").replace(b"6000", b"7000")
    ack = (
        "ACK sip:bob@10.0.0.2:5060 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 10.0.0.3:5060;branch=z9hG4bKlateack\r\n"
        f"From: <sip:carol@10.0.0.3>;tag=c1\r\nTo: {ok.headers.get('To')}\r\n"
        "Call-ID: late-offer\r\nCSeq: 1 ACK\r\nContent-Type: application/sdp\r\n"
        f"Max-Forwards: 70\r\nContent-Length: {len(answer_sdp)}\r\n\r\n").encode() + answer_sdp
    carol.out.append((ack, B))
    net.run_for(0.1)
    [answered] = [e for e in events(bob) if isinstance(e, CallAnswered)]
    assert (answered.media.remote_address, answered.media.remote_port) == ("10.0.0.3", 7000)


class Scripted:
    """A raw endpoint: records what it gets, sends what the test queues, may answer."""

    def __init__(self, answer=None) -> None:
        self.received: list[bytes] = []
        self.out: list = []
        self.answer = answer

    def receive(self, data, source, now):
        self.received.append(data)
        if self.answer is not None:
            for reply in self.answer(parse_message(data)) or []:
                self.out.append((bytes(reply), source))

    def datagrams_to_send(self):
        out, self.out = self.out, []
        return out

    def get_timer(self):
        return None

    def handle_timer(self, now):
        pass


def test_407_is_answered_with_proxy_credentials():
    seen: list[Request] = []

    def proxy(message):
        if not isinstance(message, Request) or message.method == "ACK":
            return []
        seen.append(message)
        credentials = message.headers.get("Proxy-Authorization")
        if credentials is None:
            challenge = build_response(message, 407, "Proxy Authentication Required", to_tag="p")
            challenge.headers.add("Proxy-Authenticate",
                                  'Digest realm="pbx", nonce="abc", algorithm=MD5')
            return [challenge]
        params = dict(re.findall(r'(\w+)="?([^",]*)"?', credentials))
        ha1 = hashlib.md5(b"alice:pbx:pw").hexdigest()
        ha2 = hashlib.md5(f"INVITE:{params['uri']}".encode()).hexdigest()
        good = params["response"] == hashlib.md5(f"{ha1}:abc:{ha2}".encode()).hexdigest()
        return [build_response(message, 486 if good else 403, "Busy Here", to_tag="p")]

    net = VirtualNetwork()
    alice = agent(A, "alice", 1)
    net.attach(A, alice)
    net.attach(B, Scripted(proxy))
    call_id = alice.invite("line1", "sip:bob@10.0.0.2", MEDIA_A, 0.0)
    net.run(2)
    assert [str(r.cseq) for r in seen] == ["1 INVITE", "2 INVITE"]
    assert seen[0].call_id == seen[1].call_id == call_id
    assert seen[0].from_.tag == seen[1].from_.tag
    assert events(alice) == [CallEnded(call_id, 486, "Busy Here", "remote")]


def test_302_redirect_is_followed():
    net = VirtualNetwork()
    alice, carol = agent(A, "alice", 1), agent(C, "carol", 3)

    def redirect(message):
        if not isinstance(message, Request) or message.method == "ACK":
            return []
        moved = build_response(message, 302, "Moved Temporarily", to_tag="r")
        moved.headers.add("Contact", "<sip:carol@10.0.0.3>")
        return [moved]

    net.attach(A, alice)
    net.attach(B, Scripted(redirect))
    net.attach(C, carol)
    alice.invite("line1", "sip:bob@10.0.0.2", MEDIA_A, 0.0)
    net.run(1)
    [incoming] = events(carol)
    assert incoming.callee.user == "carol"
    invites = net.sent("10.0.0.1", "INVITE")
    assert [p.destination for p in invites] == [B, C]
    assert len(net.sent("10.0.0.1", "ACK")) == 1  # the 302 was ACKed


def test_options_answered_and_unknown_dialog_gets_481(pair):
    net, _, _ = pair
    peer = Scripted()
    net.attach(C, peer)
    for method, to_tag in (("OPTIONS", ""), ("BYE", ";tag=nope")):
        peer.out.append(((
            f"{method} sip:bob@10.0.0.2 SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 10.0.0.3:5060;branch=z9hG4bK{method}\r\n"
            f"From: <sip:carol@10.0.0.3>;tag=c1\r\nTo: <sip:bob@10.0.0.2>{to_tag}\r\n"
            f"Call-ID: x-{method}\r\nCSeq: 1 {method}\r\nMax-Forwards: 70\r\n"
            "Content-Length: 0\r\n\r\n").encode(), B))
    net.run_for(0.1)
    options, bye = (parse_message(d) for d in peer.received)
    assert options.status == 200 and "INVITE" in options.headers.get("Allow")
    assert bye.status == 481


def test_cancel_ignored_by_the_callee_ends_the_call_after_64_t1():
    def ringing_forever(message):
        if isinstance(message, Request) and message.method == "INVITE":
            return [build_response(message, 180, "Ringing", to_tag="deaf")]
        return []  # CANCEL (and everything else) gets no answer at all

    net = VirtualNetwork()
    alice = agent(A, "alice", 1)
    net.attach(A, alice)
    net.attach(B, Scripted(ringing_forever))
    call_id = alice.invite("line1", "sip:bob@10.0.0.2", MEDIA_A, 0.0)
    net.run(1)
    alice.cancel(call_id, 1.0)
    net.run(32.5)
    assert call_id in alice.sessions
    net.run(33.5)
    assert events(alice)[-1] == CallEnded(call_id, 487, "Request Terminated", "local")
    assert not alice.sessions and not alice.layer.clients


def test_resume_asked_while_the_hold_is_pending_is_sent_after_it(pair):
    # A quick flash back (hold, then resume before the hold's 200 came): RFC 3261 14.1 allows
    # one re-INVITE at a time, so the resume waits, then goes; the far end must end up talking.
    net, alice, bob = pair
    call_id, _ = call(net, alice, bob)
    events(alice), events(bob)
    alice.hold(call_id, net.now)
    alice.resume(call_id, net.now)  # same instant: the hold is still pending
    net.run_for(2)
    bob_changes = [e.media.direction for e in events(bob) if isinstance(e, MediaChanged)]
    assert bob_changes == ["recvonly", "sendrecv"]
    reinvites = [parse_message(p.data) for p in net.sent("10.0.0.1", "INVITE")][1:]
    assert [b"a=sendonly" in r.body for r in reinvites] == [True, False]
    assert [str(r.cseq) for r in reinvites] == ["2 INVITE", "3 INVITE"]
