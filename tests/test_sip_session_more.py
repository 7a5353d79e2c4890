"""Mid-call behaviour: remote hold, UPDATE, INFO, lost ACK, glare, RFC 4028 session timers."""

from __future__ import annotations

import pytest

from sipnet import VirtualNetwork
from test_sip_session import MEDIA_A, MEDIA_B, A, B, C, Scripted, agent, call, events
from tipring.sdp import MediaPolicy, MediaSession, parse_sdp
from tipring.sip.agent import DtmfInfo
from tipring.sip.message import Request, build_response, parse_message
from tipring.sip.session import CallAnswered, CallEnded, MediaChanged, parse_session_expires


@pytest.fixture
def pair():
    net = VirtualNetwork(latency=0.01)
    alice, bob = agent(A, "alice", 1), agent(B, "bob", 2)
    net.attach(A, alice)
    net.attach(B, bob)
    return net, alice, bob


def test_callee_puts_the_caller_on_hold(pair):
    net, alice, bob = pair
    call_id, incoming = call(net, alice, bob)
    events(alice), events(bob)
    bob.hold(incoming.call, net.now)
    net.run_for(1)
    [changed] = events(alice)
    assert isinstance(changed, MediaChanged) and changed.media.remote_hold
    reinvite = parse_message(net.sent("10.0.0.2", "INVITE")[0].data)
    # Bob is the UAS of the dialog: his request goes to Alice's Contact, From/To swapped.
    assert str(reinvite.uri) == "sip:alice@10.0.0.1:5060"
    assert reinvite.from_.uri.user == "bob" and reinvite.to.tag == alice.sessions[call_id].local_tag
    assert str(reinvite.cseq) == "1 INVITE"  # the UAS's own CSeq space starts here


def lost_first(prefix):
    seen = []

    def rule(packet):
        if packet.first_line.startswith(prefix) and not seen:
            seen.append(packet)
            return "drop"
        return None
    return rule


def test_lost_ack_is_resent_when_the_200_comes_again(pair):
    net, alice, bob = pair
    net.rule = lost_first("ACK")
    _call_id, incoming = call(net, alice, bob)
    net.run_for(5)
    assert [round(p.sent_at, 3) for p in net.sent("10.0.0.2", "SIP/2.0 200")] == [0.2, 0.7]
    assert len(net.sent("10.0.0.1", "ACK")) == 2
    assert [type(e) for e in events(alice)].count(CallAnswered) == 1
    assert bob.sessions[incoming.call].server_tx.acknowledged


def test_update_without_sdp_refreshes_and_info_reports_dtmf(pair):
    net, alice, bob = pair
    call_id, _ = call(net, alice, bob)
    events(alice), events(bob)
    session = alice.sessions[call_id]
    peer = Scripted()
    net.attach(C, peer)
    dialog = session.dialog
    for method, body, ctype in (("UPDATE", b"", None),
                                ("INFO", b"Signal=5\r\nDuration=160\r\n", "application/dtmf-relay")):
        request = dialog.create_request(method, local=C, rng=alice.rng)
        # Forge the request as if Bob sent it inside the dialog (From/To swapped).
        request.headers.set("From", f"<sip:bob@10.0.0.2>;tag={dialog.remote_tag}")
        request.headers.set("To", f"<sip:alice@10.0.0.1>;tag={dialog.local_tag}")
        request.headers.set("CSeq", f"{10 + len(peer.received)} {method}")
        if ctype:
            request.headers.add("Content-Type", ctype)
            request.body = body
        peer.out.append((bytes(request), A))
        net.run_for(0.1)
    update_ok, info_ok = (parse_message(d) for d in peer.received)
    assert update_ok.status == 200 and update_ok.body == b""
    assert info_ok.status == 200
    assert events(alice) == [DtmfInfo(call_id, b"Signal=5\r\nDuration=160\r\n")]


def test_glare_491_retries_the_reinvite_later(pair):
    net, alice, bob = pair
    call_id, incoming = call(net, alice, bob)
    events(alice), events(bob)
    # Both re-INVITE at once: each answers the other 491 (RFC 3261 14.2).
    alice.hold(call_id, net.now)
    bob.hold(incoming.call, net.now)
    net.run_for(0.1)
    assert len(net.sent("10.0.0.1", "SIP/2.0 491")) == 1
    assert len(net.sent("10.0.0.2", "SIP/2.0 491")) == 1
    retry_alice = alice.sessions[call_id].timers.due("reinvite-retry")
    retry_bob = bob.sessions[incoming.call].timers.due("reinvite-retry")
    # Alice owns the Call-ID: 2.1-4 s; Bob: 0-2 s.
    assert 2.1 <= retry_alice - 0.22 <= 4.0 and 0.0 <= retry_bob - 0.22 <= 2.0
    net.run_for(10)
    assert len(net.sent("10.0.0.1", "INVITE")) == 3 and len(net.sent("10.0.0.2", "INVITE")) == 2
    changes = [e for e in events(alice) if isinstance(e, MediaChanged)]
    assert changes and changes[-1].media.direction == "inactive"  # both on hold


