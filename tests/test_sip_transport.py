"""SIP transports on loopback: UDP, TCP (framing, reuse, keep-alive, fatal errors) and TLS
(certificate and host name verified)."""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
from pathlib import Path

import pytest

from tipring.runtime.sip_transport import (
    Destination,
    SipTransports,
    NOT_VERIFIED,
    VERIFY_FLAGS,
    connect_failure,
    tls_client_context,
    tls_client_from_pem,
)
from tipring.sip.message import Request, Response, parse_message

REGISTER = (
    "REGISTER sip:tipring.test SIP/2.0\r\n"
    "Via: SIP/2.0/{t} 127.0.0.1:5999;branch=z9hG4bK-{n}\r\n"
    "Max-Forwards: 70\r\n"
    "From: <sip:1001@tipring.test>;tag=a{n}\r\n"
    "To: <sip:1001@tipring.test>\r\n"
    "Call-ID: {n}@test\r\n"
    "CSeq: {n} REGISTER\r\n"
    "Content-Length: 0\r\n\r\n"
)


def register(n: int, transport: str = "UDP") -> Request:
    message = parse_message(REGISTER.format(n=n, t=transport).encode())
    assert isinstance(message, Request)
    return message


class Inbox:
    def __init__(self) -> None:
        self.items: asyncio.Queue[tuple[object, Destination]] = asyncio.Queue()

    def __call__(self, message: object, source: Destination) -> None:
        self.items.put_nowait((message, source))

    async def next(self) -> tuple[object, Destination]:
        return await asyncio.wait_for(self.items.get(), 5)


async def pair(**server_kw: object) -> tuple[SipTransports, Inbox, SipTransports, Inbox]:
    a_in, b_in = Inbox(), Inbox()
    a = SipTransports(a_in, "127.0.0.1", 0, tls_client=server_kw.pop("tls_client", None))
    b = SipTransports(b_in, "127.0.0.1", 0, **server_kw)  # type: ignore[arg-type]
    await a.start()
    await b.start()
    return a, a_in, b, b_in


def test_udp_both_ways_and_bad_datagrams_dropped() -> None:
    async def main() -> None:
        a, _, b, b_in = await pair()
        try:
            await a.send(register(1), Destination("127.0.0.1", b.local_port))
            message, source = await b_in.next()
            assert isinstance(message, Request) and message.method == "REGISTER"
            assert source == Destination("127.0.0.1", a.local_port, "udp")
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
                raw.sendto(b"\r\n\r\n", ("127.0.0.1", b.local_port))  # keep-alive
                raw.sendto(b"NOT SIP AT ALL\r\n\r\n", ("127.0.0.1", b.local_port))
            await a.send(register(2), Destination("127.0.0.1", b.local_port))
            message, _ = await b_in.next()
            assert message.cseq.number == 2  # the junk in between never surfaced
        finally:
            await a.close()
            await b.close()

    asyncio.run(main())


def test_tcp_framing_reuse_and_keepalive() -> None:
    async def main() -> None:
        a, a_in, b, b_in = await pair()
        try:
            dest = Destination("127.0.0.1", b.local_port, "tcp")
            await a.send(register(1, "TCP"), dest)
            request, source = await b_in.next()
            assert source.transport == "tcp"
            # The answer goes back over the connection a opened, not a new one.
            await b.send(Response(200, "OK", request.headers.copy()), source)
            response, _ = await a_in.next()
            assert isinstance(response, Response) and response.status == 200
            assert len(a._connections) == 1 and len(b._connections) == 1
            await a.send(register(2, "TCP"), dest)
            assert (await b_in.next())[0].cseq.number == 2
            assert len(a._connections) == 1

            reader, writer = await asyncio.open_connection("127.0.0.1", b.local_port)
            wire = REGISTER.format(n=3, t="TCP").encode()
            writer.write(wire[:40])
            await writer.drain()
            await asyncio.sleep(0.05)
            writer.write(wire[40:] + b"\r\n\r\n")  # the rest, then a keep-alive ping
            await writer.drain()
            assert (await b_in.next())[0].cseq.number == 3
            assert await asyncio.wait_for(reader.readexactly(2), 5) == b"\r\n"  # pong
            writer.write(b"REGISTER sip:x SIP/2.0\r\nContent-Length: many\r\n\r\n")
            await writer.drain()
            assert await asyncio.wait_for(reader.read(100), 5) == b""  # closed: fatal framing
            writer.close()
        finally:
            await a.close()
            await b.close()

    asyncio.run(main())


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=sip.tipring.test",
         "-addext", "subjectAltName=DNS:sip.tipring.test"],
        check=True, capture_output=True, timeout=60)
    return cert, key


