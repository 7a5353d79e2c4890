"""Locating a SIP server (RFC 3263) as a sans-IO plan: it asks DNS questions, it is given answers.

The plan never queries anything itself. The runtime loops `next_query()` -> ask DNS (dnspython)
-> `answer(query, records)` until `next_query()` is None, then uses `targets`: every address to
try, in order, so a registration can fail over from one to the next (RFC 3263 4.3). Answers
are plain records (`Naptr`, `Srv`, address strings); an empty list means no such record or
name. `resolve(plan, lookup)` runs a plan against a synchronous lookup (tests, executors).
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass

from .timers import Address

DEFAULT_PORTS = {"udp": 5060, "tcp": 5060, "tls": 5061}
# NAPTR service field -> transport (RFC 3263 4.1), and SRV prefix per transport.
NAPTR_SERVICES = {"SIP+D2U": "udp", "SIP+D2T": "tcp", "SIPS+D2T": "tls"}
SRV_PREFIX = {"udp": "_sip._udp.", "tcp": "_sip._tcp.", "tls": "_sips._tcp."}


@dataclass(frozen=True)
class Query:
    name: str
    rdtype: str  # "NAPTR", "SRV", "A" or "AAAA"


@dataclass(frozen=True)
class Naptr:
    order: int
    preference: int
    flags: str
    service: str
    replacement: str


@dataclass(frozen=True)
class Srv:
    priority: int
    weight: int
    port: int
    target: str


Record = Naptr | Srv | str
Plan = Generator[Query, list[Record], list[Address]]


class Resolution:
    """The RFC 3263 steps for one server name (a registrar, an outbound proxy)."""

    def __init__(self, host: str, port: int | None = None, transport: str | None = None, *,
                 transports: tuple[str, ...] = ("udp", "tcp", "tls"),
                 rng: random.Random | None = None, ipv6: bool = False) -> None:
        self.host = host.strip("[]").rstrip(".")
        self.port = port
        self.transport = transport.lower() if transport else None
        self.transports = transports
        self.ipv6 = ipv6
        self._rng = rng or random.SystemRandom()
        self._plan: Plan = self._steps()
        self._pending: Query | None = None
        self.targets: list[Address] = []
        self._advance(None)

    def next_query(self) -> Query | None:
        """The question to ask now, or None when `targets` is final."""
        return self._pending

    def answer(self, query: Query, records: list[Record]) -> None:
        if query != self._pending:
            raise ValueError(f"unexpected answer for {query}")
        self._advance(records)

    def _advance(self, records: list[Record] | None) -> None:
        try:
            self._pending = self._plan.send(records) if records is not None else next(self._plan)
        except StopIteration as stop:
            self._pending = None
            self.targets = _unique(stop.value)

    def _steps(self) -> Plan:
        host = self.host
        if _is_ip(host):  # 4.1/4.2: a numeric host needs no lookup at all
            transport = self.transport or "udp"
            return [(host, self.port or DEFAULT_PORTS[transport], transport)]
        if self.port is not None:
            transport = self.transport or "udp"
            return (yield from self._addresses(host, self.port, transport))
        if self.transport is not None:
            found = yield from self._srv(SRV_PREFIX[self.transport] + host, self.transport)
            if found is None:
                return []  # the domain says there is no SIP service: no A-record guess
            if found:
                return found
            return (yield from self._addresses(host, DEFAULT_PORTS[self.transport], self.transport))
        naptrs = yield Query(host, "NAPTR")
        usable = sorted(
            (r for r in naptrs if isinstance(r, Naptr) and r.flags.lower() == "s"
             and NAPTR_SERVICES.get(r.service.upper()) in self.transports),
            key=lambda r: (r.order, r.preference))
        targets: list[Address] = []
        for record in usable:
            transport = NAPTR_SERVICES[record.service.upper()]
            targets += (yield from self._srv(record.replacement.rstrip("."), transport)) or []
        if targets:
            return targets
        for transport in self.transports:  # 4.1: no NAPTR, so try SRV for each transport
            targets += (yield from self._srv(SRV_PREFIX[transport] + host, transport)) or []
        if targets:
            return targets
        return (yield from self._addresses(host, DEFAULT_PORTS["udp"], "udp"))

    def _srv(self, name: str, transport: str,
             ) -> Generator[Query, list[Record], list[Address] | None]:
        """Addresses behind an SRV name; None when its one record's target is "." (RFC 2782:
        the service is decidedly not available there)."""
        records = [r for r in (yield Query(name, "SRV")) if isinstance(r, Srv)]
        if len(records) == 1 and records[0].target in ("", "."):
            return None
        targets: list[Address] = []
        for record in order_srv(records, self._rng):
            targets += yield from self._addresses(record.target.rstrip("."), record.port, transport)
        return targets

    def _addresses(self, host: str, port: int, transport: str,
                   ) -> Generator[Query, list[Record], list[Address]]:
        if _is_ip(host):
            return [(host, port, transport)]
        found = [(a, port, transport) for a in (yield Query(host, "A")) if isinstance(a, str)]
        if self.ipv6:
            found += [(a, port, transport) for a in (yield Query(host, "AAAA"))
                      if isinstance(a, str)]
        return found


def order_srv(records: list[Srv], rng: random.Random) -> list[Srv]:
    """RFC 2782 order: lowest priority first; within one, a weighted random draw per pick."""
    result: list[Srv] = []
    for priority in sorted({r.priority for r in records}):
        group = [r for r in records if r.priority == priority]
        group.sort(key=lambda r: r.weight)  # zero weights first, as RFC 2782 suggests
        while group:
            total = sum(r.weight for r in group)
            pick = rng.randint(0, total)
            running = 0
            for index, record in enumerate(group):
                running += record.weight
                if running >= pick:
                    result.append(group.pop(index))
                    break
    return result


def records_from_rdata(rdtype: str, rdatas: Iterable[object]) -> list[Record]:
    """Plan records from dnspython rdata objects (duck-typed: dnspython is not imported here,
    so the pure layer has no dependency on it; the runtime passes `answer.rrset`)."""
    records: list[Record] = []
    for rdata in rdatas:
        if rdtype == "NAPTR":
            records.append(Naptr(
                int(rdata.order), int(rdata.preference),  # type: ignore[attr-defined]
                _text(rdata.flags), _text(rdata.service),  # type: ignore[attr-defined]
                str(rdata.replacement)))  # type: ignore[attr-defined]
        elif rdtype == "SRV":
            records.append(Srv(int(rdata.priority), int(rdata.weight),  # type: ignore[attr-defined]
                               int(rdata.port), str(rdata.target)))  # type: ignore[attr-defined]
        elif rdtype in ("A", "AAAA"):
            records.append(str(rdata.address))  # type: ignore[attr-defined]
    return records


def _text(value: object) -> str:
    return value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)


def resolve(plan: Resolution, lookup: Callable[[Query], list[Record]]) -> list[Address]:
    """Run a plan to the end with a synchronous lookup."""
    while (query := plan.next_query()) is not None:
        plan.answer(query, lookup(query))
    return plan.targets


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _unique(targets: list[Address]) -> list[Address]:
    seen: set[Address] = set()
    return [t for t in targets if not (t in seen or seen.add(t))]  # type: ignore[func-returns-value]
