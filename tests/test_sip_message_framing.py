"""Stream framing for TCP/TLS: Content-Length framing, CRLF keep-alives, limits, bad framing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tipring.sip import FramingError, KeepAlive, Request, Response, StreamFramer, parse_message
from tipring.sip.framing import PONG

RFC4475 = Path(__file__).resolve().parent.parent.parent / "shared" / "vectors" / "sip" / "rfc4475"
VALID_WITH_LENGTH = ["esc01", "wsinv", "longreq", "mpart01", "unreason", "noreason", "bext01", "zeromf"]

OPTIONS = (
    b"OPTIONS sip:bob@example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/TCP h.example.com;branch=z9hG4bK1\r\n"
    b"To: <sip:bob@example.com>\r\nFrom: <sip:a@example.com>;tag=1\r\n"
    b"Call-ID: c1@h\r\nCSeq: 1 OPTIONS\r\nContent-Length: 4\r\n\r\nbody"
)


def vector(name: str) -> bytes:
    return (RFC4475 / f"{name}.dat").read_bytes()


def test_messages_split_anywhere_come_out_whole() -> None:
    stream = b"".join(vector(n) for n in VALID_WITH_LENGTH)
    expected = [parse_message(vector(n)) for n in VALID_WITH_LENGTH]
    for size in (1, 2, 3, 7, 64, 1000, len(stream)):
        framer = StreamFramer()
        events = []
        for i in range(0, len(stream), size):
            events += framer.feed(stream[i : i + size])
        assert events == expected, f"chunk size {size}"
        assert framer.buffered == 0 and not framer.closed


def test_keepalives() -> None:
    framer = StreamFramer()
    assert framer.feed(b"\r\n\r\n") == [KeepAlive(ping=True)]
    assert framer.feed(PONG) == [KeepAlive(ping=False)]
    events = framer.feed(b"\r\n\r\n\r\n" + OPTIONS)
    assert events[:2] == [KeepAlive(ping=True), KeepAlive(ping=False)]
    assert isinstance(events[2], Request) and events[2].body == b"body"


def test_ping_split_across_reads_is_one_ping() -> None:
    framer = StreamFramer()
    assert framer.feed(b"\r\n\r") == []
    assert framer.feed(b"\n") == [KeepAlive(ping=True)]


def test_missing_content_length_closes_the_stream() -> None:
    data = OPTIONS.replace(b"Content-Length: 4\r\n", b"")
    framer = StreamFramer()
    (event,) = framer.feed(data)
    assert isinstance(event, FramingError) and event.fatal
    assert event.reason == "Missing Content-Length on a stream transport"
    assert event.request is not None and event.status == 400  # answer, then close
    assert framer.closed and framer.feed(OPTIONS) == []


def test_bad_message_with_good_framing_keeps_the_stream() -> None:
    bad = OPTIONS.replace(b"CSeq: 1 OPTIONS", b"CSeq: one OPTIONS")
    framer = StreamFramer()
    events = framer.feed(bad + OPTIONS)
    assert isinstance(events[0], FramingError) and not events[0].fatal
    assert events[0].request is not None and "CSeq" in events[0].reason
    assert isinstance(events[1], Request) and not framer.closed


def test_header_limit() -> None:
    framer = StreamFramer(max_header_bytes=100)
    (event,) = framer.feed(b"OPTIONS sip:a@b SIP/2.0\r\nX-Pad: " + b"a" * 200)
    assert isinstance(event, FramingError) and event.fatal and framer.closed
    assert event.reason == "header section too large"
    complete = StreamFramer(max_header_bytes=100)
    (event,) = complete.feed(OPTIONS)  # over the limit even though the blank line arrived
    assert isinstance(event, FramingError) and event.fatal


def test_body_limit() -> None:
    framer = StreamFramer(max_body_bytes=3)
    (event,) = framer.feed(OPTIONS)
    assert isinstance(event, FramingError) and event.fatal and event.status == 413


@pytest.mark.parametrize("length", [b"-1", b"4, 4", b"x", b"99999999999999999999"])
def test_bad_content_length_is_fatal(length: bytes) -> None:
    framer = StreamFramer()
    (event,) = framer.feed(OPTIONS.replace(b"Content-Length: 4", b"Content-Length: " + length))
    assert isinstance(event, FramingError) and event.fatal


def test_garbage_head_is_fatal_and_never_answered() -> None:
    framer = StreamFramer()
    (event,) = framer.feed(b"\xff\xfe garbage\r\n\r\n")
    assert isinstance(event, FramingError) and event.fatal and event.request is None


def test_responses_frame_too() -> None:
    framer = StreamFramer()
    (event,) = framer.feed(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nl: 0\r\n\r\n")
    assert isinstance(event, Response) and event.status == 200
