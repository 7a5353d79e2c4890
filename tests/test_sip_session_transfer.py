"""Call transfer: REFER with sipfrag NOTIFY (RFC 3515) and Replaces (RFC 3891), three agents."""

from __future__ import annotations

from sipnet import VirtualNetwork
from test_sip_session import MEDIA_A, MEDIA_B, A, B, C, agent, events
from tipring.sdp import MediaPolicy
from tipring.sip.message import parse_message
from tipring.sip.session import (
    CallAnswered,
    CallEnded,
    IncomingCall,
    TransferProgress,
    TransferRequested,
    parse_replaces,
)

MEDIA_C = MediaPolicy(address="10.0.0.3", port=8000)


def trio():
    net = VirtualNetwork(latency=0.01)
    alice, bob, carol = agent(A, "alice", 1), agent(B, "bob", 2), agent(C, "carol", 3)
    for address, ua in ((A, alice), (B, bob), (C, carol)):
        net.attach(address, ua)
    return net, alice, bob, carol


def connect(net, caller, callee, uri, media_in, media_out):
    call_id = caller.invite("line1", uri, media_out, net.now)
    net.run_for(0.1)
    incoming = [e for e in events(callee) if isinstance(e, IncomingCall)][-1]
    callee.answer(incoming.call, media_in, net.now)
    net.run_for(0.1)
    events(caller), events(callee)
    return call_id, incoming.call


def test_blind_transfer_with_progress_notifications():
    net, alice, bob, carol = trio()
    call1, bob_call1 = connect(net, alice, bob, "sip:bob@10.0.0.2", MEDIA_B, MEDIA_A)
    bob.transfer(bob_call1, "sip:carol@10.0.0.3", net.now)
    net.run_for(0.1)
    refer = parse_message(net.sent("10.0.0.2", "REFER")[0].data)
    assert refer.headers.get("Refer-To") == "<sip:carol@10.0.0.3>"
    [requested] = events(alice)
    assert isinstance(requested, TransferRequested) and requested.call == call1
    assert str(requested.target) == "sip:carol@10.0.0.3" and requested.replaces is None
    assert events(bob) == [TransferProgress(bob_call1, 100, "Trying")]  # the immediate NOTIFY
    # The phone layer acts on it: call the target, report back as it progresses.
    call2 = alice.invite("line1", requested.target, MEDIA_A, net.now,
                         referred_by=requested.referred_by)
    net.run_for(0.1)
    [incoming] = events(carol)
    carol.answer(incoming.call, MEDIA_C, net.now)
    net.run_for(0.1)
    assert [type(e) for e in events(alice)] == [CallAnswered]
    alice.notify_transfer(call1, 200, "OK", net.now)
    net.run_for(0.1)
    assert events(bob) == [TransferProgress(bob_call1, 200, "OK")]
    notify = parse_message(net.sent("10.0.0.1", "NOTIFY")[-1].data)
    assert notify.headers.get("Subscription-State") == "terminated;reason=noresource"
    assert notify.body == b"SIP/2.0 200 OK\r\n"
    bob.hangup(bob_call1, net.now)
    net.run_for(0.1)
    assert events(alice) == [CallEnded(call1, 200, "BYE", "remote")]
    assert alice.sessions[call2].state == "confirmed"


def test_attended_transfer_replaces_the_consultation_call():
    net, alice, bob, carol = trio()
    # Alice (the ATA) talks to Bob, then consults Carol, then joins them.
    call1, _bob_call1 = connect(net, alice, bob, "sip:bob@10.0.0.2", MEDIA_B, MEDIA_A)
    call2, carol_call2 = connect(net, alice, carol, "sip:carol@10.0.0.3", MEDIA_C, MEDIA_A)
    alice.transfer(call1, None, net.now, replacing=call2)
    net.run_for(0.1)
    [requested] = events(bob)
    assert str(requested.target) == "sip:carol@10.0.0.3:5060"
    call_id, to_tag, from_tag = parse_replaces(requested.replaces)
    carol_dialog = carol.sessions[carol_call2].dialog
    assert (call_id, to_tag, from_tag) == (carol_call2, carol_dialog.local_tag,
                                           carol_dialog.remote_tag)
    bob.invite("line1", requested.target, MEDIA_B, net.now, replaces=requested.replaces)
    net.run_for(0.1)
    [incoming] = events(carol)
    assert isinstance(incoming, IncomingCall) and incoming.replaces == carol_call2


def test_replaces_naming_no_dialog_gets_481():
    net, alice, bob, carol = trio()
    connect(net, alice, carol, "sip:carol@10.0.0.3", MEDIA_C, MEDIA_A)
    call = bob.invite("line1", "sip:carol@10.0.0.3", MEDIA_B, net.now,
                      replaces="nosuchcall;to-tag=a;from-tag=b")
    net.run_for(1)
    assert events(carol) == []
    assert events(bob)[-1] == CallEnded(call, 481, "Call/Transaction Does Not Exist", "remote")


def test_refer_without_refer_to_is_rejected():
    net, alice, bob, _ = trio()
    _call1, bob_call1 = connect(net, alice, bob, "sip:bob@10.0.0.2", MEDIA_B, MEDIA_A)
    session = bob.sessions[bob_call1]
    request = session.dialog.create_request("REFER", local=B, rng=bob.rng)
    address = bob.hop(session.dialog.next_hop(), "line1")
    bob.layer.start_client(request, address, net.now, lambda *_: None)
    net.run_for(0.1)
    assert parse_message(net.sent("10.0.0.1", "SIP/2.0 400")[0].data).reason == "Bad Refer-To"
    assert events(alice) == []
