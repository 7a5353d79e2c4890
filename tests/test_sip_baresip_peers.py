"""baresip as the far-end phone, at the SIP layer: hold and resume both ways, RFC 4733
telephone-events both ways, and DTMF as SIP INFO to baresip.

Our side is `SipRuntime` with a plain UDP socket standing in for the media engine on the RTP
port our SDP names, so the test sees exactly which RTP reached us and sends exactly the
RFC 4733 packets `media.telephone_event.EventSender` makes. baresip is the independent end:
its CALL_DTMF_START events say which digits it decoded from our packets; its own RFC 4733
and INFO come from its code, not ours. Kamailio (registrar and proxy) is in the path.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
from collections.abc import AsyncIterator, Callable

import pytest

from peers.baresip import Baresip
from peers.kamailio import Kamailio
from peers.ports import free_port
from test_sip_peers import Phone, blocking, registered_phone, run
from tipring.media.rtp import RtpPacket, parse_rtp
from tipring.media.telephone_event import DigitEnded, EventReceiver, EventSender
from tipring.sdp import MediaPolicy
from tipring.sip.session import CallAnswered, CallEnded, MediaChanged

pytest_plugins = ["peers.fixtures"]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]

BaresipFactory = Callable[..., Baresip]


class RtpPort:
    """A UDP socket on our SDP's RTP port: what arrives, and a way to send."""

    def __init__(self) -> None:
        self.port = free_port("127.0.0.1")
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.setblocking(False)
        self.packets: list[RtpPacket] = []

    def media(self) -> MediaPolicy:
        return MediaPolicy("127.0.0.1", self.port, ("PCMU", "PCMA"), telephone_event_pt=101)

    def drain(self) -> list[RtpPacket]:
        while True:
            try:
                data = self.sock.recv(2048)
            except BlockingIOError:
                return self.packets
            self.packets.append(parse_rtp(data))

    def close(self) -> None:
        self.sock.close()


@contextlib.asynccontextmanager
async def call_to(kamailio: Kamailio, far: Baresip
                  ) -> AsyncIterator[tuple[Phone, RtpPort, str, CallAnswered]]:
    """A registered phone in an established call to baresip (1002): (phone, our RTP port,
    the call, its answer). The socket closes and the runtime stops afterwards."""
    phone = await registered_phone(kamailio)
    rtp = RtpPort()
    try:
        call = phone.runtime.invite("line1", "1002", rtp.media())
        answered = await phone.wait(CallAnswered, timeout=10)
        assert answered.call == call
        await blocking(far.wait_event, "CALL_ESTABLISHED", 5)
        yield phone, rtp, call, answered
    finally:
        rtp.close()
        await phone.runtime.stop()


async def until(check: Callable[[], bool], timeout: float, what: str) -> None:
    end = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > end:
            raise AssertionError(f"{what} within {timeout} s")
        await asyncio.sleep(0.05)


def test_hold_and_resume_both_ways(kamailio: Kamailio, baresip_factory: BaresipFactory) -> None:
    far = baresip_factory(kamailio.aor("1002"), password="secret1002", answer_mode="auto")

    async def main() -> None:
        async with call_to(kamailio, far) as (phone, _, call, answered):
            assert (answered.media.send, answered.media.receive) == (True, True)

            # baresip holds us (its re-INVITE offers sendonly): we must stop sending.
            mark = len(phone.of(MediaChanged))
            await blocking(far.hold)
            held = await phone.wait(MediaChanged, count=mark + 1)
            assert (held.call, held.media.send, held.media.receive) == (call, False, True)
            await blocking(far.resume)
            back = await phone.wait(MediaChanged, count=mark + 2)
            assert (back.media.send, back.media.receive) == (True, True)

            # We hold baresip (sendonly); it answers recvonly, which its next offer shows.
            since = len(far.events)
            phone.runtime.act(lambda agent, now: agent.hold(call, now))
            ours = await phone.wait(MediaChanged, count=mark + 3)
            assert (ours.media.send, ours.media.receive) == (True, False)
            await blocking(far.wait_event, "CALL_REMOTE_SDP", 5, since)
            since = len(far.events)
            phone.runtime.act(lambda agent, now: agent.resume(call, now))
            resumed = await phone.wait(MediaChanged, count=mark + 4)
            assert (resumed.media.send, resumed.media.receive) == (True, True)
            await blocking(far.wait_event, "CALL_REMOTE_SDP", 5, since)
            log = far.log_text()
            invites = log.split("\nINVITE sip:")
            assert "a=sendonly" in invites[-2] and "a=sendrecv" in invites[-1]

            phone.runtime.hangup(call)
            await blocking(far.wait_event, "CALL_CLOSED", 5)
            await phone.wait(CallEnded)

    run(main)


