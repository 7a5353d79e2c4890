"""The transaction layer (RFC 3261 section 17, with the RFC 6026 fix for INVITE 2xx).

Four state machines sit in one `TransactionLayer`, keyed as section 17.1.3 and 17.2.3 say:
client transactions by (top Via branch, CSeq method), server transactions by (branch, sent-by,
method) with ACK matching its INVITE. Each transaction keeps its own deadlines; the layer
reports the earliest so the owner needs one timer. Nothing here touches a socket: messages to
send queue up as (bytes, address) pairs.

Retransmission happens only on unreliable transports; on TCP/TLS the wait timers D, I, J and K
are zero. The INVITE server transaction also retransmits its 2xx until the TU reports the ACK
(RFC 3261 13.3.1.4 puts that duty on the UAS core; doing it here with the RFC 6026 Accepted
state's Timer L keeps one copy of the doubling logic and still leaves the ACK to the dialog).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from .fields import Headers
from .grammar import SipParseError
from .message import Request, Response, build_response, serialize
from .timers import Address, TimerSettings, is_reliable

log = logging.getLogger(__name__)

MAGIC_COOKIE = "z9hG4bK"

# What a client transaction reports to its owner: the response (a real one, or a local 408 on
# Timer B/F or a local 503 on a transport error; `tx.error` tells them apart).
ResponseHandler = Callable[["ClientTransaction", Response, float], None]


class Timers:
    """Named deadlines of one transaction."""

    def __init__(self) -> None:
        self._due: dict[str, float] = {}

    def start(self, name: str, at: float) -> None:
        self._due[name] = at

    def stop(self, *names: str) -> None:
        for name in names:
            self._due.pop(name, None)

    def clear(self) -> None:
        self._due.clear()

    def running(self, name: str) -> bool:
        return name in self._due

    def next(self) -> tuple[float, str] | None:
        if not self._due:
            return None
        name = min(self._due, key=self._due.__getitem__)
        return self._due[name], name

    def due(self, name: str) -> float | None:
        return self._due.get(name)


@dataclass
class _Base:
    layer: TransactionLayer
    request: Request
    address: Address
    state: str = ""
    timers: Timers = field(default_factory=Timers)
    error: str | None = None  # "timeout", "transport" or "no ACK" when it ended badly

    @property
    def reliable(self) -> bool:
        return is_reliable(self.address)

    @property
    def method(self) -> str:
        return self.request.method

    @property
    def terminated(self) -> bool:
        return self.state == "terminated"

    def _terminate(self) -> None:
        self.state = "terminated"
        self.timers.clear()


class ClientTransaction(_Base):
    """One request we sent and its responses (RFC 3261 17.1.1 INVITE, 17.1.2 non-INVITE)."""

    def __init__(self, layer: TransactionLayer, request: Request, address: Address,
                 on_response: ResponseHandler) -> None:
        super().__init__(layer, request, address)
        self.on_response = on_response
        self.branch = request.via[0].branch or ""
        self.is_invite = request.method == "INVITE"
        self.wire = serialize(request)
        self.interval = layer.timers.t1
        self.last_response: Response | None = None
        self.ack: bytes | None = None

    def start(self, now: float) -> None:
        t = self.layer.timers
        self.state = "calling" if self.is_invite else "trying"
        self.layer.send(self.wire, self.address)
        if not self.reliable:
            self.timers.start("A" if self.is_invite else "E", now + t.t1)
        self.timers.start("B" if self.is_invite else "F", now + t.b)

    def receive(self, response: Response, now: float) -> None:
        status = response.status
        if self.is_invite:
            self._receive_invite(response, status, now)
        else:
            self._receive_non_invite(response, status, now)

    def _receive_invite(self, response: Response, status: int, now: float) -> None:
        if self.state in ("calling", "proceeding"):
            self.timers.stop("A", "B")
            if status < 200:
                self.state = "proceeding"
            elif status < 300:
                self.state = "accepted"  # RFC 6026: 2xx retransmissions still reach the TU
                self.timers.start("M", now + self.layer.timers.b)
            else:
                self.state = "completed"
                self.ack = serialize(ack_for(self.request, response))
                self.layer.send(self.ack, self.address)
                wait = 0.0 if self.reliable else self.layer.timers.d
                self.timers.start("D", now + wait)
            self._deliver(response, now)
        elif self.state == "accepted" and 200 <= status < 300:
            self._deliver(response, now)
        elif self.state == "completed" and status >= 300 and self.ack is not None:
            self.layer.send(self.ack, self.address)  # our ACK was lost: send it again

    def _receive_non_invite(self, response: Response, status: int, now: float) -> None:
        if self.state not in ("trying", "proceeding"):
            return  # completed: a retransmitted final response is absorbed
        if status < 200:
            self.state = "proceeding"
        else:
            self.state = "completed"
            self.timers.stop("E", "F")
            self.timers.start("K", now + (0.0 if self.reliable else self.layer.timers.t4))
        self._deliver(response, now)

    def fire(self, name: str, now: float) -> None:
        t = self.layer.timers
        self.timers.stop(name)
        if name == "A":  # doubles with no cap: 0.5, 1, 2 ... s until Timer B (17.1.1.2)
            self.layer.send(self.wire, self.address)
            self.interval *= 2
            self.timers.start("A", now + self.interval)
        elif name == "E":  # doubles up to T2; in Proceeding it is T2 (17.1.2.2)
            self.layer.send(self.wire, self.address)
            self.interval = t.t2 if self.state == "proceeding" else min(2 * self.interval, t.t2)
            self.timers.start("E", now + self.interval)
        elif name in ("B", "F"):
            self.fail("timeout", now)
        else:  # D, K, M: the wait for stray retransmissions is over
            self._terminate()

    def fail(self, error: str, now: float, why: str = "") -> None:
        """Timeout or transport error: the TU sees a 408 or 503 (RFC 3261 8.1.3.1). The 503's
        reason phrase says what the transport reported (`why`), when it said anything."""
        if self.terminated or self.state in ("completed", "accepted"):
            self._terminate()
            return
        self.error = error
        self._terminate()
        if error == "timeout":
            status, reason = 408, "Request Timeout"
        else:
            status, reason = 503, f"Transport error: {why}" if why else "Service Unavailable"
        self._deliver(build_response(self.request, status, reason, to_tag=None), now)

    def _deliver(self, response: Response, now: float) -> None:
        self.last_response = response
        try:
            self.on_response(self, response, now)
        except Exception:  # a TU bug must not take the transaction layer down
            log.exception("SIP transaction user failed on a %d response", response.status)


class ServerTransaction(_Base):
    """One request we received and our answers (RFC 3261 17.2.1 INVITE, 17.2.2 non-INVITE)."""

    def __init__(self, layer: TransactionLayer, request: Request, address: Address,
                 key: tuple[str, str, str]) -> None:
        super().__init__(layer, request, address)
        self.key = key
        self.is_invite = request.method == "INVITE"
        self.last_response: Response | None = None
        self.wire: bytes | None = None
        self.interval = layer.timers.t1
        self.on_no_ack: Callable[[ServerTransaction, float], None] | None = None
        self.acknowledged = False

    def start(self) -> None:
        if self.is_invite:
            self.state = "proceeding"
            # 17.2.1: 100 Trying at once stops the caller's Timer A retransmitting.
            self.respond(build_response(self.request, 100, "Trying"), 0.0)
        else:
            self.state = "trying"

    def respond(self, response: Response, now: float) -> None:
        """Send a response the TU built; the state machine decides what follows."""
        if self.state in ("completed", "confirmed", "terminated"):
            log.debug("response %d after the %s transaction ended", response.status, self.method)
            return
        if self.state == "accepted":
            if 200 <= response.status < 300:
                self._send(response)  # a TU-made retransmission passes straight through
            return
        t = self.layer.timers
        self._send(response)
        status = response.status
        if status < 200:
            if not self.is_invite:
                self.state = "proceeding"
            return
        if self.is_invite and status < 300:
            self.state = "accepted"
            self.timers.start("L", now + t.b)
            if not self.reliable:
                self.timers.start("retransmit-2xx", now + t.t1)
        elif self.is_invite:
            self.state = "completed"
            if not self.reliable:
                self.timers.start("G", now + t.t1)
            self.timers.start("H", now + t.b)
        else:
            self.state = "completed"
            self.timers.start("J", now + (0.0 if self.reliable else t.b))

    def _send(self, response: Response) -> None:
        self.last_response = response
        self.wire = serialize(response)
        self.layer.send(self.wire, self.address)

    def retransmission(self, request: Request, now: float) -> None:
        """The same request again: resend our last answer (17.2.1, 17.2.2)."""
        if request.method == "ACK":
            if self.state == "completed":
                self.state = "confirmed"
                self.timers.stop("G", "H")
                self.timers.start("I", now + (0.0 if self.reliable else self.layer.timers.t4))
            return
        if self.state in ("proceeding", "completed") and self.wire is not None:
            self.layer.send(self.wire, self.address)

    def acknowledge(self, now: float) -> None:
        """The TU matched the ACK for our 2xx: stop retransmitting it."""
        self.acknowledged = True
        self.timers.stop("retransmit-2xx")

    def fire(self, name: str, now: float) -> None:
        t = self.layer.timers
        self.timers.stop(name)
        if name in ("G", "retransmit-2xx"):
            if self.wire is not None:
                self.layer.send(self.wire, self.address)
            self.interval = min(2 * self.interval, t.t2)
            self.timers.start(name, now + self.interval)
        elif name == "H":
            self.error = "no ACK"
            log.info("no ACK for our %d to INVITE", self.last_response.status if self.last_response else 0)
            self._terminate()
        elif name == "L":
            unacknowledged = not self.acknowledged
            self._terminate()
            if unacknowledged:
                self.error = "no ACK"
                if self.on_no_ack is not None:
                    self.on_no_ack(self, now)
        else:  # I, J
            self._terminate()


@dataclass
class Incoming:
    """What `TransactionLayer.receive_request` made of a request.

    kind: "new" (a new transaction for the TU), "retransmission" (absorbed), "ack" (an ACK that
    matched no transaction: for a 2xx, so it belongs to a dialog), "merged" (answered 482),
    "invalid" (a request lacking what transactions are keyed on: dropped and logged).
    """

    kind: str
    transaction: ServerTransaction | None = None


class TransactionLayer:
    """All transactions of one user agent, plus the queue of messages they want sent."""

    def __init__(self, timers: TimerSettings | None = None) -> None:
        self.timers = timers or TimerSettings()
        self.clients: dict[tuple[str, str], ClientTransaction] = {}
        self.servers: dict[tuple[str, str, str], ServerTransaction] = {}
        self._outbox: list[tuple[bytes, Address]] = []

    # --- sending -------------------------------------------------------------------------

    def send(self, data: bytes, address: Address) -> None:
        self._outbox.append((data, address))

    def datagrams_to_send(self) -> list[tuple[bytes, Address]]:
        out, self._outbox = self._outbox, []
        return out

    def start_client(self, request: Request, address: Address, now: float,
                     on_response: ResponseHandler) -> ClientTransaction:
        """Send `request` (its top Via carries a fresh branch) and track its responses."""
        tx = ClientTransaction(self, request, address, on_response)
        key = (tx.branch, request.method)
        if key in self.clients:
            raise ValueError("branch already in use")
        self.clients[key] = tx
        tx.start(now)
        return tx

    def send_stateless(self, response: Response, address: Address) -> None:
        """A response outside any transaction (a 400 to a request that did not parse)."""
        self.send(serialize(response), address)

    # --- receiving -----------------------------------------------------------------------

    def receive_response(self, response: Response, now: float) -> bool:
        """Pass a response to its client transaction; False when none matches (stray)."""
        try:
            branch = response.via[0].branch or ""
            method = response.cseq.method
        except (SipParseError, IndexError):
            return False
        if method == "ACK":
            return False
        tx = self.clients.get((branch, method))
        if tx is None or tx.terminated:
            return False
        tx.receive(response, now)
        return True

    def receive_request(self, request: Request, source: Address, now: float) -> Incoming:
        """Match a request to a server transaction or make a new one (17.2.3, 8.2.2.2).

        The request should have passed `validate.check_request`; one whose Via, From, To,
        Call-ID or CSeq is still missing or malformed is dropped here ("invalid"), never raised.
        """
        try:
            return self._receive_request(request, source, now)
        except SipParseError as error:
            log.info("dropped a %s the transaction layer cannot key: %s",
                     request.method, error.reason)
            return Incoming("invalid")

    def _receive_request(self, request: Request, source: Address, now: float) -> Incoming:
        key = server_key(request)
        tx = self.servers.get(key)
        if tx is not None and not tx.terminated:
            if request.method == "ACK" and tx.state == "accepted":
                return Incoming("ack", tx)  # an ACK for our 2xx that reused the branch
            tx.retransmission(request, now)
            return Incoming("retransmission", tx)
        if request.method == "ACK":
            return Incoming("ack")
        merged = self._merged_with(request, key)
        tx = ServerTransaction(self, request, source, key)
        self.servers[key] = tx
        tx.start()
        if merged:
            # 8.2.2.2: the same request reached us by two paths (a forking proxy).
            log.info("merged %s request answered 482", request.method)
            tx.respond(build_response(request, 482, "Loop Detected"), now)
            return Incoming("merged", tx)
        return Incoming("new", tx)

    def _merged_with(self, request: Request, key: tuple[str, str, str]) -> bool:
        if request.to.tag is not None:
            return False
        ident = (request.from_.tag, request.call_id, request.cseq.number, request.method)
        for other in self.servers.values():
            if other.terminated or other.key == key:
                continue
            o = other.request
            if o.to.tag is None and (o.from_.tag, o.call_id, o.cseq.number, o.method) == ident:
                return True
        return False

    def find_invite_for_cancel(self, cancel: Request) -> ServerTransaction | None:
        """The INVITE transaction a CANCEL names: same branch and sent-by (9.2)."""
        branch, sent_by, _ = server_key(cancel)
        tx = self.servers.get((branch, sent_by, "INVITE"))
        return tx if tx is not None and not tx.terminated else None

    def transport_failed(self, address: Address, now: float, why: str = "") -> None:
        """The runtime could not send to `address` (refused connection, ICMP unreachable,
        TLS verification); `why` in words, for the synthesized 503's reason phrase."""
        for client in list(self.clients.values()):
            if client.address == address and not client.terminated:
                client.fail("transport", now, why)
        for server in self.servers.values():
            if server.address == address and not server.terminated:
                server.error = "transport"
                server._terminate()

    # --- time ----------------------------------------------------------------------------

    def get_timer(self) -> float | None:
        deadlines = [
            due[0] for tx in (*self.clients.values(), *self.servers.values())
            if (due := tx.timers.next()) is not None
        ]
        return min(deadlines, default=None)

    def handle_timer(self, now: float) -> None:
        """Fire every timer due by `now`, earliest first, then forget finished transactions."""
        while True:
            best: tuple[float, str, ClientTransaction | ServerTransaction] | None = None
            for tx in (*self.clients.values(), *self.servers.values()):
                due = tx.timers.next()
                if due is not None and due[0] <= now and (best is None or due[0] < best[0]):
                    best = (due[0], due[1], tx)
            if best is None:
                break
            best[2].fire(best[1], now)
        self.purge()

    def purge(self) -> None:
        """Forget terminated transactions (their state is no longer needed)."""
        self.clients = {k: t for k, t in self.clients.items() if not t.terminated}
        self.servers = {k: t for k, t in self.servers.items() if not t.terminated}


