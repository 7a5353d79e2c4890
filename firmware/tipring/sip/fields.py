"""The header section of a SIP message: ordered field lines with case-insensitive names.

Order matters in SIP (Via, Route and Record-Route are ordered lists; RFC 3261 7.3.1), and a
header may arrive as several field lines, as one comma-joined line, or both. `Headers` keeps the
lines as received, with compact names expanded and known names in their usual spelling, and
splits comma lists only for headers whose grammar is a comma list: splitting
WWW-Authenticate, Authorization or Date at commas would break them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from .grammar import is_token, split_commas

# RFC 3261 7.3.3 and the IANA registry: single-letter forms.
COMPACT_FORMS = {
    "a": "Accept-Contact",
    "b": "Referred-By",
    "c": "Content-Type",
    "d": "Request-Disposition",
    "e": "Content-Encoding",
    "f": "From",
    "i": "Call-ID",
    "j": "Reject-Contact",
    "k": "Supported",
    "l": "Content-Length",
    "m": "Contact",
    "n": "Identity-Info",
    "o": "Event",
    "r": "Refer-To",
    "s": "Subject",
    "t": "To",
    "u": "Allow-Events",
    "v": "Via",
    "x": "Session-Expires",
    "y": "Identity",
}

_KNOWN = (
    "Accept", "Accept-Contact", "Accept-Encoding", "Accept-Language", "Alert-Info", "Allow",
    "Allow-Events", "Authentication-Info", "Authorization", "Call-ID", "Call-Info", "Contact",
    "Content-Disposition", "Content-Encoding", "Content-Language", "Content-Length",
    "Content-Type", "CSeq", "Date", "Error-Info", "Event", "Expires", "From", "History-Info",
    "Identity", "Identity-Info", "In-Reply-To", "Max-Forwards", "MIME-Version", "Min-Expires",
    "Min-SE", "Organization", "P-Asserted-Identity", "P-Preferred-Identity", "Path", "Priority",
    "Privacy", "Proxy-Authenticate", "Proxy-Authorization", "Proxy-Require", "RAck", "Reason",
    "Record-Route", "Refer-To", "Referred-By", "Reject-Contact", "Replaces", "Reply-To",
    "Request-Disposition", "Require", "Retry-After", "Route", "RSeq", "Server",
    "Service-Route", "Session-Expires", "Subject", "Subscription-State", "Supported",
    "Timestamp", "To", "Unsupported", "User-Agent", "Via", "Warning", "WWW-Authenticate",
)
_CANONICAL = {name.lower(): name for name in _KNOWN}

T = TypeVar("T")

# Headers whose grammar is `value *(COMMA value)`: several lines and one comma-joined line mean
# the same (RFC 3261 7.3.1). Anything not listed (unknown headers, credentials, Date,
# Retry-After, Subject...) is never split.
LIST_HEADERS = frozenset(
    name.lower()
    for name in (
        "Accept", "Accept-Contact", "Accept-Encoding", "Accept-Language", "Alert-Info", "Allow",
        "Allow-Events", "Call-Info", "Contact", "Content-Encoding", "Content-Language",
        "Error-Info", "History-Info", "In-Reply-To", "P-Asserted-Identity",
        "P-Preferred-Identity", "Path", "Proxy-Require", "Reason", "Record-Route",
        "Reject-Contact", "Require", "Route", "Service-Route", "Supported", "Unsupported",
        "Via", "Warning",
    )
)


@functools.lru_cache(maxsize=512)
def canonical_name(name: str) -> str:
    """The name a header is stored under: compact form expanded, known names respelled."""
    key = name.lower()
    full = COMPACT_FORMS.get(key)
    if full is not None:
        return full
    return _CANONICAL.get(key, name)


@functools.lru_cache(maxsize=512)
def _key(name: str) -> str:
    """The lookup key of a name: what `canonical_name` gives, lower-cased (cached: hot path)."""
    return canonical_name(name).lower()


def _check_field(name: str, value: str) -> None:
    if not is_token(name):
        raise ValueError(f"header name {name!r} is not a token")
    if "\r" in value or "\n" in value:
        raise ValueError(f"{name} value contains CR or LF")


class Headers:
    """Ordered header field lines; names compare case-insensitively.

    `get` reads the first line of a name, `values` the elements of all of its lines (split at
    commas only for list headers), `lines` the lines themselves. Values added here are checked
    so a message we build can never carry an injected CRLF.

    `parsed` keeps typed values read from the lines (the Via list, the CSeq...) until a line
    changes: every layer reads the same few fields of each message, and parsing them again each
    time was most of the stack's CPU.
    """

    __slots__ = ("_fields", "_keys", "_parsed")

    def __init__(self, fields: Iterable[tuple[str, str]] = ()) -> None:
        self._fields: list[tuple[str, str]] = []
        self._keys: list[str] = []  # _key() of each field, kept in step with _fields
        self._parsed: dict[str, Any] = {}
        for name, value in fields:
            self.add(name, value)

    @classmethod
    def from_wire(cls, fields: list[tuple[str, str]]) -> Headers:
        """Adopt field lines the parser has already checked and canonicalised."""
        headers = cls.__new__(cls)
        headers._fields = fields
        headers._keys = [name.lower() for name, _ in fields]
        headers._parsed = {}
        return headers

    def parsed(self, key: str, parse: Callable[[], T]) -> T:
        """`parse()`, computed once until a field line is added, set or removed.

        `key` names the typed read (one key per accessor). A failing parse is not kept: it
        raises again on the next read. Callers must not mutate what they get back.
        """
        try:
            return self._parsed[key]  # type: ignore[no-any-return]
        except KeyError:
            value = self._parsed[key] = parse()
            return value

    def remember(self, key: str, value: object) -> None:
        """Keep `value`, just parsed from the current lines, as what `parsed(key, ...)` gives."""
        self._parsed[key] = value

    def add(self, name: str, value: str, *, first: bool = False) -> None:
        """Append a field line, or with `first` put it before any other of that name (a Via)."""
        name = canonical_name(name)
        _check_field(name, value)
        key = name.lower()
        self._parsed.clear()
        index = len(self._fields)
        if first:
            index = self._keys.index(key) if key in self._keys else 0
        self._fields.insert(index, (name, value))
        self._keys.insert(index, key)

    def set(self, name: str, value: str) -> None:
        """Replace every line of `name` with one, where the first one was (else at the end)."""
        name = canonical_name(name)
        _check_field(name, value)
        key = name.lower()
        self._parsed.clear()
        if key not in self._keys:
            self._fields.append((name, value))
            self._keys.append(key)
            return
        first = self._keys.index(key)
        self.remove(name)
        self._fields.insert(first, (name, value))
        self._keys.insert(first, key)

    def remove(self, name: str) -> None:
        key = _key(name)
        self._parsed.clear()
        kept = [i for i, k in enumerate(self._keys) if k != key]
        self._fields = [self._fields[i] for i in kept]
        self._keys = [self._keys[i] for i in kept]

    def get(self, name: str) -> str | None:
        """The value of the first field line called `name`, or None."""
        key = _key(name)
        for index, field_key in enumerate(self._keys):
            if field_key == key:
                return self._fields[index][1]
        return None

    def count(self, name: str) -> int:
        """How many field lines carry `name` (two From lines is an error; RFC 4475 multi01)."""
        return self._keys.count(_key(name))

    def lines(self, name: str) -> list[str]:
        """Every field line's value for `name`, unsplit (what auth.py parses challenges from)."""
        key = _key(name)
        return [self._fields[i][1] for i, k in enumerate(self._keys) if k == key]

    def values(self, name: str) -> list[str]:
        """All elements of `name`: list headers split at commas, others one per line.

        Raises SipParseError when a list header has an unterminated quote or <.
        """
        lines = self.lines(name)
        if _key(name) not in LIST_HEADERS:
            return lines
        elements: list[str] = []
        for line in lines:
            elements.extend(split_commas(line))
        return elements

    def fields(self) -> list[tuple[str, str]]:
        """A copy of the (name, value) lines in order."""
        return list(self._fields)

    def copy(self) -> Headers:
        return Headers.from_wire(list(self._fields))

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(list(self._fields))

    def __len__(self) -> int:
        return len(self._fields)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and _key(name) in self._keys

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return self._fields == other._fields

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"Headers({self._fields!r})"
