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

The session is split by job: its state and what every side shares in `sessionbase`, the
caller's side in `caller`, the callee's in `callee`, REFER in `transfer`, the events it emits
in `callevents`; this module joins them and holds what rides on the confirmed dialog.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from tipring.sdp import SdpError, parse_sdp

from .callee import CalleeSide
from .caller import MAX_REDIRECTS, CallerSide
from .callevents import (
    CallAnswered,
    CallEnded,
    CallProgress,
    IncomingCall,
    MediaChanged,
    SessionEvent,
    TransferProgress,
    TransferRequested,
)
from .dialog import ALLOW
from .message import Request, Response, build_response
from .sessionbase import MIN_SE, SDP, SessionHost, SessionTimer, _Pending, parse_session_expires
from .transaction import ClientTransaction, ServerTransaction
from .transfer import TransferSide, parse_replaces, sipfrag_status

__all__ = [
    "MAX_REDIRECTS", "MIN_SE", "CallAnswered", "CallEnded", "CallProgress", "IncomingCall",
    "InviteSession", "MediaChanged", "SessionEvent", "SessionHost", "SessionTimer",
    "TransferProgress", "TransferRequested", "parse_replaces", "parse_session_expires",
]

log = logging.getLogger(__name__)


@dataclass
class InviteSession(CallerSide, CalleeSide, TransferSide):
    """One call: the state in `SessionBase`, each side's methods in its part; here what
    rides on the confirmed dialog (re-INVITE/UPDATE, INFO DTMF) and the timers."""

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
            status, reason = sipfrag_status(request.body)
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
