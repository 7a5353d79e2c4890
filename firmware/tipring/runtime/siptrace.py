"""The SIP trace: the latest signalling the device sent and received, downloadable as a pcap.

A provider's support desk (and anyone debugging a registration) asks first for a trace that
sngrep or Wireshark opens. `SipTrace` keeps the last `max_bytes` (1 MiB) of SIP traffic as
it crossed the sockets, oldest dropped first, and renders it as a classic libpcap file with
synthetic Ethernet, IPv4/IPv6 and UDP or TCP headers (TCP sequence numbers run on per flow,
so a message split over reads reassembles; TLS is stored in the clear and written as TCP).

Secrets never leave the box: before a message is stored, every Authorization and
Proxy-Authorization credential keeps its scheme and the fields that identify the attempt
(username, realm, uri, nonce, algorithm, qop, nc, opaque) and loses everything else
(`response`, `cnonce`, any unknown field, any non-Digest credential), so the trace cannot be
used for an offline password guess. Stream data is stored line by line: a line still
incomplete at the end of a read waits for the rest, so a credential split between two reads
is recognised as one (the price: a body that does not end in a line end shows up with the
next read on its connection).
"""

from __future__ import annotations

import ipaddress
import re
import struct
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from tipring.sip.stun import is_stun

HostPort = tuple[str, int]

DEFAULT_MAX_BYTES = 1 << 20
RECORD_OVERHEAD = 64  # what one record costs beyond its data, for the byte budget
MASK = "***"
# Digest fields that identify an attempt without helping anyone guess the password.
KEPT_FIELDS = frozenset(("username", "realm", "uri", "nonce", "algorithm", "qop", "nc", "opaque"))
_CREDENTIALS = re.compile(rb"^(authorization|proxy-authorization)[ \t]*:", re.IGNORECASE)
_FIELD = re.compile(r'\s*([A-Za-z0-9_.!%*+`\'~-]+)\s*=\s*("(?:[^"\\]|\\.)*"?|[^\s,]*)\s*(,|$)')
# A line held back longer than this is stored anyway (a body without line ends).
MAX_HELD_LINE = 16 * 1024
MAX_FLOWS = 256  # stream directions with state kept (see `record`)

LINKTYPE_ETHERNET = 1
SNAPLEN = 262144
MAX_SEGMENT = 65000  # payload per synthetic IP packet (the IPv4/IPv6 length fields are 16 bits)
MAC_LOCAL = bytes.fromhex("020000000001")
MAC_REMOTE = bytes.fromhex("020000000002")


@dataclass(frozen=True)
class TraceRecord:
    """One read or write: wall-clock time, "in"/"out", "udp"/"tcp"/"tls", the socket's
    addresses, and the bytes (credentials masked)."""

    time: float
    direction: str
    transport: str
    local: HostPort
    remote: HostPort
    data: bytes


@dataclass
class _Flow:
    """Per stream direction: the incomplete last line, and whether the current header is a
    credential (a folded continuation line of one is masked too)."""

    held: bytes = b""
    in_credentials: bool = False


