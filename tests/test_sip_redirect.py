"""`UserAgent.redirect`: call forwarding answered with a 3xx (no-answer and busy forwarding).

Three agents on the virtual network: Alice calls Bob, Bob's phone forwards the call with a
302 to Carol, Alice's agent follows the Contact and Carol answers. The 302 on the wire is
checked with the message parser and, independently, as plain text against RFC 3261's rules
for a Contact (name-addr in angle brackets, q-values as qvalue).
"""

from __future__ import annotations

import re

import pytest

from sipnet import VirtualNetwork
from test_sip_session import MEDIA_A, A, B, C, agent, events
from tipring.sdp import MediaPolicy
from tipring.sip.message import parse_message
from tipring.sip.session import CallAnswered, CallEnded, CallProgress, IncomingCall

MEDIA_C = MediaPolicy(address="10.0.0.3", port=8000)
# RFC 3261 25.1: qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )
QVALUE = re.compile(r"0(\.\d{0,3})?|1(\.0{0,3})?")


@pytest.fixture
def trio():
    net = VirtualNetwork(latency=0.01)
    alice, bob, carol = agent(A, "alice", 1), agent(B, "bob", 2), agent(C, "carol", 3)
    for address, ua in ((A, alice), (B, bob), (C, carol)):
        net.attach(address, ua)
    return net, alice, bob, carol


def ringing_at_bob(net, alice, bob):
    call_id = alice.invite("line1", "sip:bob@10.0.0.2", MEDIA_A, net.now)
    net.run_for(0.1)
    [incoming] = events(bob)
    assert isinstance(incoming, IncomingCall)
    bob.ring(incoming.call, net.now)
    net.run_for(0.1)
    return call_id, incoming


