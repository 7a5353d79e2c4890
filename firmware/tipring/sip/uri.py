"""SIP, SIPS and tel URIs (RFC 3261 19.1, RFC 3966), kept unescaped, with RFC 3261 comparison.

Users, passwords, parameters and URI headers are stored with %-escapes decoded, so code compares
and reads plain text ("I have spaces", not "I%20have%20spaces") and `str()` escapes what the
grammar requires on the way out. Schemes other than sip, sips and tel are kept as
`AbsoluteUri`: parsing must not fail on them, because the application answers 416 (RFC 3261
8.2.2.1; RFC 4475 unkscm, novelsc).
"""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass, field

from .grammar import Params, SipParseError

_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+\-.]*):")
_ESC = r"%[0-9A-Fa-f]{2}"
# user = 1*( unreserved / escaped / user-unreserved )
_USER_RE = re.compile(rf"(?:[A-Za-z0-9\-_.!~*'()&=+$,;?/]|{_ESC})+")
# password = *( unreserved / escaped / "&" / "=" / "+" / "$" / "," )
_PASSWORD_RE = re.compile(rf"(?:[A-Za-z0-9\-_.!~*'()&=+$,]|{_ESC})*")
# paramchar = param-unreserved / unreserved / escaped (RFC 3261 and RFC 3966 agree)
_PARAMCHARS_RE = re.compile(rf"(?:[A-Za-z0-9\-_.!~*'()\[\]/:&+$]|{_ESC})+")
# hname / hvalue = *( hnv-unreserved / unreserved / escaped )
_HCHARS_RE = re.compile(rf"(?:[A-Za-z0-9\-_.!~*'()\[\]/?:+$]|{_ESC})*")
# absoluteURI body: reserved / unreserved / escaped (no space, quotes, <> or controls)
_ABSOLUTE_RE = re.compile(rf"(?:[A-Za-z0-9\-_.!~*'();/?:@&=+$,\[\]#]|{_ESC})+")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?"
_HOSTNAME_RE = re.compile(rf"(?:{_LABEL}\.)*{_LABEL}\.?")
_NUMERIC_HOST_RE = re.compile(r"[0-9.]+")
_GLOBAL_TEL_RE = re.compile(r"\+[0-9\-.()]*[0-9][0-9\-.()]*")
_LOCAL_TEL_RE = re.compile(r"[0-9A-Fa-f*#\-.()]*[0-9A-Fa-f*#][0-9A-Fa-f*#\-.()]*")

_UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.!~*'()"
_USER_SAFE = frozenset(_UNRESERVED + "&=+$,;?/")
_PASSWORD_SAFE = frozenset(_UNRESERVED + "&=+$,")
_PARAM_SAFE = frozenset(_UNRESERVED + "[]/:&+$")
_HEADER_SAFE = frozenset(_UNRESERVED + "[]/?:+$")

# RFC 3261 19.1.4: these parameters must match whenever either URI has them.
_SIGNIFICANT_PARAMS = ("user", "ttl", "method", "maddr", "transport")


def unescape(text: str) -> str:
    """Decode %HH escapes; the octets are UTF-8, and any that are not survive a round trip."""
    if "%" not in text:
        return text
    raw = bytearray()
    i = 0
    encoded = text.encode("utf-8", "surrogateescape")
    while i < len(encoded):
        b = encoded[i]
        if b == 0x25:  # %
            try:
                raw.append(int(encoded[i + 1 : i + 3], 16))
            except ValueError:
                raise SipParseError("bad %-escape in URI") from None
            i += 3
        else:
            raw.append(b)
            i += 1
    return raw.decode("utf-8", "surrogateescape")


def escape(text: str, safe: frozenset[str]) -> str:
    """%-escape every octet of `text` that `safe` does not allow through."""
    if all(ch in safe for ch in text):
        return text
    out: list[str] = []
    for ch in text:
        if ch in safe:
            out.append(ch)
        else:
            out.extend(f"%{b:02X}" for b in ch.encode("utf-8", "surrogateescape"))
    return "".join(out)


