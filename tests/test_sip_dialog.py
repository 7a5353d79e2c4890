"""Dialogs (RFC 3261 12): route sets, loose and strict routing, target refresh, CSeq order."""

from __future__ import annotations

import random

from sipnet import VirtualNetwork
from test_sip_session import MEDIA_A, MEDIA_B, A, B, agent, events
from tipring.sip.agent import UserAgent
from tipring.sip.dialog import Dialog
from tipring.sip.message import Request, parse_message
from tipring.sip.registration import RegistrationSettings
from tipring.sip.session import CallEnded, IncomingCall

INVITE = (
    b"INVITE sip:bob@b.example SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKd1\r\n"
    b"Record-Route: <sip:p2.example;lr>, <sip:p1.example;lr>\r\n"
    b"From: \"Alice\" <sip:alice@a.example>;tag=at\r\nTo: <sip:bob@b.example>\r\n"
    b"Call-ID: dlg-1\r\nCSeq: 7 INVITE\r\nContact: <sip:alice@10.0.0.1:5060>\r\n"
    b"Content-Length: 0\r\n\r\n")
OK = (
    b"SIP/2.0 200 OK\r\n"
    b"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKd1\r\n"
    b"Record-Route: <sip:p2.example;lr>, <sip:p1.example;lr>\r\n"
    b"From: \"Alice\" <sip:alice@a.example>;tag=at\r\nTo: <sip:bob@b.example>;tag=bt\r\n"
    b"Call-ID: dlg-1\r\nCSeq: 7 INVITE\r\nContact: <sip:bob@10.0.0.2:5062>\r\n"
    b"Content-Length: 0\r\n\r\n")
LOCAL = ("10.0.0.1", 5060, "udp")


def test_uac_route_set_is_record_route_reversed_and_loose_routed():
    dialog = Dialog.as_uac(parse_message(INVITE), parse_message(OK))
    assert dialog.id == ("dlg-1", "at", "bt")
    assert [str(r.uri) for r in dialog.route_set] == ["sip:p1.example;lr", "sip:p2.example;lr"]
    bye = dialog.create_request("BYE", local=LOCAL, rng=random.Random(1))
    assert str(bye.uri) == "sip:bob@10.0.0.2:5062"  # the remote target
    assert bye.headers.lines("Route") == ["<sip:p1.example;lr>", "<sip:p2.example;lr>"]
    assert str(bye.cseq) == "8 BYE"
    assert bye.from_.tag == "at" and bye.to.tag == "bt" and bye.from_.display_name == "Alice"
    assert str(dialog.next_hop()) == "sip:p1.example;lr"


def test_uas_route_set_keeps_record_route_order():
    dialog = Dialog.as_uas(parse_message(INVITE), "bt", "<sip:bob@10.0.0.2>")
    assert [str(r.uri) for r in dialog.route_set] == ["sip:p2.example;lr", "sip:p1.example;lr"]
    assert str(dialog.remote_target) == "sip:alice@10.0.0.1:5060"
    bye = dialog.create_request("BYE", local=LOCAL, rng=random.Random(1))
    assert bye.from_.uri.user == "bob" and bye.to.uri.user == "alice"
    assert str(bye.cseq) == "1 BYE"


def test_strict_router_gets_the_request_uri_and_the_target_goes_last():
    ok = OK.replace(b"<sip:p2.example;lr>, <sip:p1.example;lr>", b"<sip:p2.example>, "
                    b"<sip:p1.example;transport=udp;maddr=192.0.2.1>")
    dialog = Dialog.as_uac(parse_message(INVITE), parse_message(ok))
    bye = dialog.create_request("BYE", local=LOCAL, rng=random.Random(1))
    assert str(bye.uri) == "sip:p1.example"  # transport and maddr stripped (12.2.1.1)
    assert bye.headers.lines("Route") == ["<sip:p2.example>", "<sip:bob@10.0.0.2:5062>"]


def test_remote_cseq_must_not_go_backwards_and_target_refresh():
    dialog = Dialog.as_uas(parse_message(INVITE), "bt", "<sip:bob@10.0.0.2>")
    later = parse_message(INVITE.replace(b"CSeq: 7 INVITE", b"CSeq: 9 INVITE")
                          .replace(b"10.0.0.1:5060>", b"10.0.0.9:5070>"))
    older = parse_message(INVITE.replace(b"CSeq: 7 INVITE", b"CSeq: 8 INVITE"))
    assert dialog.accept_remote_cseq(later)
    assert not dialog.accept_remote_cseq(older)
    dialog.refresh_target(later)
    assert str(dialog.remote_target) == "sip:alice@10.0.0.9:5070"


def test_matching_uses_call_id_and_both_tags():
    dialog = Dialog.as_uac(parse_message(INVITE), parse_message(OK))
    bye_from_bob = Dialog.as_uas(parse_message(INVITE), "bt", "").create_request(
        "BYE", local=LOCAL, rng=random.Random(2))
    assert dialog.matches(bye_from_bob, incoming=True)
    bye_from_bob.headers.set("From", "<sip:bob@b.example>;tag=other")
    assert not dialog.matches(bye_from_bob, incoming=True)


