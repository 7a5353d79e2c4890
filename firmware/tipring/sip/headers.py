"""Typed values of the header fields the SIP core reads: Via, name-addr, CSeq, media types...

Each `parse_*` takes the unfolded text of one header field value (or a comma list of them) and
returns plain data or raises `SipParseError` with a reason fit for a 400. Each type's `str()` is
its wire form, so the transaction and dialog layers build headers from these values instead of
formatting strings by hand.
"""

from __future__ import annotations

import datetime
import ipaddress
import re
from dataclasses import dataclass, field

from .grammar import (
    TOKEN_RE,
    WSP,
    Params,
    SipParseError,
    is_token,
    parse_params,
    parse_uint,
    quote,
    scan_quoted,
    skip_ws,
    split_commas,
    unquote,
)
from .uri import Uri, parse_host, parse_port, parse_uri

MAX_UINT32 = 2**32 - 1

# sent-protocol LWS sent-by: "SIP / 2.0 / UDP host:port", whitespace allowed around "/" and ":".
_VIA_RE = re.compile(
    r"([^\s/]+)[ \t]*/[ \t]*([^\s/]+)[ \t]*/[ \t]*([^\s/;]+)[ \t]+"
    r"(\[[^\]]*\]|[^\s;:\[\]]+)(?:[ \t]*:[ \t]*([^\s;]*))?"
)
_CSEQ_RE = re.compile(r"([0-9]+)[ \t]+(\S+)")
# word = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~" / "(" / ")" /
#           "<" / ">" / ":" / "\" / DQUOTE / "/" / "[" / "]" / "?" / "{" / "}")
_WORD = r"""[A-Za-z0-9\-.!%*_+`'~()<>:\\"/\[\]?{}]+"""
_CALL_ID_RE = re.compile(rf"{_WORD}(?:@{_WORD})?")
_DISPLAY_TOKENS_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+(?:[ \t]+[A-Za-z0-9\-.!%*_+`'~]+)*")
_QVALUE_RE = re.compile(r"0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_DATE_RE = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), ([0-9]{2}) ("
    + "|".join(_MONTHS)
    + r") ([0-9]{4}) ([0-9]{2}):([0-9]{2}):([0-9]{2}) GMT"
)


@dataclass
class Via:
    """One Via value. `protocol` is "SIP/2.0"; `params` keep branch, received, rport, maddr..."""

    transport: str
    host: str
    port: int | None = None
    params: Params = field(default_factory=Params)
    protocol: str = "SIP/2.0"

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    @property
    def received(self) -> str | None:
        return self.params.get("received")

    @property
    def has_rport(self) -> bool:
        """RFC 3581: a bare `;rport` asks for the source port to be filled in."""
        return "rport" in self.params

    @property
    def rport(self) -> int | None:
        value = self.params.get("rport")
        return int(value) if value else None

    @property
    def maddr(self) -> str | None:
        return self.params.get("maddr")

    @property
    def ttl(self) -> int | None:
        value = self.params.get("ttl")
        return int(value) if value is not None else None

    def __str__(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        return f"{self.protocol}/{self.transport} {self.host}{port}{self.params.to_wire()}"


def parse_via(value: str) -> list[Via]:
    """All Via values in one header field (comma-separated); empty elements are errors."""
    vias = []
    for element in split_commas(value):
        if not element:
            raise SipParseError("empty Via value")
        vias.append(_parse_one_via(element))
    return vias


def _parse_one_via(text: str) -> Via:
    m = _VIA_RE.match(text)
    if m is None:
        raise SipParseError("bad Via")
    name, version, transport, host, port_text = m.groups()
    if not (is_token(name) and is_token(version) and is_token(transport)):
        raise SipParseError("bad Via protocol")
    host = parse_host(host)
    port = parse_port(port_text) if port_text is not None else None
    params = parse_params(text, m.end())
    _check_via_params(params)
    return Via(transport, host, port, params, f"{name}/{version}")


def _check_via_params(params: Params) -> None:
    for name, value in params.items():
        key = name.lower()
        if key == "branch" and (value is None or not is_token(value)):
            raise SipParseError("bad Via branch")
        if key == "ttl":
            if value is None:
                raise SipParseError("bad Via ttl")
            parse_uint(value, 255, "Via ttl")
        if key == "maddr":
            if value is None:
                raise SipParseError("bad Via maddr")
            parse_host(value)
        if key == "received":
            if value is None:
                raise SipParseError("bad Via received")
            _check_ip(value.strip("[]"))
        if key == "rport" and value is not None:
            parse_port(value)


def _check_ip(text: str) -> None:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        raise SipParseError("bad Via received") from None


@dataclass
class NameAddr:
    """A From/To/Contact/Route-style value: optional display name, URI, header parameters.

    `display_name` is unescaped text (None when absent). `str()` always writes the
    `"name" <uri>` form, which every header allowing addr-spec also allows, so a URI with
    `;`, `?` or `,` is never misread.
    """

    uri: Uri
    display_name: str | None = None
    params: Params = field(default_factory=Params)

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    @property
    def expires(self) -> int | None:
        value = unquote(self.params.get("expires"))
        return None if value is None else parse_uint(value, MAX_UINT32, "expires parameter")

    @property
    def q(self) -> float | None:
        value = self.params.get("q")
        if value is None:
            return None
        if not _QVALUE_RE.fullmatch(value):
            raise SipParseError("bad q parameter")
        return float(value)

    def __str__(self) -> str:
        name = quote(self.display_name) + " " if self.display_name is not None else ""
        return f"{name}<{self.uri}>{self.params.to_wire()}"


def parse_name_addr(value: str) -> NameAddr:
    """`name-addr / addr-spec` followed by `*( SEMI param )` (RFC 3261 20.10, 20.20, 20.39).

    Without <...>, everything after the first `;` is a header parameter (RFC 4475 cparam01) and
    a URI carrying `?` or `,` is refused: RFC 3261 20 requires the brackets then (regbadct).
    Inside <...> no whitespace is allowed (badaspec); an unquoted display name must be tokens
    (baddn); no LWS is needed before `<` (lwsdisp).
    """
    text = value.strip(WSP)
    if not text:
        raise SipParseError("empty address")
    display: str | None = None
    if text[0] == '"':
        display, i = scan_quoted(text, 0)
        i = skip_ws(text, i)
        if i >= len(text) or text[i] != "<":
            raise SipParseError("expected < after display name")
        return _bracketed(text, i, display)
    lt = text.find("<")
    if lt >= 0:
        name_text = text[:lt].strip(WSP)
        if name_text:
            if not _DISPLAY_TOKENS_RE.fullmatch(name_text):
                raise SipParseError("unquoted display name with non-token characters")
            display = " ".join(name_text.split())
        return _bracketed(text, lt, display)
    semi = text.find(";")
    uri_text = (text if semi < 0 else text[:semi]).rstrip(WSP)
    if "?" in uri_text or "," in uri_text:
        raise SipParseError("URI with headers must be enclosed in <>")
    uri = parse_uri(uri_text)
    params = parse_params(text, semi) if semi >= 0 else Params()
    return NameAddr(uri, None, params)


def parse_from_to(value: str) -> NameAddr:
    """From or To: a name-addr whose tag, if present, is `tag=token` (RFC 3261 19.3)."""
    address = parse_name_addr(value)
    if "tag" in address.params:
        tag = address.params["tag"]
        if tag is None or not is_token(tag):
            raise SipParseError("bad tag")
    return address


def _bracketed(text: str, lt: int, display: str | None) -> NameAddr:
    gt = text.find(">", lt)
    if gt < 0:
        raise SipParseError("unterminated <")
    uri_text = text[lt + 1 : gt]
    if uri_text != uri_text.strip(" \t"):
        raise SipParseError("whitespace inside <>")
    return NameAddr(parse_uri(uri_text), display, parse_params(text, gt + 1))


def parse_name_addr_list(value: str) -> list[NameAddr]:
    """Comma-separated addresses (Contact, Route, Record-Route, P-Asserted-Identity)."""
    result = []
    for element in split_commas(value):
        if not element:
            raise SipParseError("empty address in list")
        result.append(parse_name_addr(element))
    return result


def is_wildcard_contact(value: str) -> bool:
    """`Contact: *` (RFC 3261 10.2.2: REGISTER removing all bindings)."""
    return value.strip(WSP) == "*"


@dataclass(frozen=True)
class CSeq:
    number: int
    method: str

    def __str__(self) -> str:
        return f"{self.number} {self.method}"


def parse_cseq(value: str) -> CSeq:
    """RFC 3261 20.16: the number must fit 32 bits unsigned (RFC 4475 scalar02, scalarlg)."""
    m = _CSEQ_RE.fullmatch(value.strip(WSP))
    if m is None or not is_token(m.group(2)):
        raise SipParseError("bad CSeq")
    return CSeq(parse_uint(m.group(1), MAX_UINT32, "CSeq"), m.group(2))


def parse_call_id(value: str) -> str:
    text = value.strip(WSP)
    if not _CALL_ID_RE.fullmatch(text):
        raise SipParseError("bad Call-ID")
    return text


def parse_max_forwards(value: str) -> int:
    """RFC 3261 20.22: an integer 0-255."""
    return parse_uint(value, 255, "Max-Forwards")


def parse_delta_seconds(value: str, what: str = "Expires") -> int:
    """Expires, Min-Expires: 32-bit unsigned seconds (RFC 3261 20.19)."""
    return parse_uint(value, MAX_UINT32, what)


@dataclass
class MediaType:
    """`type/subtype;params` (Content-Type) or a media-range with `*` (Accept)."""

    type: str
    subtype: str
    params: Params = field(default_factory=Params)

    @property
    def mime(self) -> str:
        """"type/subtype" in lower case, the form to compare."""
        return f"{self.type}/{self.subtype}".lower()

    def matches(self, mime: str) -> bool:
        """Whether this media-range accepts `mime` ("application/sdp")."""
        kind, _, sub = mime.lower().partition("/")
        return self.type.lower() in ("*", kind) and self.subtype.lower() in ("*", sub)

    def __str__(self) -> str:
        return f"{self.type}/{self.subtype}{self.params.to_wire()}"


def parse_media_type(value: str) -> MediaType:
    text = value.strip(WSP)
    m = TOKEN_RE.match(text)
    if m is None:
        raise SipParseError("bad media type")
    i = skip_ws(text, m.end())
    if i >= len(text) or text[i] != "/":
        raise SipParseError("bad media type")
    i = skip_ws(text, i + 1)
    sub = TOKEN_RE.match(text, i)
    if sub is None:
        raise SipParseError("bad media type")
    return MediaType(m.group(), sub.group(), parse_params(text, sub.end()))


def parse_accept(value: str) -> list[MediaType]:
    """Accept: media ranges; an empty header means no body is acceptable (RFC 3261 20.1)."""
    if not value.strip(WSP):
        return []
    result = []
    for element in split_commas(value):
        if not element:
            raise SipParseError("empty Accept element")
        result.append(parse_media_type(element))
    return result


def parse_token_list(value: str, what: str) -> list[str]:
    """Require, Supported, Unsupported, Proxy-Require, Allow, Content-Encoding: tokens.

    Elements may carry `;params` (Accept-Encoding q-values); only the token is returned.
    """
    if not value.strip(WSP):
        return []
    tokens = []
    for element in split_commas(value):
        token = element.split(";", 1)[0].strip(WSP)
        if not is_token(token):
            raise SipParseError(f"bad {what}")
        tokens.append(token)
    return tokens


def parse_date(value: str) -> datetime.datetime:
    """rfc1123-date in GMT only: RFC 3261 20.17 allows no other zone (RFC 4475 baddate)."""
    m = _DATE_RE.fullmatch(value.strip(WSP))
    if m is None:
        raise SipParseError("bad Date")
    _, day, month, year, hour, minute, second = m.groups()
    try:
        return datetime.datetime(
            int(year), _MONTHS.index(month) + 1, int(day), int(hour), int(minute), int(second),
            tzinfo=datetime.UTC,
        )
    except ValueError:
        raise SipParseError("bad Date") from None

