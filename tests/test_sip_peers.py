"""Our SIP stack (the sans-IO agent on `SipRuntime`) against real peers on loopback.

Kamailio is the registrar with digest auth: what we ask for must end up in its location table
(read back over its RPC socket), with the expiry we asked or were made to take. baresip is the
far-end phone behind Kamailio: its own call events say whether our INVITE, answer and BYE
worked. SIPp plays the edge cases directly against us; its message trace is the record of
what we sent. Each test runs its own peers and its own asyncio loop; blocking peer helpers run
in a thread so our runtime keeps serving the network meanwhile.
"""

from __future__ import annotations

import asyncio
import re
import socket
import time
from collections.abc import Callable, Coroutine
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any, TypeVar

import pytest

from peers.baresip import Baresip
from peers.kamailio import Kamailio
from peers.ports import free_port
from peers.sipp import Sipp
from tipring.config.secret import Secret
from tipring.runtime.sip_runtime import SipRuntime
from tipring.sdp import MediaPolicy
from tipring.sip.agent import Event
from tipring.sip.registration import (
    Registered,
    RegistrationFailed,
    RegistrationSettings,
    Unregistered,
)
from tipring.sip.session import CallAnswered, CallEnded, CallProgress, IncomingCall

pytest_plugins = ["peers.fixtures"]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(30)]

KamailioFactory = Callable[..., Kamailio]
BaresipFactory = Callable[..., Baresip]
SippFactory = Callable[..., Sipp]
E = TypeVar("E")