def test_tls_verifies_the_server(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(str(cert), str(key))

    async def main() -> None:
        a, _, b, b_in = await pair(tls_server=server,
                                   tls_client=tls_client_context(ca_file=str(cert)))
        try:
            good = Destination("127.0.0.1", b.local_port + 1, "tls", "sip.tipring.test")
            await a.send(register(1, "TLS"), good)
            message, source = await b_in.next()
            assert message.method == "REGISTER" and source.transport == "tls"
            wrong_name = Destination("127.0.0.1", b.local_port + 1, "tls", "evil.test")
            with pytest.raises(ssl.SSLCertVerificationError) as failed:
                await a.send(register(2, "TLS"), wrong_name)
            # What the status page shows instead of a bare 503.
            assert connect_failure(failed.value) == (
                "server certificate not trusted: Hostname mismatch, certificate is not valid "
                "for 'evil.test'.")
        finally:
            await a.close()
            await b.close()

    asyncio.run(main())

    async def untrusted() -> None:
        a, _, b, _ = await pair(tls_server=server, tls_client=tls_client_context())
        try:
            with pytest.raises(ssl.SSLCertVerificationError) as failed:  # not in system CAs
                await a.send(register(3, "TLS"),
                             Destination("127.0.0.1", b.local_port + 1, "tls", "sip.tipring.test"))
            assert connect_failure(failed.value) == (
                "server certificate not trusted: self-signed certificate")
        finally:
            await a.close()
            await b.close()

    asyncio.run(untrusted())


def test_tls_takes_a_pbx_made_ca_the_same_on_every_python(tmp_path: Path) -> None:
    """Python 3.13 made certificate checks strict (RFC 5280 form) by default, so a CA that does
    not mark basicConstraints critical (as PBX scripts such as Asterisk's ast_tls_cert make them)
    would be refused on the 3.14 image and accepted on 3.11. The client contexts set the flags
    themselves: such a CA is accepted on both, and a server it did not sign is still refused."""
    from peers.pki import TestCa

    lax = TestCa(tmp_path / "lax", "PBX-made CA", rfc5280=False)
    server_cert = lax.issue("sip.tipring.test")
    stranger = TestCa(tmp_path / "other", "Someone else's CA", rfc5280=False)
    lax_pem = lax.cert.read_text()
    clients = [tls_client_context(ca_file=str(lax.cert)), tls_client_from_pem(ca=lax_pem)]
    for client in clients:
        assert client is not None
        assert client.verify_flags & VERIFY_FLAGS == VERIFY_FLAGS
        assert not client.verify_flags & NOT_VERIFIED
    strict = ssl.create_default_context(cadata=lax_pem)
    strict.verify_flags |= NOT_VERIFIED  # what 3.13+ does when not told otherwise

    async def attempt(client: ssl.SSLContext, signed_by: TestCa) -> str:
        certificate = server_cert if signed_by is lax else signed_by.issue("sip.tipring.test")
        server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server.load_cert_chain(str(certificate.cert), str(certificate.key))
        a, _, b, b_in = await pair(tls_server=server, tls_client=client)
        try:
            await a.send(register(1, "TLS"),
                         Destination("127.0.0.1", b.local_port + 1, "tls", "sip.tipring.test"))
            await b_in.next()
            return "accepted"
        except ssl.SSLCertVerificationError as failed:
            return connect_failure(failed)
        finally:
            await a.close()
            await b.close()

    for client in clients:
        assert asyncio.run(attempt(client, lax)) == "accepted"
        assert asyncio.run(attempt(client, stranger)).startswith("server certificate not trusted")
    assert asyncio.run(attempt(strict, lax)) == (  # the test is real: strict form refuses it
        "server certificate not trusted: Basic Constraints of CA cert not marked critical")


def test_close_does_not_wait_for_a_client_stuck_before_its_tls_handshake(
        certificate: tuple[Path, Path]) -> None:
    """Since Python 3.12 a listener's wait_closed() waits for every connection it accepted,
    including a TLS one whose handshake never started (a port scanner, a stalled peer); close()
    must end those itself instead of hanging until the 60 s handshake timeout. (3.11 neither
    waits nor can close them, so there only the prompt return is checked.)"""
    cert, key = certificate
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(str(cert), str(key))

    async def main() -> None:
        loop = asyncio.get_running_loop()
        b = SipTransports(Inbox(), "127.0.0.1", 0, tls_server=server)
        await b.start()
        stalled = socket.create_connection(("127.0.0.1", b.local_port + 1))
        stalled.setblocking(False)
        try:
            idle_tcp = socket.create_connection(("127.0.0.1", b.local_port))
            with pytest.raises(TimeoutError):  # the listener has accepted it and waits
                await asyncio.wait_for(loop.sock_recv(stalled, 1), 0.2)
            await asyncio.wait_for(b.close(), 30)  # well inside the 60 s handshake timeout
            if hasattr(asyncio.Server, "close_clients"):  # 3.13+
                assert await asyncio.wait_for(loop.sock_recv(stalled, 1), 5) == b""
            idle_tcp.close()
        finally:
            stalled.close()

    asyncio.run(main())


class RawInbox:
    """What a raw-mode SipTransports hands over: bytes per source, and lost flows."""

    def __init__(self) -> None:
        self.data: dict[Destination, bytearray] = {}
        self.lost: list[Destination] = []
        self.why: list[str] = []
        self.changed = asyncio.Event()

    def __call__(self, data: object, source: Destination) -> None:
        assert isinstance(data, bytes)
        self.data.setdefault(source, bytearray()).extend(data)
        self.changed.set()

    def on_lost(self, destination: Destination, why: str) -> None:
        self.lost.append(destination)
        self.why.append(why)
        self.changed.set()

    async def until(self, check: object, timeout: float = 5.0) -> None:
        async def poll() -> None:
            while not check():  # type: ignore[operator]
                self.changed.clear()
                await self.changed.wait()
        await asyncio.wait_for(poll(), timeout)


def test_raw_mode_hands_over_bytes_unparsed_and_reports_lost_flows() -> None:
    async def main() -> None:
        a_in, b_in = RawInbox(), RawInbox()
        a = SipTransports(a_in, "127.0.0.1", 0, raw=True, on_lost=a_in.on_lost)
        b = SipTransports(b_in, "127.0.0.1", 0, raw=True, on_lost=b_in.on_lost)
        await a.start()
        await b.start()
        try:
            # UDP: junk and keep-alives reach the receiver as they are (the agent judges them).
            a.send_nowait(b"NOT SIP\r\n\r\n", Destination("127.0.0.1", b.local_port))
            a.send_nowait(b"\r\n\r\n", Destination("127.0.0.1", b.local_port))
            udp_source = Destination("127.0.0.1", a.local_port, "udp")
            await b_in.until(lambda: bytes(b_in.data.get(udp_source, b"")) ==
                             b"NOT SIP\r\n\r\n\r\n\r\n")
            # TCP: sent before the connection exists, queued, delivered in order, unframed.
            tcp = Destination("127.0.0.1", b.local_port, "tcp")
            wire = REGISTER.format(n=1, t="TCP").encode()
            a.send_nowait(wire[:30], tcp)
            a.send_nowait(wire[30:] + b"\r\n\r\n", tcp)
            await b_in.until(lambda: any(bytes(v) == wire + b"\r\n\r\n"
                                         for k, v in b_in.data.items() if k.transport == "tcp"))
            assert len(a._connections) == 1 and a._pending == {}
            # b answers over the connection a opened (keyed by a's source address).
            [inbound] = [k for k in b_in.data if k.transport == "tcp"]
            b.send_nowait(b"\r\n", inbound)
            await a_in.until(lambda: bytes(a_in.data.get(tcp, b"")) == b"\r\n")
            # The far end closes: both sides hear the flow is gone.
            b.close_connection(inbound)
            await a_in.until(lambda: tcp in a_in.lost)
            # A refused connect is a lost flow too, and frees the queue.
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                closed = Destination("127.0.0.1", probe.getsockname()[1], "tcp")
            a.send_nowait(b"x", closed)
            await a_in.until(lambda: closed in a_in.lost)
            assert a._pending == {}
            assert a_in.why == ["connection closed", "connection refused"]
        finally:
            await a.close()
            await b.close()
        # b's own close is a lost flow for b's agent too; close() at the end reports nothing.
        assert b_in.lost == [inbound]

    asyncio.run(main())


def tos_of(sock: object, ipv6: bool = False) -> int:
    if ipv6:
        return sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS)  # type: ignore[attr-defined]
    return sock.getsockopt(socket.IPPROTO_IP, socket.IP_TOS)  # type: ignore[attr-defined]


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_signalling_sockets_are_marked_dscp_cs3(certificate: tuple[Path, Path], host: str) -> None:
    """RFC 4594 call signalling: DSCP 24 (CS3), i.e. a TOS / traffic class byte of 0x60, on
    the UDP socket, the connections we open and the ones we accept, TCP and TLS alike."""
    if host == "::1" and not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    cert, key = certificate
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(str(cert), str(key))
    ipv6 = ":" in host

    async def main() -> None:
        a_in, b_in = Inbox(), Inbox()
        a = SipTransports(a_in, host, 0, tls_client=tls_client_context(ca_file=str(cert)))
        b = SipTransports(b_in, host, 0, tls_server=server)
        try:
            await a.start()
        except OSError:
            pytest.skip(f"cannot bind {host}")
        await b.start()
        try:
            assert tos_of(a._udp.get_extra_info("socket"), ipv6) == 0x60  # type: ignore[union-attr]
            await a.send(register(1, "TCP"), Destination(host, b.local_port, "tcp"))
            await b_in.next()
            await a.send(register(2, "TLS"),
                         Destination(host, b.local_port + 1, "tls", "sip.tipring.test"))
            await b_in.next()
            for side in (a, b):  # a dialled both; b accepted both
                streams = list(side._connections.values())
                assert sorted(s.name for s in streams) == ["tcp", "tls"]
                for stream in streams:
                    assert stream.transport is not None
                    assert tos_of(stream.transport.get_extra_info("socket"), ipv6) == 0x60
        finally:
            await a.close()
            await b.close()

    asyncio.run(main())