class ScriptedCallee:
    """Answers INVITEs with 200 + SDP and the given extra headers; records requests."""

    def __init__(self, extra: list[tuple[str, str]]) -> None:
        self.extra = extra
        self.requests: list[tuple[float, Request]] = []
        self.media = MediaSession(MediaPolicy(address="10.0.0.2", port=6000))
        self.out: list = []
        self.now = 0.0

    def receive(self, data, source, now):
        message = parse_message(data)
        if not isinstance(message, Request):
            return
        self.requests.append((now, message))
        if message.method == "ACK":
            return
        response = build_response(message, 200, "OK", to_tag="callee")
        response.headers.add("Contact", "<sip:bob@10.0.0.2>")
        for name, value in self.extra:
            response.headers.add(name, value)
        if message.body:
            answer, _ = self.media.create_answer(parse_sdp(message.body))
            response.headers.add("Content-Type", "application/sdp")
            response.body = answer.serialize().encode()
        self.out.append((bytes(response), source))

    def datagrams_to_send(self):
        out, self.out = self.out, []
        return out

    def get_timer(self):
        return None

    def handle_timer(self, now):
        pass


def test_uac_refreshes_the_session_when_told_to():
    net = VirtualNetwork()
    alice = agent(A, "alice", 1)
    callee = ScriptedCallee([("Session-Expires", "100;refresher=uac"), ("Require", "timer")])
    net.attach(A, alice)
    net.attach(B, callee)
    call_id = alice.invite("line1", "sip:bob@10.0.0.2", MEDIA_A, 0.0)
    net.run(160)
    invites = [(t, r) for t, r in callee.requests if r.method == "INVITE"]
    assert "timer" in invites[0][1].supported
    # Answered at 0.02; refreshes every 50 s (half of 100), each re-arming the next.
    assert [round(t, 2) for t, _ in invites] == [0.01, 50.03, 100.05, 150.07]
    assert all(r.headers.get("Session-Expires") == "100;refresher=uac" for _, r in invites[1:])
    assert alice.sessions[call_id].state == "confirmed"


def test_uac_hangs_up_when_the_refresher_goes_quiet():
    net = VirtualNetwork()
    alice = agent(A, "alice", 1)
    callee = ScriptedCallee([("Session-Expires", "90;refresher=uas")])
    net.attach(A, alice)
    net.attach(B, callee)
    call_id = alice.invite("line1", "sip:bob@10.0.0.2", MEDIA_A, 0.0)
    net.run(100)
    # 90 - min(32, 90/3) = 60 s after the answer at 0.02: BYE.
    byes = [t for t, r in callee.requests if r.method == "BYE"]
    assert byes == [pytest.approx(60.03)]
    assert events(alice)[-1] == CallEnded(call_id, 408, "Session expired", "network")


