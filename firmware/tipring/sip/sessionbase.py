"""What every side of an INVITE session shares: the session's state (one dataclass, so the
caller, callee and transfer parts read and write the same fields), the RFC 4028 session timer,
and ending a call (BYE, with the credentials a challenged BYE needs).

`InviteSession` (session.py) is this state plus the parts in caller.py, callee.py and
transfer.py; each part is a subclass holding one job's methods.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from tipring.sdp import MediaSession, NegotiatedMedia

from .auth import AuthError, AuthFailed, DigestClient
from .callevents import CallEnded
from .dialog import Dialog
from .grammar import SipParseError, parse_params
from .headers import parse_delta_seconds
from .message import Request, Response
from .timers import Address
from .transaction import ClientTransaction, ServerTransaction, Timers, TransactionLayer
from .uri import Uri

if TYPE_CHECKING:
    from .session import InviteSession

SDP = "application/sdp"
MIN_SE = 90  # RFC 4028 4: the smallest session interval anyone may ask for


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
class SessionBase:
    """One call's state, as caller or callee (see `InviteSession`)."""

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


def is_sdp(message: Request | Response) -> bool:
    try:
        content_type = message.content_type
    except SipParseError:
        return False
    return bool(message.body) and content_type is not None and content_type.mime == SDP
