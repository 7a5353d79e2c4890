"""INVITE sessions (RFC 3261 sections 13-15): one call, as caller or callee, with its SDP.

An `InviteSession` turns phone commands (ring, answer, reject, cancel, hang up, hold) into
requests and responses, and requests and responses into call events. SDP goes through
`tipring.sdp.MediaSession`, so every offer and answer keeps one o= line and its version rules.
The session never picks an address itself: the agent (`SessionHost`) says where a URI's next
hop is, which socket we send from and which Contact we advertise.

Within a call it also handles what rides on the dialog: re-INVITE and UPDATE (hold, resume,
target refresh, glare), RFC 4028 session timers, RFC 3262 reliable provisional responses
(PRACK both ways), SIP INFO DTMF and RFC 3515/3891 transfer.

A forking proxy (RFC 3261 16.7) may hand our INVITE to several phones: each answers in its
own early dialog (its own To tag, RSeq space and PRACKs), and more than one may answer 2xx.
The first 2xx makes the call; any other is acknowledged and hung up at once (13.2.2.4).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

# MediaSession draws SRTP keys from the OS (its default), never from the injectable `rng`.
from tipring.sdp import MediaPolicy, MediaSession, NegotiatedMedia, SdpError, parse_sdp

from .auth import AuthError, AuthFailed, DigestClient
from .dialog import ALLOW, Dialog, new_request, new_tag
from .grammar import SipParseError, parse_params
from .headers import NameAddr, parse_delta_seconds
from .message import Request, Response, build_response, serialize
from .timers import Address
from .transaction import ClientTransaction, ServerTransaction, Timers, TransactionLayer
from .uri import SipUri, Uri

log = logging.getLogger(__name__)

MAX_REDIRECTS = 5
SDP = "application/sdp"
MIN_SE = 90  # RFC 4028 4: the smallest session interval anyone may ask for


# --- events ------------------------------------------------------------------------------

@dataclass(frozen=True)
class IncomingCall:
    call: str
    account: str
    caller: NameAddr  # From (display name and URI) for caller ID
    callee: Uri  # the Request-URI
    asserted_identity: NameAddr | None = None  # P-Asserted-Identity, when the proxy vouches
    privacy: tuple[str, ...] = ()  # Privacy tokens ("id" = withhold the number)
    alert_info: str | None = None  # Alert-Info, for distinctive ringing
    offer: bool = True  # False when the INVITE had no SDP (we offer in the 200)
    replaces: str | None = None  # the call this one replaces (RFC 3891 attended transfer)


@dataclass(frozen=True)
class CallProgress:
    call: str
    status: int  # 180, 181, 182, 183
    reason: str
    early_media: NegotiatedMedia | None = None  # play the far end's audio instead of ringback


@dataclass(frozen=True)
class CallAnswered:
    call: str
    media: NegotiatedMedia


@dataclass(frozen=True)
class MediaChanged:
    """A re-INVITE or UPDATE (ours or theirs) changed the media: hold, resume, new address."""

    call: str
    media: NegotiatedMedia


@dataclass(frozen=True)
class TransferRequested:
    """The far end sent REFER (RFC 3515): call `target` (with `replaces`, an attended transfer,
    RFC 3891) and report how it went with `UserAgent.notify_transfer`."""

    call: str
    target: Uri  # without URI headers
    replaces: str | None = None  # the Replaces value to put in the new INVITE
    referred_by: str | None = None


@dataclass(frozen=True)
class TransferProgress:
    """How our REFER is doing: the REFER's own rejection, or a NOTIFY's sipfrag status."""

    call: str
    status: int
    reason: str


@dataclass(frozen=True)
class CallEnded:
    """The call is over. `status` is the SIP cause (486 busy, 404, 487 cancelled, 200 for a
    BYE after answer...); `by` says who ended it ("local", "remote" or "network")."""

    call: str
    status: int
    reason: str
    by: str


SessionEvent = (IncomingCall | CallProgress | CallAnswered | MediaChanged | CallEnded
                | TransferRequested | TransferProgress)


class SessionHost(Protocol):
    layer: TransactionLayer
    rng: random.Random
    user_agent: str

    def emit(self, event: object) -> None: ...
    def hop(self, uri: Uri, account: str) -> Address | None: ...
    def local_for(self, account: str) -> Address: ...
    def contact_for(self, account: str) -> str: ...
    def route_for(self, account: str) -> list[str]: ...
    def auth_for(self, account: str) -> DigestClient | None: ...
    def forget(self, session: InviteSession) -> None: ...


@dataclass
class SessionTimer:
    """RFC 4028: the session interval and whether we are the side that refreshes it."""

    interval: int
    we_refresh: bool

    def header(self, our_role_in_transaction: str) -> str:
        """Session-Expires naming the refresher by its role in the transaction at hand."""
        other = "uas" if our_role_in_transaction == "uac" else "uac"
        return f"{self.interval};refresher={our_role_in_transaction if self.we_refresh else other}"


def parse_session_expires(value: str) -> tuple[int, str | None]:
    """`delta-seconds *(;param)`: the interval and the refresher ("uac", "uas" or None)."""
    text, semi, rest = value.partition(";")
    interval = parse_delta_seconds(text, "Session-Expires")
    refresher = parse_params(";" + rest).get("refresher") if semi else None
    return interval, refresher.lower() if refresher else None


@dataclass
class _Pending:
    """Our re-INVITE in flight (hold/resume)."""

    tx: ClientTransaction
    direction: str


@dataclass
class InviteSession:
    host: SessionHost
    account: str
    call: str  # the handle the phone layer uses (the Call-ID)
    role: str  # "uac" (we called) or "uas" (we were called)
    state: str = "init"  # init, calling, early, confirmed, terminated
    media: MediaSession | None = None
    dialog: Dialog | None = None
    invite: Request | None = None
    invite_tx: ClientTransaction | None = None
    server_tx: ServerTransaction | None = None
    local_tag: str = ""
    remote_offer: bytes = b""
    direction: str = "sendrecv"
    negotiated: NegotiatedMedia | None = None
    cancel_pending: bool = False
    cancelled: bool = False
    redirects: int = 0
    ack: Request | None = None
    reinvite: _Pending | None = None
    incoming_reinvite: ServerTransaction | None = None
    offer_in_ack: bool = False  # we offered in a 2xx to a bodiless re-INVITE
    early_answer: bytes = b""  # the SDP answer our 183 carried
    early_dialog: Dialog | None = None  # from a reliable 18x, which PRACK needs (RFC 3262)
    last_rseq: int | None = None
    # Forking: the early dialogs by remote (To) tag, each with its own RSeq; the ACKs of
    # the 2xx we did not keep, to send again when that 2xx is retransmitted.
    early_dialogs: dict[str | None, Dialog] = field(default_factory=dict)
    rseqs: dict[str | None, int] = field(default_factory=dict)
    other_forks: dict[str | None, Request] = field(default_factory=dict)
    reliable: bool = False  # the caller requires 100rel: our 18x wait for PRACK
    rseq: int = 0
    bye_headers: list[tuple[str, str]] = field(default_factory=list)  # e.g. X-RTP-Stat
    unacknowledged: Response | None = None  # our reliable 18x awaiting its PRACK
    prack_interval: float = 0.0
    prack_deadline: float = 0.0
    session_timer: SessionTimer | None = None
    retry_direction: str | None = None  # a re-INVITE to send again after 491 (glare)
    queued_direction: str | None = None  # asked for while a re-INVITE was pending (14.1)
    timers: Timers = field(default_factory=Timers)

    # --- timers -----------------------------------------------------------------------------

    def get_timer(self) -> float | None:
        due = self.timers.next()
        return due[0] if due else None

    def handle_timer(self, now: float) -> None:
        while (due := self.timers.next()) is not None and due[0] <= now:
            name = due[1]
            self.timers.stop(name)
            if name == "reinvite-retry" and self.retry_direction is not None:
                direction, self.retry_direction = self.retry_direction, None
                self._reinvite(direction, now)
            elif name == "session-refresh":
                if self.reinvite is not None:  # a re-INVITE is already refreshing it
                    self.timers.start("session-refresh", now + 1.0)
                else:
                    self.refresh(now)
            elif name == "prack-wait":
                self._prack_timer(now)
            elif name == "cancel-timeout" and self.state in ("calling", "early"):
                self._end(487, "Request Terminated", "local")
                if self.invite_tx is not None:
                    self.invite_tx.fail("timeout", now)  # frees it; we ignore its local 408
            elif name == "session-expiry":
                log.info("call %s: session expired without a refresh (RFC 4028)", self.call)
                self._bye(now)
                self._end(408, "Session expired", "network")

    def _arm_session_timer(self, now: float) -> None:
        """Refresh at half the interval; if the far end refreshes, give up (BYE) shortly
        before the interval ends without one (RFC 4028 10)."""
        self.timers.stop("session-refresh", "session-expiry")
        timer = self.session_timer
        if timer is None:
            return
        if timer.we_refresh:
            self.timers.start("session-refresh", now + timer.interval / 2)
        else:
            self.timers.start("session-expiry",
                              now + timer.interval - min(32, timer.interval / 3))

    def _learn_session_timer(self, message: Request | Response, we_are: str, now: float) -> None:
        """Session-Expires in a 2xx we got (`we_are` "uac") or a refresh we got ("uas")."""
        value = message.headers.get("Session-Expires")
        if value is None:
            if self.session_timer is not None:
                self._arm_session_timer(now)  # a refresh without the header still refreshes
            return
        try:
            interval, refresher = parse_session_expires(value)
        except SipParseError:
            return
        if refresher is None:  # no choice made: the side that did not ask refreshes
            refresher = "uas" if we_are == "uac" else "uac"
        self.session_timer = SessionTimer(max(interval, MIN_SE), refresher == we_are)
        self._arm_session_timer(now)

    # --- caller side ------------------------------------------------------------------------

    def start_call(self, target: Uri, from_: str, policy: MediaPolicy, now: float,
                   extra: list[tuple[str, str]] | None = None) -> None:
        h = self.host
        self.media = MediaSession(policy)
        self.local_tag = new_tag(h.rng)
        offer = self.media.create_offer(self.direction).serialize().encode()
        request = new_request(
            "INVITE", target, local=h.local_for(self.account), rng=h.rng,
            from_=f"{from_};tag={self.local_tag}", to=f"<{target}>", call_id=self.call, cseq=1,
            contact=h.contact_for(self.account), route=h.route_for(self.account),
            user_agent=h.user_agent)
        request.headers.add("Allow", ALLOW)
        request.headers.add("Supported", "100rel, timer")
        for name, value in extra or ():
            request.headers.add(name, value)
        request.headers.add("Content-Type", SDP)
        request.body = offer
        self.state = "calling"
        self._send_invite(request, now)

    def _send_invite(self, request: Request, now: float) -> None:
        address = self.host.hop(request.uri, self.account)
        if address is None:
            self._end(503, "No route to the called party", "network")
            return
        self.invite = request
        self.invite_tx = self.host.layer.start_client(request, address, now, self._on_invite_response)

    def _on_invite_response(self, tx: ClientTransaction, response: Response, now: float) -> None:
        if tx is not self.invite_tx or self.ack is not None or self.state == "terminated":
            if 200 <= response.status < 300 and self.invite is not None:
                try:
                    self._late_2xx(response, now)
                except SipParseError as error:
                    log.info("call %s: bad late 2xx: %s", self.call, error.reason)
            return
        status = response.status
        try:
            if status < 200:
                self._provisional(response, now)
            elif status < 300:
                self._answered(tx, response, now)
            elif not self._retried(tx, response, now):
                by = "local" if status == 487 and self.cancelled else \
                    ("network" if tx.error else "remote")
                self._end(status, response.reason, by)
        except (SipParseError, SdpError) as error:
            reason = getattr(error, "reason", str(error))
            log.info("call %s: bad %d response: %s", self.call, status, reason)
            if 200 <= status < 300 and self.dialog is not None:
                self._bye(now)
            self._end(502, "Bad response", "network")

    def _late_2xx(self, response: Response, now: float) -> None:
        """A 2xx after the call was answered or ended: a copy of the one we took (our ACK was
        lost: send it again), or another fork's answer, which is ACKed and hung up."""
        tag = response.to.tag
        if self.dialog is not None and tag == self.dialog.remote_tag:
            if self.ack is not None:
                self._resend_ack()
            return
        ack = self.other_forks.get(tag)
        if ack is None:
            assert self.invite is not None
            log.info("call %s: another fork answered too; hanging it up", self.call)
            fork = Dialog.as_uac(self.invite, response)
            early = self.early_dialogs.get(tag)
            if early is not None:
                fork.local_cseq = early.local_cseq
            ack = self._ack_for(fork)
            self.other_forks[tag] = ack
            self._send_ack(ack, fork)
            self._bye(now, fork)
            return
        self._send_ack(ack, Dialog.as_uac(self.invite, response))

    def _retried(self, tx: ClientTransaction, response: Response, now: float) -> bool:
        """A 3xx followed or a 401/407 answered: the call goes on with a new INVITE."""
        if 300 <= response.status < 400:
            return self._redirect(response, now)
        if response.status == 422:
            return self._interval_too_small(tx, response, now)
        if response.status in (401, 407):
            return self._authenticate(tx, response, now)
        return False

    def _provisional(self, response: Response, now: float) -> None:
        if self.cancel_pending:  # RFC 3261 9.1: CANCEL waits for a provisional response
            self.cancel_pending = False
            self._send_cancel(now)
        if response.status == 100:
            return
        if "100rel" in [t.lower() for t in response.require] and not self._prack(response, now):
            return  # a retransmission of a reliable provisional we already acknowledged
        self.state = "early"
        early = None
        if response.body and self.media is not None and _is_sdp(response):
            try:
                early = self.media.accept_answer(parse_sdp(response.body))
                self.negotiated = early
            except SdpError as error:  # no early media then; the 200 decides the call
                log.info("call %s: unusable early SDP: %s", self.call, error)
        self.host.emit(CallProgress(self.call, response.status, response.reason, early))

    def _prack(self, response: Response, now: float) -> bool:
        """RFC 3262 4: acknowledge a reliable provisional response with PRACK; False when
        it repeats one already acknowledged (or is out of order)."""
        value = response.headers.get("RSeq")
        if value is None or not value.strip().isdigit() or self.invite is None:
            return False
        rseq = int(value)
        tag = response.to.tag
        last = self.rseqs.get(tag)  # each fork numbers its reliable responses on its own
        if last is not None and rseq != last + 1:
            return False
        self.rseqs[tag] = self.last_rseq = rseq
        dialog = self.early_dialogs.get(tag)
        if dialog is None:
            dialog = self.early_dialogs[tag] = Dialog.as_uac(self.invite, response)
        self.early_dialog = dialog
        h = self.host
        prack = dialog.create_request("PRACK", local=h.local_for(self.account), rng=h.rng,
                                      user_agent=h.user_agent)
        prack.headers.add("RAck", f"{rseq} {self.invite.cseq.number} INVITE")
        self._copy_auth(self.invite, prack)
        address = h.hop(dialog.next_hop(), self.account)
        if address is not None:
            h.layer.start_client(prack, address, now, lambda *_: None)
        return True

    def _answered(self, tx: ClientTransaction, response: Response, now: float) -> None:
        assert self.invite is not None and self.media is not None
        self.dialog = Dialog.as_uac(self.invite, response)
        early = self.early_dialogs.get(self.dialog.remote_tag)
        if early is not None:
            self.dialog.local_cseq = early.local_cseq  # PRACKs used CSeq numbers
        self.ack = self._ack_for(self.dialog)
        self._resend_ack()
        if self.cancelled:  # the 200 crossed our CANCEL: the call exists, so end it with BYE
            self._bye(now)
            self._end(487, "Request Terminated", "local")
            return
        if response.body and _is_sdp(response):
            self.negotiated = self.media.accept_answer(parse_sdp(response.body))
        if self.negotiated is None:
            self._bye(now)
            self._end(488, "No SDP answer", "network")
            return
        self.state = "confirmed"
        self._learn_session_timer(response, "uac", now)
        self.host.emit(CallAnswered(self.call, self.negotiated))

    def _ack_for(self, dialog: Dialog) -> Request:
        assert self.invite is not None
        ack = dialog.create_request(
            "ACK", local=self.host.local_for(self.account), rng=self.host.rng,
            cseq=self.invite.cseq.number, user_agent=self.host.user_agent)
        self._copy_auth(self.invite, ack)
        return ack

    def _resend_ack(self) -> None:
        assert self.ack is not None and self.dialog is not None
        self._send_ack(self.ack, self.dialog)

    def _send_ack(self, ack: Request, dialog: Dialog) -> None:
        address = self.host.hop(dialog.next_hop(), self.account)
        if address is not None:
            self.host.layer.send(bytes(ack), address)

    def _redirect(self, response: Response, now: float) -> bool:
        """3xx: try the first Contact as a new target (same Call-ID and From tag, CSeq + 1)."""
        contacts = sorted(response.contacts, key=lambda c: -(c.q if c.q is not None else 1.0))
        if not contacts or self.redirects >= MAX_REDIRECTS or self.invite is None:
            return False
        if self.cancelled:  # a 3xx that crossed our CANCEL: following it would ring a ghost
            return False
        self.redirects += 1
        request = self._next_invite(self.invite)
        request.uri = contacts[0].uri
        request.headers.set("To", f"<{contacts[0].uri}>")
        for name in ("Authorization", "Proxy-Authorization"):
            request.headers.remove(name)
        log.info("call %s redirected (%d)", self.call, response.status)
        self._send_invite(request, now)
        return True

    def _authenticate(self, tx: ClientTransaction, response: Response, now: float) -> bool:
        auth = self.host.auth_for(self.account)
        if auth is None or self.invite is None:
            return False
        sent = [(n, v) for n, v in tx.request.headers
                if n in ("Authorization", "Proxy-Authorization")]
        challenges = [(n, v) for n, v in response.headers
                      if n in ("WWW-Authenticate", "Proxy-Authenticate")]
        request = self._next_invite(tx.request)
        for name in ("Authorization", "Proxy-Authorization"):
            request.headers.remove(name)
        try:
            answers = auth.authorize(challenges, "INVITE", str(request.uri), request.body, sent=sent)
        except (AuthFailed, AuthError):
            return False
        for name, value in answers:
            request.headers.add(name, value)
        self._send_invite(request, now)
        return True

    def _interval_too_small(self, tx: ClientTransaction, response: Response, now: float) -> bool:
        """422 (RFC 4028 6): ask again with the Min-SE the proxy or UAS wants."""
        value = response.headers.get("Min-SE")
        try:
            minimum = parse_delta_seconds(value.split(";")[0], "Min-SE") if value else None
        except SipParseError:
            minimum = None
        previous = tx.request.headers.get("Session-Expires")
        if minimum is None or (previous and parse_session_expires(previous)[0] >= minimum):
            return False
        request = self._next_invite(tx.request)
        request.headers.set("Session-Expires", str(minimum))
        request.headers.set("Min-SE", str(minimum))
        self._send_invite(request, now)
        return True

    def _next_invite(self, previous: Request) -> Request:
        request = new_request(
            "INVITE", previous.uri, local=self.host.local_for(self.account), rng=self.host.rng,
            from_=previous.headers.get("From") or "", to=previous.headers.get("To") or "",
            call_id=self.call, cseq=previous.cseq.number + 1,
            contact=previous.headers.get("Contact"), route=previous.headers.lines("Route"),
            user_agent=self.host.user_agent)
        for name, value in previous.headers:
            if name in ("Allow", "Supported", "Session-Expires", "Min-SE", "Replaces",
                        "Referred-By", "Content-Type", "Authorization", "Proxy-Authorization"):
                request.headers.add(name, value)
        request.body = previous.body
        return request

    def cancel(self, now: float) -> None:
        """Stop an unanswered outgoing call (RFC 3261 9.1)."""
        if self.role != "uac" or self.state not in ("calling", "early") or self.cancelled:
            return
        self.cancelled = True
        if self.state == "calling" and (self.invite_tx is None or
                                        self.invite_tx.state == "calling"):
            self.cancel_pending = True  # no provisional yet: CANCEL may not be sent
            return
        self._send_cancel(now)

    def _send_cancel(self, now: float) -> None:
        invite, tx = self.invite, self.invite_tx
        if invite is None or tx is None:
            return
        request = Request("CANCEL", invite.uri, invite.headers.copy())
        request.headers.remove("Via")
        request.headers.add("Via", invite.headers.lines("Via")[0], first=True)
        for name in ("Contact", "Content-Type", "Allow", "Authorization", "Proxy-Authorization"):
            request.headers.remove(name)
        request.headers.set("CSeq", f"{invite.cseq.number} CANCEL")
        self.host.layer.start_client(request, tx.address, now, lambda *_: None)
        # 9.1: if no final response comes 64*T1 after the CANCEL, give up on the INVITE.
        self.timers.start("cancel-timeout", now + self.host.layer.timers.b)

    # --- callee side ------------------------------------------------------------------------

    def receive_invite(self, request: Request, tx: ServerTransaction) -> None:
        self.invite = request
        self.server_tx = tx
        self.local_tag = new_tag(self.host.rng)
        self.remote_offer = request.body if _is_sdp(request) else b""
        self.state = "early"
        tx.on_no_ack = self._no_ack
        try:
            self.reliable = "100rel" in [t.lower() for t in request.require]
        except SipParseError:
            self.reliable = False
        self.rseq = self.host.rng.randint(1, 2**31 - 1)  # RFC 3262 3: a random start

    def ring(self, now: float) -> None:
        """180 Ringing: the line is ringing the phone."""
        self._provisional_response(180, "Ringing", now)

    def _provisional_response(self, status: int, reason: str, now: float,
                              body: bytes = b"") -> None:
        if self.role != "uas" or self.state != "early" or self.server_tx is None:
            return
        response = self._response(status, reason)
        if body:
            response.headers.add("Content-Type", SDP)
            response.body = body
        if self.reliable:
            if self.unacknowledged is not None:
                return  # RFC 3262 3: one reliable provisional at a time; this one is skipped
            self.rseq += 1
            response.headers.add("Require", "100rel")
            response.headers.add("RSeq", str(self.rseq))
            self.unacknowledged = response
            t1 = self.host.layer.timers.t1
            self.prack_interval = t1
            self.prack_deadline = now + 64 * t1
            self.timers.start("prack-wait", now + t1)
        self.server_tx.respond(response, now)

    def receive_prack(self, request: Request, tx: ServerTransaction, now: float) -> None:
        """PRACK for our reliable 18x (RFC 3262 3): stop retransmitting it."""
        pending = self.unacknowledged
        expected = f"{self.rseq} {self.invite.cseq.number} INVITE" if self.invite else ""
        rack = " ".join((request.headers.get("RAck") or "").split())
        if pending is None or rack != expected:
            tx.respond(build_response(request, 481, "Call/Transaction Does Not Exist"), now)
            return
        self.unacknowledged = None
        self.timers.stop("prack-wait")
        tx.respond(build_response(request, 200, "OK"), now)

    def _prack_timer(self, now: float) -> None:
        if self.unacknowledged is None or self.server_tx is None or self.state != "early":
            return
        if now >= self.prack_deadline:  # RFC 3262 3: 64*T1 without PRACK: 5xx the INVITE
            self.unacknowledged = None
            self.reject(504, "No PRACK", now)
            return
        self.host.layer.send(serialize(self.unacknowledged), self.server_tx.address)
        self.prack_interval *= 2  # T1, doubling with no cap, like Timer A (RFC 3262 3)
        self.timers.start("prack-wait", min(now + self.prack_interval, self.prack_deadline))

    def early_media(self, policy: MediaPolicy, now: float) -> None:
        """183 Session Progress with our SDP answer: audio flows before the 200 (a recorded
        announcement, in-band ringback). The 200 later repeats the same answer."""
        if self.role != "uas" or self.state != "early" or not self.remote_offer:
            return
        self.media = MediaSession(policy)
        try:
            sdp, self.negotiated = self.media.create_answer(parse_sdp(self.remote_offer))
        except SdpError:
            self.media = None
            self.reject(488, "Not Acceptable Here", now)
            return
        self.early_answer = sdp.serialize().encode()
        self._provisional_response(183, "Session Progress", now, self.early_answer)

    def answer(self, policy: MediaPolicy, now: float) -> None:
        """200 OK with our SDP answer (or offer, when the INVITE had none)."""
        if self.role != "uas" or self.state != "early" or self.server_tx is None:
            return
        assert self.invite is not None
        if self.early_answer and self.negotiated is not None:
            self._send_answer(self.early_answer, now)  # RFC 3264: the answer already given
            return
        self.media = MediaSession(policy)
        try:
            if self.remote_offer:
                sdp, self.negotiated = self.media.create_answer(parse_sdp(self.remote_offer))
            else:
                sdp = self.media.create_offer()
        except SdpError as error:
            status = getattr(error, "status", 488)
            self.reject(status, "Not Acceptable Here", now)
            return
        self._send_answer(sdp.serialize().encode(), now)

    def _send_answer(self, body: bytes, now: float) -> None:
        assert self.invite is not None and self.server_tx is not None
        self.unacknowledged = None
        self.timers.stop("prack-wait")
        response = self._response(200, "OK")
        response.headers.add("Allow", ALLOW)
        response.headers.add("Supported", "timer")
        self._answer_session_timer(self.invite, response, now)
        response.headers.add("Content-Type", SDP)
        response.body = body
        self.dialog = Dialog.as_uas(self.invite, self.local_tag, self.host.contact_for(self.account))
        self.state = "confirmed"
        self.server_tx.respond(response, now)
        if self.negotiated is not None:
            self.host.emit(CallAnswered(self.call, self.negotiated))

    def _answer_session_timer(self, request: Request, response: Response, now: float) -> None:
        """RFC 4028 9: take the interval the request asked for; let a caller that supports
        timers refresh (it asked), else refresh it ourselves."""
        value = request.headers.get("Session-Expires")
        if value is None:
            if self.session_timer is not None:
                self._arm_session_timer(now)
                response.headers.add("Session-Expires", self.session_timer.header("uas"))
            return
        try:
            interval, refresher = parse_session_expires(value)
            supported = "timer" in [t.lower() for t in request.supported]
        except SipParseError:
            return
        if refresher is None:
            refresher = "uac" if supported else "uas"
        self.session_timer = SessionTimer(max(interval, MIN_SE), refresher == "uas")
        response.headers.add("Session-Expires", f"{self.session_timer.interval};refresher={refresher}")
        if refresher == "uac":
            response.headers.add("Require", "timer")
        self._arm_session_timer(now)

    def reject(self, status: int, reason: str, now: float) -> None:
        """A final 4xx-6xx: busy (486), declined (603), not found (404)..."""
        if self.role != "uas" or self.state != "early" or self.server_tx is None:
            return
        self.server_tx.respond(self._response(status, reason), now)
        self._end(status, reason, "local")

    def redirect(self, targets: list[Uri], status: int, reason: str, now: float, *,
                 diversion: str | None = None) -> None:
        """A 3xx naming where the caller should try instead (call forwarding done by the
        phone, RFC 3261 8.3 and 21.3): one Contact per target, in the order given; with more
        than one, q-values say that order too (a caller sorts by q, 16.6 / 8.1.3.4).
        `diversion` adds RFC 5806 Diversion (e.g. "no-answer", "user-busy") naming us as the
        diverting party, which PBXs read to show why the call moved."""
        if self.role != "uas" or self.state != "early" or self.server_tx is None:
            return
        assert self.invite is not None
        response = self._response(status, reason)
        for i, target in enumerate(targets):
            q = f";q={max(0.0, 1.0 - i / 10):.1f}" if len(targets) > 1 else ""
            response.headers.add("Contact", f"<{target}>{q}")
        if diversion is not None:  # the address the caller dialled: To, not our Contact
            response.headers.add("Diversion", f"<{self.invite.to.uri}>;reason={diversion};counter=1")
        self.server_tx.respond(response, now)
        self._end(status, reason, "local")

    def _response(self, status: int, reason: str) -> Response:
        assert self.invite is not None
        response = build_response(self.invite, status, reason, to_tag=self.local_tag)
        for line in self.invite.headers.lines("Record-Route"):
            response.headers.add("Record-Route", line)
        if status < 300:
            response.headers.add("Contact", self.host.contact_for(self.account))
        return response

    def receive_cancel(self, now: float) -> None:
        """The caller gave up before we answered: 487 the INVITE (RFC 3261 9.2)."""
        if self.state == "early" and self.server_tx is not None:
            self.server_tx.respond(self._response(487, "Request Terminated"), now)
            self._end(487, "Request Terminated", "remote")

    def receive_ack(self, request: Request, now: float) -> None:
        if self.server_tx is not None:
            self.server_tx.acknowledge(now)
        if self.incoming_reinvite is not None:
            self.incoming_reinvite.acknowledge(now)
            self.incoming_reinvite = None
        if (self.negotiated is None or self.offer_in_ack) and self.media is not None \
                and request.body:
            reinvite, self.offer_in_ack = self.offer_in_ack, False
            try:  # we offered in the 200; the answer is in the ACK (RFC 3264, 13.2.1)
                self.negotiated = self.media.accept_answer(parse_sdp(request.body))
            except SdpError as error:
                log.info("call %s: bad SDP in ACK: %s", self.call, error)
                self._bye(now)
                self._end(488, "Bad SDP answer", "network")
                return
            event = MediaChanged if reinvite else CallAnswered
            self.host.emit(event(self.call, self.negotiated))

    def _no_ack(self, tx: ServerTransaction, now: float) -> None:
        """13.3.1.4: 64*T1 of 2xx without an ACK: end the session with a BYE."""
        if self.state == "confirmed" and tx is self.server_tx:
            self._bye(now)
            self._end(408, "No ACK", "network")

    # --- inside the dialog ------------------------------------------------------------------

    def receive_in_dialog(self, request: Request, tx: ServerTransaction, now: float) -> None:
        method = request.method
        assert self.dialog is not None
        if not self.dialog.accept_remote_cseq(request):
            tx.respond(build_response(request, 500, "CSeq Out of Order"), now)
            return
        if method == "BYE":
            tx.respond(build_response(request, 200, "OK"), now)
            self._end(200, "BYE", "remote")
        elif method in ("INVITE", "UPDATE"):
            self._remote_offer(request, tx, now)
        elif method == "REFER":
            self._receive_refer(request, tx, now)
        elif method == "PRACK":
            self.receive_prack(request, tx, now)
        elif method == "NOTIFY" and (request.headers.get("Event") or "").lower().startswith("refer"):
            tx.respond(build_response(request, 200, "OK"), now)
            status, reason = _sipfrag_status(request.body)
            if status:
                self.host.emit(TransferProgress(self.call, status, reason))
        elif method in ("OPTIONS", "INFO", "NOTIFY"):
            tx.respond(build_response(request, 200, "OK"), now)
        else:
            response = build_response(request, 405, "Method Not Allowed")
            response.headers.add("Allow", ALLOW)
            tx.respond(response, now)

    def _remote_offer(self, request: Request, tx: ServerTransaction, now: float) -> None:
        """re-INVITE or UPDATE from the far end: hold, resume, session refresh, new address."""
        assert self.dialog is not None
        if self.state != "confirmed" or self.media is None:
            tx.respond(build_response(request, 491, "Request Pending"), now)
            return
        if self.reinvite is not None and request.method == "INVITE":
            tx.respond(build_response(request, 491, "Request Pending"), now)  # glare (14.1)
            return
        self.dialog.refresh_target(request)
        sdp = None
        negotiated = None
        try:
            if request.body:
                sdp, negotiated = self.media.create_answer(parse_sdp(request.body),
                                                           self.direction)  # type: ignore[arg-type]
            elif request.method == "INVITE":  # bodiless re-INVITE: we offer, ACK answers
                sdp = self.media.create_offer(self.direction)  # type: ignore[arg-type]
                self.offer_in_ack = True
        except SdpError:
            tx.respond(build_response(request, 488, "Not Acceptable Here"), now)
            return
        response = build_response(request, 200, "OK")
        response.headers.add("Contact", self.host.contact_for(self.account))
        self._answer_session_timer(request, response, now)
        if sdp is not None:  # an UPDATE without SDP is a pure refresh: 200 without a body
            response.headers.add("Content-Type", SDP)
            response.body = sdp.serialize().encode()
        if request.method == "INVITE":
            self.incoming_reinvite = tx
        tx.respond(response, now)
        if negotiated is not None:
            self.negotiated = negotiated
            self.host.emit(MediaChanged(self.call, negotiated))

    def hold(self, now: float) -> None:
        """re-INVITE with a=sendonly (RFC 3264 8.4): the far end stops sending us audio."""
        self._reinvite("sendonly", now)

    def resume(self, now: float) -> None:
        self._reinvite("sendrecv", now)

    def refresh(self, now: float) -> None:
        """A re-INVITE with unchanged SDP (session refresh, RFC 4028 without the timer)."""
        self._reinvite(self.direction, now)

    def _reinvite(self, direction: str, now: float) -> None:
        if self.state != "confirmed" or self.dialog is None or self.media is None:
            return
        if self.reinvite is not None:
            # RFC 3261 14.1: one re-INVITE at a time. Remember the latest wish (a quick
            # flash-back after a hold) and send it when the pending one is answered.
            self.queued_direction = direction
            return
        self.direction = direction
        h = self.host
        request = self.dialog.create_request(
            "INVITE", local=h.local_for(self.account), rng=h.rng, user_agent=h.user_agent)
        request.headers.add("Allow", ALLOW)
        if self.session_timer is not None:
            request.headers.add("Supported", "timer")
            request.headers.add("Session-Expires", self.session_timer.header("uac"))
        request.headers.add("Content-Type", SDP)
        request.body = self.media.create_offer(direction).serialize().encode()  # type: ignore[arg-type]
        address = h.hop(self.dialog.next_hop(), self.account)
        if address is None:
            return
        tx = h.layer.start_client(request, address, now, self._on_reinvite_response)
        self.reinvite = _Pending(tx, direction)

    def _on_reinvite_response(self, tx: ClientTransaction, response: Response, now: float) -> None:
        if response.status < 200 or self.dialog is None or self.media is None:
            return
        pending = self.reinvite
        if 200 <= response.status < 300:
            ack = self.dialog.create_request(
                "ACK", local=self.host.local_for(self.account), rng=self.host.rng,
                cseq=tx.request.cseq.number, user_agent=self.host.user_agent)
            address = self.host.hop(self.dialog.next_hop(), self.account)
            if address is not None:
                self.host.layer.send(bytes(ack), address)
            if pending is None or pending.tx is not tx:
                return  # a retransmitted 2xx: the ACK above was all it needed
            self.reinvite = None
            self.dialog.refresh_target(response)
            self._learn_session_timer(response, "uac", now)
            try:
                self.negotiated = self.media.accept_answer(parse_sdp(response.body))
            except SdpError as error:
                log.info("call %s: bad SDP answer to re-INVITE: %s", self.call, error)
                self._send_queued(now)
                return
            self.host.emit(MediaChanged(self.call, self.negotiated))
            self._send_queued(now)
            return
        if pending is None or pending.tx is not tx:
            return
        self.reinvite = None
        if response.status in (408, 481):  # 12.2.1.2: the dialog is gone
            self._bye(now)
            self._end(response.status, response.reason, "network")
        elif response.status == 491:
            # 14.1 glare: the Call-ID's owner waits 2.1-4 s, the other side 0-2 s.
            wait = self.host.rng.uniform(2.1, 4.0) if self.role == "uac" else \
                self.host.rng.uniform(0.0, 2.0)
            self.retry_direction = self.queued_direction or pending.direction
            self.queued_direction = None
            self.timers.start("reinvite-retry", now + wait)
        else:
            log.info("call %s: re-INVITE answered %d; media unchanged", self.call, response.status)
        if response.status != 491:  # after glare, the retry timer sends the latest wish
            self._send_queued(now)

    def _send_queued(self, now: float) -> None:
        queued, self.queued_direction = self.queued_direction, None
        if queued is not None and queued != self.direction:
            self._reinvite(queued, now)

    def send_dtmf(self, digit: str, duration_ms: int, now: float) -> None:
        """A digit as SIP INFO (application/dtmf-relay), for accounts set to "info" DTMF."""
        if self.state != "confirmed" or self.dialog is None:
            return
        if len(digit) != 1 or digit.upper() not in "0123456789*#ABCD":
            raise ValueError(f"{digit!r} is not a DTMF digit")
        h = self.host
        request = self.dialog.create_request(
            "INFO", local=h.local_for(self.account), rng=h.rng, user_agent=h.user_agent)
        request.headers.add("Content-Type", "application/dtmf-relay")
        request.body = f"Signal={digit.upper()}\r\nDuration={int(duration_ms)}\r\n".encode()
        address = h.hop(self.dialog.next_hop(), self.account)
        if address is not None:
            h.layer.start_client(request, address, now, lambda *_: None)

    # --- transfer (RFC 3515 REFER, RFC 3891 Replaces) ---------------------------------------

    def transfer(self, target: Uri, now: float) -> None:
        """Ask the far end to call `target` (blind transfer; attended when it has ?Replaces)."""
        if self.state != "confirmed" or self.dialog is None:
            return
        h = self.host
        request = self.dialog.create_request(
            "REFER", local=h.local_for(self.account), rng=h.rng, user_agent=h.user_agent)
        request.headers.add("Refer-To", f"<{target}>")
        request.headers.add("Referred-By", f"{self.dialog.local_uri}")
        address = h.hop(self.dialog.next_hop(), self.account)
        if address is not None:
            h.layer.start_client(request, address, now, self._on_refer_response)

    def _on_refer_response(self, tx: ClientTransaction, response: Response, now: float) -> None:
        if response.status >= 300:
            self.host.emit(TransferProgress(self.call, response.status, response.reason))

    def _receive_refer(self, request: Request, tx: ServerTransaction, now: float) -> None:
        try:
            targets = request.name_addrs("Refer-To")
        except SipParseError:
            targets = []
        if len(targets) != 1 or not isinstance(targets[0].uri, SipUri):
            tx.respond(build_response(request, 400, "Bad Refer-To"), now)
            return
        uri = targets[0].uri
        replaces = next((v for n, v in uri.headers if n.lower() == "replaces"), None)
        target = SipUri(uri.host, uri.user, None, uri.port, uri.params.copy(), [], uri.scheme)
        tx.respond(build_response(request, 202, "Accepted"), now)
        self.notify_transfer(100, "Trying", now)  # RFC 3515 2.4.4: a NOTIFY at once
        self.host.emit(TransferRequested(self.call, target, replaces,
                                         request.headers.get("Referred-By")))

    def notify_transfer(self, status: int, reason: str, now: float) -> None:
        """Tell the transferor how our call to the transfer target went (sipfrag NOTIFY)."""
        if self.dialog is None or self.state == "terminated":
            return
        h = self.host
        request = self.dialog.create_request(
            "NOTIFY", local=h.local_for(self.account), rng=h.rng, user_agent=h.user_agent)
        request.headers.add("Event", "refer")
        state = "active;expires=60" if status < 200 else "terminated;reason=noresource"
        request.headers.add("Subscription-State", state)
        request.headers.add("Content-Type", "message/sipfrag;version=2.0")
        request.body = f"SIP/2.0 {status} {reason}\r\n".encode()
        address = h.hop(self.dialog.next_hop(), self.account)
        if address is not None:
            h.layer.start_client(request, address, now, lambda *_: None)

    def hangup(self, now: float, *, headers: Sequence[tuple[str, str]] = ()) -> None:
        """The phone hung up: BYE (with `headers`), CANCEL or a decline, whichever the state
        calls for."""
        if self.state == "confirmed":
            self.bye_headers = list(headers)
            self._bye(now)
            self._end(200, "BYE", "local")
        elif self.role == "uac" and self.state in ("calling", "early"):
            self.cancel(now)
        elif self.role == "uas" and self.state == "early":
            self.reject(603, "Decline", now)

    def _bye(self, now: float, dialog: Dialog | None = None) -> None:
        """BYE in the call's dialog, or in `dialog` (another fork's, whose answer is moot)."""
        fork = dialog is not None
        dialog = dialog or self.dialog
        if dialog is None:
            return
        h = self.host
        request = dialog.create_request(
            "BYE", local=h.local_for(self.account), rng=h.rng, user_agent=h.user_agent)
        for name, value in [] if fork else self.bye_headers:
            request.headers.add(name, value)
        address = h.hop(dialog.next_hop(), self.account)
        if address is not None:
            h.layer.start_client(request, address, now,
                                 (lambda *_: None) if fork else self._on_bye_response)

    def _on_bye_response(self, tx: ClientTransaction, response: Response, now: float) -> None:
        if response.status not in (401, 407):
            return
        auth = self.host.auth_for(self.account)
        if auth is None or self.dialog is None:
            return
        sent = [(n, v) for n, v in tx.request.headers
                if n in ("Authorization", "Proxy-Authorization")]
        challenges = [(n, v) for n, v in response.headers
                      if n in ("WWW-Authenticate", "Proxy-Authenticate")]
        request = self.dialog.create_request(
            "BYE", local=self.host.local_for(self.account), rng=self.host.rng,
            user_agent=self.host.user_agent)
        try:
            answers = auth.authorize(challenges, "BYE", str(request.uri), sent=sent)
        except (AuthFailed, AuthError):
            return
        for name, value in [*answers, *self.bye_headers]:
            request.headers.add(name, value)
        self.host.layer.start_client(request, tx.address, now, self._on_bye_response)

    def _copy_auth(self, source: Request, target: Request) -> None:
        """RFC 3261 22.1: an ACK for a 2xx carries the INVITE's credentials."""
        for name in ("Authorization", "Proxy-Authorization"):
            for value in source.headers.lines(name):
                target.headers.add(name, value)

    def _end(self, status: int, reason: str, by: str) -> None:
        if self.state == "terminated":
            return
        self.state = "terminated"
        self.timers.clear()
        self.host.emit(CallEnded(self.call, status, reason, by))
        self.host.forget(self)


def _sipfrag_status(body: bytes) -> tuple[int, str]:
    """The status line of a message/sipfrag body ("SIP/2.0 180 Ringing"), or (0, "")."""
    line = body.split(b"\r\n", 1)[0].decode("utf-8", "replace").strip()
    parts = line.split(" ", 2)
    if len(parts) >= 2 and parts[0].upper() == "SIP/2.0" and parts[1].isdigit() \
            and len(parts[1]) == 3:
        return int(parts[1]), parts[2] if len(parts) > 2 else ""
    return 0, ""


def parse_replaces(value: str) -> tuple[str, str, str] | None:
    """Replaces (RFC 3891 6.1): (Call-ID, to-tag, from-tag), or None when malformed."""
    call_id, semi, rest = value.strip().partition(";")
    if not semi or not call_id:
        return None
    try:
        params = parse_params(";" + rest)
    except SipParseError:
        return None
    to_tag, from_tag = params.get("to-tag"), params.get("from-tag")
    if to_tag is None or from_tag is None:
        return None
    return call_id, to_tag, from_tag


def _is_sdp(message: Request | Response) -> bool:
    try:
        content_type = message.content_type
    except SipParseError:
        return False
    return bool(message.body) and content_type is not None and content_type.mime == SDP