class Phone:
    """Our stack as a test drives it: the runtime plus a record of its events."""

    def __init__(self, **runtime_kw: Any) -> None:
        self.events: list[tuple[float, Event]] = []
        self._changed = asyncio.Event()
        self.runtime = SipRuntime("127.0.0.1", 0, on_event=self._event, **runtime_kw)

    def _event(self, event: Event) -> None:
        self.events.append((time.monotonic(), event))
        self._changed.set()

    async def start(self) -> Phone:
        await self.runtime.start()
        return self

    @property
    def port(self) -> int:
        return self.runtime.port

    def of(self, kind: type[E]) -> list[E]:
        return [e for _, e in self.events if isinstance(e, kind)]

    async def wait(self, kind: type[E], timeout: float = 5.0, count: int = 1,
                   where: Callable[[E], bool] = lambda e: True) -> E:
        """The `count`-th event of `kind` (matching `where`), waiting at most `timeout` s."""
        end = time.monotonic() + timeout
        while True:
            found = [e for e in self.of(kind) if where(e)]
            if len(found) >= count:
                return found[count - 1]
            left = end - time.monotonic()
            if left <= 0:
                seen = [type(e).__name__ for _, e in self.events]
                raise AssertionError(f"no {kind.__name__} #{count} within {timeout} s; saw {seen}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except TimeoutError:
                pass


def account(proxy: Kamailio | None = None, user: str = "1001", password: str = "secret1001",
            **overrides: Any) -> RegistrationSettings:
    values: dict[str, Any] = dict(
        account="line1", user=user, domain="tipring.test", password=Secret(password),
        registrar=proxy.hostport if proxy is not None else "", expires=300,
        keepalive_s=0.0, transport=proxy.transport if proxy is not None else "udp")
    values.update(overrides)
    return RegistrationSettings(**values)


def media() -> MediaPolicy:
    return MediaPolicy("127.0.0.1", free_port("127.0.0.1"), ("PCMU", "PCMA"))


def run(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(asyncio.wait_for(main(), 25))


def blocking(fn: Callable[..., E], *args: Any, **kwargs: Any) -> Coroutine[Any, Any, E]:
    """A peer helper that sleeps or blocks, off the loop our runtime lives on."""
    return asyncio.to_thread(fn, *args, **kwargs)


async def registered_phone(proxy: Kamailio, **overrides: Any) -> Phone:
    phone = await Phone().start()
    await phone.runtime.add_account(account(proxy, **overrides))
    phone.runtime.register("line1")
    await phone.wait(Registered)
    return phone


# --- registration against Kamailio ----------------------------------------------------------


# Over TCP the registrar's Via rport is our connection's ephemeral source port; the TCP case
# below failed while the agent took it for a NAT mapping and registered a port nobody listens on.
@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_register_stores_our_contact_with_the_expiry_we_asked(
        kamailio_factory: KamailioFactory, transport: str) -> None:
    proxy = kamailio_factory(transport=transport)

    async def main() -> None:
        phone = await registered_phone(proxy, expires=300)
        try:
            [event] = phone.of(Registered)
            assert event.expires == 300
            assert event.server == ("127.0.0.1", proxy.port, transport)
            [binding] = await blocking(proxy.contacts, "1001")
            suffix = "" if transport == "udp" else ";transport=tcp"
            assert binding.address == f"sip:1001@127.0.0.1:{phone.port}{suffix}"
            assert 295 <= binding.expires <= 300
            assert binding.user_agent == "TipRing"
            assert binding.socket == f"{transport}:127.0.0.1:{proxy.port}"
            assert await blocking(proxy.contacts, "1002") == []
        finally:
            await phone.runtime.stop()
        # stop() un-REGISTERed before it returned: the binding is gone at once.
        assert phone.of(Unregistered) and await blocking(proxy.contacts, "1001") == []

    run(main)


def test_tcp_register_keeps_one_connection_and_our_listening_port(
        kamailio_factory: KamailioFactory) -> None:
    """TCP with rport learning off: the binding names our TCP listener,
    and the REGISTER, its challenge and the un-REGISTER share one connection."""
    proxy = kamailio_factory(transport="tcp")

    async def main() -> None:
        phone = await registered_phone(proxy, learn_public_address=False)
        try:
            [binding] = await blocking(proxy.contacts, "1001")
            assert binding.address == f"sip:1001@127.0.0.1:{phone.port};transport=tcp"
            assert binding.socket == f"tcp:127.0.0.1:{proxy.port}"
            assert 295 <= binding.expires <= 300
            connections = phone.runtime.transports._connections
            assert list(connections) == [("127.0.0.1", proxy.port, "tcp", None)]
        finally:
            await phone.runtime.stop()
        assert phone.of(Unregistered) and await blocking(proxy.contacts, "1001") == []

    run(main)


def test_refresh_before_the_granted_expiry_keeps_one_binding(
        kamailio_factory: KamailioFactory) -> None:
    # Kamailio grants at most 4 s whatever we ask: we must refresh on the grant, not our ask.
    proxy = kamailio_factory(max_expires=4)

    async def main() -> None:
        phone = await registered_phone(proxy, expires=300)
        try:
            first = phone.of(Registered)[0]
            assert first.expires == 4
            [before] = await blocking(proxy.contacts, "1001")
            await phone.wait(Registered, timeout=4.0, count=2)
            await phone.wait(Registered, timeout=4.0, count=3)
            times = [t for t, e in phone.events if isinstance(e, Registered)]
            # refresh_delay(4) = 2 s: early enough that the binding never lapses.
            assert all(1.5 <= b - a <= 3.5 for a, b in pairwise(times))
            [after] = await blocking(proxy.contacts, "1001")
            assert after.call_id == before.call_id and after.cseq > before.cseq
            assert after.address == before.address
        finally:
            await phone.runtime.stop()

    run(main)


@pytest.mark.parametrize("reply", [401, 403])
def test_wrong_password_fails_once_without_a_retry_loop(
        kamailio_factory: KamailioFactory, reply: int) -> None:
    proxy = kamailio_factory(bad_credentials_reply=reply)

    async def main() -> None:
        phone = await Phone().start()
        try:
            await phone.runtime.add_account(account(proxy, password="wrong"))
            phone.runtime.register("line1")
            failed = await phone.wait(RegistrationFailed)
            assert failed.status == reply
            assert failed.retry_in is not None and failed.retry_in >= 600  # not a hammering loop
            await asyncio.sleep(2.0)  # would show a tight loop in Kamailio's log
            assert len(phone.of(RegistrationFailed)) == 1
            assert not phone.of(Registered)
        finally:
            await phone.runtime.stop()
        log = proxy.log_text()
        # One credentialed attempt reached the auth check (Kamailio logs each failure once).
        assert log.count("REGISTER for 1001 from 127.0.0.1") == 1, log[-3000:]
        assert await blocking(proxy.contacts, "1001") == []

    run(main)


def test_interval_too_brief_retries_with_min_expires(kamailio_factory: KamailioFactory) -> None:
    proxy = kamailio_factory(min_expires=120)

    async def main() -> None:
        phone = await registered_phone(proxy, expires=60)
        try:
            [event] = phone.of(Registered)
            assert event.expires == 120
            [binding] = await blocking(proxy.contacts, "1001")
            assert 115 <= binding.expires <= 120
        finally:
            await phone.runtime.stop()

    run(main)


def test_unregister_removes_the_binding(kamailio: Kamailio) -> None:
    async def main() -> None:
        phone = await registered_phone(kamailio)
        try:
            assert len(await blocking(kamailio.contacts, "1001")) == 1
            phone.runtime.unregister("line1")
            await phone.wait(Unregistered)
            assert await blocking(kamailio.contacts, "1001") == []
        finally:
            await phone.runtime.stop()

    run(main)


# --- calls through Kamailio with baresip as the far end ------------------------------------


def test_we_call_baresip_it_answers_and_we_hang_up(
        kamailio: Kamailio, baresip_factory: BaresipFactory) -> None:
    far = baresip_factory(kamailio.aor("1002"), password="secret1002", answer_mode="auto")

    async def main() -> None:
        phone = await registered_phone(kamailio)
        try:
            call = phone.runtime.invite("line1", "1002", media())
            answered = await phone.wait(CallAnswered, timeout=10)
            assert answered.call == call
            assert answered.media.codec in ("PCMU", "PCMA")
            established = await blocking(far.wait_event, "CALL_ESTABLISHED", 5)
            assert "1001" in str(established.get("peeruri", ""))
            phone.runtime.hangup(call)
            await blocking(far.wait_event, "CALL_CLOSED", 5)
            ended = await phone.wait(CallEnded)
            assert (ended.call, ended.by) == (call, "local")
        finally:
            await phone.runtime.stop()

    run(main)


def test_baresip_calls_us_we_answer_and_it_hangs_up(
        kamailio: Kamailio, baresip_factory: BaresipFactory) -> None:
    far = baresip_factory(kamailio.aor("1002"), password="secret1002")

    async def main() -> None:
        phone = await registered_phone(kamailio)
        try:
            await blocking(far.dial, kamailio.aor("1001"))
            incoming = await phone.wait(IncomingCall, timeout=10)
            assert incoming.account == "line1" and incoming.offer
            assert incoming.caller.uri.user == "1002"  # type: ignore[union-attr]
            phone.runtime.answer(incoming.call, media())
            answered = await phone.wait(CallAnswered)
            assert answered.call == incoming.call
            await blocking(far.wait_event, "CALL_ESTABLISHED", 5)
            await blocking(far.hangup)
            ended = await phone.wait(CallEnded)
            assert (ended.call, ended.by) == (incoming.call, "remote")
            await blocking(far.wait_event, "CALL_CLOSED", 5)
        finally:
            await phone.runtime.stop()

    run(main)


def test_baresip_gives_up_before_we_answer(
        kamailio: Kamailio, baresip_factory: BaresipFactory) -> None:
    """The caller hangs up while we ring: Kamailio relays its CANCEL and we stop ringing."""
    far = baresip_factory(kamailio.aor("1002"), password="secret1002")

    async def main() -> None:
        phone = await registered_phone(kamailio)
        try:
            await blocking(far.dial, kamailio.aor("1001"))
            incoming = await phone.wait(IncomingCall, timeout=10)
            phone.runtime.act(lambda agent, now: agent.ring(incoming.call, now))
            await blocking(far.wait_event, "CALL_RINGING", 5)
            await blocking(far.hangup)
            ended = await phone.wait(CallEnded)
            assert (ended.call, ended.status, ended.by) == (incoming.call, 487, "remote")
            assert not phone.of(CallAnswered)
        finally:
            await phone.runtime.stop()

    run(main)


# --- SIPp scenarios played directly against us (no proxy) -----------------------------------


async def caller_for(sipp: Sipp) -> Phone:
    """Our stack with an account whose server is SIPp (not registered: calls go direct)."""
    phone = await Phone().start()
    await phone.runtime.add_account(account(registrar=sipp.uri_hostport))
    return phone


def test_sipp_answers_we_ack_and_take_its_bye(sipp_factory: SippFactory) -> None:
    uas = sipp_factory("uas_answer.xml", duration_ms=500, timeout=10).start()

    async def main() -> None:
        phone = await caller_for(uas)
        try:
            call = phone.runtime.invite("line1", f"sip:service@{uas.uri_hostport}", media())
            progress = await phone.wait(CallProgress)
            assert (progress.call, progress.status) == (call, 180)
            answered = await phone.wait(CallAnswered)
            assert answered.media.codec == "PCMU" and answered.media.remote_port > 0
            ended = await phone.wait(CallEnded, timeout=5)
            assert (ended.call, ended.by) == (call, "remote")
        finally:
            await phone.runtime.stop()
        result = await blocking(uas.wait)
        assert result.ok, result.describe()
        assert result.received_methods() == ["INVITE", "ACK"]
        assert result.received_statuses() == [200]  # our 200 to its BYE
        invite = result.received()[0]
        assert (invite.header("Content-Type") or "").startswith("application/sdp")

    run(main)


def test_sipp_resends_its_200_and_we_ack_every_copy(sipp_factory: SippFactory) -> None:
    uas = sipp_factory("uas_lost_ack.xml", timeout=12).start()

    async def main() -> None:
        phone = await caller_for(uas)
        try:
            call = phone.runtime.invite("line1", f"sip:service@{uas.uri_hostport}", media())
            await phone.wait(CallAnswered, timeout=5)
            ended = await phone.wait(CallEnded, timeout=8)
            assert (ended.call, ended.by) == (call, "remote")
            assert len(phone.of(CallAnswered)) == 1  # the copies are not new answers
        finally:
            await phone.runtime.stop()
        result = await blocking(uas.wait)
        assert result.ok, result.describe()
        acks = [m for m in result.received() if m.method == "ACK"]
        assert len(acks) == 3  # RFC 3261 13.2.2.4: one ACK per 2xx copy
        assert len({a.header("CSeq") for a in acks}) == 1

    run(main)


def test_sipp_redirects_with_302_and_we_follow_the_contact(sipp_factory: SippFactory) -> None:
    moved = sipp_factory("uas_answer.xml", duration_ms=300, timeout=10, name="moved").start()
    redirect = sipp_factory("uas_redirect_302.xml", timeout=10, name="redirect",
                            keys={"target": f"sip:moved@{moved.uri_hostport}"}).start()

    async def main() -> None:
        phone = await caller_for(redirect)
        try:
            phone.runtime.invite("line1", f"sip:service@{redirect.uri_hostport}", media())
            await phone.wait(CallAnswered, timeout=8)
            await phone.wait(CallEnded, timeout=5)
        finally:
            await phone.runtime.stop()
        first = await blocking(redirect.wait)
        assert first.ok, first.describe()
        assert first.received_methods() == ["INVITE", "ACK"]  # the 3xx is ACKed
        second = await blocking(moved.wait)
        assert second.ok, second.describe()
        invite = second.received()[0]
        assert invite.first_line.startswith(f"INVITE sip:moved@{moved.uri_hostport}")

    run(main)


def test_cancel_crossed_by_200_is_acked_then_hung_up(sipp_factory: SippFactory) -> None:
    uas = sipp_factory("uas_cancel_race.xml", timeout=12).start()

    async def main() -> None:
        phone = await caller_for(uas)
        try:
            call = phone.runtime.invite("line1", f"sip:service@{uas.uri_hostport}", media())
            await phone.wait(CallProgress)
            phone.runtime.cancel(call)
            ended = await phone.wait(CallEnded, timeout=8)
            assert ended.call == call
        finally:
            await phone.runtime.stop()
        result = await blocking(uas.wait)
        assert result.ok, result.describe()
        assert result.received_methods() == ["INVITE", "CANCEL", "ACK", "BYE"]
        cancel = result.received()[1]
        invite = result.received()[0]
        assert cancel.header("Via") == invite.header("Via")  # same branch (RFC 3261 9.1)

    run(main)


def test_cancel_gets_487_and_we_ack_it(sipp_factory: SippFactory) -> None:
    uas = sipp_factory("uas_487.xml", timeout=10).start()

    async def main() -> None:
        phone = await caller_for(uas)
        try:
            call = phone.runtime.invite("line1", f"sip:service@{uas.uri_hostport}", media())
            await phone.wait(CallProgress)
            phone.runtime.cancel(call)
            ended = await phone.wait(CallEnded, timeout=5)
            assert (ended.call, ended.status) == (call, 487)
        finally:
            await phone.runtime.stop()
        result = await blocking(uas.wait)
        assert result.ok, result.describe()
        assert result.received_methods() == ["INVITE", "CANCEL", "ACK"]
        ack = result.received()[2]
        assert ack.header("Via") == result.received()[0].header("Via")  # 17.1.1.3: same branch

    run(main)


def test_bye_answered_481_ends_the_call_without_retrying(sipp_factory: SippFactory) -> None:
    uas = sipp_factory("uas_481.xml", timeout=10).start()

    async def main() -> None:
        phone = await caller_for(uas)
        try:
            call = phone.runtime.invite("line1", f"sip:service@{uas.uri_hostport}", media())
            await phone.wait(CallAnswered, timeout=5)
            phone.runtime.hangup(call)
            ended = await phone.wait(CallEnded, timeout=5)
            assert ended.call == call
        finally:
            await phone.runtime.stop()
        result = await blocking(uas.wait)
        assert result.ok, result.describe()
        assert result.received_methods() == ["INVITE", "ACK", "BYE"]

    run(main)


# --- our retransmissions, timed by SIPp's own trace ------------------------------------------

# A UAS that says nothing until the caller's third INVITE retransmission (run with -nr, so
# every copy is matched by the next <recv>), then refuses 486 and expects the ACK.
SILENT_UAS = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="UAS silent until the third INVITE retransmission">
  <recv request="INVITE">
    <action>
      <ereg regexp="[^ \\t].*" search_in="hdr" header="Via:" assign_to="via"/>
      <ereg regexp="[0-9]+" search_in="hdr" header="CSeq:" assign_to="cseq"/>
      <ereg regexp="[^ \\t].*" search_in="hdr" header="From:" assign_to="caller"/>
      <ereg regexp="[^ \\t].*" search_in="hdr" header="To:" assign_to="callee"/>
    </action>
  </recv>
  <recv request="INVITE" timeout="2000"/>
  <recv request="INVITE" timeout="3000"/>
  <recv request="INVITE" timeout="4000"/>
  <send>
    <![CDATA[

      SIP/2.0 486 Busy Here
      Via: [$via]
      From: [$caller]
      To: [$callee];tag=[pid]S[call_number]
      Call-ID: [call_id]
      CSeq: [$cseq] INVITE
      Content-Length: 0

    ]]>
  </send>
  <recv request="ACK" timeout="3000"/>
</scenario>
"""

# A registrar that never answers: the client must retransmit REGISTER on Timer E.
SILENT_REGISTRAR = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="registrar that never answers">
  <recv request="REGISTER"/>
  <recv request="REGISTER" timeout="2000"/>
  <recv request="REGISTER" timeout="3000"/>
  <recv request="REGISTER" timeout="4000"/>
  <recv request="REGISTER" timeout="6000"/>
</scenario>
"""

_STAMP = re.compile(r"^-{10,} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)\n(\w+) message (\w+)",
                    re.MULTILINE)


def received_times(sipp: Sipp, method: str) -> list[float]:
    """When SIPp received each `method` request (its trace's own timestamps, in seconds)."""
    text = sipp.trace_path.read_text(errors="replace")
    times = []
    for match in _STAMP.finditer(text):
        lines = text[match.end():match.end() + 400].split("\n")[1:]
        first_line = next((line.strip() for line in lines if line.strip()), "")
        if match.group(3) == "received" and first_line.startswith(method + " "):
            times.append(datetime.fromisoformat(match.group(1)).timestamp())
    return times


def test_invite_retransmitted_on_timer_a_until_answered(
        sipp_factory: SippFactory, tmp_path: Path) -> None:
    scenario = tmp_path / "silent_uas.xml"
    scenario.write_text(SILENT_UAS)
    uas = sipp_factory(scenario, timeout=12, extra_args=["-nr"]).start()

    async def main() -> None:
        phone = await caller_for(uas)
        try:
            call = phone.runtime.invite("line1", f"sip:service@{uas.uri_hostport}", media())
            ended = await phone.wait(CallEnded, timeout=8)
            assert (ended.call, ended.status) == (call, 486)
        finally:
            await phone.runtime.stop()
        result = await blocking(uas.wait)
        assert result.ok, result.describe()
        assert result.received_methods() == ["INVITE"] * 4 + ["ACK"]
        times = received_times(uas, "INVITE")
        gaps = [b - a for a, b in pairwise(times)]
        # RFC 3261 17.1.1.2: Timer A starts at T1 (0.5 s) and doubles.
        for gap, expected in zip(gaps, [0.5, 1.0, 2.0], strict=True):
            assert abs(gap - expected) < 0.15, gaps

    run(main)


def test_register_retransmitted_on_timer_e(sipp_factory: SippFactory, tmp_path: Path) -> None:
    scenario = tmp_path / "silent_registrar.xml"
    scenario.write_text(SILENT_REGISTRAR)
    registrar = sipp_factory(scenario, timeout=12, extra_args=["-nr"]).start()

    async def main() -> None:
        phone = await Phone().start()
        try:
            await phone.runtime.add_account(account(registrar=registrar.uri_hostport))
            phone.runtime.register("line1")
            result = await blocking(registrar.wait)
        finally:
            await phone.runtime.stop(deadline=0.2)
        assert result.ok, result.describe()
        times = received_times(registrar, "REGISTER")
        gaps = [b - a for a, b in pairwise(times)]
        # RFC 3261 17.1.2.2: Timer E doubles from T1, capped at T2 (4 s).
        for gap, expected in zip(gaps, [0.5, 1.0, 2.0, 4.0], strict=True):
            assert abs(gap - expected) < 0.15, gaps
        assert len({m.header("CSeq") for m in result.received()}) == 1  # the same request

    run(main)


# --- calls over TCP (Kamailio <-> us on TCP, Kamailio <-> baresip on UDP) ---------------------


def test_tcp_calls_both_ways_through_kamailio(
        kamailio_factory: KamailioFactory, baresip_factory: BaresipFactory) -> None:
    proxy = kamailio_factory(transport="tcp")
    # baresip reaches the same Kamailio over UDP (it listens on both).
    far = baresip_factory(f"sip:1002@{proxy.hostport}", password="secret1002")

    async def main() -> None:
        phone = await registered_phone(proxy, learn_public_address=False)
        try:
            # Out: our INVITE rides the registration's connection.
            call = phone.runtime.invite("line1", "1002", media())
            await phone.wait(CallAnswered, timeout=10)
            await blocking(far.wait_event, "CALL_ESTABLISHED", 5)
            phone.runtime.hangup(call)
            await blocking(far.wait_event, "CALL_CLOSED", 5)
            await phone.wait(CallEnded)
            # In: Kamailio brings the INVITE over TCP; our answers go back the same way.
            since = len(far.events)
            await blocking(far.dial, f"sip:1001@{proxy.hostport}")
            incoming = await phone.wait(IncomingCall, timeout=10)
            phone.runtime.answer(incoming.call, media())
            await blocking(far.wait_event, "CALL_ESTABLISHED", 5, since)
            await blocking(far.hangup)
            ended = await phone.wait(CallEnded, count=2)
            assert (ended.call, ended.by) == (incoming.call, "remote")
            connections = phone.runtime.transports._connections
            assert connections and all(key[2] == "tcp" for key in connections)
        finally:
            await phone.runtime.stop()

    run(main)


# --- locating the registrar with DNS (RFC 3263) ------------------------------------------------


class TinyDns(asyncio.DatagramProtocol):
    """An authoritative-only DNS responder on loopback for one zone, written with dnspython's
    message classes (not with our code): answers what `records` holds, NXDOMAIN otherwise."""

    def __init__(self, records: dict[tuple[str, str], list[str]]) -> None:
        self.records = records
        self.queries: list[tuple[str, str]] = []
        self.transport: asyncio.DatagramTransport | None = None

    async def start(self) -> int:
        """Listen on a free loopback UDP port; returns it."""
        await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: self, local_addr=("127.0.0.1", 0))
        assert self.transport is not None
        return self.transport.get_extra_info("sockname")[1]

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        import dns.flags
        import dns.message
        import dns.rcode
        import dns.rdatatype
        import dns.rrset

        query = dns.message.from_wire(data)
        question = query.question[0]
        name = question.name.to_text().rstrip(".").lower()
        rdtype = dns.rdatatype.to_text(question.rdtype)
        self.queries.append((name, rdtype))
        reply = dns.message.make_response(query)
        reply.flags |= dns.flags.AA
        values = self.records.get((name, rdtype))
        if values:
            reply.answer.append(dns.rrset.from_text_list(question.name, 60, "IN", rdtype, values))
        elif not any(key[0] == name for key in self.records):
            reply.set_rcode(dns.rcode.NXDOMAIN)
        assert self.transport is not None
        self.transport.sendto(reply.to_wire(), addr)


def test_registrar_located_by_srv_then_a_with_dnspython(kamailio: Kamailio) -> None:
    from tipring.runtime.sip_runtime import DnsLookup

    async def main() -> None:
        zone = TinyDns({
            ("_sip._udp.voip.example", "SRV"): [f"10 0 {kamailio.port} sbc.voip.example."],
            ("sbc.voip.example", "A"): ["127.0.0.1"],
        })
        port = await zone.start()
        phone = await Phone(lookup=DnsLookup(["127.0.0.1"], port=port, timeout=2)).start()
        try:
            # The registrar is a name only DNS knows: no port, so RFC 3263 4.2 asks SRV first.
            targets = await phone.runtime.add_account(account(
                registrar="voip.example", domain="tipring.test"))
            assert targets == [("127.0.0.1", kamailio.port, "udp")]
            assert zone.queries == [("_sip._udp.voip.example", "SRV"), ("sbc.voip.example", "A")]
            phone.runtime.register("line1")
            registered = await phone.wait(Registered)
            assert registered.server == ("127.0.0.1", kamailio.port, "udp")
            [binding] = await blocking(kamailio.contacts, "1001")
            assert binding.address == f"sip:1001@127.0.0.1:{phone.port}"
            # A name DNS does not know: no targets, no crash, a warning.
            assert await phone.runtime.resolve("nowhere.example", "udp") == []
        finally:
            await phone.runtime.stop()
            zone.close()

    run(main)


def test_srv_targets_are_tried_in_order_until_one_answers(
        kamailio_factory: KamailioFactory) -> None:
    """RFC 3263 4.3: the SRV record with the lower priority names a host that refuses TCP
    connections; the registration moves to the next target at once and registers there."""
    from tipring.runtime.sip_runtime import DnsLookup

    proxy = kamailio_factory(transport="tcp")
    dead = free_port("127.0.0.1")  # nothing listens here: connections are refused

    async def main() -> None:
        zone = TinyDns({
            ("_sip._tcp.voip.example", "SRV"): [f"10 0 {dead} down.voip.example.",
                                               f"20 0 {proxy.port} up.voip.example."],
            ("down.voip.example", "A"): ["127.0.0.1"],
            ("up.voip.example", "A"): ["127.0.0.1"],
        })
        port = await zone.start()
        phone = await Phone(lookup=DnsLookup(["127.0.0.1"], port=port, timeout=2)).start()
        try:
            targets = await phone.runtime.add_account(account(
                registrar="voip.example", transport="tcp", learn_public_address=False))
            assert targets == [("127.0.0.1", dead, "tcp"), ("127.0.0.1", proxy.port, "tcp")]
            phone.runtime.register("line1")
            # Well before Timer F (32 s): the refused connect moved it on, not a timeout.
            registered = await phone.wait(Registered, timeout=10)
            assert registered.server == ("127.0.0.1", proxy.port, "tcp")
            assert not phone.of(RegistrationFailed)
            [binding] = await blocking(proxy.contacts, "1001")
            assert binding.socket == f"tcp:127.0.0.1:{proxy.port}"
        finally:
            await phone.runtime.stop()
            zone.close()

    run(main)


# --- the runtime itself: failures and junk never stop it ---------------------------------------


def test_refused_tcp_connect_fails_the_registration_at_once() -> None:
    """A connect refused is `transport_failed`: RegistrationFailed now, not after Timer F."""
    closed = free_port("127.0.0.1")  # nothing listens here

    async def main() -> None:
        phone = await Phone().start()
        try:
            await phone.runtime.add_account(account(
                registrar=f"127.0.0.1:{closed}", transport="tcp", retry_base_s=30.0))
            started = time.monotonic()
            phone.runtime.register("line1")
            failed = await phone.wait(RegistrationFailed, timeout=3)
            assert time.monotonic() - started < 1.0
            assert failed.retry_in is not None and failed.retry_in > 0
            assert (failed.status, failed.reason) == (503, "Transport error: connection refused")
            assert phone.runtime.transports._pending == {}
        finally:
            await phone.runtime.stop()

    run(main)


def test_junk_and_a_failing_event_handler_do_not_stop_the_runtime(kamailio: Kamailio) -> None:
    async def main() -> None:
        phone = await Phone().start()
        calls = []

        def broken(event: Event) -> None:
            calls.append(event)
            raise RuntimeError("phone layer bug")

        phone.runtime.on_event = broken
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
                for junk in (b"\x00" * 40, b"INVITE\r\n\r\n", b"SIP/2.0 200\r\n\r\n",
                             b"\r\n\r\n", bytes(range(256)) * 20):
                    raw.sendto(junk, ("127.0.0.1", phone.port))
            reader, writer = await asyncio.open_connection("127.0.0.1", phone.port)
            writer.write(b"REGISTER sip:x SIP/2.0\r\nContent-Length: many\r\n\r\n" + b"\xff" * 99)
            await writer.drain()
            # A stream whose framing broke cannot be resynchronised: we close it.
            assert await asyncio.wait_for(reader.read(), 3) == b""
            writer.close()
            await phone.runtime.add_account(account(kamailio))
            phone.runtime.register("line1")
            for _ in range(100):
                if calls:
                    break
                await asyncio.sleep(0.05)
            assert [type(e) for e in calls] == [Registered]  # delivered, raised, survived
            assert len(await blocking(kamailio.contacts, "1001")) == 1
        finally:
            phone.runtime.on_event = phone._event
            await phone.runtime.stop()
        assert await blocking(kamailio.contacts, "1001") == []

    run(main)


# --- TLS runtime to runtime: a name resolved by DNS is the name the certificate must carry.
# --- (TLS against Kamailio and baresip: test_sip_tls_peers.py.)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    import subprocess

    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=sip.tipring.test",
         "-addext", "subjectAltName=DNS:sip.tipring.test"],
        check=True, capture_output=True, timeout=60)
    return cert, key


