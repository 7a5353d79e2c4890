"""RFC 5626 outbound against Kamailio run as an outbound registrar (Flow-Timer, STUN).

Kamailio's registrar (outbound_mode 1, flow_timer) answers our REGISTER with `Require:
outbound` and a Flow-Timer and stores our +sip.instance and reg-id; its stun module answers
the Binding requests that keep a UDP flow alive, and its TCP stack the CRLF pings of a
stream. Calls made over the flow carry `ob` and work both ways through Kamailio to baresip.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from peers.baresip import Baresip
from peers.kamailio import Kamailio
from test_sip_peers import Phone, account, blocking, media, run
from tipring.sip.registration import Registered, RegistrationFailed
from tipring.sip.session import CallAnswered, CallEnded
from tipring.sip.stun import is_stun, parse_binding_response

pytest_plugins = ["peers.fixtures"]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]

INSTANCE = "urn:uuid:0b8a7c1e-63f1-4b44-9a1f-5b1c2d3e4f50"
KamailioFactory = Callable[..., Kamailio]


async def outbound_phone(proxy: Kamailio, transport: str) -> tuple[Phone, list[tuple[str, bytes]]]:
    """A registered phone with outbound on, and a record of every keep-alive on the wire."""
    phone = await Phone().start()
    wire: list[tuple[str, bytes]] = []
    tap = phone.runtime.transports.on_wire
    assert tap is not None

    def keep(direction: str, kind: str, local: tuple[str, int], remote: tuple[str, int],
             data: bytes) -> None:
        if is_stun(data) or not data.strip(b"\r\n"):
            wire.append((direction, data))
        tap(direction, kind, local, remote, data)

    phone.runtime.transports.on_wire = keep
    await phone.runtime.add_account(account(proxy, transport=transport, instance_id=INSTANCE,
                                            keepalive_s=60.0))
    phone.runtime.register("line1")
    return phone, wire


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_registrar_agrees_to_outbound_and_the_flow_is_kept_alive(
        kamailio_factory: KamailioFactory, transport: str) -> None:
    proxy = kamailio_factory(flow_timer=2)

    async def main() -> None:
        phone, wire = await outbound_phone(proxy, transport)
        try:
            registered = await phone.wait(Registered, timeout=5)
            assert registered.outbound
            [binding] = await blocking(proxy.contacts, "1001")
            assert binding.instance == f"<{INSTANCE}>" and binding.reg_id == 1
            await asyncio.sleep(5.5)  # Flow-Timer 2 s: a ping every 1.6-2 s, not every 60 s
            pings = [d for direction, d in wire if direction == "out"]
            answers = [d for direction, d in wire if direction == "in"]
            assert len(pings) >= 2
            if transport == "udp":
                assert all(is_stun(d) for d in pings)
                mapped = {parse_binding_response(d).mapped for d in answers}  # type: ignore[union-attr]
                assert mapped == {("127.0.0.1", phone.port)}
            else:
                assert set(pings) == {b"\r\n\r\n"}
            assert len(answers) >= len(pings) - 1  # each ping answered (the last may be in flight)
            assert not phone.of(RegistrationFailed)
            assert len(phone.of(Registered)) == 1  # the flow never failed: no re-REGISTER
        finally:
            await phone.runtime.stop()
        assert await blocking(proxy.contacts, "1001") == []

    run(main)


def test_a_call_over_the_flow_carries_ob_and_works_both_ways(
        kamailio_factory: KamailioFactory,
        baresip_factory: Callable[..., Baresip]) -> None:
    proxy = kamailio_factory(flow_timer=20)
    far = baresip_factory(proxy.aor("1002"), password="secret1002", answer_mode="auto")

    async def main() -> None:
        phone, _ = await outbound_phone(proxy, "udp")
        try:
            await phone.wait(Registered, timeout=5)
            call = phone.runtime.invite("line1", "1002", media())
            assert (await phone.wait(CallAnswered, timeout=10)).call == call
            await blocking(far.wait_event, "CALL_ESTABLISHED", 5)
            invite = next(r.data for r in phone.runtime.trace.records()
                          if r.direction == "out" and r.data.startswith(b"INVITE "))
            contact = next(line for line in invite.split(b"\r\n") if line.startswith(b"Contact:"))
            assert contact.endswith(b";ob>")
            await blocking(far.hangup)  # its BYE reaches us over the flow
            ended = await phone.wait(CallEnded, timeout=5)
            assert (ended.call, ended.by) == (call, "remote")
        finally:
            await phone.runtime.stop()

    run(main)