def test_uas_takes_the_callers_interval_and_expects_its_refresh(pair):
    net, _alice, bob = pair
    caller = Scripted()
    net.attach(C, caller)
    offer = MediaSession(MediaPolicy(address="10.0.0.3", port=7000)).create_offer()
    body = offer.serialize().encode()
    caller.out.append(((
        "INVITE sip:bob@10.0.0.2 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 10.0.0.3:5060;branch=z9hG4bKst1\r\n"
        "From: <sip:carol@10.0.0.3>;tag=c1\r\nTo: <sip:bob@10.0.0.2>\r\n"
        "Call-ID: timed\r\nCSeq: 1 INVITE\r\nContact: <sip:carol@10.0.0.3>\r\n"
        "Supported: timer\r\nSession-Expires: 120\r\nContent-Type: application/sdp\r\n"
        f"Max-Forwards: 70\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body, B))
    net.run_for(0.1)
    bob.answer("timed", MEDIA_B, net.now)
    net.run_for(0.1)
    ok = parse_message(caller.received[-1])
    assert ok.status == 200
    assert parse_session_expires(ok.headers.get("Session-Expires")) == (120, "uac")
    assert "timer" in ok.require
    caller.out.append(((
        "ACK sip:bob@10.0.0.2:5060 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 10.0.0.3:5060;branch=z9hG4bKst2\r\n"
        f"From: <sip:carol@10.0.0.3>;tag=c1\r\nTo: {ok.headers.get('To')}\r\n"
        "Call-ID: timed\r\nCSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ).encode(), B))
    answered_at = net.now - 0.1
    net.run_for(120)
    byes = net.sent("10.0.0.2", "BYE")
    # 120 - min(32, 40) = 88 s after the answer without a refresh: BYE (then its Timer E
    # retransmissions, since the scripted caller never answers it).
    assert byes[0].sent_at == pytest.approx(answered_at + 120 - 32)
    assert len({p.data for p in byes}) == 1
    assert parse_message(byes[0].data).call_id == "timed"


def test_callee_early_media_then_the_same_answer_in_the_200(pair):
    net, alice, bob = pair
    call_id = alice.invite("line1", "sip:bob@10.0.0.2", MEDIA_A, 0.0)
    net.run(0.1)
    [incoming] = events(bob)
    bob.early_media(incoming.call, MEDIA_B, net.now)
    net.run_for(0.1)
    [progress] = events(alice)
    assert progress.status == 183 and progress.early_media is not None
    assert progress.early_media.remote_port == 6000
    bob.answer(incoming.call, MEDIA_B, net.now)
    net.run_for(0.1)
    [answered] = events(alice)
    assert isinstance(answered, CallAnswered) and answered.media.remote_port == 6000
    early = parse_message(net.sent("10.0.0.2", "SIP/2.0 183")[0].data)
    final = parse_message(net.sent("10.0.0.2", "SIP/2.0 200")[0].data)
    assert early.body == final.body and early.body  # one answer, same o= version
    assert alice.sessions[call_id].state == "confirmed"


class ReliableProvisionalCallee:
    """A UAS that sends its SDP answer in a reliable 183 (RFC 3262), retransmitting it at
    T1, 2T1... until the PRACK comes, then answers the INVITE with a bodiless 200."""

    def __init__(self) -> None:
        self.media = MediaSession(MediaPolicy(address="10.0.0.2", port=6000))
        self.out: list = []
        self.requests: list[Request] = []
        self.invite: Request | None = None
        self.source = None
        self.resend_at: float | None = None
        self.interval = 0.5
        self.reliable: bytes = b""

    def receive(self, data, source, now):
        message = parse_message(data)
        if not isinstance(message, Request):
            return
        self.requests.append(message)
        if message.method == "INVITE" and self.invite is None:
            self.invite, self.source = message, source
            answer, _ = self.media.create_answer(parse_sdp(message.body))
            early = build_response(message, 183, "Session Progress", to_tag="rel")
            early.headers.add("Require", "100rel")
            early.headers.add("RSeq", "1")
            early.headers.add("Contact", "<sip:bob@10.0.0.2>")
            early.headers.add("Content-Type", "application/sdp")
            early.body = answer.serialize().encode()
            self.reliable = bytes(early)
            self.out.append((self.reliable, source))
            self.resend_at = now + self.interval
        elif message.method == "PRACK":
            self.resend_at = None
            self.out.append((bytes(build_response(message, 200, "OK", to_tag="rel")), source))
            ok = build_response(self.invite, 200, "OK", to_tag="rel")
            ok.headers.add("Contact", "<sip:bob@10.0.0.2>")
            self.out.append((bytes(ok), self.source))
        elif message.method == "BYE":
            self.out.append((bytes(build_response(message, 200, "OK")), source))

    def datagrams_to_send(self):
        out, self.out = self.out, []
        return out

    def get_timer(self):
        return self.resend_at

    def handle_timer(self, now):
        if self.resend_at is not None and now >= self.resend_at:
            self.out.append((self.reliable, self.source))
            self.interval *= 2
            self.resend_at = now + self.interval


def test_reliable_183_is_pracked_and_its_answer_used():
    net = VirtualNetwork(latency=0.01)
    alice = agent(A, "alice", 1)
    callee = ReliableProvisionalCallee()
    net.attach(A, alice)
    net.attach(B, callee)
    # Lose the first PRACK: the 183 comes again, and the PRACK transaction retransmits.
    net.rule = lost_first("PRACK")
    call_id = alice.invite("line1", "sip:bob@10.0.0.2", MEDIA_A, 0.0)
    net.run(5)
    invite = next(r for r in callee.requests if r.method == "INVITE")
    assert "100rel" in invite.supported
    pracks = [r for r in callee.requests if r.method == "PRACK"]
    assert len(pracks) == 1  # one transaction; its retransmission is what got through
    assert pracks[0].headers.get("RAck") == "1 1 INVITE" and str(pracks[0].cseq) == "2 PRACK"
    assert pracks[0].to.tag == "rel"
    assert len(net.sent("10.0.0.1", "PRACK")) == 2
    progress, answered = events(alice)
    assert progress.status == 183 and progress.early_media.remote_port == 6000
    assert isinstance(answered, CallAnswered) and answered.media.remote_port == 6000
    alice.hangup(call_id, net.now)
    net.run_for(1)
    bye = next(r for r in callee.requests if r.method == "BYE")
    assert str(bye.cseq) == "3 BYE"  # after the PRACK's CSeq


def required_100rel_invite() -> bytes:
    offer = MediaSession(MediaPolicy(address="10.0.0.3", port=7000)).create_offer()
    body = offer.serialize().encode()
    return (
        "INVITE sip:bob@10.0.0.2 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 10.0.0.3:5060;branch=z9hG4bKrel1\r\n"
        "From: <sip:carol@10.0.0.3>;tag=c1\r\nTo: <sip:bob@10.0.0.2>\r\n"
        "Call-ID: rel-1\r\nCSeq: 5 INVITE\r\nContact: <sip:carol@10.0.0.3>\r\n"
        "Require: 100rel\r\nContent-Type: application/sdp\r\n"
        f"Max-Forwards: 70\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


def test_uas_retransmits_a_required_reliable_180_until_prack(pair):
    net, _, bob = pair
    caller = Scripted()
    net.attach(C, caller)
    caller.out.append((required_100rel_invite(), B))
    net.run_for(0.1)
    [incoming] = events(bob)
    bob.ring(incoming.call, net.now)  # at 0.1
    net.run_for(1.6)
    ringing = net.sent("10.0.0.2", "SIP/2.0 180")
    assert [round(p.sent_at, 3) for p in ringing] == [0.1, 0.6, 1.6]  # T1, then 2*T1
    first = parse_message(ringing[0].data)
    assert first.require == ["100rel"] and first.headers.get("RSeq")
    rseq = first.headers.get("RSeq")
    caller.out.append(((
        "PRACK sip:bob@10.0.0.2:5060 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 10.0.0.3:5060;branch=z9hG4bKprack\r\n"
        f"From: <sip:carol@10.0.0.3>;tag=c1\r\nTo: {first.headers.get('To')}\r\n"
        f"Call-ID: rel-1\r\nCSeq: 6 PRACK\r\nRAck: {rseq} 5 INVITE\r\n"
        "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n").encode(), B))
    net.run_for(10)
    assert len(net.sent("10.0.0.2", "SIP/2.0 180")) == 3  # no more after the PRACK
    assert parse_message(caller.received[-1]).status == 200  # the PRACK's 200
    assert str(parse_message(caller.received[-1]).cseq) == "6 PRACK"


def test_uas_gives_up_without_prack(pair):
    net, _, bob = pair
    caller = Scripted()
    net.attach(C, caller)
    caller.out.append((required_100rel_invite(), B))
    net.run_for(0.1)
    [incoming] = events(bob)
    bob.ring(incoming.call, net.now)
    net.run_for(40)
    ringing = net.sent("10.0.0.2", "SIP/2.0 180")
    assert [round(p.sent_at - 0.1, 3) for p in ringing] == [0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    rejected = net.sent("10.0.0.2", "SIP/2.0 504")  # then Timer G: the caller never ACKs
    assert rejected[0].sent_at == pytest.approx(0.1 + 32)
    assert events(bob) == [CallEnded(incoming.call, 504, "No PRACK", "local")]


def test_dtmf_as_sip_info_between_agents(pair):
    net, alice, bob = pair
    call_id, incoming = call(net, alice, bob)
    events(alice), events(bob)
    alice.send_dtmf(call_id, "#", 160, net.now)
    net.run_for(0.1)
    assert events(bob) == [DtmfInfo(incoming.call, b"Signal=#\r\nDuration=160\r\n")]
    assert parse_message(net.sent("10.0.0.2", "SIP/2.0 200")[-1].data).cseq.method == "INFO"
    with pytest.raises(ValueError):
        alice.send_dtmf(call_id, "x", 160, net.now)


def test_bodiless_reinvite_gets_our_offer_and_the_ack_answers_it(pair):
    from test_sip_dialog import forged

    net, alice, bob = pair
    call_id, _incoming = call(net, alice, bob)
    events(alice), events(bob)
    dialog = alice.sessions[call_id].dialog
    peer = Scripted()
    net.attach(C, peer)
    peer.out.append((forged(dialog, "INVITE", 7), A))
    net.run_for(0.1)
    ok = parse_message(peer.received[-1])
    assert ok.status == 200 and b"m=audio 4000" in ok.body
    assert events(alice) == []  # nothing negotiated until the answer arrives
    answer, _ = MediaSession(MediaPolicy(address="10.0.0.3", port=9000)).create_answer(
        parse_sdp(ok.body), "recvonly")
    ack = forged(dialog, "ACK", 7, body=answer.serialize().encode(),
                 content_type="application/sdp")
    peer.out.append((ack, A))
    net.run_for(0.1)
    [changed] = events(alice)
    assert isinstance(changed, MediaChanged)  # the answer in the ACK sets the media
    assert (changed.media.remote_address, changed.media.remote_port) == ("10.0.0.3", 9000)
    assert changed.media.direction == "sendonly"  # they only receive: we only send


def test_update_with_sdp_puts_us_on_hold(pair):
    from test_sip_dialog import forged

    net, alice, bob = pair
    call_id, _ = call(net, alice, bob)
    events(alice), events(bob)
    dialog = alice.sessions[call_id].dialog
    peer = Scripted()
    net.attach(C, peer)
    offer = MediaSession(MediaPolicy(address="10.0.0.2", port=6000)).create_offer("sendonly")
    peer.out.append((forged(dialog, "UPDATE", 9, body=offer.serialize().encode(),
                            content_type="application/sdp"), A))
    net.run_for(0.1)
    ok = parse_message(peer.received[-1])
    assert ok.status == 200 and b"a=recvonly" in ok.body
    [changed] = events(alice)
    assert isinstance(changed, MediaChanged) and changed.media.remote_hold


def test_422_retries_with_min_se():
    seen: list[Request] = []

    def uas(message):
        if not isinstance(message, Request) or message.method != "INVITE":
            return []
        seen.append(message)
        if len(seen) == 1:
            too_small = build_response(message, 422, "Session Interval Too Small", to_tag="t")
            too_small.headers.add("Min-SE", "1800")
            return [too_small]
        return [build_response(message, 486, "Busy Here", to_tag="t")]

    net = VirtualNetwork()
    alice = agent(A, "alice", 1)
    net.attach(A, alice)
    net.attach(B, Scripted(uas))
    call_id = alice.invite("line1", "sip:bob@10.0.0.2", MEDIA_A, 0.0)
    net.run(2)
    assert [str(r.cseq) for r in seen] == ["1 INVITE", "2 INVITE"]
    assert seen[1].headers.get("Session-Expires") == "1800"
    assert seen[1].headers.get("Min-SE") == "1800"
    assert events(alice) == [CallEnded(call_id, 486, "Busy Here", "remote")]


def test_cancel_after_the_answer_changes_nothing(pair):
    net, alice, bob = pair
    call_id, incoming = call(net, alice, bob)
    events(alice), events(bob)
    session = alice.sessions[call_id]
    session.cancelled = False
    session.state = "early"  # force a CANCEL out as if it crossed the 200
    session._send_cancel(net.now)
    session.state = "confirmed"
    net.run_for(0.5)
    assert parse_message(net.sent("10.0.0.2", "SIP/2.0 200")[-1].data).cseq.method == "CANCEL"
    assert events(bob) == [] and bob.sessions[incoming.call].state == "confirmed"


def test_unknown_required_extension_gets_420(pair):
    net, _, bob = pair
    peer = Scripted()
    net.attach(C, peer)
    peer.out.append(((
        b"INVITE sip:bob@10.0.0.2 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 10.0.0.3:5060;branch=z9hG4bKreq\r\n"
        b"From: <sip:carol@10.0.0.3>;tag=c1\r\nTo: <sip:bob@10.0.0.2>\r\n"
        b"Call-ID: req-1\r\nCSeq: 1 INVITE\r\nRequire: precondition\r\n"
        b"Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"), B))
    net.run_for(0.1)
    [answer] = [parse_message(d) for d in peer.received]
    assert answer.status == 420 and answer.headers.get("Unsupported") == "precondition"
    assert events(bob) == []
