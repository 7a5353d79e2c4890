"""SIP requests and responses as plain data, their wire form, and responses built from requests.

`parse_message` reads one datagram (UDP) and `serialize` writes one message for any transport;
`framing.StreamFramer` cuts a TCP/TLS byte stream into messages. Header fields stay as received
text in `Headers` and are read through typed accessors (`message.via`, `message.cseq`...), but
the fields every SIP layer depends on (Via, From, To, Call-ID, CSeq, Contact, Route,
Record-Route, Content-Type) are checked while parsing, so a message that parses can be handled
and one that does not is answered with a 400 when RFC 3261 8.2.6 makes that possible.
"""

from __future__ import annotations

import datetime
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from .fields import Headers, canonical_name
from .grammar import WSP, SipParseError, is_token, parse_uint
from .headers import (
    CSeq,
    MediaType,
    NameAddr,
    Via,
    is_wildcard_contact,
    parse_accept,
    parse_call_id,
    parse_cseq,
    parse_date,
    parse_delta_seconds,
    parse_from_to,
    parse_max_forwards,
    parse_media_type,
    parse_name_addr,
    parse_name_addr_list,
    parse_token_list,
    parse_via,
)
from .uri import SipUri, Uri, parse_uri

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_HEADER_BYTES",
    "MAX_HEADER_FIELDS",
    "Request",
    "RequestHead",
    "Response",
    "SipParseError",
    "build_response",
    "new_tag",
    "parse_message",
    "serialize",
]

log = logging.getLogger(__name__)

# Limits for one message. A SIP header section of a few KiB is large (RFC 4475 longreq is 3.5
# KiB); a body of 64 KiB covers any SDP, sipfrag or MWI summary. Beyond them an attacker is
# only spending our memory.
MAX_HEADER_BYTES = 16 * 1024
MAX_BODY_BYTES = 64 * 1024
MAX_HEADER_FIELDS = 256
MAX_CONTENT_LENGTH = 2**31 - 1

_VERSION_RE = re.compile(r"SIP/[0-9]+\.[0-9]+", re.IGNORECASE)
_VERSION_AT_END_RE = re.compile(r" SIP/[0-9]+\.[0-9]+[ \t]*$", re.IGNORECASE)
_SINGLE_VALUED = ("Call-ID", "CSeq", "From", "To", "Max-Forwards", "Content-Type")
T = TypeVar("T")


class _HeaderAccess:
    """Typed reads of `self.headers`, shared by Request and Response.

    A value is parsed once and kept by `Headers.parsed` until the header lines change (the
    parser has already read the core fields by the time a layer asks). A bad value raises
    SipParseError with a reason fit for a 400. Absent optional headers read as None or [].
    The objects handed back are shared: copy before changing one (lists are fresh copies).
    """

    headers: Headers
    body: bytes

    def _required(self, name: str) -> str:
        value = self.headers.get(name)
        if value is None:
            raise SipParseError(f"Missing {name} header")
        return value

    def _optional(self, name: str, parse: Callable[[str], T]) -> T | None:
        value = self.headers.get(name)
        return None if value is None else parse(value)

    @property
    def via(self) -> list[Via]:
        lines = self.headers.lines
        return list(self.headers.parsed(
            "Via", lambda: [via for line in lines("Via") for via in parse_via(line)]))

    @property
    def from_(self) -> NameAddr:
        return self.headers.parsed("From", lambda: parse_from_to(self._required("From")))

    @property
    def to(self) -> NameAddr:
        return self.headers.parsed("To", lambda: parse_from_to(self._required("To")))

    @property
    def call_id(self) -> str:
        return self.headers.parsed("Call-ID", lambda: parse_call_id(self._required("Call-ID")))

    @property
    def cseq(self) -> CSeq:
        return self.headers.parsed("CSeq", lambda: parse_cseq(self._required("CSeq")))

    @property
    def contact_is_wildcard(self) -> bool:
        return any(is_wildcard_contact(line) for line in self.headers.lines("Contact"))

    @property
    def contacts(self) -> list[NameAddr]:
        """Contact addresses; [] for none and for `Contact: *` (see contact_is_wildcard)."""
        return self.name_addrs("Contact") if not self.contact_is_wildcard else []

    @property
    def route(self) -> list[NameAddr]:
        return self.name_addrs("Route")

    @property
    def record_route(self) -> list[NameAddr]:
        return self.name_addrs("Record-Route")

    @property
    def max_forwards(self) -> int | None:
        return self._optional("Max-Forwards", parse_max_forwards)

    @property
    def content_length(self) -> int | None:
        """The Content-Length field as received (`serialize` always writes len(body))."""
        return self._optional("Content-Length", content_length)

    @property
    def content_type(self) -> MediaType | None:
        return self.headers.parsed(
            "Content-Type", lambda: self._optional("Content-Type", parse_media_type))

    @property
    def expires(self) -> int | None:
        return self._optional("Expires", parse_delta_seconds)

    @property
    def accept(self) -> list[MediaType] | None:
        """Accept ranges; None when there is no Accept header (which means application/sdp)."""
        lines = self.headers.lines("Accept")
        return None if not lines else [m for line in lines for m in parse_accept(line)]

    @property
    def date(self) -> datetime.datetime | None:
        return self._optional("Date", parse_date)

    @property
    def require(self) -> list[str]:
        return self.tokens("Require")

    @property
    def proxy_require(self) -> list[str]:
        return self.tokens("Proxy-Require")

    @property
    def supported(self) -> list[str]:
        return self.tokens("Supported")

    @property
    def unsupported(self) -> list[str]:
        return self.tokens("Unsupported")

    @property
    def allow(self) -> list[str]:
        return self.tokens("Allow")

    def name_addrs(self, name: str) -> list[NameAddr]:
        """Addresses from every line of a name-addr list header (Refer-To, P-Asserted-Identity)."""
        lines = self.headers.lines
        return list(self.headers.parsed(
            "addrs:" + name, lambda: [a for line in lines(name) for a in parse_name_addr_list(line)]))

    def tokens(self, name: str) -> list[str]:
        """Option tags or methods from every line of a token-list header."""
        lines = self.headers.lines
        return list(self.headers.parsed(
            "tokens:" + name,
            lambda: [t for line in lines(name) for t in parse_token_list(line, name)]))


