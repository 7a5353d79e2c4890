"""The user agent: the one object the runtime feeds bytes and time, and the phone layer drives.

Its boundary is sans-IO (like aioquic's connection): `receive(data, source, now)` with
source = (host, port, transport), `datagrams_to_send()` -> [(bytes, (host, port, transport))],
`next_event()`, `get_timer()` and `handle_timer(now)`. For "tcp" and "tls" sources `data` is
whatever the connection delivered; the agent frames the stream itself. Inside, it routes each
message: responses to their client transaction, requests to a server transaction and then to
the registration, INVITE session or stateless answer they belong to. Nothing received may
raise out of `receive`; bad input is answered 400 when possible, else dropped and logged.

Ghost-call protection: an out-of-dialog INVITE is accepted only from an address of the
account's registrar or outbound proxy, and only for the account's user; scanners get no
answer at all (a reply only confirms there is a phone here to ring), and the refusals are
logged at most once a minute per source.
"""

from __future__ import annotations

import logging
import random
from collections import deque
from dataclasses import dataclass, field

from tipring.sdp import MediaPolicy

from .auth import DigestClient
from .dialog import ALLOW, address_of, new_call_id
from .framing import FramingError, KeepAlive, StreamFramer
from .grammar import SipParseError, split_commas
from .message import Request, Response, build_response, parse_message
from .registration import Registration, RegistrationEvent, RegistrationSettings
from .session import IncomingCall, InviteSession, SessionEvent
from .timers import Address, TimerSettings, is_reliable
from .transaction import ServerTransaction, TransactionLayer
from .uri import SipUri, Uri, host_key, parse_uri
from .validate import UasPolicy, check_request, check_response, response_to_error

log = logging.getLogger(__name__)

# What the agent answers: RFC 4028 session timers are supported (a Require: timer is fine).
ATA_UAS_POLICY = UasPolicy(supported_options=("timer",))


@dataclass(frozen=True)
class Notified:
    """An out-of-dialog NOTIFY (unsolicited message-summary from Asterisk and others)."""

    account: str | None
    event: str
    content_type: str
    body: bytes


@dataclass(frozen=True)
class DtmfInfo:
    """An INFO in a call carrying application/dtmf-relay or application/dtmf."""

    call: str
    body: bytes


Event = RegistrationEvent | SessionEvent | Notified | DtmfInfo


@dataclass
class _Account:
    settings: RegistrationSettings
    registration: Registration
    allow_sip_from: str  # "registrar" or "any"
    trusted: set[str] = field(default_factory=set)  # extra trusted hosts (proxy addresses)

    def trusts(self, host: str) -> bool:
        key = host_key(host)
        return key in {host_key(t[0]) for t in self.registration.targets} or key in self.trusted


class _RateLimit:
    """Log a recurring refusal once per `interval` per key, with how many were not logged."""

    def __init__(self, interval: float = 60.0) -> None:
        self.interval = interval
        self._last: dict[str, tuple[float, int]] = {}

    def log(self, key: str, now: float, message: str, *args: object) -> None:
        last, suppressed = self._last.get(key, (float("-inf"), 0))
        if now - last < self.interval:
            self._last[key] = (last, suppressed + 1)
            return
        if len(self._last) > 1024:
            self._last.clear()  # a scan from many addresses must not grow memory forever
        self._last[key] = (now, 0)
        log.warning(message + " (%d more not logged)", *args, suppressed)


