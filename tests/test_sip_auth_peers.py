"""Digest authentication against Kamailio's auth module, beyond plain MD5 qop=auth.

Kamailio computes and checks every digest itself, so these are independent oracles for what
the unit tests check against RFC examples: SHA-256 (RFC 8760), RFC 2069 challenges without
qop, a nonce that expires under a running registration (Kamailio re-challenges with
stale=true), and two realms met one after the other: a Kamailio outbound proxy challenging
with 407 in its realm in front of the Kamailio registrar challenging with 401/407 in its own.

Not qop=auth-int: Kamailio 5.6 offers it but does not implement it (its check hashes an
uninitialised buffer where H(entity-body) belongs, so every correct auth-int answer fails
with -2). SIPp's verifyauth is the oracle for auth-int (test_sip_sipp_peers.py).

What went over the wire is read from a recording `SipTrace` (unmasked: the test needs the
qop and stale parameters), what Kamailio thought from its log and location table.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from peers.baresip import Baresip
from peers.kamailio import Kamailio
from test_sip_peers import Phone, account, blocking, media, run
from tipring.runtime.siptrace import SipTrace
from tipring.sip.registration import Registered, RegistrationFailed, Unregistered
from tipring.sip.session import CallAnswered, CallEnded

pytest_plugins = ["peers.fixtures"]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]

KamailioFactory = Callable[..., Kamailio]
BaresipFactory = Callable[..., Baresip]


class Recording(SipTrace):
    """A SIP trace that also keeps every message as sent or received, credentials and all."""

    def __init__(self) -> None:
        super().__init__()
        self.raw: list[tuple[str, str]] = []

    def record(self, direction: str, transport: str, local: tuple[str, int],
               remote: tuple[str, int], data: bytes) -> None:
        self.raw.append((direction, data.decode("utf-8", "replace")))
        super().record(direction, transport, local, remote, data)

    def sent(self, start: str) -> list[str]:
        return [text for d, text in self.raw if d == "out" and text.startswith(start)]

    def received(self, start: str) -> list[str]:
        return [text for d, text in self.raw if d == "in" and text.startswith(start)]


def header_values(message: str, name: str) -> list[str]:
    return re.findall(rf"^{name}:\s*(.*?)\r$", message, re.MULTILINE | re.IGNORECASE)


def digest_params(value: str) -> dict[str, str]:
    return {k.lower(): v.strip('"') for k, v in re.findall(r'(\w+)=("[^"]*"|[^\s,]+)', value)}


async def recorded_phone(proxy: Kamailio, **overrides: object) -> tuple[Phone, Recording]:
    trace = Recording()
    phone = await Phone(trace=trace).start()
    await phone.runtime.add_account(account(proxy, **overrides))  # type: ignore[arg-type]
    phone.runtime.register("line1")
    await phone.wait(Registered, timeout=10)
    return phone, trace


@pytest.mark.parametrize(("qop", "algorithm"), [("auth", "SHA-256"), ("", "MD5")])
def test_register_and_call_with_what_the_server_offers(
        kamailio_factory: KamailioFactory, qop: str, algorithm: str) -> None:
    """The REGISTER and the INVITE both pass Kamailio's check of our digest at the first
    answer to each challenge. (baresip cannot answer SHA-256, so the callee, 1002, is not
    registered: Kamailio's 404 comes only after it accepted our credentials.)"""
    proxy = kamailio_factory(qop=qop, algorithm=algorithm)

    async def main() -> None:
        phone, trace = await recorded_phone(proxy)
        try:
            call = phone.runtime.invite("line1", "1002", media())
            ended = await phone.wait(CallEnded, timeout=10)
            assert (ended.call, ended.status) == (call, 404)
        finally:
            await phone.runtime.stop()
        [challenge] = [v for r in trace.received("SIP/2.0 401")
                       for v in header_values(r, "WWW-Authenticate")][:1]
        assert digest_params(challenge).get("qop", "") == qop
        assert digest_params(challenge)["algorithm"] == algorithm
        [register] = [r for r in trace.sent("REGISTER") if "Authorization:" in r][:1]
        [invite] = [r for r in trace.sent("INVITE") if "Proxy-Authorization:" in r]
        assert "application/sdp" in invite and "m=audio" in invite
        for request, name in ((register, "Authorization"), (invite, "Proxy-Authorization")):
            [credentials] = header_values(request, name)
            got = digest_params(credentials)
            assert got.get("qop", "") == qop and got["algorithm"] == algorithm
            assert ("cnonce" in got) == bool(qop)
        # One challenge per request and no failure: Kamailio accepted every answer. Without
        # qop the un-REGISTER at stop() cannot reuse the nonce (no nc) and is challenged too.
        assert len(trace.received("SIP/2.0 401")) == (1 if qop else 2)
        assert len(trace.received("SIP/2.0 407")) == 1
        assert "auth result" not in proxy.log_text()

    run(main)


def test_a_nonce_expiring_under_the_registration_is_renewed_on_stale(
        kamailio_factory: KamailioFactory) -> None:
    """Refreshes reuse the last nonce (nc + 1); once Kamailio's 2 s nonce lifetime is over it
    answers 401 stale=true, which is a fresh challenge, not a wrong password."""
    proxy = kamailio_factory(max_expires=4, nonce_expire=2)

    async def main() -> None:
        phone, trace = await recorded_phone(proxy, expires=300)
        try:
            await phone.wait(Registered, timeout=10, count=4)  # refreshes at ~2, ~4, ~6 s
            [binding] = await blocking(proxy.contacts, "1001")
        finally:
            await phone.runtime.stop()
        assert binding.address == f"sip:1001@127.0.0.1:{phone.port}"
        assert not phone.of(RegistrationFailed)
        stale = [r for r in trace.received("SIP/2.0 401")
                 if digest_params(header_values(r, "WWW-Authenticate")[0]).get("stale") == "true"]
        assert stale, "Kamailio never found our nonce stale"
        assert "auth result -4" in proxy.log_text()  # Kamailio's "nonce expired"
        assert "auth result -2" not in proxy.log_text()  # and never a wrong password
        # Each stale challenge was answered once, with its own new nonce.
        for response in stale:
            nonce = digest_params(header_values(response, "WWW-Authenticate")[0])["nonce"]
            answered = [r for r in trace.sent("REGISTER") if f'nonce="{nonce}"' in r]
            assert answered and digest_params(
                header_values(answered[0], "Authorization")[0])["nc"] == "00000001"
        assert phone.of(Unregistered)

    run(main)


def test_an_outbound_proxy_realm_and_a_registrar_realm_are_both_answered(
        kamailio_factory: KamailioFactory, baresip_factory: BaresipFactory) -> None:
    """Kamailio "edge.test" (outbound proxy, 407) in front of Kamailio "tipring.test"
    (registrar, 401 for REGISTER and 407 for INVITE). Every request after the two challenges
    carries credentials for both realms; before the fix the realms took turns for ever."""
    registrar = kamailio_factory(max_expires=4)
    edge = kamailio_factory(upstream=registrar.hostport, realm="edge.test")
    far = baresip_factory(registrar.aor("1002"), password="secret1002", answer_mode="auto")

    async def main() -> None:
        phone, trace = await recorded_phone(registrar, outbound_proxy=edge.hostport)
        try:
            [binding] = await blocking(registrar.contacts, "1001")
            assert binding.address == f"sip:1001@127.0.0.1:{phone.port}"
            await phone.wait(Registered, count=2, timeout=5)  # a refresh through both
            call = phone.runtime.invite("line1", "1002", media())
            await phone.wait(CallAnswered, timeout=10)
            await blocking(far.wait_event, "CALL_ESTABLISHED", 5)
            phone.runtime.hangup(call)
            await blocking(far.wait_event, "CALL_CLOSED", 5)
            await phone.wait(CallEnded)
        finally:
            await phone.runtime.stop()
        assert not phone.of(RegistrationFailed)
        assert await blocking(registrar.contacts, "1001") == []  # the un-REGISTER got through
        registers = trace.sent("REGISTER")
        # No credentials, then the edge's realm, then both: three, not an endless turn-taking.
        assert [len(header_values(r, "Proxy-Authorization")) +
                len(header_values(r, "Authorization")) for r in registers[:3]] == [0, 1, 2]
        for request in registers[2:]:
            realms = {digest_params(v)["realm"] for name in ("Authorization",
                                                             "Proxy-Authorization")
                      for v in header_values(request, name)}
            assert realms == {"edge.test", "tipring.test"}, request
        invites = trace.sent("INVITE")
        assert len(invites) == 3  # none, edge's realm, then both (two Proxy-Authorizations)
        assert sorted(digest_params(v)["realm"] for v in
                      header_values(invites[-1], "Proxy-Authorization")) == [
            "edge.test", "tipring.test"]
        assert len(trace.received("SIP/2.0 407")) == 3  # REGISTER once, INVITE twice

    run(main)