def test_tls_sends_sni_and_presents_a_client_certificate(tmp_path: Path) -> None:
    """The name we verify is the name we send as SNI (none for an IP literal, RFC 6066 3);
    a client certificate from `tls_client_context` reaches a server that demands one, and
    without it that server refuses the connection."""
    from peers.pki import TestCa

    ca = TestCa(tmp_path / "ca")
    server_cert = ca.issue("sip.tipring.test", "sip.tipring.test", "127.0.0.1")
    device_cert = ca.issue("tipring-device")
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(ca.cert))
    server.load_cert_chain(str(server_cert.cert), str(server_cert.key))
    server.verify_mode = ssl.CERT_REQUIRED
    names: list[str | None] = []
    server.sni_callback = lambda sock, name, context: names.append(name)  # type: ignore[assignment,misc,return-value]

    async def main() -> None:
        lost: list[Destination] = []
        whys: list[str] = []
        with_cert = tls_client_context(ca_file=str(ca.cert), cert_file=str(device_cert.cert),
                                       key_file=str(device_cert.key))
        a = SipTransports(Inbox(), "127.0.0.1", 0, tls_client=with_cert)
        b_in = Inbox()
        b = SipTransports(b_in, "127.0.0.1", 0, tls_server=server)
        bare = SipTransports(Inbox(), "127.0.0.1", 0, raw=True, on_lost=lambda dest, why: (lost.append(dest), whys.append(why)),
                             tls_client=tls_client_context(ca_file=str(ca.cert)))
        for side in (a, b, bare):
            await side.start()
        try:
            port = b.local_port + 1
            await a.send(register(1, "TLS"), Destination("127.0.0.1", port, "tls",
                                                         "sip.tipring.test"))
            await b_in.next()
            await a.send(register(2, "TLS"), Destination("127.0.0.1", port, "tls"))
            await b_in.next()
            assert names == ["sip.tipring.test", None]
            [inbound, _] = b._connections.values()
            peer = inbound.transport.get_extra_info("peercert")  # type: ignore[union-attr]
            assert dict(x[0] for x in peer["subject"])["commonName"] == "tipring-device"
            # Without a certificate the server ends the handshake (with TLS 1.3 just after
            # the client thinks it is done) and the flow is reported lost.
            refused = Destination("127.0.0.1", port, "tls", "sip.tipring.test")
            bare.send_nowait(b"OPTIONS sip:x SIP/2.0\r\n\r\n", refused)
            for _ in range(250):
                if lost:
                    break
                await asyncio.sleep(0.02)
            assert [(d.host, d.port, d.transport) for d in lost] == [("127.0.0.1", port, "tls")]
            assert whys == ["connection closed"]  # TLS 1.3: the alert comes after the handshake
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(b_in.items.get(), 0.3)  # nothing got through
        finally:
            for side in (a, b, bare):
                await side.close()

    asyncio.run(main())


