"""Transfer and three-way calling end to end: three ATAs on the virtual network and clock.

Bob calls Alice; Alice flashes (Bob is held, Alice hears recall dial tone) and dials Carol by
direct IP. Hanging up while Carol rings is a blind transfer (REFER to Carol's address); after
Carol answered it is an attended transfer (REFER with Replaces); a flash after Carol answered
joins all three; a flash in the three-way call drops Carol. Bob's phone follows the REFER.
"""

from __future__ import annotations

import pytest

from test_phone_sip import RTP_A, RTP_B, Station
from test_phone_support import tones
from sipnet import VirtualNetwork
from tipring.line.fxs import LineState
from tipring.phone import AttachMedia, DetachMedia

A = ("10.0.0.1", 5060, "udp")
B = ("10.0.0.2", 5060, "udp")
C = ("10.0.0.3", 5060, "udp")
RTP_A2 = ("10.0.0.1", 16002)
RTP_C = ("10.0.0.3", 18000)
CAROL = "*4710*0*0*3#"


@pytest.fixture
def net() -> VirtualNetwork:
    return VirtualNetwork(latency=0.01)


def flash(station: Station) -> None:
    station.hang_up()
    station.net.run_for(0.5)
    station.lift()
    station.net.run_for(1)


def remote(action: AttachMedia) -> tuple[str | None, int]:
    return action.media.remote_address, action.media.remote_port


def bob_calls_alice(net: VirtualNetwork) -> tuple[Station, Station, Station]:
    alice = Station(net, A, "1001", "Alice", RTP_A, 1, direct_ip=True, rtp2=RTP_A2)
    bob = Station(net, B, "2001", "Bob", RTP_B, 2)
    carol = Station(net, C, "3001", "Carol", RTP_C, 3)
    bob.agent.learn_addresses("pbx.test", [A])
    bob.lift()
    bob.dial("1001#")
    net.run_for(1)
    alice.lift()
    net.run_for(1)
    assert alice.line.state is LineState.CONNECTED and bob.line.state is LineState.CONNECTED
    return alice, bob, carol


def alice_consults_carol(alice: Station, carol: Station, *, answer: bool) -> str:
    """Flash, recall dial tone, dial Carol; returns the handle of Bob's (held) call."""
    [first] = alice.phone.calls
    flash(alice)
    assert alice.phone.calls[first].held and alice.line.state is LineState.DIAL_TONE
    assert tones(alice.actions)[-1] == "stutter_dial"
    assert alice.of(DetachMedia)[-1] == DetachMedia(0, first)
    alice.dial(CAROL)
    alice.net.run_for(1)
    assert carol.line.state is LineState.RINGING
    if answer:
        carol.lift()
        alice.net.run_for(1)
        assert alice.line.state is LineState.CONNECTED
        consult = alice.of(AttachMedia)[-1]
        assert consult.local == RTP_A2 and remote(consult) == RTP_C  # the second RTP pair
    return first


def settle(net: VirtualNetwork, *stations: Station) -> None:
    net.run_for(10)
    for station in stations:
        assert not station.agent.sessions or station.phone.calls, station


def test_blind_transfer_hands_bob_to_carol(net: VirtualNetwork) -> None:
    alice, bob, carol = bob_calls_alice(net)
    alice_consults_carol(alice, carol, answer=False)
    alice.hang_up()  # Carol still ringing: blind transfer (a hang-up once past the flash time)
    net.run_for(1.5)
    refer = [p for p in net.sent("10.0.0.1", "REFER")]
    assert len(refer) == 1 and "Refer-To: <sip:10.0.0.3>" in refer[0].data.decode()
    assert carol.line.state is LineState.RINGING  # now Bob's call (Alice's was cancelled)
    carol.lift()
    net.run_for(2)
    assert remote(bob.of(AttachMedia)[-1]) == RTP_C and remote(carol.of(AttachMedia)[-1]) == RTP_B
    assert [c.state for c in bob.phone.calls.values()] == ["connected"]
    assert alice.phone.calls == {} and not alice.agent.sessions  # NOTIFY 200, then BYE to Bob
    assert alice.line.state is LineState.IDLE
    assert bob.line.state is LineState.CONNECTED and carol.line.state is LineState.CONNECTED