@functools.lru_cache(maxsize=256)
def parse_host(text: str) -> str:
    """Validate hostname / IPv4address / IPv6reference; returned as written (case kept).

    Cached: a UA sees the same few hosts in every message.
    """
    if text.startswith("["):
        if not text.endswith("]"):
            raise SipParseError("bad IPv6 reference")
        try:
            ipaddress.IPv6Address(text[1:-1])
        except ValueError:
            raise SipParseError("bad IPv6 reference") from None
        return text
    if not _HOSTNAME_RE.fullmatch(text):
        raise SipParseError("bad host")
    if _NUMERIC_HOST_RE.fullmatch(text):
        octets = text.split(".")
        # IPv4address = 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT, each at most 255
        if len(octets) != 4 or any(not o or len(o) > 3 or int(o) > 255 for o in octets):
            raise SipParseError("bad IPv4 address")
    return text


def host_key(host: str) -> str:
    """A host in the form RFC 3261 19.1.4 compares: case folded, IP addresses canonical."""
    if host.startswith("["):
        try:
            return "[" + ipaddress.IPv6Address(host[1:-1]).compressed + "]"
        except ValueError:
            return host.lower()
    return host.lower().rstrip(".")


def parse_port(text: str) -> int:
    if not text.isdigit() or len(text) > 5 or int(text) > 65535:
        raise SipParseError("bad port")
    return int(text)


def split_hostport(text: str) -> tuple[str, int | None]:
    """`host [":" port]`, where an IPv6 reference carries its own colons inside brackets."""
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise SipParseError("bad IPv6 reference")
        host, rest = text[: close + 1], text[close + 1 :]
        if not rest:
            return parse_host(host), None
        if not rest.startswith(":"):
            raise SipParseError("bad host")
        return parse_host(host), parse_port(rest[1:])
    host, colon, port = text.partition(":")
    return parse_host(host), parse_port(port) if colon else None


def _parse_uri_params(text: str) -> Params:
    """`;name[=value]` URI parameters (without the leading ';'), unescaped."""
    params = Params()
    for item in text.split(";"):
        name, eq, value = item.partition("=")
        if not _PARAMCHARS_RE.fullmatch(name) or (eq and not _PARAMCHARS_RE.fullmatch(value)):
            raise SipParseError("bad URI parameter")
        name = unescape(name)
        if name in params:
            raise SipParseError("repeated URI parameter")
        params[name] = unescape(value) if eq else None
    return params


def _params_wire(params: Params) -> str:
    return "".join(
        f";{escape(n, _PARAM_SAFE)}" if v is None else f";{escape(n, _PARAM_SAFE)}={escape(v, _PARAM_SAFE)}"
        for n, v in params.items()
    )


@dataclass
class SipUri:
    """sip: or sips: URI. `host` keeps IPv6 brackets; `port` None means not written."""

    host: str
    user: str | None = None
    password: str | None = None
    port: int | None = None
    params: Params = field(default_factory=Params)
    headers: list[tuple[str, str]] = field(default_factory=list)
    scheme: str = "sip"

    @property
    def transport(self) -> str | None:
        return self.params.get("transport")

    @property
    def maddr(self) -> str | None:
        return self.params.get("maddr")

    @property
    def lr(self) -> bool:
        return "lr" in self.params

    def __str__(self) -> str:
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(escape(self.user, _USER_SAFE))
            if self.password is not None:
                out.append(":" + escape(self.password, _PASSWORD_SAFE))
            out.append("@")
        out.append(self.host)
        if self.port is not None:
            out.append(f":{self.port}")
        out.append(_params_wire(self.params))
        if self.headers:
            out.append(
                "?"
                + "&".join(
                    f"{escape(n, _HEADER_SAFE)}={escape(v, _HEADER_SAFE)}" for n, v in self.headers
                )
            )
        return "".join(out)

    def equivalent(self, other: object) -> bool:
        """URI equality as RFC 3261 19.1.4 defines it (used to recognise our own Contact).

        userinfo is case-sensitive, everything else is not; an absent port differs from 5060;
        user, ttl, method, maddr and transport must match if either URI has them; other
        parameters must match only when both have them; URI headers must all match.
        """
        if not isinstance(other, SipUri) or self.scheme != other.scheme:
            return False
        if (self.user, self.password) != (other.user, other.password):
            return False
        if host_key(self.host) != host_key(other.host) or self.port != other.port:
            return False
        for name in _SIGNIFICANT_PARAMS:
            if (name in self.params) != (name in other.params):
                return False
        for name, value in self.params.items():
            if name in other.params and not _same_value(value, other.params[name]):
                return False
        mine = sorted((n.lower(), v.lower()) for n, v in self.headers)
        theirs = sorted((n.lower(), v.lower()) for n, v in other.headers)
        return mine == theirs


