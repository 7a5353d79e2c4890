"""A forked INVITE (RFC 3261 16.7, 13.2.2.4; RFC 3262 per early dialog), caller side.

A scripted forking proxy at B hands our INVITE to two phones, fork "a" at C and fork "b" at D,
and relays what each answers: reliable 18x from both (each with its own RSeq numbering), then
200 from b and then 200 from a as well. We must PRACK each fork in its own early dialog, take
b's answer as the call, ACK a's 200 too and hang that dialog up at once, and keep ACKing the
right dialog when either 200 is retransmitted.
"""

from __future__ import annotations

from sipnet import VirtualNetwork
from test_sip_session import MEDIA_A, Scripted, agent, events
from tipring.sip.message import Request, Response, build_response, parse_message
from tipring.sip.session import CallAnswered, CallEnded, CallProgress

A = ("10.0.0.1", 5060, "udp")
PROXY = ("10.0.0.2", 5060, "udp")
FORK_A = ("10.0.0.3", 5060, "udp")
FORK_B = ("10.0.0.4", 5060, "udp")


def sdp(host: str, port: int) -> bytes:
    return (f"v=0\r\no=- 1 1 IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n").encode()


def fork_response(invite: Request, status: int, reason: str, fork: str,
                  rseq: int | None = None, body: bytes = b"") -> Response:
    host = FORK_A[0] if fork == "a" else FORK_B[0]
    response = build_response(invite, status, reason, to_tag=f"fork-{fork}")
    response.headers.add("Contact", f"<sip:bob@{host}>")
    if rseq is not None:
        response.headers.add("Require", "100rel")
        response.headers.add("RSeq", str(rseq))
    if body:
        response.headers.add("Content-Type", "application/sdp")
        response.body = body
    return response


class Fork(Scripted):
    """One phone behind the proxy: answers PRACK and BYE with 200, keeps every request."""

    def __init__(self) -> None:
        super().__init__(self._answer)
        self.requests: list[Request] = []

    def _answer(self, message: object) -> list[Response]:
        if not isinstance(message, Request):
            return []
        self.requests.append(message)
        if message.method in ("PRACK", "BYE"):
            return [build_response(message, 200, "OK")]
        return []

    def methods(self) -> list[str]:
        return [r.method for r in self.requests]


def forked_call():
    net = VirtualNetwork(latency=0.01)
    alice = agent(A, "alice", 1)
    invites: list[Request] = []

    def proxy(message: object) -> list[Response]:
        if not isinstance(message, Request) or message.method != "INVITE":
            return []
        invites.append(message)
        return [
            fork_response(message, 180, "Ringing", "a", rseq=1),
            fork_response(message, 183, "Session Progress", "b", rseq=7001,
                          body=sdp(FORK_B[0], 7000)),
            fork_response(message, 200, "OK", "b", body=sdp(FORK_B[0], 7000)),
            fork_response(message, 200, "OK", "a", body=sdp(FORK_A[0], 5000)),
        ]

    forwarder = Scripted(proxy)
    fork_a, fork_b = Fork(), Fork()
    for address, endpoint in ((A, alice), (PROXY, forwarder), (FORK_A, fork_a),
                              (FORK_B, fork_b)):
        net.attach(address, endpoint)
    call = alice.invite("line1", "sip:bob@10.0.0.2", MEDIA_A, net.now)
    net.run_for(1)
    return net, alice, call, invites[0], forwarder, fork_a, fork_b