def test_attended_transfer_replaces_alices_call_to_carol(net: VirtualNetwork) -> None:
    alice, bob, carol = bob_calls_alice(net)
    alice_consults_carol(alice, carol, answer=True)
    rings_before = len([a for a in carol.actions if "StartRing" in repr(a)])
    alice.hang_up()
    net.run_for(2)
    refer = net.sent("10.0.0.1", "REFER")[0].data.decode()
    assert "Replaces=" in refer or "Replaces%3D" in refer or "?Replaces" in refer
    invite = [p for p in net.sent("10.0.0.2", "INVITE")][-1].data.decode()
    assert "\r\nReplaces: " in invite and "Referred-By: " in invite
    # Carol's phone swapped Alice's call for Bob's without ringing.
    assert len([a for a in carol.actions if "StartRing" in repr(a)]) == rings_before
    assert [c.state for c in carol.phone.calls.values()] == ["connected"]
    assert remote(carol.of(AttachMedia)[-1]) == RTP_B and remote(bob.of(AttachMedia)[-1]) == RTP_C
    assert alice.phone.calls == {} and not alice.agent.sessions
    assert [c.state for c in bob.phone.calls.values()] == ["connected"]


def test_flash_after_carol_answers_joins_all_three_and_again_drops_carol(
        net: VirtualNetwork) -> None:
    alice, bob, carol = bob_calls_alice(net)
    first = alice_consults_carol(alice, carol, answer=True)
    flash(alice)
    assert alice.phone.conference == {0}
    on_line = {a.call: a for a in alice.of(AttachMedia)}
    assert remote(on_line[first]) == RTP_B and on_line[first].local == RTP_A
    assert not alice.phone.calls[first].held and len(alice.phone.calls) == 2
    assert bob.of(AttachMedia)[-1].media.send and bob.of(AttachMedia)[-1].media.receive
    flash(alice)  # the party added last leaves
    net.run_for(1)
    assert alice.phone.conference == set() and list(alice.phone.calls) == [first]
    assert carol.phone.calls == {} and carol.line.state is not LineState.CONNECTED
    assert bob.line.state is LineState.CONNECTED


def test_hanging_up_a_three_way_call_ends_both(net: VirtualNetwork) -> None:
    alice, bob, carol = bob_calls_alice(net)
    alice_consults_carol(alice, carol, answer=True)
    flash(alice)
    alice.hang_up()
    net.run_for(2)
    assert alice.phone.calls == {} and bob.phone.calls == {} and carol.phone.calls == {}
    assert net.sent("10.0.0.1", "REFER") == []


def test_a_party_leaving_the_three_way_call_leaves_the_other_two(net: VirtualNetwork) -> None:
    alice, bob, carol = bob_calls_alice(net)
    first = alice_consults_carol(alice, carol, answer=True)
    flash(alice)
    bob.hang_up()
    net.run_for(2)
    assert alice.phone.conference == set() and first not in alice.phone.calls
    assert [c.state for c in alice.phone.calls.values()] == ["connected"]
    assert alice.line.state is LineState.CONNECTED and carol.line.state is LineState.CONNECTED


def test_flash_while_carol_rings_abandons_her_and_takes_bob_back(net: VirtualNetwork) -> None:
    alice, _bob, carol = bob_calls_alice(net)
    first = alice_consults_carol(alice, carol, answer=False)
    flash(alice)
    net.run_for(1)
    assert list(alice.phone.calls) == [first] and not alice.phone.calls[first].held
    assert carol.line.state is LineState.IDLE and alice.line.state is LineState.CONNECTED
    assert alice.of(AttachMedia)[-1].call == first


def test_hanging_up_at_recall_dial_tone_rings_back_the_held_call(net: VirtualNetwork) -> None:
    alice, _bob, _ = bob_calls_alice(net)
    [first] = alice.phone.calls
    flash(alice)
    alice.hang_up()
    net.run_for(1.5)
    assert alice.line.state is LineState.RINGING and alice.phone.calls[first].recalling
    alice.lift()
    net.run_for(1)
    assert not alice.phone.calls[first].held and alice.of(AttachMedia)[-1].call == first
