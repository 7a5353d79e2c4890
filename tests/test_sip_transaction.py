"""RFC 3261 section 17 transactions driven over the virtual network, timers checked exactly."""

from __future__ import annotations

import random

import pytest

from sipnet import VirtualNetwork
from tipring.sip.fields import Headers
from tipring.sip.message import Request, Response, build_response, parse_message
from tipring.sip.timers import TimerSettings, new_branch
from tipring.sip.transaction import ClientTransaction, ServerTransaction, TransactionLayer
from tipring.sip.uri import parse_uri

A = ("10.0.0.1", 5060, "udp")
B = ("10.0.0.2", 5060, "udp")
T = TimerSettings()


class Node:
    """A transaction layer with a scripted transaction user."""

    def __init__(self, address, answer=None) -> None:
        self.address = address
        self.layer = TransactionLayer(T)
        self.answer = answer  # (request) -> list of (status, delay) to send
        self.responses: list[tuple[float, int, ClientTransaction]] = []
        self.requests: list[tuple[float, Request]] = []
        self.acks: list[Request] = []
        self.servers: list[ServerTransaction] = []
        self.no_ack: list[float] = []
        self.pending: list[tuple[float, ServerTransaction, int]] = []

    def receive(self, data, source, now):
        message = parse_message(data)
        if isinstance(message, Response):
            self.layer.receive_response(message, now)
            return
        incoming = self.layer.receive_request(message, source, now)
        if incoming.kind == "ack":
            self.acks.append(message)
            if incoming.transaction is not None:
                incoming.transaction.acknowledge(now)
            for tx in self.servers:
                if tx.state == "accepted" and tx.request.call_id == message.call_id:
                    tx.acknowledge(now)
        if incoming.kind != "new":
            return
        tx = incoming.transaction
        tx.on_no_ack = lambda t, when: self.no_ack.append(when)
        self.servers.append(tx)
        self.requests.append((now, message))
        for status, delay in (self.answer(message) if self.answer else []):
            self.pending.append((now + delay, tx, status))

    def datagrams_to_send(self):
        return self.layer.datagrams_to_send()

    def get_timer(self):
        times = [t for t, _, _ in self.pending]
        layer = self.layer.get_timer()
        if layer is not None:
            times.append(layer)
        return min(times, default=None)

    def handle_timer(self, now):
        due = [p for p in self.pending if p[0] <= now]
        self.pending = [p for p in self.pending if p[0] > now]
        for _, tx, status in due:
            tx.respond(build_response(tx.request, status, "Reason", to_tag="callee"), now)
        self.layer.handle_timer(now)

    def send(self, method, destination, now, *, branch=None, from_tag="caller", cseq=1):
        request = make_request(method, self.address, branch=branch, from_tag=from_tag, cseq=cseq)
        return self.layer.start_client(
            request, destination, now,
            lambda tx, response, when: self.responses.append((when, response.status, tx)))


def make_request(method, source, *, branch=None, from_tag="caller", cseq=1, call_id="call-1"):
    headers = Headers()
    branch = branch or new_branch(random.Random(cseq + hash(method) % 1000))
    headers.add("Via", f"SIP/2.0/{source[2].upper()} {source[0]}:{source[1]};branch={branch}")
    headers.add("Max-Forwards", "70")
    headers.add("From", f"<sip:alice@{source[0]}>;tag={from_tag}")
    headers.add("To", "<sip:bob@example.com>")
    headers.add("Call-ID", call_id)
    headers.add("CSeq", f"{cseq} {method}")
    return Request(method, parse_uri("sip:bob@example.com"), headers)


def times(packets):
    return [round(p.sent_at, 3) for p in packets]


def network(a: Node, b: Node | None = None, latency: float = 0.01) -> VirtualNetwork:
    net = VirtualNetwork(latency=latency)
    net.attach(A, a)
    if b is not None:
        net.attach(B, b)
    return net