@pytest.mark.parametrize("name", ["sip.tipring.test", "evil.tipring.test"])
def test_tls_call_verifies_the_name_dns_gave(certificate: tuple[Path, Path], name: str) -> None:
    import ssl

    from tipring.runtime.sip_runtime import DnsLookup
    from tipring.runtime.sip_transport import tls_client_context

    cert, key = certificate
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(str(cert), str(key))

    async def main() -> None:
        zone = TinyDns({("sip.tipring.test", "A"): ["127.0.0.1"],
                        ("evil.tipring.test", "A"): ["127.0.0.1"]})
        dns_port = await zone.start()
        callee = await Phone(tls_server=server_context).start()
        caller = await Phone(tls_client=tls_client_context(ca_file=str(cert)),
                             lookup=DnsLookup(["127.0.0.1"], port=dns_port)).start()
        try:
            tls_port = callee.port + 1
            await callee.runtime.add_account(account(user="bob", registrar="127.0.0.1:1",
                                                     transport="tls"), allow_sip_from="any")
            await caller.runtime.add_account(account(registrar=f"{name}:{tls_port}",
                                                     transport="tls"))
            call = caller.runtime.invite("line1", f"sip:bob@{name}:{tls_port}", media())
            if name == "evil.tipring.test":  # the certificate does not name it: no call
                ended = await caller.wait(CallEnded, timeout=5)
                assert ended.call == call and not callee.of(IncomingCall)
                return
            incoming = await callee.wait(IncomingCall)
            callee.runtime.answer(incoming.call, media())
            await caller.wait(CallAnswered)
            caller.runtime.hangup(call)
            ended = await callee.wait(CallEnded)
            assert ended.by == "remote"
            [(key_, _)] = caller.runtime.transports._connections.items()
            assert key_ == ("127.0.0.1", tls_port, "tls", "sip.tipring.test")
        finally:
            await caller.runtime.stop()
            await callee.runtime.stop()
            zone.close()

    run(main)