class RecordRoutingProxy:
    """A minimal stateless proxy at 10.0.0.3 that Record-Routes (RFC 3261 16.6, 16.7)."""

    ADDRESS = ("10.0.0.3", 5060, "udp")

    def __init__(self) -> None:
        self.out: list = []
        self.seen: list[str] = []

    def receive(self, data, source, now):
        message = parse_message(data)
        if isinstance(message, Request):
            self.seen.append(data.split(b"\r\n", 1)[0].decode())
            routes = message.headers.lines("Route")
            if routes and "10.0.0.3" in routes[0]:
                message.headers.remove("Route")
                for value in routes[1:]:
                    message.headers.add("Route", value)
            if message.method == "INVITE" and message.to.tag is None:
                message.headers.add("Record-Route", "<sip:10.0.0.3;lr>", first=True)
            branch = f"z9hG4bKpx{abs(hash(message.via[0].branch)) % 10**8}"
            message.headers.add("Via", f"SIP/2.0/UDP 10.0.0.3:5060;branch={branch}", first=True)
            uri = message.uri
            self.out.append((bytes(message), (uri.host, uri.port or 5060, "udp")))
        else:
            vias = message.headers.lines("Via")
            message.headers.remove("Via")
            for value in vias[1:]:
                message.headers.add("Via", value)
            via = message.via[0]
            self.out.append((bytes(message), (via.received or via.host, via.rport or via.port
                                              or 5060, "udp")))

    def datagrams_to_send(self):
        out, self.out = self.out, []
        return out

    def get_timer(self):
        return None

    def handle_timer(self, now):
        pass


def test_in_dialog_requests_follow_the_record_route_through_the_proxy():
    net = VirtualNetwork()
    proxy = RecordRoutingProxy()
    # Alice's first hop is the proxy: her outbound proxy, preloaded as a loose Route.
    alice = UserAgent(A, rng=random.Random(1))
    alice.add_account(RegistrationSettings(account="line1", user="alice", domain="10.0.0.1",
                                           outbound_proxy="10.0.0.3", keepalive_s=0),
                      [proxy.ADDRESS], allow_sip_from="any")
    bob = agent(B, "bob", 2)
    net.attach(A, alice)
    net.attach(B, bob)
    net.attach(proxy.ADDRESS, proxy)
    call_id = alice.invite("line1", "sip:bob@10.0.0.2", MEDIA_A, 0.0)
    net.run(0.1)
    [incoming] = events(bob)
    assert isinstance(incoming, IncomingCall)
    bob.answer(incoming.call, MEDIA_B, net.now)
    net.run(0.3)
    bob_dialog = bob.sessions[incoming.call].dialog
    assert [str(r.uri) for r in bob_dialog.route_set] == ["sip:10.0.0.3;lr"]
    alice_dialog = alice.sessions[call_id].dialog
    assert [str(r.uri) for r in alice_dialog.route_set] == ["sip:10.0.0.3;lr"]
    invite = parse_message(net.sent("10.0.0.1", "INVITE")[0].data)
    assert invite.headers.lines("Route") == ["<sip:10.0.0.3;lr>"]
    bob.hangup(incoming.call, net.now)
    net.run(1)
    # Bob's BYE went to the proxy (his route set), Request-URI Alice's Contact.
    bye = net.sent("10.0.0.2", "BYE")[0]
    assert bye.destination == proxy.ADDRESS
    assert bye.first_line == "BYE sip:alice@10.0.0.1:5060 SIP/2.0"
    assert "BYE sip:alice@10.0.0.1:5060 SIP/2.0" in proxy.seen
    assert events(alice)[-1] == CallEnded(call_id, 200, "BYE", "remote")
    # The ACK for the 2xx also went through the proxy.
    assert net.sent("10.0.0.1", "ACK")[0].destination == proxy.ADDRESS


def forged(dialog: Dialog, method: str, cseq: int, *, contact: str | None = None,
           body: bytes = b"", content_type: str | None = None) -> bytes:
    """A request from the far end of `dialog` (From/To and tags swapped)."""
    request = dialog.create_request(method, local=("10.0.0.2", 5060, "udp"),
                                    rng=random.Random(cseq), cseq=cseq)
    request.headers.set("From", f"<sip:bob@10.0.0.2>;tag={dialog.remote_tag}")
    request.headers.set("To", f"<sip:alice@10.0.0.1>;tag={dialog.local_tag}")
    if contact is not None:
        request.headers.set("Contact", contact)
    if content_type:
        request.headers.add("Content-Type", content_type)
        request.body = body
    return bytes(request)


def test_reinvite_refreshes_the_remote_target_and_old_cseq_gets_500():
    from sipnet import VirtualNetwork
    from test_sip_session import Scripted, call

    net = VirtualNetwork()
    alice, bob = agent(A, "alice", 1), agent(B, "bob", 2)
    net.attach(A, alice)
    net.attach(B, bob)
    call_id, _ = call(net, alice, bob)
    events(alice), events(bob)
    dialog = alice.sessions[call_id].dialog
    peer = Scripted()
    net.attach(("10.0.0.2", 5070, "udp"), peer)
    offer = bob.sessions[next(iter(bob.sessions))].media.create_offer()
    # Bob "moves" to port 5070: a re-INVITE with a new Contact (a target refresh, 12.2).
    peer.out.append((forged(dialog, "INVITE", 5, contact="<sip:bob@10.0.0.2:5070>",
                            body=offer.serialize().encode(), content_type="application/sdp"), A))
    net.run_for(0.1)
    ok = parse_message(peer.received[-1])
    assert ok.status == 200 and ok.body
    assert str(dialog.remote_target) == "sip:bob@10.0.0.2:5070"
    peer.out.append((forged(dialog, "OPTIONS", 4), A))  # lower than 5: out of order
    net.run_for(0.1)
    assert parse_message(peer.received[-1]).status == 500
    alice.hangup(call_id, net.now)
    net.run_for(0.1)
    bye = net.sent("10.0.0.1", "BYE")[0]
    assert bye.destination == ("10.0.0.2", 5070, "udp")
    assert bye.first_line == "BYE sip:bob@10.0.0.2:5070 SIP/2.0"
