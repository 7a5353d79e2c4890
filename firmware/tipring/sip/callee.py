"""The callee's side of an INVITE session (RFC 3261 13.3): ringing, reliable provisional
responses awaiting PRACK (RFC 3262), early media, the answer (or our offer when the INVITE had
none), rejecting or redirecting the call, CANCEL and the ACK."""

from __future__ import annotations

import logging

from tipring.sdp import MediaPolicy, MediaSession, SdpError, parse_sdp

from .callevents import CallAnswered, MediaChanged
from .dialog import ALLOW, Dialog, new_tag
from .grammar import SipParseError
from .message import Request, Response, build_response, serialize
from .sessionbase import SDP, SessionBase, is_sdp
from .transaction import ServerTransaction
from .uri import Uri

log = logging.getLogger("tipring.sip.session")


class CalleeSide(SessionBase):
    """The methods of a session the far end started (role "uas")."""

    def receive_invite(self, request: Request, tx: ServerTransaction) -> None:
        self.invite = request
        self.server_tx = tx
        self.local_tag = new_tag(self.host.rng)
        self.remote_offer = request.body if is_sdp(request) else b""
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
