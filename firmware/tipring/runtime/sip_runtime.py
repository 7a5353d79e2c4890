"""The SIP agent on the asyncio loop: sockets in, bytes out, one timer, events to a callback.

`SipRuntime` is the only owner of a `UserAgent`. It binds UDP and TCP (and a TLS listener when
given a server context) on one port, feeds every datagram or stream chunk to
`agent.receive(data, (host, port, transport), now)` (the agent frames streams and answers
pings; an answer to a stream source goes back over that same connection because the source is
the connection's peer), sends what the agent queued (a missing TCP/TLS connection is opened on
demand; a failed connect or a lost connection becomes `agent.transport_failed`), keeps exactly
one `loop.call_at` armed for `agent.get_timer()`, and hands each event to `on_event`.

The clock is `time.monotonic()`, passed to the agent as `now`. Registrar and outbound-proxy
names are located with dnspython through `sip.dns.Resolution` (RFC 3263); IP literals need
no lookup. Commands from the phone layer go through `act(fn)` (or the shortcuts), which runs
`fn(agent, now)` and then sends what it queued, so nothing is left waiting for the next
packet. Nothing from the network or a failing callback escapes into the loop.

Every datagram and stream chunk is also noted in `trace` (a `SipTrace`: the last MiB of
signalling, credentials masked, downloadable as a pcap).

A stream whose framing broke is closed once what was queued for it (its 400) is sent: the
agent lists such streams in `agent.connections_to_close()`.

Not here yet: resolving host names met in Record-Route/Contact (`agent.learn_addresses`).
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from tipring.sdp import MediaPolicy
from tipring.sip.agent import Event, UserAgent
from tipring.sip.dns import Query, Record, Resolution, records_from_rdata
from tipring.sip.registration import Registered, RegistrationSettings, Unregistered
from tipring.sip.timers import Address, TimerSettings

from .sip_transport import Destination, SipTransports, connect_failure
from .siptrace import SipTrace

log = logging.getLogger("tipring.sip.runtime")

T = TypeVar("T")
EventHandler = Callable[[Event], None]
# A DNS lookup for the RFC 3263 plan: an async callable returning records ([] = none).
Lookup = Callable[[Query], Awaitable[list[Record]]]

STOP_DEADLINE = 2.0  # seconds to wait for the un-REGISTERs at shutdown


def split_hostport(text: str) -> tuple[str, int | None]:
    """"host", "host:port", "[v6]" or "[v6]:port" -> (host, port or None)."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else None
    host, sep, port = text.rpartition(":")
    if sep and port.isdigit() and ":" not in host:
        return host, int(port)
    return text, None


def default_source_address(ipv6: bool = False) -> str:
    """The address the kernel would send from towards the Internet (a UDP connect sends
    nothing): what a wildcard-bound device puts in Via and Contact unless told otherwise."""
    family = socket.AF_INET6 if ipv6 else socket.AF_INET
    probe = ("2001:db8::1", 9) if ipv6 else ("192.0.2.1", 9)
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.connect(probe)
            return str(sock.getsockname()[0])
    except OSError:
        return "::1" if ipv6 else "127.0.0.1"


class DnsLookup:
    """dnspython's async resolver behind the plan's `Query` (optionally at given servers, e.g.
    a test's responder on loopback). Failures and timeouts are answered as "no records"."""

    def __init__(self, nameservers: Sequence[str] | None = None, port: int = 53,
                 timeout: float = 2.0) -> None:
        import dns.asyncresolver  # lazily: the package imports without the network stack

        self.resolver = dns.asyncresolver.Resolver(configure=nameservers is None)
        if nameservers is not None:
            self.resolver.nameservers = list(nameservers)
            self.resolver.port = port
        self.resolver.lifetime = timeout

    async def __call__(self, query: Query) -> list[Record]:
        import dns.exception
        import dns.resolver

        try:
            answer = await self.resolver.resolve(query.name, query.rdtype, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer, dns.resolver.NoNameservers):
            return []
        except dns.exception.DNSException as exc:  # timeout, bad reply: no records from here
            log.info("dns %s %s failed: %s", query.rdtype, query.name, type(exc).__name__)
            return []
        return records_from_rdata(query.rdtype, answer.rrset or [])


