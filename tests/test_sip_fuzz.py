"""Fuzzing the SIP parser and stream framer with mutated RFC 4475 torture messages.

Byte flips, deletions, SIP-significant insertions, duplications, truncations and splices
between messages. Whatever comes in: `parse_message` returns a message or raises
SipParseError (never anything else, and never its "internal" safety-net error); anything it
accepts serialises and parses back to the same wire form; every typed accessor and UAS check
either works or raises SipParseError; the framer never raises and reports only messages,
keep-alives and FramingErrors. Bounded by example counts so the file runs in seconds, and by
a per-test timeout so a pathological input cannot hold CI up (pytest-timeout fails the test).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tipring.sip import (
    FramingError,
    KeepAlive,
    Request,
    Response,
    SipParseError,
    StreamFramer,
    check_request,
    check_response,
    parse_message,
    response_to_error,
    serialize,
)

RFC4475 = Path(__file__).resolve().parent.parent.parent / "shared" / "vectors" / "sip" / "rfc4475"
MESSAGES = [path.read_bytes() for path in sorted(RFC4475.glob("*.dat"))]
SIGNIFICANT = [
    b"\r\n", b"\r\n ", b" ", b"\t", b";", b",", b'"', b"\\", b"<", b">", b"%", b"%4", b":", b"@",
    b"[", b"]", b"=", b"?", b"&", b"/", b"\x00", b"\xff", b"\xc3", b"*", b"\r\n\r\n",
    b"Content-Length: ", b"l: 99999999999999999999", b"Via: SIP/2.0/UDP [::1", b"sip:", b"tel:",
]
ACCESSORS = (
    "via", "from_", "to", "call_id", "cseq", "contacts", "contact_is_wildcard", "route",
    "record_route", "max_forwards", "content_type", "expires", "accept", "date", "require",
    "proxy_require", "supported", "unsupported", "allow",
)
# Weighted towards edits that keep a message recognisable, so most cases reach deep grammar.
OPERATIONS = ["insert"] * 4 + ["flip", "delete", "duplicate", "splice"] * 2 + ["truncate"]
pytestmark = pytest.mark.timeout(120)

FAST = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def fast(examples: int) -> settings:
    return settings(FAST, max_examples=examples)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(MESSAGES)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(OPERATIONS))
        at = draw(st.integers(0, len(data)))
        span = draw(st.integers(1, 40))
        if op == "flip" and data:
            at = min(at, len(data) - 1)
            data[at] = draw(st.integers(0, 255))
        elif op == "delete":
            del data[at : at + span]
        elif op == "insert":
            data[at:at] = draw(st.sampled_from(SIGNIFICANT))
        elif op == "duplicate":
            data[at:at] = data[at : at + span]
        elif op == "truncate":
            del data[at:]
        elif op == "splice":
            other = draw(st.sampled_from(MESSAGES))
            start = draw(st.integers(0, len(other)))
            data[at:at] = other[start : start + span * 4]
    return bytes(data)


def exercise(message: Request | Response) -> None:
    """Everything a caller may do with a parsed message raises SipParseError at worst."""
    for name in ACCESSORS:
        try:
            getattr(message, name)
        except SipParseError:
            pass
    if isinstance(message, Request):
        rejection = check_request(message)
        if rejection is not None:
            serialize(rejection)
    else:
        check_response(message)


@fast(2500)
@given(mutated())
def test_parser_raises_only_its_own_error(data: bytes) -> None:
    try:
        message = parse_message(data)
    except SipParseError as error:
        assert error.reason != "internal parser error"
        answer = response_to_error(error)
        if answer is not None:
            assert serialize(answer).startswith(f"SIP/2.0 {error.status} ".encode())
        return
    wire = serialize(message)
    again = parse_message(wire)
    assert serialize(again) == wire
    exercise(message)


@fast(400)
@given(st.lists(mutated(), min_size=1, max_size=4), st.lists(st.integers(1, 300), min_size=1, max_size=30))
def test_framer_never_raises(messages: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(messages)
    framer = StreamFramer()
    position = 0
    for cut in cuts * (len(stream) // max(sum(cuts), 1) + 1):
        if position >= len(stream):
            break
        for event in framer.feed(stream[position : position + cut]):
            assert isinstance(event, Request | Response | KeepAlive | FramingError)
            if isinstance(event, FramingError):
                assert "internal" not in event.reason
            elif not isinstance(event, KeepAlive):
                exercise(event)
        position += cut


def _frameable() -> dict[bytes, Request | Response]:
    """The valid vectors that carry a Content-Length, each cut to exactly its one message."""
    out: dict[bytes, Request | Response] = {}
    for data in MESSAGES:
        try:
            message = parse_message(data)
        except SipParseError:
            continue
        if "Content-Length" in message.headers:
            out[data[: data.index(b"\r\n\r\n") + 4 + len(message.body)]] = message
    return out


EXPECTED = _frameable()
FRAMEABLE = sorted(EXPECTED)


@fast(300)
@given(
    st.lists(st.sampled_from(FRAMEABLE), min_size=1, max_size=6),
    st.lists(st.integers(1, 200), min_size=1, max_size=20),
    st.lists(st.sampled_from([b"", b"\r\n\r\n"]), min_size=6, max_size=6),
)
def test_framer_matches_whole_message_parsing(messages: list[bytes], cuts: list[int], pings: list[bytes]) -> None:
    """Any chunking of valid messages (with keep-alives between) yields exactly those messages."""
    stream = b"".join(ping + message for ping, message in zip(pings, messages, strict=False))
    framer = StreamFramer()
    events: list[object] = []
    position = 0
    index = 0
    while position < len(stream):
        cut = cuts[index % len(cuts)]
        events += framer.feed(stream[position : position + cut])
        position += cut
        index += 1
    got = [event for event in events if not isinstance(event, KeepAlive)]
    assert got == [EXPECTED[message] for message in messages]
    # A ping cut between its two CRLFs reads as two pongs (framing.py says why); either way
    # every CRLF of every ping is accounted for and none leaks into a message.
    crlfs = sum(2 if e.ping else 1 for e in events if isinstance(e, KeepAlive))
    assert crlfs == 2 * sum(1 for p in pings[: len(messages)] if p)
    assert framer.buffered == 0 and not framer.closed
