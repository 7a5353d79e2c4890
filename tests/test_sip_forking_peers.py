"""A forked call through Kamailio: two baresip phones registered as 1002 both ring.

Kamailio's lookup() finds two bindings and forks our INVITE to both (parallel forking): each
rings in its own early dialog. One answers: that is the call, and Kamailio cancels the other.
Then both answer at once: whichever way the race goes (Kamailio's CANCEL first, or both 200s
relayed to us), we end with exactly one call, and every phone that answered but lost is hung
up (we ACK and BYE an extra 200, RFC 3261 13.2.2.4).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from peers.baresip import Baresip
from peers.kamailio import Kamailio
from peers.process import PeerError
from test_sip_peers import blocking, media, registered_phone, run
from tipring.sip.session import CallAnswered, CallEnded, CallProgress

pytest_plugins = ["peers.fixtures"]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]

BaresipFactory = Callable[..., Baresip]


def two_phones(kamailio: Kamailio, baresip_factory: BaresipFactory) -> tuple[Baresip, Baresip]:
    first, second = (baresip_factory(kamailio.aor("1002"), password="secret1002",
                                     answer_mode="manual", name=name)
                     for name in ("far1", "far2"))
    kamailio.wait_for_contacts("1002", count=2)
    return first, second


def test_both_phones_ring_and_the_one_that_answers_gets_the_call(
        kamailio: Kamailio, baresip_factory: BaresipFactory) -> None:
    far1, far2 = two_phones(kamailio, baresip_factory)

    async def main() -> None:
        phone = await registered_phone(kamailio)
        try:
            call = phone.runtime.invite("line1", "1002", media())
            for far in (far1, far2):
                await blocking(far.wait_event, "CALL_INCOMING", 10)
            await phone.wait(CallProgress, count=2, where=lambda e: e.status == 180)
            await blocking(far2.accept)
            answered = await phone.wait(CallAnswered, timeout=10)
            assert answered.call == call
            await blocking(far2.wait_event, "CALL_ESTABLISHED", 5)
            await blocking(far1.wait_event, "CALL_CLOSED", 5)  # Kamailio cancelled it
            assert "CALL_ESTABLISHED" not in far1.event_types()
            # The two 180s came in two early dialogs (two To tags), one call in the end.
            ringing = [r.data for r in phone.runtime.trace.records()
                       if r.direction == "in" and r.data.startswith(b"SIP/2.0 180")]
            tags = {line.split(b";tag=")[1] for data in ringing
                    for line in data.split(b"\r\n") if line.startswith(b"To:")}
            assert len(tags) == 2
            phone.runtime.hangup(call)
            await blocking(far2.wait_event, "CALL_CLOSED", 5)
            assert (await phone.wait(CallEnded)).by == "local"
            assert len(phone.of(CallAnswered)) == 1
        finally:
            await phone.runtime.stop()

    run(main)


def test_both_answer_at_once_and_we_keep_one_call(
        kamailio: Kamailio, baresip_factory: BaresipFactory) -> None:
    far1, far2 = two_phones(kamailio, baresip_factory)

    async def main() -> None:
        phone = await registered_phone(kamailio)
        try:
            call = phone.runtime.invite("line1", "1002", media())
            for far in (far1, far2):
                await blocking(far.wait_event, "CALL_INCOMING", 10)
            go = threading.Barrier(2)

            def accept(far: Baresip) -> None:
                go.wait(5)
                far.accept()

            threads = [threading.Thread(target=accept, args=(f,)) for f in (far1, far2)]
            for thread in threads:
                thread.start()
            await blocking(lambda: [t.join(10) for t in threads])
            answered = await phone.wait(CallAnswered, timeout=10)
            assert answered.call == call
            # Exactly one phone keeps the call; the other is closed, by Kamailio's CANCEL or
            # by our BYE after ACKing its 200.
            closed = []
            for far in (far1, far2):
                try:
                    await blocking(far.wait_event, "CALL_CLOSED", 3)
                    closed.append(far)
                except PeerError:  # still in the call
                    pass
            assert len(closed) == 1, [f.event_types() for f in (far1, far2)]
            [kept] = [f for f in (far1, far2) if f not in closed]
            assert "CALL_ESTABLISHED" in kept.event_types()
            sent = [r.data for r in phone.runtime.trace.records() if r.direction == "out"]
            # ACKs of 2xx go to a phone's Contact; the ACK of Kamailio's 407 to the AOR.
            acks = [d for d in sent if d.startswith(b"ACK ") and b" sip:1002@tipring.test " not in
                    d.split(b"\r\n", 1)[0] + b" "]
            byes = [d for d in sent if d.startswith(b"BYE ")]
            assert len(acks) == 1 + len(byes)  # an extra 200 was ACKed and hung up
            phone.runtime.hangup(call)
            await blocking(kept.wait_event, "CALL_CLOSED", 5)
            assert len(phone.of(CallAnswered)) == 1
        finally:
            await phone.runtime.stop()

    run(main)
