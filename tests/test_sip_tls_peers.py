"""SIP over TLS against a real peer: SipRuntime registers with Kamailio's TLS listener and
calls baresip through it, and takes baresip's call over TLS.

The certificates come from a test CA made with openssl for this module (tests/peers/pki.py):
Kamailio's for 127.0.0.1 with an IP subjectAltName, ours for the TLS listener Kamailio
connects to when it relays a call to our registered TLS contact. The device trusts the test
CA through `tls_client_context(ca_file=...)`, as a configured CA is used in the firmware; a
runtime that trusts only the system CAs must refuse the same server.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from pathlib import Path

import pytest

from peers.baresip import Baresip
from peers.kamailio import Kamailio
from peers.pki import ServerCertificate, TestCa
from test_sip_peers import Phone, account, blocking, media, run
from tipring.runtime.sip_transport import tls_client_context
from tipring.sip.registration import Registered, RegistrationFailed
from tipring.sip.session import CallAnswered, CallEnded, IncomingCall

pytest_plugins = ["peers.fixtures"]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]

KamailioFactory = Callable[..., Kamailio]
BaresipFactory = Callable[..., Baresip]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[TestCa, ServerCertificate,
                                                            ServerCertificate]:
    ca = TestCa(tmp_path_factory.mktemp("pki"))
    return ca, ca.issue("127.0.0.1"), ca.issue("127.0.0.1")


@pytest.fixture
def tls_kamailio(kamailio_factory: KamailioFactory,
                 pki: tuple[TestCa, ServerCertificate, ServerCertificate]) -> Kamailio:
    _, server, _ = pki
    return kamailio_factory(transport="tls", tls=(server.cert, server.key))


def tls_phone(pki: tuple[TestCa, ServerCertificate, ServerCertificate]) -> Phone:
    ca, _, ours = pki
    listener = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    listener.load_cert_chain(str(ours.cert), str(ours.key))
    return Phone(tls_client=tls_client_context(ca_file=str(ca.cert)), tls_server=listener)


def test_register_and_call_baresip_over_tls(
        tls_kamailio: Kamailio, baresip_factory: BaresipFactory,
        pki: tuple[TestCa, ServerCertificate, ServerCertificate]) -> None:
    far = baresip_factory(tls_kamailio.aor("1002"), password="secret1002", answer_mode="auto")

    async def main() -> None:
        phone = await tls_phone(pki).start()
        runtime = phone.runtime
        try:
            await runtime.add_account(account(registrar=tls_kamailio.tls_hostport,
                                              transport="tls"))
            runtime.register("line1")
            registered = await phone.wait(Registered, timeout=10)
            assert registered.server == ("127.0.0.1", tls_kamailio.tls_port, "tls")
            assert ";transport=tls" in registered.contact
            [binding] = await blocking(tls_kamailio.contacts, "1001")
            assert binding.socket == f"tls:{tls_kamailio.tls_hostport}"  # it came in over TLS
            assert binding.address == f"sip:1001@127.0.0.1:{phone.port + 1};transport=tls"

            call = runtime.invite("line1", "1002", media())
            answered = await phone.wait(CallAnswered, timeout=10)
            assert answered.call == call
            established = await blocking(far.wait_event, "CALL_ESTABLISHED", 5)
            assert "1001" in str(established.get("peeruri", ""))
            runtime.hangup(call)
            await blocking(far.wait_event, "CALL_CLOSED", 5)
            assert (await phone.wait(CallEnded)).by == "local"
            # Everything we sent went over the one verified TLS connection to Kamailio.
            assert set(runtime.transports._connections) == {
                ("127.0.0.1", tls_kamailio.tls_port, "tls", "127.0.0.1")}
            ours = [r for r in runtime.trace.records() if r.direction == "out"]
            assert ours and {r.transport for r in ours} == {"tls"}
            assert any(r.data.startswith(b"INVITE sip:1002@") for r in ours)
        finally:
            await runtime.stop()
        assert await blocking(tls_kamailio.contacts, "1001") == []  # un-REGISTERed over TLS

    run(main)


def test_baresip_calls_us_and_kamailio_relays_over_tls(
        tls_kamailio: Kamailio, baresip_factory: BaresipFactory,
        pki: tuple[TestCa, ServerCertificate, ServerCertificate]) -> None:
    far = baresip_factory(tls_kamailio.aor("1002"), password="secret1002")

    async def main() -> None:
        phone = await tls_phone(pki).start()
        runtime = phone.runtime
        try:
            await runtime.add_account(account(registrar=tls_kamailio.tls_hostport,
                                              transport="tls"))
            runtime.register("line1")
            await phone.wait(Registered, timeout=10)
            await blocking(far.dial, tls_kamailio.aor("1001"))
            incoming = await phone.wait(IncomingCall, timeout=10)
            assert incoming.caller.uri.user == "1002"  # type: ignore[union-attr]
            runtime.answer(incoming.call, media())
            await phone.wait(CallAnswered)
            await blocking(far.wait_event, "CALL_ESTABLISHED", 5)
            await blocking(far.hangup)
            ended = await phone.wait(CallEnded)
            assert (ended.call, ended.by) == (incoming.call, "remote")
            inbound = [r for r in runtime.trace.records()
                       if r.direction == "in" and r.data.startswith(b"INVITE ")]
            assert inbound and inbound[0].transport == "tls"
            assert inbound[0].local == ("127.0.0.1", phone.port + 1)  # our TLS listener
        finally:
            await runtime.stop()

    run(main)


def test_a_server_the_configured_ca_did_not_sign_is_refused(
        tls_kamailio: Kamailio, tmp_path: Path) -> None:
    other_ca = TestCa(tmp_path / "other")  # trusts a CA that did not sign Kamailio's cert

    async def main() -> None:
        phone = await Phone(tls_client=tls_client_context(ca_file=str(other_ca.cert))).start()
        try:
            await phone.runtime.add_account(account(registrar=tls_kamailio.tls_hostport,
                                                    transport="tls"))
            phone.runtime.register("line1")
            failed = await phone.wait(RegistrationFailed, timeout=10)
            assert failed.status == 503 and not phone.of(Registered)
        finally:
            await phone.runtime.stop()
        assert await blocking(tls_kamailio.contacts, "1001") == []

    run(main)


@pytest.mark.parametrize("present", [True, False])
def test_kamailio_demanding_a_client_certificate_gets_ours(
        kamailio_factory: KamailioFactory, present: bool,
        pki: tuple[TestCa, ServerCertificate, ServerCertificate]) -> None:
    """Kamailio with verify_certificate and require_certificate: registering works with the
    device certificate `tls_client_context(cert_file=, key_file=)` loads, and fails without."""
    ca, server, ours = pki
    proxy = kamailio_factory(transport="tls", tls=(server.cert, server.key), client_ca=ca.cert)
    client = tls_client_context(ca_file=str(ca.cert),
                                cert_file=str(ours.cert) if present else None,
                                key_file=str(ours.key) if present else None)

    async def main() -> None:
        phone = await Phone(tls_client=client).start()
        try:
            await phone.runtime.add_account(account(registrar=proxy.tls_hostport,
                                                    transport="tls"))
            phone.runtime.register("line1")
            if present:
                await phone.wait(Registered, timeout=10)
                [binding] = await blocking(proxy.contacts, "1001")
                assert binding.socket == f"tls:{proxy.tls_hostport}"
            else:
                failed = await phone.wait(RegistrationFailed, timeout=10)
                assert failed.status == 503 and not phone.of(Registered)
                assert await blocking(proxy.contacts, "1001") == []
        finally:
            await phone.runtime.stop()

    run(main)