class SipRuntime:
    """One `UserAgent` on the running loop. `await start()`, then add accounts and act."""

    def __init__(self, host: str = "0.0.0.0", port: int = 5060, *,
                 on_event: EventHandler | None = None, advertise: str | None = None,
                 tls_server: ssl.SSLContext | None = None,
                 tls_client: ssl.SSLContext | None = None,
                 timers: TimerSettings | None = None, rng: random.Random | None = None,
                 user_agent: str = "TipRing",
                 lookup: Lookup | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 trace: SipTrace | None = None) -> None:
        self.host, self.port = host, port
        # What goes into Via/Contact: a wildcard bind has no address a peer could reach.
        self.advertise = advertise or host
        self.on_event = on_event
        self.clock = clock
        self._agent_options: dict[str, Any] = dict(timers=timers, rng=rng, user_agent=user_agent)
        self.trace = trace if trace is not None else SipTrace()
        self.transports = SipTransports(self._received, host, port, tls_server=tls_server,
                                        tls_client=tls_client, raw=True, on_lost=self._lost,
                                        on_wire=self._wire)
        self.tls = tls_server is not None
        self._lookup: Lookup | None = lookup
        self.agent: UserAgent | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_due: float | None = None
        self._tls_names: dict[Address, str] = {}  # address -> name its certificate must carry
        self._registered: set[str] = set()
        self._stopping = False
        self._unregistered: asyncio.Event | None = None  # made in start(), on the loop

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> UserAgent:
        await self.transports.start()
        self.port = self.transports.local_port
        if self.advertise in ("0.0.0.0", "::", ""):
            self.advertise = default_source_address(":" in self.advertise)
        locals_: list[Address] = [(self.advertise, self.port, "udp"),
                                  (self.advertise, self.port, "tcp")]
        if self.tls:
            locals_.append((self.advertise, self.port + 1, "tls"))
        self.agent = UserAgent(locals_, **self._agent_options)
        self._unregistered = asyncio.Event()
        return self.agent

    async def stop(self, deadline: float = STOP_DEADLINE) -> None:
        """Hang up, un-REGISTER every account, wait (at most `deadline` s) for the answers."""
        if self.agent is None or self._stopping:
            return
        self._stopping = True
        pending = set(self._registered)
        self.act(lambda agent, now: agent.shutdown(now))
        end = self.clock() + deadline
        while pending & self._registered and self.clock() < end:
            assert self._unregistered is not None
            self._unregistered.clear()
            try:
                await asyncio.wait_for(self._unregistered.wait(), max(0.01, end - self.clock()))
            except TimeoutError:
                break
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        await self.transports.close()

    # --- accounts -------------------------------------------------------------------------

    async def resolve(self, hostport: str, transport: str | None = None) -> list[Address]:
        """RFC 3263: every address to try for `hostport`, in order ([] when none)."""
        host, port = split_hostport(hostport)
        plan = Resolution(host, port, transport)
        while (query := plan.next_query()) is not None:
            if self._lookup is None:
                self._lookup = DnsLookup()
            try:
                records = await self._lookup(query)
            except Exception:  # a broken resolver is "no answer", never a crash
                log.exception("dns lookup failed for %s", query.name)
                records = []
            plan.answer(query, records)
        for target in plan.targets:
            if target[2] == "tls":
                self._tls_names[target] = host
        return plan.targets

    async def add_account(self, settings: RegistrationSettings, *,
                          allow_sip_from: str = "registrar",
                          trusted: tuple[str, ...] = ()) -> list[Address]:
        """Locate the account's server (outbound proxy, else registrar, else domain) and the
        backup registrar, and give the account to the agent. Returns the primary targets."""
        server = settings.outbound_proxy or settings.registrar or settings.domain
        targets = await self.resolve(server, settings.transport)
        backup = None
        if settings.backup_registrar:
            backup = await self.resolve(settings.backup_registrar, settings.transport)
        if not targets:
            log.warning("account %s: no address found for %s", settings.account, server)
        self.act(lambda agent, now: agent.add_account(
            settings, targets, allow_sip_from=allow_sip_from, trusted=trusted,
            backup_targets=backup))
        return targets

    # --- commands (the phone layer's side) --------------------------------------------------

    def act(self, command: Callable[[UserAgent, float], T]) -> T:
        """Run `command(agent, now)`, then send what it queued and re-arm the timer."""
        assert self.agent is not None, "start() first"
        try:
            return command(self.agent, self.clock())
        finally:
            self._pump()

    def register(self, account: str) -> None:
        self.act(lambda agent, now: agent.register(account, now))

    def unregister(self, account: str) -> None:
        self.act(lambda agent, now: agent.unregister(account, now))

    def invite(self, account: str, target: str, media: MediaPolicy) -> str:
        return self.act(lambda agent, now: agent.invite(account, target, media, now))

    def answer(self, call: str, media: MediaPolicy) -> None:
        self.act(lambda agent, now: agent.answer(call, media, now))

    def reject(self, call: str, status: int = 486, reason: str = "Busy Here") -> None:
        self.act(lambda agent, now: agent.reject(call, status, reason, now))

    def cancel(self, call: str) -> None:
        self.act(lambda agent, now: agent.cancel(call, now))

    def hangup(self, call: str) -> None:
        self.act(lambda agent, now: agent.hangup(call, now))

    # --- the loop side ----------------------------------------------------------------------

    def _received(self, data: object, source: Destination) -> None:
        if self.agent is None or not isinstance(data, bytes):
            return
        address: Address = (source.host, source.port, source.transport)
        self.agent.receive(data, address, self.clock())
        self._pump()

    def _wire(self, direction: str, transport: str, local: tuple[str, int],
              remote: tuple[str, int], data: bytes) -> None:
        if local[0] in ("0.0.0.0", "::"):  # a wildcard bind: show the address we advertise
            local = (self.advertise, local[1])
        self.trace.record(direction, transport, local, remote, data)

    def _lost(self, destination: Destination, why: str = "") -> None:
        if self.agent is None:
            return
        address: Address = (destination.host, destination.port, destination.transport)
        self.trace.forget_flow(destination.transport, (destination.host, destination.port))
        log.info("flow to %s:%d/%s lost: %s", *address, why or "closed")
        self.act(lambda agent, now: agent.transport_failed(address, now, why))

    def _fire(self) -> None:
        self._timer = None
        self._timer_due = None
        if self.agent is None:
            return
        self.agent.handle_timer(self.clock())
        self._pump()

    def _pump(self) -> None:
        """Send everything queued, hand every event over, keep one timer armed. An event handler
        (the phone) may call the agent and queue more, so this goes round until both are empty."""
        agent = self.agent
        if agent is None:
            return
        for _ in range(100):  # bounded: sending may fail synchronously and queue more
            outgoing = agent.datagrams_to_send()
            for data, (host, port, transport) in outgoing:
                self._send(data, (host, port, transport))
            for address in agent.connections_to_close():  # after its 400, sent just above
                log.info("closing %s:%d/%s after a fatal framing error", *address)
                self.transports.close_connection(Destination(
                    address[0], address[1], address[2],  # type: ignore[arg-type]
                    self._tls_names.get(address)))
            handled = False
            while (event := agent.next_event()) is not None:
                handled = True
                if isinstance(event, Registered):
                    self._registered.add(event.account)
                elif isinstance(event, Unregistered):
                    self._registered.discard(event.account)
                    if self._unregistered is not None:
                        self._unregistered.set()
                if self.on_event is not None:
                    try:
                        self.on_event(event)
                    except Exception:  # the phone layer's bug must not stop signalling
                        log.exception("event handler failed on %s", type(event).__name__)
            if not outgoing and not handled:
                break
        self._arm()

    def _send(self, data: bytes, address: Address) -> None:
        host, port, transport = address
        try:
            destination = Destination(host, port, transport,  # type: ignore[arg-type]
                                      self._tls_names.get(address))
            self.transports.send_nowait(data, destination)
        except (OSError, ValueError) as exc:
            log.info("send to %s:%d/%s failed: %s", host, port, transport, exc)
            assert self.agent is not None
            self.agent.transport_failed(address, self.clock(), connect_failure(exc))

    def _arm(self) -> None:
        assert self.agent is not None
        due = None if self._stopping and self.transports.closing else self.agent.get_timer()
        if due == self._timer_due and (due is None or self._timer is not None):
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_due = due
        if due is not None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_at(loop.time() + max(0.0, due - self.clock()), self._fire)
