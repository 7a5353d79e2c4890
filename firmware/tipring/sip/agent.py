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
logged at most once a minute per source. `allow_sip_from="any"` opens it.

Commands (all take `now`): accounts - `add_account`, `register`, `unregister`,
`subscribe_mailbox`, `shutdown`; calls (a call is its Call-ID string) - `invite` (returns
the call), `ring`, `early_media`, `answer`, `reject`, `redirect`, `cancel`, `hangup`,
`hold`, `resume`, `send_dtmf`, `transfer`, `notify_transfer`; transport - `transport_failed`,
`learn_addresses`. Events: `Registered`, `RegistrationFailed`, `Unregistered`,
`MessageWaiting` (registration.py); `IncomingCall`, `CallProgress`, `CallAnswered`,
`MediaChanged`, `CallEnded`, `TransferRequested`, `TransferProgress` (session.py);
`Notified`, `DtmfInfo` (here).
"""

from __future__ import annotations

import dataclasses
import logging
import random
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from tipring.sdp import MediaPolicy

from .auth import DigestClient
from .dialog import ALLOW, ALLOW_METHODS, address_of, new_call_id
from .framing import FramingError, KeepAlive, StreamFramer
from .grammar import SipParseError, is_token, split_commas
from .message import Request, Response, build_response, parse_message
from .mailbox import MailboxSubscription, MessageWaiting, parse_message_summary
from .registration import Registration, RegistrationEvent, RegistrationSettings
from .session import IncomingCall, InviteSession, SessionEvent, parse_replaces
from .stun import is_stun, parse_binding_response
from .timers import Address, TimerSettings, is_reliable
from .transaction import ServerTransaction, TransactionLayer
from .uri import SipUri, Uri, host_key, parse_uri
from .validate import UasPolicy, check_request, check_response, response_to_error

log = logging.getLogger(__name__)

# RFC 3261 21.3's reason phrases for the redirections `UserAgent.redirect` sends.
REDIRECT_REASONS = {300: "Multiple Choices", 301: "Moved Permanently", 302: "Moved Temporarily",
                    305: "Use Proxy", 380: "Alternative Service"}

# What the agent answers: RFC 4028 session timers are supported (a Require: timer is fine).
ATA_UAS_POLICY = UasPolicy(allowed_methods=ALLOW_METHODS,
                           supported_options=("timer", "replaces", "100rel"))


@dataclass(frozen=True)
class Notified:
    """An out-of-dialog NOTIFY for another event package than message-summary (which becomes
    `MessageWaiting`, subscribed or unsolicited as Asterisk sends it)."""

    account: str | None
    event: str
    content_type: str
    body: bytes


@dataclass(frozen=True)
class DtmfInfo:
    """An INFO in a call carrying application/dtmf-relay or application/dtmf."""

    call: str
    body: bytes


Event = RegistrationEvent | MessageWaiting | SessionEvent | Notified | DtmfInfo


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
        # Tags, Call-IDs, branches and cnonces must not be predictable from the ones we send
        # (a guessed dialog lets anyone hang up our calls): the OS generator unless a test
        # injects a seeded one.
        self.rng = rng or random.SystemRandom()
        self.layer = TransactionLayer(timers)
        self.user_agent = user_agent
        self.policy = policy
        self.accounts: dict[str, _Account] = {}
        self.sessions: dict[str, InviteSession] = {}
        self._events: deque[Event] = deque()
        self._framers: dict[Address, StreamFramer] = {}
        self._to_close: list[Address] = []
        self._hosts: dict[str, list[Address]] = {}
        self._refusals = _RateLimit()
        self.mailboxes: dict[str, MailboxSubscription] = {}
        # Extra headers for the BYE of a call we hang up (the runtime knows the call's media).
        self.bye_headers: Callable[[str], Sequence[tuple[str, str]]] | None = None

    # --- the sans-IO boundary -------------------------------------------------------------

    def receive(self, data: bytes, source: Address, now: float) -> None:
        try:
            if is_reliable(source):
                framer = self._framers.setdefault(source, StreamFramer())
                for item in framer.feed(data):
                    self._stream_item(item, source, now)
                if framer.closed:  # a fatal framing error: the stream cannot be resynchronised
                    del self._framers[source]
                    self._to_close.append(source)
            elif is_stun(data):
                self._stun(data, source, now)
            elif data.strip(b"\r\n"):
                self._datagram(data, source, now)
        except Exception:  # a bug must never take the signalling loop down
            log.exception("SIP agent failed on a message from %s:%d", source[0], source[1])

    def _stun(self, data: bytes, source: Address, now: float) -> None:
        """A STUN answer to an outbound keep-alive: to the registration it came back to."""
        response = parse_binding_response(data)
        if response is None:
            return
        for account in self.accounts.values():
            if account.registration.server == source:
                account.registration.stun_response(response, now)

    def datagrams_to_send(self) -> list[tuple[bytes, Address]]:
        return self.layer.datagrams_to_send()

    def connections_to_close(self) -> list[Address]:
        """Streams (TCP/TLS sources) the agent gave up on since the last call, oldest first.

        A fatal framing error (a bad Content-Length, an oversized header section) leaves no
        way to find the next message, so the runtime must close the connection, after
        sending what `datagrams_to_send` gave it (the 400 for the broken request goes first).
        """
        out, self._to_close = self._to_close, []
        return out

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    def get_timer(self) -> float | None:
        deadlines = [self.layer.get_timer()]
        deadlines += [a.registration.get_timer() for a in self.accounts.values()]
        deadlines += [s.get_timer() for s in self.sessions.values()]
        deadlines += [m.get_timer() for m in self.mailboxes.values()]
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
            for mailbox in list(self.mailboxes.values()):
                due = mailbox.get_timer()
                if due is not None and due <= now:
                    mailbox.handle_timer(now)
            self.layer.purge()
        except Exception:
            log.exception("SIP agent failed on a timer")

    def transport_failed(self, address: Address, now: float, why: str = "") -> None:
        """The runtime could not send to `address` or the connection to it closed; `why` (the
        runtime's words: "connection refused", "server certificate not trusted: ...") becomes
        the reason phrase of the 503 the transactions to it end with."""
        self._framers.pop(address, None)
        self.layer.transport_failed(address, now, why)
        for account in self.accounts.values():
            if account.registration.server == address:
                account.registration.flow_failed(now)

    def learn_addresses(self, host: str, addresses: list[Address]) -> None:
        """DNS results the runtime resolved (RFC 3263) for hosts met in URIs (Record-Route)."""
        self._hosts[host_key(host)] = list(addresses)

    # --- accounts -------------------------------------------------------------------------

    def add_account(self, settings: RegistrationSettings, targets: list[Address], *,
                    allow_sip_from: str = "registrar", trusted: tuple[str, ...] = (),
                    backup_targets: list[Address] | None = None) -> None:
        """One registration per account; adding an id again replaces its registration.

        `targets` are the resolved addresses of the registrar (or of the outbound proxy when
        there is one), in RFC 3263 order; `backup_targets` those of `backup_registrar`, tried
        when every primary address has failed. Both are trusted sources of INVITEs.
        """
        local = self.local_for_transport(settings.transport)
        registration = Registration(settings, targets, layer=self.layer, rng=self.rng,
                                    local=local, emit=self.emit, user_agent=self.user_agent,
                                    backup_targets=backup_targets)
        self.accounts[settings.account] = _Account(settings, registration, allow_sip_from,
                                                   set(map(host_key, trusted)))

    def register(self, account: str, now: float) -> None:
        self.accounts[account].registration.register(now)

    def unregister(self, account: str, now: float) -> None:
        self.accounts[account].registration.unregister(now)

    def subscribe_mailbox(self, account: str, now: float, *, expires: int = 3600) -> None:
        """SUBSCRIBE to the account's message-summary (after it registered): `MessageWaiting`
        events follow. Providers that send unsolicited NOTIFYs need no subscription."""
        mailbox = MailboxSubscription(self.accounts[account].registration, expires=expires)
        self.mailboxes[account] = mailbox
        mailbox.subscribe(now)

    def shutdown(self, now: float) -> None:
        """Hang up every call and remove every binding (the device is stopping)."""
        for mailbox in self.mailboxes.values():
            mailbox.unsubscribe(now)
        for session in list(self.sessions.values()):
            session.hangup(now)
        for account in self.accounts.values():
            account.registration.unregister(now)

    def registration(self, account: str) -> Registration:
        return self.accounts[account].registration

    # --- calls ----------------------------------------------------------------------------

    def invite(self, account: str, target: str | Uri, media: MediaPolicy, now: float, *,
               replaces: str | None = None, referred_by: str | None = None,
               anonymous: bool = False) -> str:
        """Call `target` (a URI, or a user/number at the account's domain). Returns the call.

        `replaces` and `referred_by` come from a `TransferRequested` being acted on.
        `anonymous` withholds our identity as RFC 3323 asks of a user agent: an anonymous From,
        `Privacy: id`, and our identity only in P-Preferred-Identity for the provider (RFC 3325),
        which authenticates the call and strips it before the callee.
        """
        target = self._target(account, target)
        call = new_call_id(self.rng, self.local_for(account)[0])
        session = InviteSession(self, account, call, "uac")
        self.sessions[call] = session
        extra = [("Replaces", replaces)] if replaces else []
        if referred_by:
            extra.append(("Referred-By", referred_by))
        settings = self.accounts[account].settings
        display = f'"{settings.display_name}" ' if settings.display_name else ""
        identity = f"{display}<{settings.aor}>"
        if anonymous:
            extra += [("Privacy", "id"), ("P-Preferred-Identity", identity)]
            identity = '"Anonymous" <sip:anonymous@anonymous.invalid>'
        session.start_call(target, identity, media, now, extra)
        return call

    def _target(self, account: str, target: str | Uri) -> Uri:
        if not isinstance(target, str):
            return target
        settings = self.accounts[account].settings
        text = target if ":" in target.split("@")[0] else f"sip:{target}@{settings.domain}"
        return parse_uri(text)

    def transfer(self, call: str, target: str | Uri | None, now: float, *,
                 replacing: str | None = None) -> None:
        """REFER the far end of `call` to `target` (blind), or with `replacing` (another call;
        `target` is then ignored) to the far end of that call with a Replaces (attended,
        RFC 3891 4)."""
        session = self._session(call)
        if replacing is None:
            if target is None:
                raise ValueError("a blind transfer needs a target")
            uri = self._target(session.account, target)
        else:
            other = self._session(replacing).dialog
            if other is None or not isinstance(other.remote_target, SipUri):
                raise KeyError(f"call {replacing!r} has no dialog to replace")
            remote = other.remote_target
            uri = SipUri(remote.host, remote.user, None, remote.port, remote.params.copy(),
                         [("Replaces", (f"{other.call_id};to-tag={other.remote_tag};"
                                       f"from-tag={other.local_tag}"))], remote.scheme)
        session.transfer(uri, now)

    def notify_transfer(self, call: str, status: int, reason: str, now: float) -> None:
        """Report the progress of the call a `TransferRequested` asked for (100/180/200/4xx)."""
        self._session(call).notify_transfer(status, reason, now)

    def send_dtmf(self, call: str, digit: str, duration_ms: int, now: float) -> None:
        self._session(call).send_dtmf(digit, duration_ms, now)

    def ring(self, call: str, now: float) -> None:
        self._session(call).ring(now)

    def early_media(self, call: str, media: MediaPolicy, now: float) -> None:
        self._session(call).early_media(media, now)

    def answer(self, call: str, media: MediaPolicy, now: float) -> None:
        self._session(call).answer(media, now)

    def reject(self, call: str, status: int, reason: str, now: float) -> None:
        self._session(call).reject(status, reason, now)

    def redirect(self, call: str, targets: list[str | Uri], now: float, status: int = 302,
                 reason: str | None = None, *, diversion: str | None = None) -> None:
        """Answer an incoming call that has not been answered with a 3xx whose Contacts are
        `targets` (URIs, or users/numbers at the account's domain, as for `invite`): call
        forwarding on busy or no answer, done by the caller or its proxy. `diversion` (an RFC
        5806 reason token such as "user-busy" or "no-answer") adds a Diversion header.
        Raises ValueError for a status outside 300-399, no targets, a target that does not
        parse or a reason that is not a token; nothing is sent then."""
        if not 300 <= status <= 399:
            raise ValueError(f"a redirect is a 3xx, not {status}")
        if not targets:
            raise ValueError("a redirect needs at least one target")
        if diversion is not None and not is_token(diversion):
            raise ValueError(f"{diversion!r} is not a Diversion reason token")
        session = self._session(call)
        try:
            uris = [self._target(session.account, target) for target in targets]
        except SipParseError as error:
            raise ValueError(f"bad redirect target: {error}") from None
        text = reason if reason is not None else REDIRECT_REASONS.get(status, "Redirected")
        session.redirect(uris, status, text, now, diversion=diversion)

    def cancel(self, call: str, now: float) -> None:
        self._session(call).cancel(now)

    def hangup(self, call: str, now: float, *,
               headers: Sequence[tuple[str, str]] | None = None) -> None:
        """End the call; a BYE carries `headers` (default: what `bye_headers` gives for the
        call, e.g. the runtime's X-RTP-Stat quality summary)."""
        if headers is None and self.bye_headers is not None:
            headers = self.bye_headers(call)
        self._session(call).hangup(now, headers=headers or ())

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
            return known.registration.dialog_contact
        host, port, _ = self.locals[0]
        return f"<sip:{host}:{port}>"

    def route_for(self, account: str) -> list[str]:
        known = self.accounts.get(account)
        return known.registration.route() if known else []

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
            self._answer_unparsed(item.error, source)
        elif isinstance(item, (Request, Response)):
            self._message(item, source, now)

    def _datagram(self, data: bytes, source: Address, now: float) -> None:
        try:
            message = parse_message(data)
        except SipParseError as error:
            self._answer_unparsed(error, source)
            return
        self._message(message, source, now)

    def _answer_unparsed(self, error: SipParseError, source: Address) -> None:
        """A 400 (or 413...) for a request that failed to parse, when RFC 3261 8.2.6 allows
        one and the source may hear from us at all (ghost-call protection)."""
        if error.request is None or error.request.method == "ACK" or not self._open_to(source):
            return
        try:
            answer = response_to_error(error)
        except ValueError:  # the copied fields defeat even build_response: drop it
            log.info("could not answer an unparsable request from %s:%d", source[0], source[1])
            return
        if answer is not None:
            self.layer.send_stateless(answer, source)

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
        if not in_dialog and not self._open_to(source):
            # Grandstream's "SIP from proxy only": a scanner probing with OPTIONS or INVITE
            # learns nothing, not even that a SIP device is here.
            self._refusals.log(source[0], now, "dropped %s from %s:%d (not our registrar)",
                               request.method, source[0], source[1])
            return
        if rejection is not None:
            # Stateless, and before anything makes a transaction: the request may lack what
            # a transaction is keyed on or merged by (Call-ID, From tag, CSeq; 8.2, 17.2.3).
            self.layer.send_stateless(rejection, source)
            return
        if request.method == "INVITE" and not in_dialog:
            account = self._screen_invite(request, source, now)
            if account is None:
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

    def _open_to(self, source: Address) -> bool:
        """Whether out-of-dialog requests from `source` get any answer at all."""
        return not self.accounts or any(
            a.allow_sip_from == "any" or a.trusts(source[0]) for a in self.accounts.values())

    def _screen_invite(self, request: Request, source: Address, now: float) -> _Account | None:
        """Ghost-call protection: which account this INVITE may ring, or None (403) when it
        names none of our users. Only sources that passed `_open_to`, with requests that
        passed `check_request`, get here."""
        user = request.uri.user if isinstance(request.uri, SipUri) else None
        candidates = list(self.accounts.values())
        for account in candidates:
            if account.allow_sip_from == "any" or account.trusts(source[0]):
                contact = account.registration.contact_uri
                if user in (account.settings.user, contact.user) or \
                        (account.allow_sip_from == "any" and len(candidates) == 1):
                    return account
        self._refusals.log(f"user/{source[0]}", now, "refused INVITE from %s:%d for %r "
                           "(not our user)", source[0], source[1], user)
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
        replaced = None
        if request.headers.get("Replaces") is not None:
            replaced = self._replaced(request.headers.get("Replaces") or "")
            if replaced is None:  # RFC 3891 3: no such dialog
                tx.respond(build_response(request, 481, "Call/Transaction Does Not Exist"), now)
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
            request.headers.get("Alert-Info"), bool(session.remote_offer), replaced))

    def _replaced(self, value: str) -> str | None:
        """The call a Replaces header names, matched as RFC 3891 3 says: to-tag is our tag."""
        parsed = parse_replaces(value)
        if parsed is None:
            return None
        call_id, to_tag, from_tag = parsed
        session = self.sessions.get(call_id)
        if session is None or session.dialog is None or session.state != "confirmed":
            return None
        if (session.dialog.local_tag, session.dialog.remote_tag) != (to_tag, from_tag):
            return None
        return session.call

    def _in_dialog(self, request: Request, tx: ServerTransaction, now: float) -> None:
        if request.method == "NOTIFY":
            for mailbox in self.mailboxes.values():
                if mailbox.matches(request):
                    mailbox.receive_notify(request, tx, now)
                    return
        session = self.sessions.get(request.call_id)
        if request.method == "PRACK" and session is not None and session.role == "uas" and \
                session.state == "early" and request.to.tag == session.local_tag:
            session.receive_prack(request, tx, now)  # inside the early dialog (RFC 3262)
            return
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
        mime = content_type.mime if content_type else ""
        event = request.headers.get("Event") or ""
        if event.split(";")[0].strip().lower() == "message-summary" and account is not None:
            waiting, voice = parse_message_summary(request.body)
            self.emit(MessageWaiting(account, waiting, voice))
        else:
            self.emit(Notified(account, event, mime, request.body))


def _via_received(request: Request, source: Address) -> None:
    """RFC 3261 18.2.1 and RFC 3581: note where the request really came from in its top Via."""
    lines = request.headers.lines("Via")
    try:
        parsed = request.via[0]
    except (SipParseError, IndexError):
        return
    top = dataclasses.replace(parsed, params=parsed.params.copy())  # the parsed one is shared
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