@dataclass(eq=True)
class Request(_HeaderAccess):
    method: str
    uri: Uri
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    version: str = "SIP/2.0"

    def __bytes__(self) -> bytes:
        return serialize(self)


@dataclass(eq=True)
class Response(_HeaderAccess):
    status: int
    reason: str
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    version: str = "SIP/2.0"

    def __bytes__(self) -> bytes:
        return serialize(self)


@dataclass
class RequestHead:
    """What was read of a request that failed to parse: enough to answer it (8.2.6).

    `uri` is the Request-URI text as received, since it may be the part that failed.
    """

    method: str
    uri: str
    headers: Headers


def parse_message(data: bytes) -> Request | Response:
    """Parse one SIP message received as a datagram; raise SipParseError.

    Datagram rules (RFC 3261 18.3): Content-Length may be absent (the body is the rest of the
    datagram, as RFC 2543 senders do: RFC 4475 inv2543); octets beyond it are discarded
    (dblreq); fewer octets than it announces is an error (clerr). The rejection is logged here,
    once, with its reason.
    """
    try:
        return _parse_datagram(data)
    except SipParseError as error:
        log.info(
            "rejected SIP datagram: %s (%s)",
            error.reason,
            f"answer {error.status}" if error.request is not None else "dropped",
        )
        raise
    except Exception:  # a parser bug must not take the transport down; the fuzz test hunts these
        log.exception("SIP parser failed on a datagram")
        raise SipParseError("internal parser error") from None


def _parse_datagram(data: bytes) -> Request | Response:
    start = 0
    while data.startswith(b"\r\n", start):  # RFC 3261 7.5: CRLFs before the start-line
        start += 2
    end = data.find(b"\r\n\r\n", start)
    if end < 0:
        raise SipParseError("no end of header section")
    if end - start > MAX_HEADER_BYTES:
        raise SipParseError("header section too large")
    start_line, headers = decode_head(data[start:end])
    rest = data[end + 4 :]
    try:
        lengths = headers.lines("Content-Length")
        if len(lengths) > 1:
            raise SipParseError("Multiple Content-Length headers")
        if lengths:
            length = content_length(lengths[0])
            if length > len(rest):
                raise SipParseError("Content-Length larger than message")
            if len(rest) > length:
                log.debug("discarded %d octets after the body of a datagram", len(rest) - length)
            body = rest[:length]
        else:
            body = rest
        if len(body) > MAX_BODY_BYTES:
            raise SipParseError("Request Entity Too Large", 413)
    except SipParseError as error:
        error.request = answerable_head(start_line, headers)
        raise
    return build_message(start_line, headers, body)