class SipTrace:
    """A ring buffer of SIP traffic bounded by bytes; `pcap()` renders it."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES, *, enabled: bool = True,
                 clock: Callable[[], float] = time.time) -> None:
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        self.max_bytes = max_bytes
        self.enabled = enabled
        self.clock = clock
        self._records: deque[TraceRecord] = deque()
        self._size = 0
        self._flows: dict[tuple[str, str, HostPort, HostPort], _Flow] = {}

    # --- recording ---------------------------------------------------------------------------

    def record(self, direction: str, transport: str, local: HostPort, remote: HostPort,
               data: bytes) -> None:
        """Note one datagram or stream chunk (the signature of `SipTransports.on_wire`)."""
        if not self.enabled or not data:
            return
        if direction not in ("in", "out"):
            raise ValueError("direction must be 'in' or 'out'")
        now = self.clock()
        if transport == "udp":
            if data.strip(b"\r\n") and not is_stun(data):  # keep-alives are not SIP messages
                self._store(TraceRecord(now, direction, transport, local, remote,
                                        mask_credentials(data, _Flow())))
            return
        key = (direction, transport, local, remote)
        if key not in self._flows and len(self._flows) >= MAX_FLOWS:
            # Many connections (a scan): forget the idle ones, all of them if need be.
            for idle in [k for k, f in self._flows.items() if not f.held]:
                del self._flows[idle]
            if len(self._flows) >= MAX_FLOWS:
                self._flows.clear()
        flow = self._flows.setdefault(key, _Flow())
        data = flow.held + data
        cut = data.rfind(b"\n") + 1
        if cut == 0 and len(data) <= MAX_HELD_LINE:
            flow.held = data
            return
        if cut == 0:
            cut = len(data)
        flow.held, complete = data[cut:], data[:cut]
        # CRLF keep-alives on a stream are stored: the same bytes may be a message's blank line.
        self._store(TraceRecord(now, direction, transport, local, remote,
                                mask_credentials(complete, flow)))

    def _store(self, record: TraceRecord) -> None:
        self._records.append(record)
        self._size += len(record.data) + RECORD_OVERHEAD
        while self._size > self.max_bytes and len(self._records) > 1:
            old = self._records.popleft()
            self._size -= len(old.data) + RECORD_OVERHEAD

    def forget_flow(self, transport: str, remote: HostPort) -> None:
        """A connection closed: drop what was held of its incomplete lines."""
        for key in [k for k in self._flows if k[1] == transport and k[3] == remote]:
            del self._flows[key]

    # --- reading -----------------------------------------------------------------------------

    @property
    def size(self) -> int:
        """Bytes the buffer counts against `max_bytes`."""
        return self._size

    def records(self) -> list[TraceRecord]:
        """The stored records, oldest first."""
        return list(self._records)

    def __len__(self) -> int:
        return len(self._records)

    def clear(self) -> None:
        self._records.clear()
        self._flows.clear()
        self._size = 0

    def pcap(self) -> bytes:
        """The trace as a classic libpcap file (microsecond timestamps, Ethernet link type)."""
        out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, SNAPLEN, LINKTYPE_ETHERNET)]
        sequence: dict[tuple[str, str, HostPort, HostPort], int] = {}
        ip_id = 0
        for record in self._records:
            src, dst = (record.local, record.remote) if record.direction == "out" else \
                (record.remote, record.local)
            src_ip, dst_ip = _addresses(src[0], dst[0])
            for offset in range(0, max(len(record.data), 1), MAX_SEGMENT):
                payload = record.data[offset:offset + MAX_SEGMENT]
                if record.transport == "udp":
                    proto, l4 = 17, _udp(src_ip, dst_ip, src[1], dst[1], payload)
                else:
                    flow = (record.transport, record.direction, record.local, record.remote)
                    back = (record.transport, "in" if record.direction == "out" else "out",
                            record.local, record.remote)
                    seq = sequence.get(flow, 1)
                    sequence[flow] = (seq + len(payload)) & 0xFFFFFFFF
                    proto = 6
                    l4 = _tcp(src_ip, dst_ip, src[1], dst[1], seq, sequence.get(back, 1),
                              payload)
                ip_id = (ip_id + 1) & 0xFFFF
                packet = _ethernet(record.direction, src_ip, _ip(src_ip, dst_ip, proto, l4, ip_id))
                seconds = int(record.time)
                micros = min(int((record.time - seconds) * 1e6), 999999)
                out.append(struct.pack("<IIII", seconds, micros, len(packet), len(packet)))
                out.append(packet)
                if record.transport == "udp":
                    break  # a datagram is one packet
        return b"".join(out)


# --- masking ---------------------------------------------------------------------------------


def mask_credentials(data: bytes, flow: _Flow) -> bytes:
    """`data` (whole lines, or a datagram) with every credential masked; `flow` carries
    "inside a credential header" from one call to the next."""
    lines = data.split(b"\n")
    for index, line in enumerate(lines):
        if line[:1] in (b" ", b"\t") and flow.in_credentials:
            end = b"\r" if line.endswith(b"\r") else b""
            lines[index] = line[:1] + MASK.encode() + end if line.strip() else line
            continue
        match = _CREDENTIALS.match(line)
        flow.in_credentials = match is not None
        if match is not None:
            end = b"\r" if line.endswith(b"\r") else b""
            value = line[match.end():len(line) - len(end)]
            lines[index] = line[:match.end()] + b" " + _mask_value(value) + end
    return b"\n".join(lines)


def _mask_value(value: bytes) -> bytes:
    """A credential with only the identifying Digest fields kept."""
    text = value.decode("utf-8", "replace").strip()
    scheme, _, rest = text.partition(" ")
    if scheme.lower() != "digest":
        return f"{scheme} {MASK}".encode() if scheme else MASK.encode()
    kept: list[str] = []
    position = 0
    rest = rest.strip()
    while position < len(rest):
        match = _FIELD.match(rest, position)
        if match is None:  # not name=value: mask the remainder rather than guess
            kept.append(MASK)
            break
        name, field_value = match.group(1), match.group(2)
        if name.lower() not in KEPT_FIELDS:
            field_value = f'"{MASK}"' if field_value.startswith('"') else MASK
        kept.append(f"{name}={field_value}")
        position = match.end()
    return f"{scheme} {', '.join(kept)}".encode()


# --- packet headers --------------------------------------------------------------------------


def _host(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def _addresses(src: str, dst: str) -> tuple[bytes, bytes]:
    """Packed source and destination of one family (v4 if both are v4, else v6; a name or a
    mismatch becomes the unspecified address or a v4-mapped one)."""
    a, b = _host(src), _host(dst)
    if (a is None or a.version == 4) and (b is None or b.version == 4):
        zero = ipaddress.IPv4Address(0)
        return (a or zero).packed, (b or zero).packed

    def v6(address: ipaddress.IPv4Address | ipaddress.IPv6Address | None) -> bytes:
        if address is None:
            return bytes(16)
        if address.version == 4:
            return ipaddress.IPv6Address(f"::ffff:{address}").packed
        return address.packed

    return v6(a), v6(b)


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _pseudo(src: bytes, dst: bytes, proto: int, length: int) -> bytes:
    if len(src) == 4:
        return src + dst + struct.pack("!BBH", 0, proto, length)
    return src + dst + struct.pack("!IxxxB", length, proto)


def _udp(src: bytes, dst: bytes, sport: int, dport: int, payload: bytes) -> bytes:
    length = 8 + len(payload)
    header = struct.pack("!HHHH", sport, dport, length, 0)
    checksum = _checksum(_pseudo(src, dst, 17, length) + header + payload) or 0xFFFF
    return struct.pack("!HHHH", sport, dport, length, checksum) + payload


def _tcp(src: bytes, dst: bytes, sport: int, dport: int, seq: int, ack: int,
         payload: bytes) -> bytes:
    def header(checksum: int) -> bytes:  # 20 bytes, PSH+ACK, a full window
        return struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, 0x18, 65535,
                           checksum, 0)

    checksum = _checksum(_pseudo(src, dst, 6, 20 + len(payload)) + header(0) + payload)
    return header(checksum) + payload


def _ip(src: bytes, dst: bytes, proto: int, payload: bytes, ident: int) -> bytes:
    if len(src) == 4:
        def header(checksum: int) -> bytes:
            return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, 0x4000, 64,
                               proto, checksum, src, dst)
        return header(_checksum(header(0))) + payload
    return struct.pack("!IHBB16s16s", 6 << 28, len(payload), proto, 64, src, dst) + payload


def _ethernet(direction: str, src_ip: bytes, packet: bytes) -> bytes:
    src, dst = (MAC_LOCAL, MAC_REMOTE) if direction == "out" else (MAC_REMOTE, MAC_LOCAL)
    return dst + src + struct.pack("!H", 0x0800 if len(src_ip) == 4 else 0x86DD) + packet
