"""A stream whose framing broke is closed: the agent says so, SipRuntime closes that connection.

The agent half is sans-IO (what `connections_to_close` lists); the runtime half runs a real
SipRuntime on loopback and talks to it over plain TCP sockets, so the 400 and the close are
what a peer really sees.
"""

from __future__ import annotations

import asyncio
import random

from tipring.runtime.sip_runtime import SipRuntime
from tipring.sip.agent import UserAgent

LOCAL = ("127.0.0.1", 5060, "tcp")
PEER = ("127.0.0.1", 40000, "tcp")


def options(n: int, port: int) -> bytes:
    return (
        f"OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/TCP 127.0.0.1:40000;branch=z9hG4bK-opt{n}\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:probe@127.0.0.1>;tag=p{n}\r\n"
        f"To: <sip:127.0.0.1:{port}>\r\n"
        f"Call-ID: opt{n}@test\r\n"
        f"CSeq: {n} OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


BAD_LENGTH = (
    b"REGISTER sip:tipring.test SIP/2.0\r\n"
    b"Via: SIP/2.0/TCP 127.0.0.1:40000;branch=z9hG4bK-bad\r\n"
    b"From: <sip:x@tipring.test>;tag=1\r\nTo: <sip:x@tipring.test>\r\n"
    b"Call-ID: bad@test\r\nCSeq: 1 REGISTER\r\nContent-Length: many\r\n\r\n" + b"\xff" * 50
)


def test_agent_lists_a_stream_once_after_a_fatal_framing_error() -> None:
    agent = UserAgent(LOCAL, rng=random.Random(1))
    agent.receive(options(1, 5060), PEER, 0.0)
    assert agent.connections_to_close() == []  # a good message keeps the stream
    other = ("127.0.0.1", 40001, "tcp")
    agent.receive(BAD_LENGTH, PEER, 1.0)
    agent.receive(options(2, 5060), other, 1.0)
    sent = agent.datagrams_to_send()
    assert [(d.split(b"\r\n", 1)[0], a) for d, a in sent] == [
        (b"SIP/2.0 200 OK", PEER), (b"SIP/2.0 400 Bad Content-Length", PEER),
        (b"SIP/2.0 200 OK", other)]
    assert agent.connections_to_close() == [PEER]
    assert agent.connections_to_close() == []  # handed over once
    # Bytes arriving on the same address later start a new framer (a new connection).
    agent.receive(options(3, 5060), PEER, 2.0)
    assert agent.datagrams_to_send()[0][0].startswith(b"SIP/2.0 200 OK")
    assert agent.connections_to_close() == []


async def read_message(reader: asyncio.StreamReader) -> bytes:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    return head  # our answers here carry no body (Content-Length: 0)


def test_runtime_closes_only_the_connection_whose_framing_broke() -> None:
    async def main() -> None:
        runtime = SipRuntime("127.0.0.1", 0, rng=random.Random(2))
        await runtime.start()
        port = runtime.port
        try:
            bad_r, bad_w = await asyncio.open_connection("127.0.0.1", port)
            good_r, good_w = await asyncio.open_connection("127.0.0.1", port)
            for n, (reader, writer) in enumerate(((bad_r, bad_w), (good_r, good_w)), 1):
                writer.write(options(n, port))
                await writer.drain()
                assert (await read_message(reader)).startswith(b"SIP/2.0 200 OK")
            bad_w.write(BAD_LENGTH)
            await bad_w.drain()
            answer = await read_message(bad_r)
            assert answer.startswith(b"SIP/2.0 400 Bad Content-Length")
            assert await asyncio.wait_for(bad_r.read(), 5) == b""  # then the close
            # The other connection is untouched and still served.
            good_w.write(options(7, port))
            await good_w.drain()
            assert (await read_message(good_r)).startswith(b"SIP/2.0 200 OK")
            assert runtime.agent is not None and runtime.agent.connections_to_close() == []
            for writer in (bad_w, good_w):
                writer.close()
        finally:
            await runtime.stop()

    asyncio.run(main())