def server_key(request: Request) -> tuple[str, str, str]:
    """(branch, sent-by, method) with ACK folded into INVITE (RFC 3261 17.2.3).

    A branch without the magic cookie comes from an RFC 2543 element; the key then falls back
    to the Call-ID, From tag and CSeq number, which is what 17.2.3 compares for them.
    """
    top = request.via[0]
    sent_by = f"{top.host.lower()}:{top.port or ''}"
    method = "INVITE" if request.method == "ACK" else request.method
    branch = top.branch or ""
    if not branch.startswith(MAGIC_COOKIE):
        branch = f"2543/{request.call_id}/{request.from_.tag}/{request.cseq.number}/{branch}"
    return branch, sent_by, method


def ack_for(request: Request, response: Response) -> Request:
    """The ACK a client INVITE transaction sends for a 300-699 (RFC 3261 17.1.1.3)."""
    headers = Headers()
    headers.add("Via", request.headers.lines("Via")[0])
    for name in ("Route",):
        for line in request.headers.lines(name):
            headers.add(name, line)
    headers.add("Max-Forwards", "70")
    headers.add("From", request.headers.get("From") or "")
    headers.add("To", response.headers.get("To") or request.headers.get("To") or "")
    headers.add("Call-ID", request.headers.get("Call-ID") or "")
    headers.add("CSeq", f"{request.cseq.number} ACK")
    return Request("ACK", request.uri, headers)
