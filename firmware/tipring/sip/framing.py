"""Cutting a TCP or TLS byte stream into SIP messages (RFC 3261 18.3, RFC 5626 3.5.1).

On a stream, Content-Length is the only thing that says where a message ends, so it is
required, and a missing, repeated, negative or oversized one loses the framing for good: the
connection has to be closed (RFC 4475 ncl, mcl01). A message whose framing is fine but whose
content is bad is reported and the stream carries on. Double CRLF is an RFC 5626 keep-alive
ping (answer with `PONG`); a single CRLF is the pong to ours (or a stray CRLF before a
start-line, which RFC 3261 7.5 says to ignore: it is reported the same way and is harmless).
A lone CRLF is reported as a pong at once rather than held in case a second one follows: a UA
is the side that pings, and a pong held back would make a live flow look dead (RFC 5626 4.4.1).
The price is that a server's ping split between two reads reads as two pongs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from .fields import Headers
from .grammar import SipParseError
from .message import (
    MAX_BODY_BYTES,
    MAX_HEADER_BYTES,
    Request,
    RequestHead,
    Response,
    answerable_head,
    build_message,
    content_length,
    decode_head,
)

log = logging.getLogger(__name__)

PING = b"\r\n\r\n"
PONG = b"\r\n"


@dataclass(frozen=True)
class KeepAlive:
    """A CRLF keep-alive: `ping` True for a double CRLF (send `PONG` back), else a pong."""

    ping: bool


@dataclass(frozen=True)
class FramingError:
    """A message the stream could not deliver.

    `request` set: answer it (`validate.response_to_error`). `fatal`: the stream's framing is
    lost; close the connection after any answer. Not an exception: `feed` never raises.
    """

    error: SipParseError
    fatal: bool

    @property
    def reason(self) -> str:
        return self.error.reason

    @property
    def status(self) -> int:
        return self.error.status

    @property
    def request(self) -> RequestHead | None:
        return self.error.request


StreamEvent = Request | Response | KeepAlive | FramingError


class StreamFramer:
    """Bytes in, messages out, for one connection. Feed whatever `recv` returned."""

    def __init__(
        self, *, max_header_bytes: int = MAX_HEADER_BYTES, max_body_bytes: int = MAX_BODY_BYTES
    ) -> None:
        self._max_header = max_header_bytes
        self._max_body = max_body_bytes
        self._buffer = bytearray()
        self._pending: tuple[str, Headers, int] | None = None  # start-line, fields, body length
        self._closed = False
        self._scanned = 0  # octets already searched for the blank line: a trickle stays linear

    @property
    def closed(self) -> bool:
        """True after a fatal error: the caller should close the connection."""
        return self._closed

    @property
    def buffered(self) -> int:
        """Octets held waiting for the rest of a message."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[StreamEvent]:
        if self._closed:
            return []
        self._buffer += data
        events: list[StreamEvent] = []
        try:
            self._drain(events)
        except SipParseError as error:
            self._fail(events, error)
        except Exception:  # a framer bug must not take the connection handler down
            log.exception("SIP stream framer failed")
            self._fail(events, SipParseError("internal framing error"))
        return events

    def _fail(self, events: list[StreamEvent], error: SipParseError) -> None:
        log.info("closing SIP stream: %s", error.reason)
        events.append(FramingError(error, fatal=True))
        self._closed = True
        self._buffer.clear()
        self._pending = None
        self._scanned = 0

    def _drain(self, events: list[StreamEvent]) -> None:
        buffer = self._buffer
        while True:
            if self._pending is None:
                if buffer[:1] == b"\r":
                    if buffer[:4] == PING:
                        events.append(KeepAlive(ping=True))
                        del buffer[:4]
                        continue
                    if buffer[:2] == PONG and (len(buffer) == 2 or buffer[2] != 0x0D):
                        events.append(KeepAlive(ping=False))
                        del buffer[:2]
                        continue
                    if len(buffer) < 4 and PING.startswith(buffer):
                        return  # the rest of a ping may follow
                end = buffer.find(b"\r\n\r\n", max(0, self._scanned - 3))
                if end < 0:
                    if len(buffer) > self._max_header:
                        raise SipParseError("header section too large")
                    self._scanned = len(buffer)
                    return
                self._scanned = 0
                if end > self._max_header:
                    raise SipParseError("header section too large")
                start_line, headers = decode_head(bytes(buffer[:end]))
                self._pending = (start_line, headers, self._body_length(start_line, headers))
                del buffer[: end + 4]
            start_line, headers, length = self._pending
            if len(buffer) < length:
                return
            body = bytes(buffer[:length])
            del buffer[:length]
            self._pending = None
            try:
                events.append(build_message(start_line, headers, body))
            except SipParseError as error:
                log.info("rejected SIP message on stream: %s", error.reason)
                events.append(FramingError(error, fatal=False))

    def _body_length(self, start_line: str, headers: Headers) -> int:
        lengths = headers.lines("Content-Length")
        try:
            if not lengths:
                raise SipParseError("Missing Content-Length on a stream transport")
            if len(lengths) > 1:
                raise SipParseError("Multiple Content-Length headers")
            length = content_length(lengths[0])
            if length > self._max_body:
                raise SipParseError("Request Entity Too Large", 413)
        except SipParseError as error:
            error.request = answerable_head(start_line, headers)
            raise
        return length