def content_length(value: str) -> int:
    """RFC 3261 20.14: 1*DIGIT. Negative or non-numeric values (RFC 4475 ncl) are errors."""
    try:
        return parse_uint(value, MAX_CONTENT_LENGTH, "Content-Length")
    except SipParseError:
        raise SipParseError("Bad Content-Length") from None


def decode_head(head: bytes) -> tuple[str, Headers]:
    """Split a header section (without the blank line) into start-line and unfolded fields.

    Folded lines (CRLF then whitespace; RFC 3261 7.3.1) join their field with one SP. The text
    must be UTF-8 (TEXT-UTF8 in RFC 3261 25) with CRLF line ends only: a bare CR or LF is
    how header-smuggling tricks start, so it is refused rather than guessed at.
    """
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        raise SipParseError("header section is not UTF-8") from None
    lines = text.split("\r\n")
    if text.count("\r") != len(lines) - 1 or text.count("\n") != len(lines) - 1:
        raise SipParseError("bare CR or LF in header section")
    if len(lines) > MAX_HEADER_FIELDS + 1:
        raise SipParseError("too many header fields")
    fields: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t"):
            if not fields:
                raise SipParseError("continuation line without a header")
            more = line.strip(WSP)
            if more:
                name, value = fields[-1]
                fields[-1] = (name, f"{value} {more}" if value else more)
            continue
        name, colon, value = line.partition(":")
        name = name.rstrip(WSP)
        if not colon or not is_token(name):
            raise SipParseError("bad header line")
        fields.append((canonical_name(name), value.strip(WSP)))
    return lines[0], Headers.from_wire(fields)


def answerable_head(start_line: str, headers: Headers) -> RequestHead | None:
    """A RequestHead when the failed message is a request we can answer, else None.

    It must look like a request (start-line ending in a SIP version, not starting with one)
    and carry a Via to send the answer along; everything else a 400 copies is optional.
    """
    if start_line[:4].upper() == "SIP/" or not _VERSION_AT_END_RE.search(start_line):
        return None
    if not headers.lines("Via"):
        return None
    method = start_line.split(" ", 1)[0]
    uri = start_line.split(" ")[1] if start_line.count(" ") >= 2 else ""
    return RequestHead(method if is_token(method) else "", uri, headers)


def build_message(start_line: str, headers: Headers, body: bytes) -> Request | Response:
    """Read the start-line and check the core header fields; the framing is already done."""
    try:
        if start_line[:4].upper() == "SIP/":
            message: Request | Response = _parse_status_line(start_line, headers, body)
        else:
            message = _parse_request_line(start_line, headers, body)
        _check_core_fields(message)
    except SipParseError as error:
        error.request = answerable_head(start_line, headers)
        raise
    return message


def _parse_request_line(line: str, headers: Headers, body: bytes) -> Request:
    # Request-Line = Method SP Request-URI SP SIP-Version: exactly one SP each, no LWS in the
    # URI and none at the end (RFC 4475 lwsstart, trws, lwsruri are rejected with 400).
    parts = line.split(" ")
    if len(parts) != 3 or not all(parts):
        raise SipParseError("Malformed Request-Line")
    method, uri_text, version = parts
    if not is_token(method):
        raise SipParseError("Bad Method")
    if not _VERSION_RE.fullmatch(version):
        raise SipParseError("Bad SIP-Version")
    try:
        uri = parse_uri(uri_text)
    except SipParseError:
        raise SipParseError("Bad Request-URI") from None
    if isinstance(uri, SipUri) and uri.headers:
        # RFC 3261 19.1.1 table: headers are not allowed in a Request-URI (RFC 4475 escruri).
        raise SipParseError("Request-URI must not carry headers")
    return Request(method, uri, headers, body, version.upper())


def _parse_status_line(line: str, headers: Headers, body: bytes) -> Response:
    version, _, rest = line.partition(" ")
    if not _VERSION_RE.fullmatch(version):
        raise SipParseError("Bad SIP-Version")
    code = rest[:3]
    # Status-Code is exactly 3 digits (RFC 4475 bigcode has ten); an empty reason is allowed
    # (noreason), with or without the SP before it.
    if len(code) != 3 or not code.isdigit() or (len(rest) > 3 and rest[3] != " "):
        raise SipParseError("Bad Status-Code")
    status = int(code)
    if not 100 <= status <= 699:
        raise SipParseError("Bad Status-Code")
    return Response(status, rest[4:], headers, body, version.upper())


