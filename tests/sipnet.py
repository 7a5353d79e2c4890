"""A virtual network on a virtual clock for driving sans-IO SIP endpoints against each other.

An endpoint is anything with `receive(data, source, now)`, `datagrams_to_send()`,
`get_timer()` and `handle_timer(now)`. The network collects what endpoints send, delivers it
after `latency` seconds, and lets a test drop, duplicate or delay chosen packets, or put an
endpoint behind a NAT that rewrites its source address (for RFC 3581 rport tests). Every
packet is recorded in `log` with its send time, so tests can check retransmission timing.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

Address = tuple[str, int, str]


class Endpoint(Protocol):
    def receive(self, data: bytes, source: Address, now: float) -> None: ...
    def datagrams_to_send(self) -> list[tuple[bytes, Address]]: ...
    def get_timer(self) -> float | None: ...
    def handle_timer(self, now: float) -> None: ...


@dataclass
class Packet:
    sent_at: float
    source: Address
    destination: Address
    data: bytes
    delivered: bool = False

    @property
    def first_line(self) -> str:
        return self.data.split(b"\r\n", 1)[0].decode("utf-8", "replace")


@dataclass
class VirtualNetwork:
    latency: float = 0.01
    now: float = 0.0
    endpoints: dict[tuple[str, int], Endpoint] = field(default_factory=dict)
    addresses: dict[int, Address] = field(default_factory=dict)  # id(endpoint) -> its address
    nat: dict[tuple[str, int], tuple[str, int]] = field(default_factory=dict)  # private->public
    log: list[Packet] = field(default_factory=list)
    # Return "drop", "dup" or a delay in seconds (float) to treat a packet specially.
    rule: Callable[[Packet], str | float | None] | None = None
    _queue: list[tuple[float, int, Packet, Address]] = field(default_factory=list)
    _seq: itertools.count = field(default_factory=itertools.count)

    def attach(self, address: Address, endpoint: Endpoint) -> None:
        self.endpoints[(address[0], address[1])] = endpoint
        self.addresses[id(endpoint)] = address

    def behind_nat(self, private: Address, public: tuple[str, int]) -> None:
        """Packets from `private` appear to come from `public`; replies to it reach `private`."""
        self.nat[(private[0], private[1])] = public

    def _collect(self) -> None:
        for endpoint in list(self.endpoints.values()):
            source = self.addresses[id(endpoint)]
            for data, destination in endpoint.datagrams_to_send():
                public = self.nat.get((source[0], source[1]))
                seen_source = (public[0], public[1], source[2]) if public else source
                packet = Packet(self.now, seen_source, destination, data)
                self.log.append(packet)
                action = self.rule(packet) if self.rule else None
                if action == "drop":
                    continue
                delay = self.latency + (action if isinstance(action, float) else 0.0)
                heapq.heappush(self._queue, (self.now + delay, next(self._seq), packet, destination))
                if action == "dup":
                    heapq.heappush(self._queue, (self.now + delay + 0.001, next(self._seq),
                                                 packet, destination))

    def _deliver(self, packet: Packet, destination: Address) -> None:
        key = (destination[0], destination[1])
        for private, public in self.nat.items():
            if public == key:
                key = private
        endpoint = self.endpoints.get(key)
        if endpoint is None:
            return  # nobody there: lost
        packet.delivered = True
        endpoint.receive(packet.data, packet.source, self.now)

    def run(self, until: float) -> None:
        """Advance the clock to `until`, delivering packets and firing timers in time order."""
        while True:
            self._collect()
            times = [self._queue[0][0]] if self._queue else []
            times += [t for e in self.endpoints.values() if (t := e.get_timer()) is not None]
            if not times or min(times) > until:
                self.now = max(self.now, until)
                return
            self.now = max(self.now, min(times))
            if self._queue and self._queue[0][0] <= self.now:
                _, _, packet, destination = heapq.heappop(self._queue)
                self._deliver(packet, destination)
                continue
            for endpoint in list(self.endpoints.values()):
                deadline = endpoint.get_timer()
                if deadline is not None and deadline <= self.now:
                    endpoint.handle_timer(self.now)

    def run_for(self, seconds: float) -> None:
        self.run(self.now + seconds)

    def sent(self, source_host: str | None = None, starts: str = "") -> list[Packet]:
        """Packets logged, optionally only from one host and with a start-line prefix."""
        return [p for p in self.log
                if (source_host is None or p.source[0] == source_host)
                and p.first_line.startswith(starts)]


class FakeRegistrar:
    """A scripted registrar/proxy endpoint, written independently of the code under test.

    It answers REGISTER with a digest challenge (MD5, qop=auth, checked here with hashlib),
    423 below `min_expires`, else 200 listing the binding with the granted expiry; it writes
    `received`/`rport` into the Via it returns, as an RFC 3581 server does. `script` may
    override the answer to a REGISTER: return (status, extra header lines) or None. OPTIONS
    gets 200; a CRLF ping on a stream gets a pong unless `pong` is False.
    """

    def __init__(self, *, user: str = "alice", password: str = "secret",
                 realm: str = "tipring.test", max_expires: int = 3600, min_expires: int = 0,
                 contact_expires: bool = True, script=None) -> None:
        self.user, self.password, self.realm = user, password, realm
        self.max_expires, self.min_expires = max_expires, min_expires
        self.contact_expires = contact_expires
        self.script = script
        self.requests: list[tuple[float, str, dict, Address]] = []  # (time, method, fields, src)
        self.pings: list[float] = []
        self.pong = True
        self.bindings: dict[str, int] = {}
        self._out: list[tuple[bytes, Address]] = []
        self._nonce = 0

    def datagrams_to_send(self):
        out, self._out = self._out, []
        return out

    def get_timer(self):
        return None

    def handle_timer(self, now):
        pass

    def send_to(self, data: bytes, destination: Address) -> None:
        self._out.append((data, destination))

    def receive(self, data: bytes, source: Address, now: float) -> None:
        if not data.strip(b"\r\n"):
            self.pings.append(now)
            if self.pong and source[2] != "udp":
                self._out.append((b"\r\n", source))
            return
        head, _, _body = data.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        start = lines[0]
        if start.startswith("SIP/2.0"):
            return
        method = start.split(" ")[0]
        fields: dict[str, list[str]] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            fields.setdefault(name.strip().lower(), []).append(value.strip())
        self.requests.append((now, method, fields, source))
        if method == "ACK":
            return
        extra: list[str] = []
        if method == "REGISTER":
            status, extra = self._register(start, fields)
        else:
            status = 200
        self._answer(status, fields, source, extra)

    def _register(self, start: str, fields: dict) -> tuple[int, list[str]]:
        if self.script is not None:
            scripted = self.script(self, fields)
            if scripted is not None:
                return scripted
        if self.password is not None and not self._authorized(start, fields):
            self._nonce += 1
            return 401, [(f'WWW-Authenticate: Digest realm="{self.realm}", '
                         f'nonce="n{self._nonce}", qop="auth", algorithm=MD5')]
        expires = int(fields.get("expires", ["3600"])[0])
        if 0 < expires < self.min_expires:
            return 423, [f"Min-Expires: {self.min_expires}"]
        granted = min(expires, self.max_expires)
        for contact in fields.get("contact", []):
            for one in contact.split(","):
                uri = one.split(">")[0].strip().lstrip("<")
                value = granted
                if "expires=0" in one.replace(" ", ""):
                    value = 0
                if value:
                    self.bindings[uri] = value
                else:
                    self.bindings.pop(uri, None)
        if not self.contact_expires:
            return 200, [f"Contact: <{uri}>" for uri in self.bindings] + [f"Expires: {granted}"]
        return 200, [f"Contact: <{uri}>;expires={e}" for uri, e in self.bindings.items()]

    def _authorized(self, start: str, fields: dict) -> bool:
        import hashlib
        import re

        value = (fields.get("authorization") or [""])[0]
        params = dict(re.findall(r'(\w+)="?([^",]*)"?', value))
        if not params or params.get("username") != self.user:
            return False

        def md5(text: str) -> str:
            return hashlib.md5(text.encode()).hexdigest()

        ha1 = md5(f"{self.user}:{self.realm}:{self.password}")
        ha2 = md5(f"REGISTER:{params.get('uri')}")
        expected = md5(f"{ha1}:{params.get('nonce')}:{params.get('nc')}:{params.get('cnonce')}:"
                       f"auth:{ha2}")
        return params.get("response") == expected and params.get("nonce") == f"n{self._nonce}"

    def _answer(self, status: int, fields: dict, source: Address, extra: list[str]) -> None:
        vias = list(fields.get("via", []))
        top = vias[0]
        top = top.replace(";rport", f";received={source[0]};rport={source[1]}", 1)
        lines = [f"SIP/2.0 {status} Scripted"] + [f"Via: {top}"] + [f"Via: {v}" for v in vias[1:]]
        to = fields["to"][0]
        if ";tag=" not in to:
            to += ";tag=registrar"
        lines += [f"From: {fields['from'][0]}", f"To: {to}", f"Call-ID: {fields['call-id'][0]}",
                  f"CSeq: {fields['cseq'][0]}", *extra, "Content-Length: 0", "", ""]
        self._out.append(("\r\n".join(lines).encode(), source))
