"""The lexical layer of RFC 3261 section 25: tokens, quoted strings, parameters, comma lists.

Every SIP structure (URI, Via, name-addr, media type) is built from the same few pieces, and the
same mistakes (an unterminated quote, a parameter with no name) must be caught the same way
everywhere, so they live here once. `SipParseError` is the one exception the SIP layer raises
for bad input; it sits here because every parser in the package needs it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, MutableMapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .message import RequestHead


class SipParseError(ValueError):
    """Input that is not valid SIP.

    `reason` is short ASCII text fit for a Reason-Phrase (RFC 3261 21.4.1 asks that a 400 name
    the syntax problem) and never echoes input, so it can be logged and sent without leaking
    or reflecting anything. `status` is the response the RFC names for the problem. `request` is
    what could be read of a request that failed, when enough of it parsed for
    `message.build_response` to answer it; None means drop and log.
    """

    def __init__(self, reason: str, status: int = 400, request: RequestHead | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.request = request


# token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
TOKEN_CHARS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~"
)
TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
WSP = " \t"
# A generic-param value is a token, a host (which adds ":" and "[]" for IPv6) or a quoted string.
_GEN_VALUE_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~:\[\]]+")
_DIGITS_RE = re.compile(r"[0-9]+")


def is_token(text: str) -> bool:
    return TOKEN_RE.fullmatch(text) is not None


def parse_uint(text: str, limit: int, what: str) -> int:
    """A decimal `1*DIGIT` no greater than `limit`.

    The length is checked before converting: a header of ten thousand digits must cost nothing
    (and `int()` refuses over 4300 digits with a ValueError we must not let escape).
    """
    text = text.strip(WSP)
    if not _DIGITS_RE.fullmatch(text):
        raise SipParseError(f"{what} is not a number")
    if len(text.lstrip("0")) > len(str(limit)) or int(text) > limit:
        raise SipParseError(f"{what} out of range")
    return int(text)


def skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i] in WSP:
        i += 1
    return i


def scan_quoted(text: str, i: int) -> tuple[str, int]:
    """Read the quoted-string starting at text[i] == '"'; return its content and the end index.

    quoted-pair (backslash + any octet but CR and LF) is unescaped, so a display name of
    `"BEL:\\<BEL>"` becomes "BEL:" + BEL; bare control characters are not qdtext.
    """
    if i >= len(text) or text[i] != '"':
        raise SipParseError("expected a quoted string")
    out: list[str] = []
    i += 1
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == '"':
            return "".join(out), i + 1
        if ch == "\\":
            if i + 1 >= n or text[i + 1] in "\r\n" or ord(text[i + 1]) > 0x7F:
                raise SipParseError("bad escape in quoted string")
            out.append(text[i + 1])
            i += 2
            continue
        if (ord(ch) < 0x20 and ch != "\t") or ch == "\x7f":
            raise SipParseError("control character in quoted string")
        out.append(ch)
        i += 1
    raise SipParseError("unterminated quoted string")


def quote(text: str) -> str:
    """The quoted-string form of `text`; CR and LF cannot be carried by SIP and are refused."""
    if "\r" in text or "\n" in text:
        raise ValueError("CR or LF cannot appear in a SIP quoted string")
    escaped = []
    for ch in text:
        if ch in '"\\' or (ord(ch) < 0x20 and ch != "\t") or ch == "\x7f":
            escaped.append("\\" + ch)
        else:
            escaped.append(ch)
    return '"' + "".join(escaped) + '"'


def unquote(value: str | None) -> str | None:
    """A parameter value without its quotes (values are stored as they appear on the wire)."""
    if value is None or not value.startswith('"'):
        return value
    content, end = scan_quoted(value, 0)
    if end != len(value):
        raise SipParseError("text after quoted string")
    return content


def split_commas(value: str) -> list[str]:
    """Split a header value at the commas that separate list elements.

    Commas inside quoted strings and inside <...> belong to the element (a display name
    "Bell, Alexander", a URI header `?a=b,c`). Elements are stripped; empty ones are kept so the
    caller can reject `a,,b` (RFC 4475 badinv01).
    """
    if "," not in value:
        return [value.strip(WSP)]
    parts: list[str] = []
    start = 0
    i = 0
    n = len(value)
    while i < n:
        ch = value[i]
        if ch == '"':
            _, i = scan_quoted(value, i)
            continue
        if ch == "<":
            close = value.find(">", i)
            if close < 0:
                raise SipParseError("unterminated <")
            i = close + 1
            continue
        if ch == ",":
            parts.append(value[start:i].strip(WSP))
            start = i + 1
        i += 1
    parts.append(value[start:].strip(WSP))
    return parts


class Params(MutableMapping[str, str | None]):
    """Ordered `;name=value` parameters whose names compare case-insensitively (RFC 3261 7.3.1).

    The name is kept as written, so a message forwarded or echoed is not rewritten. A flag
    parameter (`;lr`) has the value None. Header-parameter values are kept as on the wire (a
    quoted value keeps its quotes: use `grammar.unquote`); URI parameters are stored unescaped.
    """

    __slots__ = ("_items",)

    def __init__(self, items: dict[str, str | None] | None = None) -> None:
        self._items: dict[str, tuple[str, str | None]] = {}
        if items:
            for name, value in items.items():
                self[name] = value

    def __getitem__(self, name: str) -> str | None:
        return self._items[name.lower()][1]

    def __setitem__(self, name: str, value: str | None) -> None:
        key = name.lower()
        old = self._items.get(key)
        self._items[key] = (old[0] if old else name, value)

    def __delitem__(self, name: str) -> None:
        del self._items[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return (original for original, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Params):
            return NotImplemented
        return list(self.items()) == list(other.items())

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"Params({dict(self.items())!r})"

    def copy(self) -> Params:
        return Params(dict(self.items()))

    def to_wire(self) -> str:
        """`;name=value...` for header parameters; refuses what would not parse back.

        A value must be a token, a host or a quoted string (`grammar.quote` makes one), so a
        value taken from elsewhere can never smuggle a `;`, `,` or CRLF into a header.
        """
        out = []
        for name, value in self.items():
            if not is_token(name) or (value is not None and not _is_gen_value(value)):
                raise ValueError(f"parameter {name!r} cannot be written as {value!r}")
            out.append(f";{name}" if value is None else f";{name}={value}")
        return "".join(out)


def _is_gen_value(value: str) -> bool:
    if _GEN_VALUE_RE.fullmatch(value):
        return True
    if not value.startswith('"'):
        return False
    try:
        return scan_quoted(value, 0)[1] == len(value)
    except SipParseError:
        return False


def parse_params(text: str, i: int = 0) -> Params:
    """Header parameters `*( SEMI generic-param )` from text[i:] to the end.

    SEMI and EQUAL allow whitespace around them (wsinv's `;   tag    = 1918181833n`). An empty
    parameter (`;;`) or a repeated name is an error: RFC 3261 7.3.1 says a parameter name MUST
    NOT appear more than once.
    """
    params = Params()
    n = len(text)
    while True:
        i = skip_ws(text, i)
        if i >= n:
            return params
        if text[i] != ";":
            raise SipParseError("expected ; before parameter")
        i = skip_ws(text, i + 1)
        m = TOKEN_RE.match(text, i)
        if m is None:
            raise SipParseError("empty or bad parameter name")
        name = m.group()
        i = skip_ws(text, m.end())
        value: str | None = None
        if i < n and text[i] == "=":
            i = skip_ws(text, i + 1)
            if i < n and text[i] == '"':
                _, end = scan_quoted(text, i)
                value = text[i:end]
                i = end
            else:
                m = _GEN_VALUE_RE.match(text, i)
                if m is None:
                    raise SipParseError("bad parameter value")
                value = m.group()
                i = m.end()
        if name in params:
            raise SipParseError("repeated parameter")
        params[name] = value