def _check_core_fields(message: Request | Response) -> None:
    """Parse the fields every layer relies on, so a message that parses can be routed.

    What is parsed here is kept (`Headers.remember`) for the typed accessors: the layers
    above read the same values without parsing them again.
    """
    headers = message.headers
    for name in _SINGLE_VALUED:
        if headers.count(name) > 1:
            raise SipParseError(f"Multiple {name} headers")
    vias = headers.lines("Via")
    if isinstance(message, Request) and not vias:
        raise SipParseError("Missing Via header")
    remember = headers.remember
    remember("Via", [via for line in vias for via in _reason(parse_via, line, "Via")])
    for name, parse in _CORE_SINGLE:
        value = headers.get(name)
        if value is not None:
            remember(name, _reason(parse, value, name))
    contacts = headers.lines("Contact")
    if not (len(contacts) == 1 and is_wildcard_contact(contacts[0])):
        remember("addrs:Contact", [a for line in contacts
                                   for a in _reason(parse_name_addr_list, line, "Contact")])
    for name in ("Route", "Record-Route"):
        remember("addrs:" + name, [a for line in headers.lines(name)
                                   for a in _reason(parse_name_addr_list, line, name)])
    value = headers.get("Content-Type")
    remember("Content-Type", None if value is None else
             _reason(parse_media_type, value, "Content-Type"))


_CORE_SINGLE: tuple[tuple[str, Callable[[str], object]], ...] = (
    ("From", parse_from_to), ("To", parse_from_to), ("Call-ID", parse_call_id),
    ("CSeq", parse_cseq))


def _reason(parse: Callable[[str], T], value: str, name: str) -> T:
    """Run a field parser; its error becomes "Bad <name> header" (RFC 3261 21.4.1 style)."""
    try:
        return parse(value)
    except SipParseError as error:
        raise SipParseError(f"Bad {name} header: {error.reason}") from None


def serialize(message: Request | Response) -> bytes:
    """The wire form. Content-Length is always written, and always the real body length.

    A Content-Length field already present keeps its place with the correct value; otherwise
    it is added last. Compact names are never written: some peers mishandle them.
    """
    if isinstance(message, Request):
        uri = str(message.uri)
        if not is_token(message.method) or any(ch in uri for ch in " \t\r\n"):
            raise ValueError("request method must be a token and the URI must have no whitespace")
        start = f"{message.method} {uri} {message.version}"
    else:
        if not 100 <= message.status <= 699 or "\r" in message.reason or "\n" in message.reason:
            raise ValueError("status must be 100-699 and the reason one line")
        start = f"{message.version} {message.status} {message.reason}"
    lines = [start]
    length_line = f"Content-Length: {len(message.body)}"
    written = False
    for name, value in message.headers:
        if name == "Content-Length":
            if not written:
                lines.append(length_line)
                written = True
            continue
        lines.append(f"{name}: {value}")
    if not written:
        lines.append(length_line)
    lines.append("\r\n")
    return "\r\n".join(lines).encode("utf-8") + message.body


def new_tag() -> str:
    """A From/To tag: RFC 3261 19.3 asks for at least 32 random bits; this has 64."""
    return secrets.token_hex(8)


def build_response(
    request: Request | RequestHead, status: int, reason: str, *, to_tag: str | None = None
) -> Response:
    """A response to `request` as RFC 3261 8.2.6 says: Via, From, Call-ID, CSeq copied, To
    copied with a tag added unless it has one (or the response is 100 Trying).

    Works on a RequestHead too, so a request that failed to parse still gets its 400. A To
    that itself failed to parse (RFC 4475 quotbal) is echoed unchanged: the client matches the
    answer by Via branch and CSeq. Of repeated single-valued fields the first is copied.
    """
    if "\r" in reason or "\n" in reason:
        raise ValueError("reason phrase must be one line")
    source = request.headers
    headers = Headers()
    for line in source.lines("Via"):
        headers.add("Via", line)
    for name in ("From", "To", "Call-ID", "CSeq"):
        value = source.get(name)
        if value is None:
            continue
        if name == "To" and status != 100:
            value = _with_tag(value, to_tag)
        headers.add(name, value)
    timestamp = source.get("Timestamp")
    if status == 100 and timestamp is not None:
        headers.add("Timestamp", timestamp)  # RFC 3261 8.2.6.1
    return Response(status, reason, headers)


def _with_tag(to_value: str, to_tag: str | None) -> str:
    try:
        address = parse_name_addr(to_value)
    except SipParseError:
        return to_value
    if address.tag is not None:
        return to_value
    tag = to_tag if to_tag is not None else new_tag()
    if not is_token(tag):
        raise ValueError("To tag must be a token")
    return f"{to_value};tag={tag}"
