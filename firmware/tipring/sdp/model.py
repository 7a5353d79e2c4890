"""SDP text (RFC 4566) as plain data: parse and serialize without losing what we don't understand.

A session description from a far end may carry video streams, ICE candidates, bandwidth lines
and vendor attributes we have no use for. Offer/answer (RFC 3264) needs them kept in order (an
answer has exactly as many m= lines as the offer), and a re-offer should not silently drop a
peer's extensions, so every line we do not model is kept verbatim in its position.

Parsing is lenient where real phones are sloppy (missing s= or t=, LF line ends, host names in
c=) and strict where a mistake would misroute audio (ports, payload types, addresses). Anything
refused raises `SdpError` with the line number and the reason.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, replace
from typing import Literal

Direction = Literal["sendrecv", "sendonly", "recvonly", "inactive"]
DIRECTIONS: tuple[Direction, ...] = ("sendrecv", "sendonly", "recvonly", "inactive")

# Line types that go before c= at session level (i, u, e, p) or in a media section (i);
# everything else not modelled (b, t, r, z, k, unknown) goes after it (RFC 4566 section 5).
_BEFORE_CONNECTION = frozenset("iuep")
_SESSION_ONLY = frozenset("vost")
_MASK = "********"
_INLINE_KEY = re.compile(r"(inline:)[^|;\s]+")


class SdpError(ValueError):
    """A session description we cannot parse, build or negotiate; the message says why."""


@dataclass(frozen=True)
class Origin:
    """The o= line: identifies the session and, through `session_version`, each change to it."""

    username: str
    session_id: int
    session_version: int
    address: str
    address_type: str = "IP4"
    network_type: str = "IN"

    def serialize(self) -> str:
        return (f"{self.username} {self.session_id} {self.session_version} "
                f"{self.network_type} {self.address_type} {self.address}")


@dataclass(frozen=True)
class Connection:
    """A c= line. `address` may carry a multicast "/ttl[/count]" suffix or be a host name."""

    address: str
    address_type: str = "IP4"
    network_type: str = "IN"

    @property
    def host(self) -> str:
        """The address without any multicast suffix."""
        return self.address.split("/", 1)[0]

    @property
    def is_hold_address(self) -> bool:
        """RFC 2543 hold: c=0.0.0.0 meant "stop sending to me" before a=sendonly existed."""
        return self.address_type == "IP4" and self.host == "0.0.0.0"

    def serialize(self) -> str:
        return f"{self.network_type} {self.address_type} {self.address}"


@dataclass(frozen=True)
class Attribute:
    """An a= line: `value` is None for property attributes such as a=sendrecv."""

    name: str
    value: str | None = None

    def serialize(self) -> str:
        return self.name if self.value is None else f"{self.name}:{self.value}"

    def __repr__(self) -> str:
        # SDES keys travel in a=crypto; a repr ends up in logs and tracebacks.
        value = self.value
        if value is not None and self.name.lower() == "crypto":
            value = _INLINE_KEY.sub(lambda m: m.group(1) + _MASK, value)
        return f"Attribute({self.name!r}, {value!r})"


@dataclass(frozen=True)
class RtpMap:
    """a=rtpmap: encoding name, clock rate and channel count of one payload type."""

    encoding: str
    clock_rate: int
    channels: int = 1


# RFC 3551 table 4: static audio payload types an offer may list without a=rtpmap.
STATIC_PAYLOAD_TYPES: dict[int, RtpMap] = {
    0: RtpMap("PCMU", 8000), 3: RtpMap("GSM", 8000), 4: RtpMap("G723", 8000),
    5: RtpMap("DVI4", 8000), 6: RtpMap("DVI4", 16000), 7: RtpMap("LPC", 8000),
    8: RtpMap("PCMA", 8000), 9: RtpMap("G722", 8000), 10: RtpMap("L16", 44100, 2),
    11: RtpMap("L16", 44100), 12: RtpMap("QCELP", 8000), 13: RtpMap("CN", 8000),
    14: RtpMap("MPA", 90000), 15: RtpMap("G728", 8000), 16: RtpMap("DVI4", 11025),
    17: RtpMap("DVI4", 22050), 18: RtpMap("G729", 8000),
}


@dataclass(frozen=True)
class MediaDescription:
    """One m= section. `extra` holds its i=, b= and k= lines (type, value) in order."""

    media: str
    port: int
    proto: str
    formats: tuple[str, ...]
    port_count: int | None = None
    connection: Connection | None = None
    attributes: tuple[Attribute, ...] = ()
    extra: tuple[tuple[str, str], ...] = ()

    @property
    def is_rtp(self) -> bool:
        return "RTP/" in self.proto.upper()

    @property
    def payload_types(self) -> tuple[int, ...]:
        """The formats as RTP payload types (checked numeric when parsed)."""
        if not self.is_rtp:
            raise SdpError(f"m={self.media} with proto {self.proto} has no RTP payload types")
        return tuple(int(f) for f in self.formats)

    def values(self, name: str) -> list[str]:
        """Values of every a=`name` line (case-insensitive name), in order."""
        lowered = name.lower()
        return [a.value or "" for a in self.attributes if a.name.lower() == lowered]

    def value(self, name: str) -> str | None:
        found = self.values(name)
        return found[0] if found else None

    def has(self, name: str) -> bool:
        lowered = name.lower()
        return any(a.name.lower() == lowered for a in self.attributes)

    @property
    def direction(self) -> Direction | None:
        """The direction attribute of this section, if any (the session's applies otherwise)."""
        return _direction(self.attributes)

    def rtpmaps(self) -> dict[int, RtpMap]:
        """Payload type -> codec, from a=rtpmap with RFC 3551 static types filled in."""
        found: dict[int, RtpMap] = {}
        for value in self.values("rtpmap"):
            pt_text, _, spec = value.partition(" ")
            parts = spec.strip().split("/")
            try:
                pt = int(pt_text)
                clock = int(parts[1])
                channels = int(parts[2]) if len(parts) > 2 and parts[2] else 1
            except (ValueError, IndexError):
                raise SdpError(f"bad a=rtpmap:{value}") from None
            if not parts[0] or not 0 <= pt <= 127 or clock <= 0:
                raise SdpError(f"bad a=rtpmap:{value}")
            found.setdefault(pt, RtpMap(parts[0], clock, channels))
        for pt in self.payload_types:
            if pt not in found and pt in STATIC_PAYLOAD_TYPES:
                found[pt] = STATIC_PAYLOAD_TYPES[pt]
        return found

    def fmtp(self, payload_type: int) -> str | None:
        """The a=fmtp parameters of one payload type."""
        for value in self.values("fmtp"):
            pt_text, _, params = value.partition(" ")
            if pt_text.strip() == str(payload_type):
                return params.strip()
        return None


@dataclass(frozen=True)
class SessionDescription:
    """A whole SDP body. `extra` holds unmodelled session lines (i, u, e, p, b, t, r, z, k...)."""

    origin: Origin
    name: str = "-"
    connection: Connection | None = None
    attributes: tuple[Attribute, ...] = ()
    media: tuple[MediaDescription, ...] = ()
    extra: tuple[tuple[str, str], ...] = (("t", "0 0"),)
    version: int = 0

    @property
    def direction(self) -> Direction | None:
        return _direction(self.attributes)

    def direction_of(self, media: MediaDescription) -> Direction:
        """Effective direction of a stream: its own attribute, else the session's, else sendrecv."""
        return media.direction or self.direction or "sendrecv"

    def connection_of(self, media: MediaDescription) -> Connection | None:
        return media.connection or self.connection

    def serialize(self) -> str:
        lines = [f"v={self.version}", f"o={self.origin.serialize()}", f"s={self.name}"]
        lines += [f"{kind}={value}" for kind, value in self.extra if kind in _BEFORE_CONNECTION]
        if self.connection is not None:
            lines.append(f"c={self.connection.serialize()}")
        lines += [f"{kind}={value}" for kind, value in self.extra
                  if kind not in _BEFORE_CONNECTION]
        lines += [f"a={a.serialize()}" for a in self.attributes]
        for m in self.media:
            port = f"{m.port}/{m.port_count}" if m.port_count is not None else str(m.port)
            lines.append(f"m={m.media} {port} {m.proto} {' '.join(m.formats)}")
            lines += [f"{kind}={value}" for kind, value in m.extra if kind == "i"]
            if m.connection is not None:
                lines.append(f"c={m.connection.serialize()}")
            lines += [f"{kind}={value}" for kind, value in m.extra if kind != "i"]
            lines += [f"a={a.serialize()}" for a in m.attributes]
        return "\r\n".join(lines) + "\r\n"

    def with_origin_version(self, version: int) -> SessionDescription:
        return replace(self, origin=replace(self.origin, session_version=version))


def redact(text: str) -> str:
    """An SDP body safe to log: SDES inline keys masked."""
    return _INLINE_KEY.sub(lambda m: m.group(1) + _MASK, text)


def _direction(attributes: tuple[Attribute, ...]) -> Direction | None:
    for attribute in attributes:
        name = attribute.name.lower()
        if attribute.value is None and name in DIRECTIONS:
            return name  # type: ignore[return-value]
    return None


# --- parsing -------------------------------------------------------------------------------

def _number(text: str, what: str, line: int, low: int = 0, high: int | None = None) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 30:
        raise SdpError(f"line {line}: {what} {text[:40]!r} is not a number")
    value = int(text)
    if value < low or (high is not None and value > high):
        raise SdpError(f"line {line}: {what} {value} is outside {low}..{high}")
    return value


def _check_address(address_type: str, address: str, line: int) -> None:
    host = address.split("/", 1)[0]
    if not host:
        raise SdpError(f"line {line}: empty address")
    # Literals must be valid; anything else is a host name (RFC 4566 allows an FQDN), which
    # the runtime resolves.
    try:
        if address_type == "IP6" and ":" in host:
            ipaddress.IPv6Address(host)
        elif address_type == "IP4" and re.fullmatch(r"[0-9.]+", host):
            ipaddress.IPv4Address(host)
    except ValueError:
        raise SdpError(f"line {line}: {host!r} is not a valid {address_type} address") from None


def _parse_connection(value: str, line: int) -> Connection:
    fields = value.split()
    if len(fields) != 3:
        raise SdpError(f"line {line}: c= needs network type, address type and address")
    network_type, address_type, address = fields
    _check_address(address_type, address, line)
    return Connection(address, address_type, network_type)


def _parse_origin(value: str, line: int) -> Origin:
    fields = value.split()
    if len(fields) != 6:
        raise SdpError(f"line {line}: o= needs 6 fields, got {len(fields)}")
    username, session_id, session_version, network_type, address_type, address = fields
    _check_address(address_type, address, line)
    return Origin(username, _number(session_id, "o= session id", line),
                  _number(session_version, "o= session version", line),
                  address, address_type, network_type)


def _parse_media_line(value: str, line: int) -> MediaDescription:
    fields = value.split()
    if len(fields) < 4:
        raise SdpError(f"line {line}: m= needs media, port, proto and at least one format")
    media, port_text, proto, *formats = fields
    port_part, slash, count_part = port_text.partition("/")
    port = _number(port_part, "m= port", line, 0, 65535)
    count = _number(count_part, "m= port count", line, 1) if slash else None
    described = MediaDescription(media, port, proto, tuple(formats), count)
    if described.is_rtp:
        for fmt in formats:
            _number(fmt, "RTP payload type", line, 0, 127)
    return described


def parse_sdp(text: str | bytes) -> SessionDescription:
    """Parse an SDP body; raises SdpError for anything we cannot use safely."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as error:
            raise SdpError(f"SDP is not UTF-8 text ({error.reason})") from None
    raw_lines = [raw.removesuffix("\r") for raw in text.split("\n")]
    numbered = [(number, raw) for number, raw in enumerate(raw_lines, 1) if raw.strip()]
    if not numbered or not numbered[0][1].startswith("v="):
        raise SdpError("missing v= line at the start")
    version: int | None = None
    origin: Origin | None = None
    name: str | None = None
    connection: Connection | None = None
    attributes: list[Attribute] = []
    extra: list[tuple[str, str]] = []
    media: list[MediaDescription] = []
    m_attributes: list[Attribute] = []
    m_extra: list[tuple[str, str]] = []

    def close_media() -> None:
        if media:
            media[-1] = replace(media[-1], attributes=tuple(m_attributes), extra=tuple(m_extra))
        m_attributes.clear()
        m_extra.clear()

    for number, raw in numbered:
        if len(raw) < 2 or raw[1] != "=" or not ("a" <= raw[0] <= "z"):
            raise SdpError(f"line {number}: {raw[:40]!r} is not a <type>=<value> line")
        kind, value = raw[0], raw[2:]
        if media and kind in _SESSION_ONLY:
            raise SdpError(f"line {number}: {kind}= inside a media section")
        if kind == "v":
            if version is not None:
                raise SdpError(f"line {number}: second v= line")
            version = _number(value.strip(), "v=", number)
            if version != 0:
                raise SdpError(f"line {number}: SDP version {version}, only 0 exists")
        elif kind == "o":
            if origin is not None:
                raise SdpError(f"line {number}: second o= line")
            origin = _parse_origin(value, number)
        elif kind == "s":
            name = value
        elif kind == "c":
            parsed = _parse_connection(value, number)
            if media:
                if media[-1].connection is not None:
                    raise SdpError(f"line {number}: second c= in one media section")
                media[-1] = replace(media[-1], connection=parsed)
            elif connection is not None:
                raise SdpError(f"line {number}: second session-level c= line")
            else:
                connection = parsed
        elif kind == "m":
            close_media()
            media.append(_parse_media_line(value, number))
        elif kind == "a":
            attr_name, colon, attr_value = value.partition(":")
            if not attr_name:
                raise SdpError(f"line {number}: a= without an attribute name")
            (m_attributes if media else attributes).append(
                Attribute(attr_name, attr_value if colon else None))
        else:
            (m_extra if media else extra).append((kind, value))
    close_media()
    if origin is None:
        raise SdpError("missing o= line")
    return SessionDescription(origin=origin, name=name if name is not None else "-",
                              connection=connection, attributes=tuple(attributes),
                              media=tuple(media), extra=tuple(extra), version=0)