def test_port_zero_picks_again_when_tcp_cannot_have_udps_port() -> None:
    """UDP's kernel-chosen port may be held for TCP by someone else: start() tries another
    instead of failing; an explicit port that is taken still fails, with the OS error."""
    async def main() -> None:
        loop = asyncio.get_running_loop()
        real_create_server = loop.create_server
        blockers: list[socket.socket] = []

        async def someone_took_it_first(factory, host, port, **kw):  # type: ignore[no-untyped-def]
            if not blockers:  # the first TCP bind: another socket listens there already
                blocker = socket.socket()
                blocker.bind((host, port))
                blocker.listen()
                blockers.append(blocker)
            return await real_create_server(factory, host, port, **kw)

        loop.create_server = someone_took_it_first  # type: ignore[method-assign]
        transports = SipTransports(Inbox(), "127.0.0.1", 0)
        try:
            await transports.start()
        finally:
            loop.create_server = real_create_server  # type: ignore[method-assign]
        taken_port = blockers[0].getsockname()[1]
        try:
            assert transports.local_port != taken_port and len(transports._servers) == 1
        finally:
            await transports.close()
        taken = SipTransports(Inbox(), "127.0.0.1", taken_port)
        with pytest.raises(OSError):
            await taken.start()
        blockers[0].close()

    asyncio.run(main())