def test_invite_timer_a_doubles_without_cap_and_timer_b_gives_408():
    caller = Node(A)
    net = network(caller)  # nobody at B: every transmission is lost
    caller.send("INVITE", B, 0.0)
    net.run(40)
    # RFC 3261 17.1.1.2: A starts at T1 and doubles each time; B fires at 64*T1 = 32 s.
    assert times(net.sent("10.0.0.1", "INVITE")) == [0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert [(t, s) for t, s, _ in caller.responses] == [(32.0, 408)]
    assert caller.responses[0][2].error == "timeout"
    assert caller.layer.get_timer() is None and not caller.layer.clients


def test_non_invite_timer_e_caps_at_t2_and_timer_f_gives_408():
    caller = Node(A)
    net = network(caller)
    caller.send("OPTIONS", B, 0.0)
    net.run(40)
    expected = [0, 0.5, 1.5, 3.5, 7.5] + [7.5 + 4 * k for k in range(1, 7)]  # ... 27.5, 31.5
    assert times(net.sent("10.0.0.1", "OPTIONS")) == expected
    assert [(t, s) for t, s, _ in caller.responses] == [(32.0, 408)]


def test_non_invite_provisional_makes_timer_e_t2_then_final_stops_it():
    caller = Node(A)
    callee = Node(B, answer=lambda r: [(100, 0.0), (200, 10.0)])
    net = network(caller, callee)
    net.rule = lambda p: "drop" if p.first_line.startswith("OPTIONS") and p.sent_at > 0 else None
    caller.send("OPTIONS", B, 0.0)
    net.run(40)
    # After the 100 (received at 0.02) E fires every T2 = 4 s from when it last fired (0.5).
    assert times(net.sent("10.0.0.1", "OPTIONS")) == [0, 0.5, 4.5, 8.5]
    assert [s for _, s, _ in caller.responses] == [100, 200]
    # Timer K: T4 after the final response the client transaction is gone.
    assert not caller.layer.clients


def test_non_invite_server_resends_final_on_retransmission_until_timer_j():
    caller = Node(A)
    callee = Node(B, answer=lambda r: [(200, 0.0)])
    net = network(caller, callee)
    # Lose the first 200: the caller's retransmission at 0.5 must get the stored 200 again.
    net.rule = lambda p: "drop" if p.first_line.startswith("SIP/2.0 200") and p.sent_at < 0.1 else None
    caller.send("OPTIONS", B, 0.0)
    net.run(1.0)
    assert [s for _, s, _ in caller.responses] == [200]
    assert len(callee.requests) == 1  # the retransmission never reached the TU
    assert len(net.sent("10.0.0.2", "SIP/2.0 200")) == 2
    tx = callee.servers[0]
    assert tx.state == "completed"
    assert tx.timers.due("J") == pytest.approx(0.01 + 64 * T.t1)
    net.run(0.01 + 64 * T.t1 + 0.001)
    assert tx.terminated and not callee.layer.servers


def test_invite_server_non_2xx_timer_g_until_ack_then_timer_i():
    caller = Node(A)
    callee = Node(B, answer=lambda r: [(486, 0.0)])
    net = network(caller, callee)
    net.rule = lambda p: "drop" if p.first_line.startswith("SIP/2.0 486") and p.sent_at < 3 else None
    caller.send("INVITE", B, 0.0)
    net.run(20)
    # 100 Trying at once (17.2.1), so the caller's Timer A never fires.
    assert len(net.sent("10.0.0.1", "INVITE")) == 1
    assert len(net.sent("10.0.0.2", "SIP/2.0 100")) == 1
    # Timer G: 486 at 0.01, then T1, 2T1 ... ; the copies before 3 s are lost.
    assert times(net.sent("10.0.0.2", "SIP/2.0 486")) == [0.01, 0.51, 1.51, 3.51]
    acks = net.sent("10.0.0.1", "ACK")
    assert times(acks) == [3.52]  # the client transaction ACKs the 486 it finally gets
    tx = callee.servers[0]
    assert tx.terminated  # confirmed at 3.53, Timer I = T4 later
    assert [s for _, s, _ in caller.responses] == [100, 486]
    assert callee.acks == []  # the ACK for a non-2xx stays inside the transaction


def test_invite_server_timer_h_without_ack():
    caller = Node(A)
    callee = Node(B, answer=lambda r: [(603, 0.0)])
    net = network(caller, callee)
    net.rule = lambda p: "drop" if p.first_line.startswith("ACK") else None
    caller.send("INVITE", B, 0.0)
    net.run(40)
    expected = [0.01, 0.51, 1.51, 3.51, 7.51] + [round(7.51 + 4 * k, 3) for k in range(1, 7)]
    assert times(net.sent("10.0.0.2", "SIP/2.0 603")) == expected
    tx = callee.servers[0]
    assert tx.terminated and tx.error == "no ACK"
    # The client sent one ACK per 603 it received; Timer D (32 s) keeps it absorbing them.
    assert len(net.sent("10.0.0.1", "ACK")) == len(expected)
    assert [s for _, s, _ in caller.responses] == [100, 603]


def test_invite_client_timer_d_is_32s_on_udp_and_zero_on_tcp():
    for transport, wait in (("udp", 32.0), ("tcp", 0.0)):
        src, dst = (A[0], A[1], transport), (B[0], B[1], transport)
        caller, callee = Node(src), Node(dst, answer=lambda r: [(404, 0.0)])
        net = VirtualNetwork(latency=0.01)
        net.attach(src, caller)
        net.attach(dst, callee)
        tx = caller.send("INVITE", dst, 0.0)
        net.run(0.05)
        if wait:
            assert tx.state == "completed"
            assert tx.timers.due("D") == pytest.approx(0.02 + wait)
            net.run(0.02 + wait - 0.001)
            assert tx.state == "completed"
            net.run(0.02 + wait + 0.001)
        assert tx.terminated and not caller.layer.clients


def test_2xx_retransmitted_until_ack_then_stops():
    caller = Node(A)
    callee = Node(B, answer=lambda r: [(200, 0.0)])
    net = network(caller, callee)
    tx = caller.send("INVITE", B, 0.0)
    net.run(2.6)
    # Nobody ACKs yet (the test's caller TU is slow): 200 at 0.01, 0.51, 1.51.
    assert times(net.sent("10.0.0.2", "SIP/2.0 200")) == [0.01, 0.51, 1.51]
    # RFC 6026 Accepted: the client transaction passes each 2xx to the TU.
    assert [s for _, s, _ in caller.responses] == [100, 200, 200, 200]
    assert tx.state == "accepted"
    ack = make_request("ACK", A, branch=new_branch(random.Random(7)))
    ack.headers.set("To", "<sip:bob@example.com>;tag=callee")
    caller.layer.send(bytes(ack), B)
    net.run(40)
    assert times(net.sent("10.0.0.2", "SIP/2.0 200")) == [0.01, 0.51, 1.51]
    assert callee.no_ack == []
    assert len(callee.acks) == 1
    assert not caller.layer.clients  # Timer M ended the caller's transaction


def test_2xx_without_ack_reported_after_timer_l():
    caller = Node(A)
    callee = Node(B, answer=lambda r: [(200, 0.0)])
    net = network(caller, callee)
    caller.send("INVITE", B, 0.0)
    net.run(40)
    sent = times(net.sent("10.0.0.2", "SIP/2.0 200"))
    assert sent[:6] == [0.01, 0.51, 1.51, 3.51, 7.51, 11.51]  # doubling to T2
    assert callee.no_ack == [pytest.approx(0.01 + 64 * T.t1)]


def test_reliable_transport_never_retransmits():
    src, dst = ("10.0.0.1", 5060, "tcp"), ("10.0.0.9", 5060, "tcp")
    caller = Node(src)
    net = VirtualNetwork()
    net.attach(src, caller)
    caller.send("INVITE", dst, 0.0)
    caller.send("REGISTER", dst, 0.0, cseq=2)
    net.run(40)
    assert len(net.log) == 2
    assert sorted(s for _, s, _ in caller.responses) == [408, 408]
    assert all(t == 32.0 for t, _, _ in caller.responses)


def test_duplicated_packets_reach_the_tu_once():
    caller = Node(A)
    callee = Node(B, answer=lambda r: [(180, 0.0), (486, 1.0)])
    net = network(caller, callee)
    net.rule = lambda p: "dup"
    caller.send("INVITE", B, 0.0)
    net.run(5)
    assert len(callee.requests) == 1
    # 100 and 180 are not absorbed (each provisional goes up), but the final response is.
    statuses = [s for _, s, _ in caller.responses]
    assert statuses.count(486) == 1
    assert statuses[-1] == 486


def test_merged_request_gets_482():
    caller = Node(A)
    callee = Node(B, answer=lambda r: [(180, 0.0)])
    net = network(caller, callee)
    caller.send("INVITE", B, 0.0, branch="z9hG4bKpath1")
    caller.send("INVITE", B, 0.0, branch="z9hG4bKpath2")  # same From tag, Call-ID, CSeq
    net.run(1)
    assert len(callee.requests) == 1
    finals = {tx.branch: s for _, s, tx in caller.responses if s >= 200}
    assert finals == {"z9hG4bKpath2": 482}


def test_cancel_finds_its_invite_transaction():
    caller = Node(A)
    callee = Node(B)
    net = network(caller, callee)
    caller.send("INVITE", B, 0.0, branch="z9hG4bKinv")
    net.run(0.1)
    cancel = make_request("CANCEL", A, branch="z9hG4bKinv")
    other = make_request("CANCEL", A, branch="z9hG4bKother")
    assert callee.layer.find_invite_for_cancel(cancel) is callee.servers[0]
    assert callee.layer.find_invite_for_cancel(other) is None


def test_transport_error_becomes_503():
    caller = Node(A)
    tx = caller.send("OPTIONS", B, 0.0)
    caller.layer.transport_failed(B, 0.2)
    assert [(t, s) for t, s, _ in caller.responses] == [(0.2, 503)]
    assert tx.error == "transport" and tx.terminated
    assert caller.layer.get_timer() is None


def test_stray_responses_are_ignored():
    layer = TransactionLayer(T)
    response = build_response(make_request("OPTIONS", A, branch="z9hG4bKnone"), 200, "OK")
    assert layer.receive_response(response, 0.0) is False


def test_request_without_its_keys_is_dropped_not_raised():
    """The layer's own guard: a request that skipped validation and lacks Call-ID/From/CSeq
    (with an RFC 2543 branch, the key is built from them) is reported "invalid"."""
    layer = TransactionLayer()
    for missing in ("Call-ID", "From", "CSeq"):
        request = parse_message(
            b"OPTIONS sip:bob@192.168.1.10 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=old\r\n"
            b"From: <sip:a@b>;tag=1\r\nTo: <sip:bob@b>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n"
            b"Content-Length: 0\r\n\r\n")
        request.headers.remove(missing)
        incoming = layer.receive_request(request, ("10.0.0.1", 5060, "udp"), 0.0)
        assert (incoming.kind, incoming.transaction) == ("invalid", None)
    assert layer.servers == {} and layer.datagrams_to_send() == []