def raw_headers(data: bytes, name: str) -> list[str]:
    """Every value of header `name` (long form only), by plain text handling."""
    head = data.split(b"\r\n\r\n", 1)[0].decode()
    out = []
    for line in head.split("\r\n")[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == name.lower():
            out.append(value.strip())
    return out


def test_no_answer_forward_caller_follows_the_302_to_carol_who_answers(trio):
    net, alice, bob, carol = trio
    call_id, incoming = ringing_at_bob(net, alice, bob)
    net.run_for(4)  # the no-answer time the phone layer would wait
    bob.redirect(incoming.call, ["sip:carol@10.0.0.3"], net.now, diversion="no-answer")
    net.run_for(0.1)
    assert events(bob) == [CallEnded(incoming.call, 302, "Moved Temporarily", "local")]
    assert not bob.sessions

    [at_carol] = events(carol)
    assert isinstance(at_carol, IncomingCall)
    assert at_carol.call == call_id  # the same call: Call-ID and From tag kept (8.1.3.4)
    assert at_carol.callee.user == "carol" and at_carol.caller.uri.user == "alice"
    carol.answer(at_carol.call, MEDIA_C, net.now)
    net.run_for(0.1)
    progress, answered = events(alice)
    assert isinstance(progress, CallProgress) and progress.status == 180  # Bob's ringing
    assert isinstance(answered, CallAnswered) and answered.call == call_id
    assert (answered.media.remote_address, answered.media.remote_port) == ("10.0.0.3", 8000)

    invites = net.sent("10.0.0.1", "INVITE")
    assert [p.destination for p in invites] == [B, C]
    first, second = (parse_message(p.data) for p in invites)
    assert str(second.uri) == "sip:carol@10.0.0.3"
    assert second.cseq.number == first.cseq.number + 1
    assert second.from_.tag == first.from_.tag
    # Alice ACKed the 302 (the INVITE transaction's ACK, to Bob) and Carol's 200, once each.
    assert [p.destination for p in net.sent("10.0.0.1", "ACK")] == [B, C]
    net.run_for(40)
    assert len(net.sent("10.0.0.2", "SIP/2.0 302")) == 1  # ACKed: Timer G never fired
    assert not bob.layer.servers and not bob.layer.clients  # and Timer I freed it

    alice.hangup(call_id, net.now)
    net.run_for(1)
    carol_events = events(carol)
    assert carol_events[-1] == CallEnded(call_id, 200, "BYE", "remote")
    assert events(alice) == [CallEnded(call_id, 200, "BYE", "local")]
    assert [p.destination for p in net.sent("10.0.0.1", "BYE")] == [C]


def test_the_302_is_well_formed(trio):
    net, alice, bob, _ = trio
    _, incoming = ringing_at_bob(net, alice, bob)
    invite = parse_message(net.sent("10.0.0.1", "INVITE")[0].data)
    bob.redirect(incoming.call, ["sip:carol@10.0.0.3", "sip:voicemail@10.0.0.9;transport=tcp"],
                 net.now, diversion="no-answer")
    net.run_for(0.05)
    [packet] = net.sent("10.0.0.2", "SIP/2.0 302")
    assert packet.destination == A
    assert packet.first_line == "SIP/2.0 302 Moved Temporarily"

    # Plain text: one Contact line per target, each <URI> (the URI with ';' must be
    # bracketed, RFC 3261 20.10), in the order given, with valid and decreasing q-values.
    contacts = raw_headers(packet.data, "Contact")
    assert len(contacts) == 2
    found = [re.fullmatch(r"<([^<>\s]+)>;q=([0-9.]+)", c) for c in contacts]
    assert all(found), contacts
    assert [m.group(1) for m in found] == ["sip:carol@10.0.0.3",
                                          "sip:voicemail@10.0.0.9;transport=tcp"]
    qs = [m.group(2) for m in found]
    assert all(QVALUE.fullmatch(q) for q in qs) and float(qs[0]) > float(qs[1])
    [diversion] = raw_headers(packet.data, "Diversion")
    assert diversion == "<sip:bob@10.0.0.2>;reason=no-answer;counter=1"  # the dialled AOR

    # Parsed: the transaction and dialog fields match the INVITE; To carries Bob's tag, the
    # same tag his 180 had (one early dialog, then its end).
    moved = parse_message(packet.data)
    ringing = parse_message(net.sent("10.0.0.2", "SIP/2.0 180")[0].data)
    assert moved.call_id == invite.call_id and str(moved.cseq) == "1 INVITE"
    assert moved.via[0].branch == invite.via[0].branch
    assert moved.from_.tag == invite.from_.tag
    assert moved.to.tag and moved.to.tag == ringing.to.tag
    parsed = moved.contacts
    assert [str(c.uri) for c in parsed] == ["sip:carol@10.0.0.3",
                                           "sip:voicemail@10.0.0.9;transport=tcp"]
    assert parsed[1].uri.params.get("transport") == "tcp"  # a URI parameter, not a header one
    assert [c.q for c in parsed] == [1.0, 0.9]
    assert moved.headers.get("Content-Length") == "0" and moved.body == b""


def test_busy_forward_with_a_number_uses_the_account_domain_and_301(trio):
    net, alice, bob, _ = trio
    call_id = alice.invite("line1", "sip:bob@10.0.0.2", MEDIA_A, net.now)
    net.run_for(0.1)
    [incoming] = events(bob)
    # Busy forwarding at once, no ringing; "200" is a number at Bob's domain (10.0.0.2).
    bob.redirect(incoming.call, ["200"], net.now, status=301, diversion="user-busy")
    net.run_for(0.1)
    [packet] = net.sent("10.0.0.2", "SIP/2.0 301")
    assert packet.first_line == "SIP/2.0 301 Moved Permanently"
    assert raw_headers(packet.data, "Contact") == ["<sip:200@10.0.0.2>"]  # one target: no q
    assert "reason=user-busy" in raw_headers(packet.data, "Diversion")[0]
    bob_events = events(bob)
    assert bob_events[0] == CallEnded(incoming.call, 301, "Moved Permanently", "local")
    # Alice follows it back to 10.0.0.2, to user 200 (Bob's test account takes calls for any
    # user on its address, so the same agent is offered the forwarded call as a new one).
    follow = parse_message(net.sent("10.0.0.1", "INVITE")[1].data)
    assert str(follow.uri) == "sip:200@10.0.0.2" and follow.call_id == call_id
    [again] = bob_events[1:]
    assert isinstance(again, IncomingCall) and again.callee.user == "200"


def test_redirect_loop_ends_after_max_redirects(trio):
    """Bob forwards every call to himself: the caller stops following (MAX_REDIRECTS)."""
    from tipring.sip.session import MAX_REDIRECTS

    net, alice, bob, _ = trio
    call_id = alice.invite("line1", "sip:bob@10.0.0.2", MEDIA_A, net.now)
    for _ in range(MAX_REDIRECTS + 3):
        net.run_for(0.1)
        for event in events(bob):
            if isinstance(event, IncomingCall):
                bob.redirect(event.call, ["sip:bob@10.0.0.2"], net.now)
    net.run_for(1)
    assert len(net.sent("10.0.0.1", "INVITE")) == MAX_REDIRECTS + 1
    ended = [e for e in events(alice) if isinstance(e, CallEnded)]
    assert ended == [CallEnded(call_id, 302, "Moved Temporarily", "remote")]


def test_custom_status_and_reason(trio):
    net, alice, bob, _ = trio
    _, incoming = ringing_at_bob(net, alice, bob)
    bob.redirect(incoming.call, ["sip:carol@10.0.0.3"], net.now, status=380,
                 reason="Alternative Service")
    net.run_for(0.05)
    [packet] = net.sent("10.0.0.2", "SIP/2.0 380")
    assert packet.first_line == "SIP/2.0 380 Alternative Service"
    assert raw_headers(packet.data, "Diversion") == []  # only when asked for


@pytest.mark.parametrize("kwargs, message", [
    (dict(targets=["sip:carol@10.0.0.3"], status=486), "3xx"),
    (dict(targets=["sip:carol@10.0.0.3"], status=200), "3xx"),
    (dict(targets=[]), "at least one target"),
    (dict(targets=["sip:carol@10.0.0.3\r\nEvil: yes"]), "bad redirect target"),
    (dict(targets=["sip:carol@10.0.0.3"], diversion="no answer\r\nX: 1"), "token"),
])
def test_bad_arguments_raise_and_send_nothing(trio, kwargs, message):
    net, alice, bob, _ = trio
    _, incoming = ringing_at_bob(net, alice, bob)
    before = len(net.log)
    with pytest.raises(ValueError, match=message):
        bob.redirect(incoming.call, now=net.now, **kwargs)
    net.run_for(0.1)
    assert len(net.log) == before
    assert bob.sessions[incoming.call].state == "early"  # the call still rings


def test_redirect_after_answer_or_of_an_outgoing_call_does_nothing(trio):
    net, alice, bob, _ = trio
    call_id, incoming = ringing_at_bob(net, alice, bob)
    alice.redirect(call_id, ["sip:carol@10.0.0.3"], net.now)  # our own call: not ours to move
    bob.answer(incoming.call, MediaPolicy(address="10.0.0.2", port=6000), net.now)
    net.run_for(0.1)
    bob.redirect(incoming.call, ["sip:carol@10.0.0.3"], net.now)  # too late: answered
    net.run_for(0.1)
    assert net.sent("10.0.0.2", "SIP/2.0 3") == []
    assert alice.sessions[call_id].state == bob.sessions[incoming.call].state == "confirmed"
    with pytest.raises(KeyError):
        bob.redirect("no-such-call", ["sip:carol@10.0.0.3"], net.now)


def test_redirect_crossing_a_cancel_ends_the_call_once(trio):
    """The caller gives up just as the phone forwards: whichever final response wins, each
    side sees exactly one end and nothing is left behind."""
    net, alice, bob, carol = trio
    call_id, incoming = ringing_at_bob(net, alice, bob)
    alice.cancel(call_id, net.now)
    bob.redirect(incoming.call, ["sip:carol@10.0.0.3"], net.now)
    net.run_for(40)
    assert len([e for e in events(bob) if isinstance(e, CallEnded)]) == 1
    alice_ended = [e for e in events(alice) if isinstance(e, CallEnded)]
    assert alice_ended == [CallEnded(call_id, 302, "Moved Temporarily", "remote")]
    assert [p.first_line.split(" ")[0] for p in net.sent("10.0.0.1")] == \
        ["INVITE", "CANCEL", "ACK"]  # the 302 ACKed by the transaction, nothing more
    assert not alice.sessions and not bob.sessions
    # A 302 that crossed the CANCEL is not followed: Carol's phone never rings for a caller
    # who has already hung up (it used to: a ghost call ringing until Carol answered).
    assert net.sent("10.0.0.1", "INVITE")[1:] == []
    assert events(carol) == [] and not carol.sessions