def _same_value(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return a is b
    return a.lower() == b.lower()


@dataclass
class TelUri:
    """tel: URI (RFC 3966): `number` as written, visual separators and all."""

    number: str
    params: Params = field(default_factory=Params)

    @property
    def scheme(self) -> str:
        return "tel"

    @property
    def is_global(self) -> bool:
        return self.number.startswith("+")

    @property
    def digits(self) -> str:
        """The number without visual separators, as RFC 3966 section 4 compares it."""
        return "".join(ch for ch in self.number if ch not in "-.()").upper()

    def __str__(self) -> str:
        return f"tel:{self.number}{_params_wire(self.params)}"

    def equivalent(self, other: object) -> bool:
        """RFC 3966 section 4: same digits, same parameters (names and values case-insensitive)."""
        if not isinstance(other, TelUri) or self.digits != other.digits:
            return False
        mine = {n.lower(): (v or "").lower() for n, v in self.params.items()}
        theirs = {n.lower(): (v or "").lower() for n, v in other.params.items()}
        return mine == theirs


@dataclass
class AbsoluteUri:
    """A URI of a scheme SIP does not interpret (http, isbn, urn...): kept whole."""

    scheme: str
    body: str

    def __str__(self) -> str:
        return f"{self.scheme}:{self.body}"

    def equivalent(self, other: object) -> bool:
        return isinstance(other, AbsoluteUri) and (self.scheme, self.body) == (
            other.scheme,
            other.body,
        )


Uri = SipUri | TelUri | AbsoluteUri


def parse_uri(text: str) -> Uri:
    """Parse a URI as it appears in a Request-URI or inside <...>; raise SipParseError."""
    m = _SCHEME_RE.match(text)
    if m is None:
        raise SipParseError("not a URI")
    scheme = m.group(1).lower()
    body = text[m.end() :]
    if scheme in ("sip", "sips"):
        return _parse_sip(scheme, body)
    if scheme == "tel":
        return _parse_tel(body)
    if not _ABSOLUTE_RE.fullmatch(body):
        raise SipParseError("bad URI")
    return AbsoluteUri(scheme, body)


def _parse_sip(scheme: str, body: str) -> SipUri:
    user = password = None
    at = body.find("@")
    if at >= 0:
        userinfo, body = body[:at], body[at + 1 :]
        user_text, colon, password_text = userinfo.partition(":")
        if not _USER_RE.fullmatch(user_text):
            raise SipParseError("bad URI user")
        if colon and not _PASSWORD_RE.fullmatch(password_text):
            raise SipParseError("bad URI password")
        user = unescape(user_text)
        password = unescape(password_text) if colon else None
    headers: list[tuple[str, str]] = []
    body, question, header_text = body.partition("?")
    if question:
        for item in header_text.split("&"):
            name, eq, value = item.partition("=")
            if not name or not eq or not _HCHARS_RE.fullmatch(name) or not _HCHARS_RE.fullmatch(value):
                raise SipParseError("bad URI header")
            headers.append((unescape(name), unescape(value)))
    hostport, semi, param_text = body.partition(";")
    host, port = split_hostport(hostport)
    params = _parse_uri_params(param_text) if semi else Params()
    return SipUri(host, user, password, port, params, headers, scheme)


def _parse_tel(body: str) -> TelUri:
    number, semi, param_text = body.partition(";")
    params = _parse_uri_params(param_text) if semi else Params()
    if _GLOBAL_TEL_RE.fullmatch(number):
        return TelUri(number, params)
    if _LOCAL_TEL_RE.fullmatch(number) and "phone-context" in params:
        return TelUri(number, params)
    raise SipParseError("bad tel URI")
