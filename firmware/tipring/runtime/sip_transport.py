"""SIP transports for the sans-IO agent: UDP, TCP and TLS sockets on the asyncio loop.

The agent speaks in bytes and `Destination`s; this module moves them. Two receiving modes:
`raw=True` (what `SipRuntime` uses) hands every datagram and every chunk a connection delivers,
unparsed, to the receiver with its source, because the sans-IO agent frames streams and answers
keep-alive pings itself; the default mode parses here (datagrams whole, streams through
`StreamFramer`: Content-Length framing, RFC 5626 CRLF pings answered with a pong, a fatal
framing error closes the connection). `on_lost(destination)` hears of every connection that
closed or could not be opened, so the agent can fail its transactions and flows at once. Connections are
reused per destination and opened on demand; an inbound TCP/TLS connection is reused to reach
the peer that opened it. Signalling is marked DSCP CS3. TLS verifies the server's certificate
against the system CAs or a configured CA file, with SNI, and can present a client certificate.
`on_wire` sees every datagram and stream chunk as it is written or read, with the socket's
real local and remote address (the SIP trace; TLS data is seen in the clear).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import os
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from tipring.sip.framing import PONG, FramingError, KeepAlive, StreamFramer
from tipring.sip.message import SipParseError, parse_message, serialize

log = logging.getLogger("tipring.sip.transport")

Transport = Literal["udp", "tcp", "tls"]
DSCP_CS3 = 24  # class selector 3: call signalling (RFC 4594)
MAX_DATAGRAM = 65535


@dataclass(frozen=True)
class Destination:
    host: str
    port: int
    transport: Transport = "udp"
    server_name: str | None = None  # TLS: the name to verify and send as SNI


# A parsed Request/Response (or, with raw=True, the bytes received) and where from.
Receiver = Callable[[object, Destination], None]
LostHandler = Callable[[Destination, str], None]  # destination, why in words
# on_wire(direction "in"/"out", transport, local (host, port), remote (host, port), data)
WireTap = Callable[[str, str, tuple[str, int], tuple[str, int], bytes], None]
ConnectionKey = tuple[str, int, str, str | None]


def connect_failure(exc: BaseException) -> str:
    """Why a connection failed or closed, in words for the status page and the log: a user
    who sees "503" cannot tell a wrong port from an untrusted certificate; these words can."""
    if isinstance(exc, TimeoutError):
        why = "no answer to connect"
    elif isinstance(exc, ssl.SSLCertVerificationError):
        why = f"server certificate not trusted: {exc.verify_message or exc.reason}"
    elif isinstance(exc, ssl.SSLError):
        why = f"TLS handshake failed: {exc.reason or exc}"
    elif isinstance(exc, ConnectionRefusedError):
        why = "connection refused"
    elif isinstance(exc, OSError) and exc.strerror:
        why = exc.strerror.lower()
    else:
        why = str(exc) or type(exc).__name__
    return "".join(ch if ch.isprintable() else " " for ch in why)[:120]


def _key(destination: Destination) -> ConnectionKey:
    """Connections are shared per address and transport, and for TLS per verified server name
    too: a request for one identity must not ride a connection authenticated as another.
    Inbound connections (we are the server) have no name."""
    name = None
    if destination.transport == "tls" and destination.server_name is not None:
        name = destination.server_name
    return (destination.host, destination.port, destination.transport, name)


def _mark(sock: socket.socket | None) -> None:
    if sock is None:
        return
    try:
        if sock.family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, DSCP_CS3 << 2)
        else:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, DSCP_CS3 << 2)
    except OSError:
        pass  # a hint to the network only


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, owner: SipTransports) -> None:
        self.owner = owner
        # Set once the socket is really closed: asyncio closes it a loop turn after close(),
        # and a restart that binds the same port before that gets "address already in use".
        self.closed = asyncio.get_running_loop().create_future()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def datagram_received(self, data: bytes, addr: tuple) -> None:  # type: ignore[type-arg]
        source = Destination(addr[0], addr[1], "udp")
        self.owner._tap_udp("in", source, data)
        if self.owner.raw:
            self.owner._hand_over(data, source)
        else:
            self.owner._deliver_datagram(data, source)

    def error_received(self, exc: Exception) -> None:
        log.info("udp error", extra={"reason": str(exc)})


class _Stream(asyncio.Protocol):
    """One TCP or TLS connection, framed into SIP messages."""

    def __init__(self, owner: SipTransports, transport_name: Transport) -> None:
        self.owner = owner
        self.name = transport_name
        self.framer = StreamFramer()
        self.transport: asyncio.Transport | None = None
        self.peer: Destination | None = None
        self.closed = asyncio.get_running_loop().create_future()
        self.local: tuple[str, int] = ("0.0.0.0", 0)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        host, port = transport.get_extra_info("peername")[:2]
        self.peer = Destination(host, port, self.name)
        self.local = tuple(transport.get_extra_info("sockname")[:2])  # type: ignore[assignment]
        self.key: ConnectionKey = _key(self.peer)
        _mark(transport.get_extra_info("socket"))
        self.owner._connections.setdefault(self.key, self)

    def write(self, data: bytes) -> None:
        assert self.transport is not None and self.peer is not None
        self.owner._tap("out", self.name, self.local, self.peer, data)
        self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None and self.peer is not None
        self.owner._tap("in", self.name, self.local, self.peer, data)
        if self.owner.raw:
            self.owner._hand_over(data, self.peer)
            return
        for item in self.framer.feed(data):
            if isinstance(item, KeepAlive):
                if item.ping:
                    self.write(PONG)
            elif isinstance(item, FramingError):
                log.info("bad stream message", extra={"peer": f"{self.peer.host}:{self.peer.port}",
                                                      "reason": str(item.error)})
                if item.fatal:
                    self.transport.close()
                    return
            else:
                self.owner.receiver(item, self.peer)

    def connection_lost(self, exc: Exception | None) -> None:
        current = self.peer is not None and self.owner._connections.get(self.key) is self
        if current:
            del self.owner._connections[self.key]
        if not self.closed.done():
            self.closed.set_result(None)
        if current and self.peer is not None and not self.owner.closing:
            # a superseded duplicate's end loses nothing
            self.owner._lost(self.peer, connect_failure(exc) if exc else "connection closed")


class SipTransports:
    """The agent's sockets: one UDP socket and TCP/TLS listeners on the same port, plus the
    connections it opens."""

    def __init__(self, receiver: Receiver, host: str = "0.0.0.0", port: int = 5060, *,
                 tls_client: ssl.SSLContext | None = None,
                 tls_server: ssl.SSLContext | None = None, raw: bool = False,
                 on_lost: LostHandler | None = None, on_wire: WireTap | None = None) -> None:
        self.receiver = receiver
        self.raw = raw
        self.on_lost = on_lost
        self.on_wire = on_wire
        self.closing = False
        self._pending: dict[ConnectionKey, list[bytes]] = {}  # waiting for a connection
        self.host, self.port = host, port
        # Made on the first TLS connection: loading the system CAs costs ~20 ms at start-up.
        self.tls_client = tls_client
        self.tls_server = tls_server
        self._udp: asyncio.DatagramTransport | None = None
        self._udp_protocol: _Datagrams | None = None
        self._servers: list[asyncio.AbstractServer] = []
        self._connections: dict[ConnectionKey, _Stream] = {}

    @property
    def local_port(self) -> int:
        assert self._udp is not None
        return self._udp.get_extra_info("sockname")[1]

    async def start(self) -> None:
        """Bind UDP, then TCP on the same port (and TLS on the next). Port 0 lets the kernel
        pick UDP's; that number can be taken for TCP (another socket's ephemeral port), so
        then the pick is tried again rather than failing."""
        attempts = 20 if self.port == 0 else 1
        for attempt in range(attempts):
            try:
                await self._bind()
                return
            except OSError as exc:
                await self._unbind()
                if exc.errno != errno.EADDRINUSE or attempt == attempts - 1:
                    raise

    async def _bind(self) -> None:
        loop = asyncio.get_running_loop()
        self._udp, self._udp_protocol = await loop.create_datagram_endpoint(
            lambda: _Datagrams(self), local_addr=(self.host, self.port))
        _mark(self._udp.get_extra_info("socket"))
        port = self.local_port  # port 0 asked for any: TCP follows UDP's choice
        self._servers.append(await loop.create_server(
            lambda: _Stream(self, "tcp"), self.host, port))
        if self.tls_server is not None:
            self._servers.append(await loop.create_server(
                lambda: _Stream(self, "tls"), self.host, port + 1, ssl=self.tls_server))

    async def _unbind(self) -> None:
        for server in self._servers:
            server.close()
            await server.wait_closed()
        self._servers.clear()
        if self._udp is not None:
            self._udp.close()
            self._udp = None

    async def close(self) -> None:
        self.closing = True
        for server in self._servers:
            server.close()
            # Since 3.12 wait_closed() also waits for every connection the listener accepted,
            # among them a TLS client still in (or stuck before) its handshake, which we never
            # saw: without this a port scanner held close() for the 60 s handshake timeout.
            # 3.11 has no close_clients() and does not wait for connections.
            close_clients = getattr(server, "close_clients", None)
            if close_clients is not None:
                close_clients()
        for stream in list(self._connections.values()):
            if stream.transport is not None:
                stream.transport.close()
        if self._udp is not None:
            self._udp.close()
        for server in self._servers:
            await server.wait_closed()
        if self._udp_protocol is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._udp_protocol.closed), 1.0)

    def _tap(self, direction: str, transport: str, local: tuple[str, int],
             remote: Destination, data: bytes) -> None:
        if self.on_wire is None:
            return
        try:
            self.on_wire(direction, transport, local, (remote.host, remote.port), data)
        except Exception:  # a trace must never cost a message
            log.exception("wire tap failed")

    def _tap_udp(self, direction: str, remote: Destination, data: bytes) -> None:
        if self.on_wire is not None and self._udp is not None:
            local = self._udp.get_extra_info("sockname")[:2]
            self._tap(direction, "udp", (local[0], local[1]), remote, data)

    def _hand_over(self, data: bytes, source: Destination) -> None:
        try:
            self.receiver(data, source)
        except Exception:  # the receiver is the agent's boundary; nothing may stop the socket
            log.exception("receiver failed on data from %s:%d", source.host, source.port)

    def _lost(self, destination: Destination, why: str) -> None:
        if self.on_lost is None:
            return
        try:
            self.on_lost(destination, why)
        except Exception:
            log.exception("on_lost failed for %s:%d", destination.host, destination.port)

    def close_connection(self, destination: Destination) -> None:
        """Close the connection to `destination` (after a fatal framing error: no resync)."""
        stream = self._connections.get(_key(destination))
        if stream is not None and stream.transport is not None:
            stream.transport.close()

    def send_nowait(self, data: bytes, destination: Destination) -> None:
        """Send without waiting: UDP at once; a stream over its open connection, or queued
        while a connection is opened (in order). A failed connect calls `on_lost`."""
        if self.closing:
            return
        if destination.transport == "udp":
            assert self._udp is not None
            self._udp.sendto(data, (destination.host, destination.port))
            self._tap_udp("out", destination, data)
            return
        key = _key(destination)
        stream = self._connections.get(key)
        if stream is not None and stream.transport is not None and \
                not stream.transport.is_closing():
            stream.write(data)
            return
        queued = self._pending.get(key)
        if queued is not None:
            queued.append(data)
            return
        self._pending[key] = [data]
        asyncio.get_running_loop().create_task(self._connect_and_flush(destination))

    async def _connect_and_flush(self, destination: Destination) -> None:
        key = _key(destination)
        try:
            stream = await asyncio.wait_for(self._connect(destination), 10)
        except Exception as exc:  # refused, unreachable, TLS verification, timeout
            self._pending.pop(key, None)
            why = connect_failure(exc)
            log.info("connect failed", extra={"peer": f"{destination.host}:{destination.port}",
                                              "reason": why})
            self._lost(destination, why)
            return
        for data in self._pending.pop(key, []):
            stream.write(data)

    def _deliver_datagram(self, data: bytes, source: Destination) -> None:
        if data.strip(b"\r\n") == b"":
            return  # a CRLF keep-alive (RFC 5626 4.4.2 uses STUN; many UAs send CRLF)
        try:
            message = parse_message(data)
        except SipParseError as exc:
            log.info("bad datagram", extra={"peer": f"{source.host}:{source.port}",
                                            "reason": exc.args[0] if exc.args else "unparsable"})
            return
        self.receiver(message, source)

    async def send(self, message: object, destination: Destination) -> None:
        """Send a Request or Response (or raw bytes, e.g. a CRLF keep-alive)."""
        data = message if isinstance(message, bytes) else serialize(message)  # type: ignore[arg-type]
        if destination.transport == "udp":
            assert self._udp is not None
            self._udp.sendto(data, (destination.host, destination.port))
            self._tap_udp("out", destination, data)
            return
        stream = self._connections.get(_key(destination))
        if stream is None or stream.transport is None or stream.transport.is_closing():
            stream = await self._connect(destination)
        stream.write(data)

    def _client_context(self) -> ssl.SSLContext:
        if self.tls_client is None:
            self.tls_client = tls_client_context()
        return self.tls_client

    async def _connect(self, destination: Destination) -> _Stream:
        loop = asyncio.get_running_loop()
        tls = destination.transport == "tls"
        _, protocol = await loop.create_connection(
            lambda: _Stream(self, destination.transport), destination.host, destination.port,
            ssl=self._client_context() if tls else None,
            server_hostname=(destination.server_name or destination.host) if tls else None)
        assert isinstance(protocol, _Stream)
        # Keyed by what we dialled (and verified), so the next request to it reuses it.
        if self._connections.get(protocol.key) is protocol:
            del self._connections[protocol.key]
        protocol.key = _key(destination)
        self._connections[protocol.key] = protocol
        return protocol


# Python 3.13 made create_default_context() verify with VERIFY_X509_STRICT (RFC 5280 form: e.g.
# a CA's basicConstraints must be critical) and VERIFY_X509_PARTIAL_CHAIN (a configured
# intermediate may be the trust anchor). The flags are set here on every version, so CI on 3.11
# accepts and refuses exactly the servers the 3.14 image does, with one choice of ours: no strict
# form. The CA a user pastes is one they chose to trust, and PBX scripts (Asterisk's
# ast_tls_cert among them) make CAs whose basicConstraints are not critical; refusing those
# would break TLS with the PBX for a rule about encoding, while the chain, the validity dates and
# the host name are checked all the same.
VERIFY_FLAGS = ssl.VERIFY_X509_PARTIAL_CHAIN
NOT_VERIFIED = ssl.VERIFY_X509_STRICT


def _verifying_context(cafile: str | None = None, cadata: str | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=cafile, cadata=cadata)
    context.verify_flags = (context.verify_flags | VERIFY_FLAGS) & ~NOT_VERIFIED
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def tls_client_context(ca_file: str | None = None, cert_file: str | None = None,
                       key_file: str | None = None) -> ssl.SSLContext:
    """Verify servers against the system CAs (or `ca_file`); optionally present a certificate."""
    context = _verifying_context(cafile=ca_file)
    if cert_file:
        context.load_cert_chain(cert_file, key_file)
    return context


def tls_client_from_pem(ca: str = "", certificate: str = "", key: str = "",
                        folder: str | None = None) -> ssl.SSLContext | None:
    """The client context for configured PEM text (None: nothing configured, the system CAs
    are used when the first TLS connection is made). The CA is loaded from memory; the
    certificate and key go through a private temporary folder (0700, in `folder`, e.g. the
    data partition) only while `ssl` reads them. Raises ssl.SSLError (or ValueError) for PEM
    that does not load, e.g. a key that does not match the certificate."""
    if not (ca or certificate):
        return None
    import tempfile

    context = _verifying_context(cadata=ca or None)  # no CA given: the system's
    if certificate:
        with tempfile.TemporaryDirectory(dir=folder, prefix=".sip-tls-") as private:
            cert_file, key_file = f"{private}/certificate.pem", f"{private}/key.pem"
            for name, text in ((cert_file, certificate), (key_file, key)):
                descriptor = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(descriptor, "w", encoding="ascii") as out:
                    out.write(text)
            context.load_cert_chain(cert_file, key_file)
    return context
