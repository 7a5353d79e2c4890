"""The caller's side of an INVITE session (RFC 3261 13.2): the INVITE, provisional responses
with PRACK (RFC 3262), the answer and its ACK (one per fork, RFC 3261 13.2.2.4), redirects,
digest challenges, 422 Session Interval Too Small (RFC 4028) and CANCEL (9.1)."""

from __future__ import annotations

import logging

# MediaSession draws SRTP keys from the OS (its default), never from the injectable `rng`.
from tipring.sdp import MediaPolicy, MediaSession, SdpError, parse_sdp

from .auth import AuthError, AuthFailed
from .callevents import CallAnswered, CallProgress
from .dialog import ALLOW, Dialog, new_request, new_tag
from .grammar import SipParseError
from .headers import parse_delta_seconds
from .message import Request, Response
from .sessionbase import SDP, SessionBase, is_sdp, parse_session_expires
from .transaction import ClientTransaction
from .uri import Uri

log = logging.getLogger("tipring.sip.session")

MAX_REDIRECTS = 5


class CallerSide(SessionBase):
    """The methods of a session we started (role "uac")."""

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
        if response.body and self.media is not None and is_sdp(response):
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
        if response.body and is_sdp(response):
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
