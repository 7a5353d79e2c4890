"""Call waiting end to end: three ATAs (phones + user agents) on the virtual network and clock.

Alice (call waiting on) talks to Bob; Carol calls Alice. Alice hears the call-waiting tone and
CAS, her phone ACKs and gets Carol's caller ID off hook; a flash puts Bob on hold (re-INVITE
a=sendonly) and answers Carol; another flash swaps back; hanging up with Carol on hold rings
Alice back, and lifting resumes Carol.
"""

from __future__ import annotations

import pytest

from test_phone_sip import RTP_A, RTP_B, Station
from test_phone_support import commands, mdmf, rings, tones
from sipnet import VirtualNetwork
from tipring.line.fxs import LineState
from tipring.line.signals import MuteFarEnd, SendCallerId, StopRing
from tipring.phone import AttachMedia, DetachMedia

A = ("10.0.0.1", 5060, "udp")
B = ("10.0.0.2", 5060, "udp")
C = ("10.0.0.3", 5060, "udp")
RTP_C = ("10.0.0.3", 18000)


@pytest.fixture
def net() -> VirtualNetwork:
    return VirtualNetwork(latency=0.01)


def flash(station: Station) -> None:
    """A 0.5 s hook flash on the station's phone."""
    net = station.net
    station.hang_up()
    net.run_for(0.5)
    station.lift()
    net.run_for(1)


def attached(station: Station) -> AttachMedia:
    return station.of(AttachMedia)[-1]


def remote(action: AttachMedia) -> tuple[str | None, int]:
    return action.media.remote_address, action.media.remote_port


def three(net: VirtualNetwork, **alice_features) -> tuple[Station, Station, Station]:
    """Bob calls Alice and they talk; Bob and Carol reach Alice's number through 'pbx.test'."""
    alice = Station(net, A, "1001", "Alice", RTP_A, 1, **alice_features)
    bob = Station(net, B, "2001", "Bob", RTP_B, 2)
    carol = Station(net, C, "3001", "Carol", RTP_C, 3)
    bob.agent.learn_addresses("pbx.test", [A])
    carol.agent.learn_addresses("pbx.test", [A])
    bob.lift()
    bob.dial("1001#")
    net.run_for(1)
    alice.lift()
    net.run_for(1)
    assert alice.line.state is LineState.CONNECTED and bob.line.state is LineState.CONNECTED
    assert remote(attached(alice)) == RTP_B
    return alice, bob, carol


def carol_calls(alice: Station, carol: Station) -> None:
    """Carol dials Alice; Alice's phone hears the alerting and ACKs the CAS with DTMF D."""
    net = alice.net
    before = len(alice.actions)
    carol.lift()
    carol.dial("1001#")
    for _ in range(200):  # until the CAS, in 10 ms steps
        if "cas" in tones(alice.actions[before:]):
            break
        net.run_for(0.01)
    assert tones(alice.actions[before:]) == ["call_waiting", "cas"]
    alice._take(alice.phone.dtmf(0, "D", net.now + 0.01))
    net.run_for(1)