def test_each_fork_gets_its_own_prack_and_the_first_2xx_wins() -> None:
    _, alice, call, invite, _, fork_a, fork_b = forked_call()
    ringing, progress, answered = events(alice)
    assert isinstance(ringing, CallProgress) and ringing.status == 180
    assert isinstance(progress, CallProgress) and progress.status == 183
    assert progress.early_media is not None
    assert progress.early_media.remote_address == FORK_B[0]
    assert isinstance(answered, CallAnswered) and answered.call == call
    assert (answered.media.remote_address, answered.media.remote_port) == (FORK_B[0], 7000)
    # PRACK in each early dialog, with that fork's RSeq (RFC 3262 4: per dialog).
    [prack_a] = [r for r in fork_a.requests if r.method == "PRACK"]
    [prack_b] = [r for r in fork_b.requests if r.method == "PRACK"]
    assert prack_a.headers.get("RAck") == "1 1 INVITE" and prack_a.to.tag == "fork-a"
    assert prack_b.headers.get("RAck") == "7001 1 INVITE" and prack_b.to.tag == "fork-b"
    assert prack_a.call_id == prack_b.call_id == invite.call_id
    # b's 200 is the call: ACKed. a's 200 is ACKed as well, then a is hung up.
    assert fork_b.methods() == ["PRACK", "ACK"]
    assert fork_a.methods() == ["PRACK", "ACK", "BYE"]
    ack_a, bye_a = fork_a.requests[1:]
    assert ack_a.to.tag == bye_a.to.tag == "fork-a"
    assert str(ack_a.cseq) == "1 ACK" and str(bye_a.cseq) == "3 BYE"  # after a's PRACK (2)
    assert fork_b.requests[1].to.tag == "fork-b" and str(fork_b.requests[1].cseq) == "1 ACK"
    assert alice.sessions[call].dialog is not None
    assert alice.sessions[call].dialog.remote_tag == "fork-b"  # type: ignore[union-attr]


def test_retransmitted_2xx_of_either_fork_is_acked_in_its_own_dialog() -> None:
    net, alice, call, invite, forwarder, fork_a, fork_b = forked_call()
    events(alice)
    for fork in ("a", "b", "a"):
        host = FORK_A[0] if fork == "a" else FORK_B[0]
        again = fork_response(invite, 200, "OK", fork, body=sdp(host, 7000))
        forwarder.out.append((bytes(again), A))
        net.run_for(0.5)
    assert fork_a.methods() == ["PRACK", "ACK", "BYE", "ACK", "ACK"]  # no second BYE
    assert fork_b.methods() == ["PRACK", "ACK", "ACK"]
    assert {r.to.tag for r in fork_a.requests} == {"fork-a"}
    assert {r.to.tag for r in fork_b.requests} == {"fork-b"}
    assert events(alice) == []  # copies are not new answers
    alice.hangup(call, net.now)
    net.run_for(1)
    assert fork_b.methods()[-1] == "BYE" and fork_b.requests[-1].to.tag == "fork-b"
    assert events(alice) == [CallEnded(call, 200, "BYE", "local")]
    assert not alice.sessions


def test_a_fork_answering_after_the_call_ended_is_still_acked_and_hung_up() -> None:
    net, alice, call, invite, forwarder, fork_a, _ = forked_call()
    alice.hangup(call, net.now)
    net.run_for(1)
    late = fork_response(invite, 200, "OK", "c", body=sdp("10.0.0.5", 9000))
    late.headers.set("Contact", f"<sip:bob@{FORK_A[0]}>")  # fork c lives beside a
    forwarder.out.append((bytes(late), A))
    net.run_for(1)
    tail = [(r.method, r.to.tag) for r in fork_a.requests[3:]]
    assert tail == [("ACK", "fork-c"), ("BYE", "fork-c")]


def test_messages_parse_as_sent() -> None:
    # The scripted responses are well-formed SIP (what the tests above rely on).
    invite = parse_message(
        b"INVITE sip:bob@10.0.0.2 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKx\r\n"
        b"From: <sip:alice@10.0.0.1>;tag=1\r\nTo: <sip:bob@10.0.0.2>\r\nCall-ID: c\r\n"
        b"CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n")
    assert isinstance(invite, Request)
    response = parse_message(bytes(fork_response(invite, 183, "Session Progress", "b", 5,
                                                 sdp("10.0.0.4", 7000))))
    assert isinstance(response, Response) and response.to.tag == "fork-b"
    assert response.headers.get("RSeq") == "5"