def test_rfc4733_events_both_ways(kamailio: Kamailio, baresip_factory: BaresipFactory) -> None:
    far = baresip_factory(kamailio.aor("1002"), password="secret1002", answer_mode="auto")

    async def main() -> None:
        async with call_to(kamailio, far) as (phone, rtp, call, answered):
            media = answered.media
            assert media.telephone_event_pt is not None  # baresip accepted telephone-event
            assert set(range(16)) <= media.telephone_events

            # Ours to baresip: EventSender's packets, 20 ms apart, as the media thread sends.
            sender = EventSender()
            ssrc, sequence, timestamp = random.getrandbits(32), random.getrandbits(16), 8000
            destination = (media.remote_address, media.remote_port)
            for key in "4*":
                sender.start(key, timestamp)
                for tick in range(12):
                    if tick == 6:
                        sender.stop()
                    for out in sender.tick():
                        sequence += 1
                        packet = RtpPacket(media.telephone_event_pt, sequence, out.timestamp, ssrc,
                                           out.payload, out.marker)
                        rtp.sock.sendto(packet.serialize(), destination)
                    await asyncio.sleep(0.02)
                timestamp += 160 * 20
            first = await blocking(far.wait_event, "CALL_DTMF_START", 5)
            second = await blocking(far.wait_event, "CALL_DTMF_START", 5, 0,
                                    lambda e: e is not first)
            assert [first["param"], second["param"]] == ["4", "*"]

            # baresip's to us: its RFC 4733 packets on our RTP port, with our payload type.
            await blocking(far.send_dtmf, "7#")
            receiver = EventReceiver()
            digits: list[str] = []

            def heard() -> bool:
                for packet in rtp.drain()[len(heard_packets):]:
                    heard_packets.append(packet)
                    if packet.payload_type == 101:
                        digits.extend(e.key for e in receiver.receive(
                            packet.timestamp, packet.payload, 0.0) if isinstance(e, DigitEnded))
                return len(digits) >= 2

            heard_packets: list[RtpPacket] = []
            await until(heard, 5, "baresip's two digits as RFC 4733 events")
            assert digits == ["7", "#"]

            phone.runtime.hangup(call)
            await phone.wait(CallEnded)

    run(main)


def test_dtmf_as_sip_info_reaches_baresip(kamailio: Kamailio,
                                          baresip_factory: BaresipFactory) -> None:
    """Our INFO (application/dtmf-relay) in the dialog, through Kamailio: baresip decodes each
    digit. (baresip 1.0 only ever sends RFC 4733, so INFO the other way is agent-tested.)"""
    far = baresip_factory(kamailio.aor("1002"), password="secret1002", answer_mode="auto")

    async def main() -> None:
        async with call_to(kamailio, far) as (phone, rtp, call, _):
            for digit in "9#":
                phone.runtime.act(lambda agent, now, d=digit: agent.send_dtmf(call, d, 160, now))
                await asyncio.sleep(0.3)
            first = await blocking(far.wait_event, "CALL_DTMF_START", 5)
            second = await blocking(far.wait_event, "CALL_DTMF_START", 5, 0,
                                    lambda e: e is not first)
            assert [first["param"], second["param"]] == ["9", "#"]
            infos = far.log_text().split("\nINFO sip:")[1:]
            assert len(infos) == 2 and all("application/dtmf-relay" in i for i in infos)
            assert not [p for p in rtp.drain() if p.payload_type == 101]  # none came as RTP
            phone.runtime.hangup(call)
            await phone.wait(CallEnded)

    run(main)