def test_wildcard_bind_advertises_a_reachable_address() -> None:
    async def main() -> None:
        runtime = SipRuntime("0.0.0.0", 0)
        agent = await runtime.start()
        try:
            assert all(host not in ("0.0.0.0", "") for host, _, _ in agent.locals)
            assert {t for _, _, t in agent.locals} == {"udp", "tcp"}
        finally:
            await runtime.stop()

    run(main)


@pytest.mark.timeout(60)
def test_tcp_connection_closed_by_kamailio_is_reopened_and_the_binding_kept(
        kamailio_factory: KamailioFactory) -> None:
    """Kamailio drops TCP connections idle for 2 s: we notice the flow is gone, re-REGISTER at
    once over a new connection, and the registrar still holds exactly our one binding."""
    proxy = kamailio_factory(transport="tcp", tcp_lifetime=2)

    async def main() -> None:
        phone = await registered_phone(proxy, learn_public_address=False)
        try:
            # Kamailio closes it some 10 s later: its reader hands an idle connection back to
            # tcp_main only after its own idle timeout, and only tcp_main applies the lifetime.
            await phone.wait(Registered, count=2, timeout=30)
            [binding] = await blocking(proxy.contacts, "1001")
            assert binding.address == f"sip:1001@127.0.0.1:{phone.port};transport=tcp"
            registers = [r for r in phone.runtime.trace.records()
                         if r.direction == "out" and r.data.startswith(b"REGISTER ")]
            # The first exchange (REGISTER, 401, REGISTER) on one connection, the next REGISTER
            # from a new one: a different local port.
            ports = [r.local[1] for r in registers]
            assert ports[0] == ports[1] and ports[2] != ports[0], ports
            assert not phone.of(RegistrationFailed)
        finally:
            await phone.runtime.stop()
        assert await blocking(proxy.contacts, "1001") == []

    asyncio.run(asyncio.wait_for(main(), 50))