def test_call_waiting_flash_swap_and_ring_back(net: VirtualNetwork) -> None:
    alice, bob, carol = three(net, call_waiting=True)
    net.run_for(5)
    carol_calls(alice, carol)
    # Carol hears ringback (180), Alice got Carol's caller ID off hook; Bob is not disturbed.
    assert "ringback" in tones(carol.actions)
    assert net.sent("10.0.0.1", "SIP/2.0 180") and not net.sent("10.0.0.1", "SIP/2.0 486")
    [burst] = [c for c in commands(alice.actions) if isinstance(c, SendCallerId)]
    fields = mdmf(burst)
    assert not burst.on_hook and (fields[0x02], fields[0x07]) == (b"3001", b"Carol")
    assert MuteFarEnd(True) in commands(alice.actions)
    assert commands(alice.actions)[-1] == MuteFarEnd(False)  # Bob audible again after the FSK
    assert len(bob.of(AttachMedia)) == 1 and bob.line.state is LineState.CONNECTED

    # Flash: Bob on hold (his media says so), Carol answered, Alice's line runs Carol's RTP.
    flash(alice)
    assert [p.first_line.split()[0] for p in net.sent("10.0.0.1", "INVITE")] == ["INVITE"]
    assert attached(bob).media.direction == "recvonly" and attached(bob).media.remote_hold
    assert carol.line.state is LineState.CONNECTED
    assert remote(attached(carol)) == RTP_A and attached(carol).media.direction == "sendrecv"
    assert remote(attached(alice)) == RTP_C and attached(alice).call == attached(carol).call
    assert DetachMedia(0, attached(bob).call) in alice.actions  # Bob's stream left the line
    bob_call = next(c for c in alice.phone.calls if c != attached(carol).call)
    assert alice.phone.calls[bob_call].held
    net.run_for(5)

    # Flash back: Carol on hold, Bob resumed both ways.
    flash(alice)
    assert attached(carol).media.direction == "recvonly"
    assert attached(bob).media.direction == "sendrecv" and not attached(bob).media.remote_hold
    assert remote(attached(alice)) == RTP_B and attached(alice).media.direction == "sendrecv"
    assert attached(alice).call == bob_call
    net.run_for(5)

    # Alice hangs up on Bob with Carol on hold: Bob is cleared, Alice's phone rings back with
    # Carol's caller ID, and lifting takes Carol off hold.
    before = len(alice.actions)
    alice.hang_up()
    net.run_for(1.5)
    assert bob.line.state is LineState.PARKED and bob.phone.calls == {}
    assert alice.line.state is LineState.RINGING and len(alice.phone.calls) == 1
    net.run_for(6)
    ring_back = alice.actions[before:]
    assert rings(ring_back)
    [burst] = [c for c in commands(ring_back) if isinstance(c, SendCallerId)]
    assert burst.on_hook and mdmf(burst)[0x02] == b"3001"
    assert carol.line.state is LineState.CONNECTED  # Carol waited on hold all along
    alice.lift()
    net.run_for(1)
    assert StopRing() in commands(alice.actions[before:])
    assert alice.line.state is LineState.CONNECTED
    assert attached(carol).media.direction == "sendrecv"
    assert remote(attached(alice)) == RTP_C and attached(alice).media.direction == "sendrecv"
    # Alice's only INVITEs are re-INVITEs (she answered both calls): hold Bob, hold Carol,
    # resume Bob, resume Carol. Then Carol hangs up and everything is cleared.
    assert len(net.sent("10.0.0.1", "INVITE")) == 4
    carol.hang_up()
    net.run_for(2)
    assert alice.phone.calls == {} and carol.phone.calls == {}
    assert not alice.agent.sessions and not bob.agent.sessions and not carol.agent.sessions


def test_waiting_caller_gives_up(net: VirtualNetwork) -> None:
    alice, bob, carol = three(net, call_waiting=True)
    carol.lift()
    carol.dial("1001#")
    net.run_for(0.05)
    assert alice.line.state is LineState.CALL_WAITING
    carol.hang_up()
    net.run_for(2)
    assert net.sent("10.0.0.3", "CANCEL") and alice.line.state is LineState.CONNECTED
    assert list(alice.phone.calls) == [attached(alice).call]
    count = len(alice.actions)
    net.run_for(30)
    assert len(alice.actions) == count  # no more beeps for a caller who has gone
    assert bob.line.state is LineState.CONNECTED


def test_hang_up_with_a_call_waiting_rings_for_it(net: VirtualNetwork) -> None:
    alice, bob, carol = three(net, call_waiting=True)
    carol_calls(alice, carol)
    alice.hang_up()
    net.run_for(1.5)
    assert bob.phone.calls == {} and alice.line.state is LineState.RINGING
    alice.lift()
    net.run_for(1)
    assert carol.line.state is LineState.CONNECTED
    assert remote(attached(alice)) == RTP_C and attached(carol).media.direction == "sendrecv"


def test_without_call_waiting_the_second_caller_is_busy(net: VirtualNetwork) -> None:
    alice, bob, carol = three(net)
    carol.lift()
    carol.dial("1001#")
    net.run_for(1)
    assert tones(carol.actions)[-1] == "busy"
    assert "call_waiting" not in tones(alice.actions)
    assert bob.line.state is LineState.CONNECTED