class UserAgent:
    """One SIP user agent with its accounts and calls."""

    def __init__(self, local: Address | list[Address], *, rng: random.Random | None = None,
                 timers: TimerSettings | None = None, user_agent: str = "TipRing",
                 policy: UasPolicy = ATA_UAS_POLICY) -> None:
        self.locals = [local] if isinstance(local, tuple) else list(local)
        self.rng = rng or random.Random()
        self.layer = TransactionLayer(timers)
        self.user_agent = user_agent
        self.policy = policy
        self.accounts: dict[str, _Account] = {}
        self.sessions: dict[str, InviteSession] = {}
        self._events: deque[Event] = deque()
        self._framers: dict[Address, StreamFramer] = {}
        self._hosts: dict[str, list[Address]] = {}
        self._refusals = _RateLimit()

    # --- the sans-IO boundary -------------------------------------------------------------

    def receive(self, data: bytes, source: Address, now: float) -> None:
        try:
            if is_reliable(source):
                framer = self._framers.setdefault(source, StreamFramer())
                for item in framer.feed(data):
                    self._stream_item(item, source, now)
                if framer.closed:
                    del self._framers[source]
            elif data.strip(b"\r\n"):
                self._datagram(data, source, now)
        except Exception:  # a bug must never take the signalling loop down
            log.exception("SIP agent failed on a message from %s:%d", source[0], source[1])

    def datagrams_to_send(self) -> list[tuple[bytes, Address]]:
        return self.layer.datagrams_to_send()

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    def get_timer(self) -> float | None:
        deadlines = [self.layer.get_timer()]
        deadlines += [a.registration.get_timer() for a in self.accounts.values()]
        deadlines += [s.get_timer() for s in self.sessions.values()]
        return min((d for d in deadlines if d is not None), default=None)

    def handle_timer(self, now: float) -> None:
        try:
            self.layer.handle_timer(now)
            for account in list(self.accounts.values()):
                due = account.registration.get_timer()
                if due is not None and due <= now:
                    account.registration.handle_timer(now)
            for session in list(self.sessions.values()):
                due = session.get_timer()
                if due is not None and due <= now:
                    session.handle_timer(now)
        except Exception:
            log.exception("SIP agent failed on a timer")

    def transport_failed(self, address: Address, now: float) -> None:
        """The runtime could not send to `address` or the connection to it closed."""
        self._framers.pop(address, None)
        self.layer.transport_failed(address, now)
        for account in self.accounts.values():
            if account.registration.server == address:
                account.registration.flow_failed(now)

    def learn_addresses(self, host: str, addresses: list[Address]) -> None:
        """DNS results the runtime resolved (RFC 3263) for hosts met in URIs (Record-Route)."""
        self._hosts[host_key(host)] = list(addresses)

    # --- accounts -------------------------------------------------------------------------

    def add_account(self, settings: RegistrationSettings, targets: list[Address], *,
                    allow_sip_from: str = "registrar", trusted: tuple[str, ...] = ()) -> None:
        """One registration per account; adding an id again replaces its registration."""
        local = self.local_for_transport(settings.transport)
        registration = Registration(settings, targets, layer=self.layer, rng=self.rng,
                                    local=local, emit=self.emit, user_agent=self.user_agent)
        self.accounts[settings.account] = _Account(settings, registration, allow_sip_from,
                                                   set(map(host_key, trusted)))

    def register(self, account: str, now: float) -> None:
        self.accounts[account].registration.register(now)

    def unregister(self, account: str, now: float) -> None:
        self.accounts[account].registration.unregister(now)

    def shutdown(self, now: float) -> None:
        """Hang up every call and remove every binding (the device is stopping)."""
        for session in list(self.sessions.values()):
            session.hangup(now)
        for account in self.accounts.values():
            account.registration.unregister(now)

    def registration(self, account: str) -> Registration:
        return self.accounts[account].registration

    # --- calls ----------------------------------------------------------------------------

    def invite(self, account: str, target: str | Uri, media: MediaPolicy, now: float) -> str:
        """Call `target` (a URI, or a user/number at the account's domain). Returns the call."""
        settings = self.accounts[account].settings
        if isinstance(target, str):
            text = target if ":" in target.split("@")[0] else f"sip:{target}@{settings.domain}"
            target = parse_uri(text)
        call = new_call_id(self.rng, self.local_for(account)[0])
        session = InviteSession(self, account, call, "uac")
        self.sessions[call] = session
        display = f'"{settings.display_name}" ' if settings.display_name else ""
        session.start_call(target, f"{display}<{settings.aor}>", media, now)
        return call

    def ring(self, call: str, now: float) -> None:
        self._session(call).ring(now)

    def answer(self, call: str, media: MediaPolicy, now: float) -> None:
        self._session(call).answer(media, now)

    def reject(self, call: str, status: int, reason: str, now: float) -> None:
        self._session(call).reject(status, reason, now)

    def cancel(self, call: str, now: float) -> None:
        self._session(call).cancel(now)

    def hangup(self, call: str, now: float) -> None:
        self._session(call).hangup(now)

    def hold(self, call: str, now: float) -> None:
        self._session(call).hold(now)

    def resume(self, call: str, now: float) -> None:
        self._session(call).resume(now)

    def _session(self, call: str) -> InviteSession:
        session = self.sessions.get(call)
        if session is None:
            raise KeyError(f"no call {call!r}")
        return session

    # --- what sessions ask of the agent (SessionHost) --------------------------------------

    def emit(self, event: object) -> None:
        self._events.append(event)  # type: ignore[arg-type]

    def forget(self, session: InviteSession) -> None:
        self.sessions.pop(session.call, None)

    def local_for_transport(self, transport: str) -> Address:
        for local in self.locals:
            if local[2] == transport:
                return local
        return self.locals[0]

    def local_for(self, account: str) -> Address:
        known = self.accounts.get(account)
        return self.local_for_transport(known.settings.transport if known else self.locals[0][2])

    def contact_for(self, account: str) -> str:
        known = self.accounts.get(account)
        if known is not None:
            return known.registration.contact
        host, port, _ = self.locals[0]
        return f"<sip:{host}:{port}>"

    def route_for(self, account: str) -> list[str]:
        known = self.accounts.get(account)
        return known.registration._route() if known else []

    def auth_for(self, account: str) -> DigestClient | None:
        known = self.accounts.get(account)
        return known.registration.auth if known else None

    def hop(self, uri: Uri, account: str) -> Address | None:
        """Where to send a request for `uri`: an IP literal as is, a host from the DNS cache,
        otherwise the account's registrar/proxy flow (which is where an ATA's calls go)."""
        known = self.accounts.get(account)
        transport = known.settings.transport if known else "udp"
        if known is not None and known.settings.outbound_proxy and known.registration.server:
            return known.registration.server
        direct = address_of(uri, transport)
        if direct is not None:
            return direct
        if isinstance(uri, SipUri):
            cached = self._hosts.get(host_key(uri.maddr or uri.host))
            if cached:
                return cached[0]
        return known.registration.server if known is not None else None

    # --- receiving ------------------------------------------------------------------------

    def _stream_item(self, item: object, source: Address, now: float) -> None:
        if isinstance(item, KeepAlive):
            if item.ping:
                self.layer.send(b"\r\n", source)
            else:
                for account in self.accounts.values():
                    if account.registration.server == source:
                        account.registration.pong_received()
        elif isinstance(item, FramingError):
            if item.request is not None:
                answer = build_response(item.request, item.status, item.reason)
                self.layer.send_stateless(answer, source)
        elif isinstance(item, (Request, Response)):
            self._message(item, source, now)

    def _datagram(self, data: bytes, source: Address, now: float) -> None:
        try:
            message = parse_message(data)
        except SipParseError as error:
            answer = response_to_error(error)
            if answer is not None and (error.request is None or error.request.method != "ACK"):
                self.layer.send_stateless(answer, source)
            return
        self._message(message, source, now)

    def _message(self, message: Request | Response, source: Address, now: float) -> None:
        if isinstance(message, Response):
            if check_response(message) is None and not self.layer.receive_response(message, now):
                log.debug("stray %d response dropped", message.status)
            return
        _via_received(message, source)
        self._request(message, source, now)

    def _request(self, request: Request, source: Address, now: float) -> None:
        try:
            in_dialog = request.to.tag is not None
        except SipParseError:
            in_dialog = False
        rejection = check_request(request, self.policy)
        if request.method == "ACK":
            if rejection is not None:
                return  # an ACK is never answered (RFC 3261 17.2.3)
            incoming = self.layer.receive_request(request, source, now)
            if incoming.kind == "ack":
                session = self.sessions.get(request.call_id)
                if session is not None:
                    session.receive_ack(request, now)
            return
        account: _Account | None = None
        if request.method == "INVITE" and not in_dialog:
            account = self._screen_invite(request, source, now)
            if account is None:
                return
        if rejection is not None:
            # Stateless: the request may lack what a transaction is keyed on (8.2, 17.2.3).
            self.layer.send_stateless(rejection, source)
            return
        incoming = self.layer.receive_request(request, source, now)
        if incoming.kind != "new" or incoming.transaction is None:
            return
        tx = incoming.transaction
        if in_dialog:
            self._in_dialog(request, tx, now)
        elif request.method == "CANCEL":
            self._cancel(request, tx, now)
        elif request.method == "INVITE" and account is not None:
            self._new_call(request, tx, account, now)
        elif request.method == "OPTIONS":
            answer = build_response(request, 200, "OK", to_tag=self._tag())
            answer.headers.add("Allow", ALLOW)
            answer.headers.add("Accept", "application/sdp")
            tx.respond(answer, now)
        elif request.method == "NOTIFY":
            self._notify(request, tx, now)
        else:
            tx.respond(build_response(request, 481, "Call/Transaction Does Not Exist"), now)

    def _tag(self) -> str:
        return f"{self.rng.getrandbits(64):016x}"

    def _screen_invite(self, request: Request, source: Address, now: float) -> _Account | None:
        """Ghost-call protection: which account this INVITE may ring, or None to refuse it."""
        user = request.uri.user if isinstance(request.uri, SipUri) else None
        candidates = list(self.accounts.values())
        for account in candidates:
            if account.allow_sip_from == "any" or account.trusts(source[0]):
                contact = account.registration.contact_uri
                if user in (account.settings.user, contact.user) or \
                        (account.allow_sip_from == "any" and len(candidates) == 1):
                    return account
        trusted = any(a.trusts(source[0]) for a in candidates)
        self._refusals.log(source[0], now, "refused INVITE from %s:%d for %r (%s)", source[0],
                           source[1], user, "unknown user" if trusted else "not our registrar")
        if trusted:  # our own proxy sent it: tell it, so it stops retrying
            incoming = self.layer.receive_request(request, source, now)
            if incoming.kind == "new" and incoming.transaction is not None:
                incoming.transaction.respond(build_response(request, 403, "Forbidden"), now)
        return None

    def _new_call(self, request: Request, tx: ServerTransaction, account: _Account,
                  now: float) -> None:
        call = request.call_id
        if call in self.sessions:
            tx.respond(build_response(request, 482, "Loop Detected"), now)
            return
        session = InviteSession(self, account.settings.account, call, "uas")
        self.sessions[call] = session
        session.receive_invite(request, tx)
        try:
            identities = request.name_addrs("P-Asserted-Identity")
            privacy = tuple(t.strip().lower() for t in
                            ";".join(request.headers.lines("Privacy")).split(";") if t.strip())
        except SipParseError:
            identities, privacy = [], ()
        self.emit(IncomingCall(
            call, account.settings.account, request.from_, request.uri,
            identities[0] if identities else None, privacy,
            request.headers.get("Alert-Info"), bool(session.remote_offer)))

    def _in_dialog(self, request: Request, tx: ServerTransaction, now: float) -> None:
        session = self.sessions.get(request.call_id)
        if session is None or session.dialog is None or \
                not session.dialog.matches(request, incoming=True):
            tx.respond(build_response(request, 481, "Call/Transaction Does Not Exist"), now)
            return
        if request.method == "INFO" and request.body:
            self.emit(DtmfInfo(session.call, request.body))
        session.receive_in_dialog(request, tx, now)

    def _cancel(self, request: Request, tx: ServerTransaction, now: float) -> None:
        invite_tx = self.layer.find_invite_for_cancel(request)
        if invite_tx is None:
            tx.respond(build_response(request, 481, "Call/Transaction Does Not Exist"), now)
            return
        session = self.sessions.get(request.call_id)
        tag = session.local_tag if session is not None else None
        tx.respond(build_response(request, 200, "OK", to_tag=tag), now)
        if session is not None:
            session.receive_cancel(now)

    def _notify(self, request: Request, tx: ServerTransaction, now: float) -> None:
        user = request.uri.user if isinstance(request.uri, SipUri) else None
        account = next((a.settings.account for a in self.accounts.values()
                        if a.settings.user == user), None)
        tx.respond(build_response(request, 200, "OK", to_tag=self._tag()), now)
        content_type = request.content_type
        self.emit(Notified(account, request.headers.get("Event") or "",
                           content_type.mime if content_type else "", request.body))


def _via_received(request: Request, source: Address) -> None:
    """RFC 3261 18.2.1 and RFC 3581: note where the request really came from in its top Via."""
    lines = request.headers.lines("Via")
    try:
        top = request.via[0]
    except (SipParseError, IndexError):
        return
    changed = False
    if host_key(top.host) != host_key(source[0]):
        top.params["received"] = source[0]
        changed = True
    if top.has_rport:
        top.params["rport"] = str(source[1])
        top.params["received"] = source[0]
        changed = True
    if not changed:
        return
    rest = split_commas(lines[0])[1:]
    vias = [str(top), *rest, *lines[1:]]
    request.headers.remove("Via")
    for value in vias:
        request.headers.add("Via", value)

