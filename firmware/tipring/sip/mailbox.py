"""Message waiting for an account (RFC 6665 SUBSCRIBE, RFC 3842 message-summary): the
subscription to the account's own mailbox, and the summary a NOTIFY carries (subscribed or
unsolicited), which lights the message lamp and turns dial tone into stutter."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from .auth import AuthError, AuthFailed
from .dialog import Dialog, new_call_id, new_request, new_tag
from .grammar import SipParseError
from .message import Request, Response, build_response
from .registration import Registration, backoff, refresh_delay
from .transaction import ClientTransaction, ServerTransaction, Timers

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MessageWaiting:
    """A message-summary NOTIFY (RFC 3842), subscribed or unsolicited: the message lamp and
    stutter dial tone follow `waiting`; `voice` is (new, old) when the server counts."""

    account: str
    waiting: bool | None
    voice: tuple[int, int] | None = None


class MailboxSubscription:
    """SUBSCRIBE to the account's own message-summary (RFC 6665, RFC 3842).

    It lives beside the registration because it shares everything with it: the server, the
    Contact learned through rport, the credentials and the refresh and back-off rules. The
    dialog is made by the 2xx or by a NOTIFY that overtakes it, whichever comes first.
    """

    def __init__(self, registration: Registration, *, expires: int = 3600) -> None:
        self.registration = registration
        self.expires = expires
        self.state = "idle"  # idle, subscribing, active, failed, ended
        self.call_id = new_call_id(registration.rng, registration.local[0])
        self.tag = new_tag(registration.rng)
        self.dialog: Dialog | None = None
        self.cseq = 0
        self.failures = 0
        self.timers = Timers()
        self._tx: ClientTransaction | None = None

    def get_timer(self) -> float | None:
        due = self.timers.next()
        return due[0] if due else None

    def handle_timer(self, now: float) -> None:
        while (due := self.timers.next()) is not None and due[0] <= now:
            self.timers.stop(due[1])
            if self._tx is None and self.state != "ended":
                self.subscribe(now)

    def subscribe(self, now: float, expires: int | None = None) -> None:
        if self.registration.server is None:
            return
        expires = self.expires if expires is None else expires
        request = self._request(expires)
        for name, value in self.registration.auth.preauthorize("SUBSCRIBE", str(request.uri)):
            request.headers.add(name, value)
        self.state = "subscribing" if expires else "ended"
        self._send(request, now)

    def _request(self, expires: int) -> Request:
        """A SUBSCRIBE: inside the dialog once there is one (a refresh), else a new one."""
        r = self.registration
        aor = r.settings.aor
        if self.dialog is not None:
            request = self.dialog.create_request("SUBSCRIBE", local=r.local, rng=r.rng,
                                                 user_agent=r.user_agent)
        else:
            self.cseq += 1
            request = new_request(
                "SUBSCRIBE", aor, local=r.local, rng=r.rng, from_=f"<{aor}>;tag={self.tag}",
                to=f"<{aor}>", call_id=self.call_id, cseq=self.cseq, contact=r.contact,
                route=r.route(), user_agent=r.user_agent)
        request.headers.add("Event", "message-summary")
        request.headers.add("Accept", "application/simple-message-summary")
        request.headers.add("Expires", str(expires))
        return request

    def unsubscribe(self, now: float) -> None:
        self.timers.clear()
        if self.state in ("active", "subscribing"):
            self.subscribe(now, expires=0)
        self.state = "ended"

    def _send(self, request: Request, now: float) -> None:
        server = self.registration.server
        if server is not None:
            self._tx = self.registration.layer.start_client(request, server, now, self._on_response)

    def _on_response(self, tx: ClientTransaction, response: Response, now: float) -> None:
        if response.status < 200:
            return
        self._tx = None
        if self.state == "ended":
            return
        if response.status < 300:
            if self.dialog is None:
                self.dialog = Dialog.as_uac(tx.request, response)
            self.failures = 0
            self.state = "active"
            granted = response.expires if response.expires is not None else self.expires
            self.timers.start("refresh", now + refresh_delay(max(granted, 60)))
            return
        if response.status in (401, 407):
            sent = [(n, v) for n, v in tx.request.headers
                    if n in ("Authorization", "Proxy-Authorization")]
            challenges = [(n, v) for n, v in response.headers
                          if n in ("WWW-Authenticate", "Proxy-Authenticate")]
            retry = self._request(int(tx.request.headers.get("Expires") or self.expires))
            try:
                answers = self.registration.auth.authorize(
                    challenges, "SUBSCRIBE", str(retry.uri), sent=sent)
            except (AuthFailed, AuthError):
                self._failed(response.status, now, long=True)
                return
            for name, value in answers:
                retry.headers.add(name, value)
            self._send(retry, now)
            return
        if response.status == 481:  # the server forgot our dialog: start a new one
            self.dialog = None
        self._failed(response.status, now, long=response.status in (403, 404, 489))

    def _failed(self, status: int, now: float, *, long: bool) -> None:
        """Retry later: soon after a transient failure, an hour after "no such service"."""
        self.state = "failed"
        self.failures += 1
        s = self.registration.settings
        wait = s.forbidden_retry_s if long else backoff(self.failures, s.retry_base_s,
                                                        s.retry_max_s)
        wait *= self.registration.rng.uniform(0.5, 1.0)
        log.info("message-summary subscription for %s failed (%d); retry in %.0f s",
                 s.account, status, wait)
        self.timers.start("retry", now + wait)

    def matches(self, request: Request) -> bool:
        try:
            return request.call_id == self.call_id and request.to.tag == self.tag
        except SipParseError:
            return False

    def receive_notify(self, request: Request, tx: ServerTransaction, now: float) -> None:
        """A NOTIFY in our subscription: answer it, report the summary, follow its state."""
        if self.dialog is None:  # the NOTIFY overtook the 2xx (RFC 6665 4.1.2.4)
            self.dialog = Dialog.as_uas(request, self.tag, self.registration.contact)
            self.dialog.local_cseq = self.cseq
        elif not self.dialog.accept_remote_cseq(request):
            tx.respond(build_response(request, 500, "CSeq Out of Order"), now)
            return
        tx.respond(build_response(request, 200, "OK"), now)
        state = (request.headers.get("Subscription-State") or "").split(";")[0].strip().lower()
        if state == "terminated" and self.state != "ended":
            self.dialog = None
            self.call_id = new_call_id(self.registration.rng, self.registration.local[0])
            self.timers.stop("refresh")
            self._failed(0, now, long=False)
        waiting, voice = parse_message_summary(request.body)
        if request.body:
            self.registration.emit(MessageWaiting(self.registration.settings.account,
                                                  waiting, voice))


def parse_message_summary(body: bytes) -> tuple[bool | None, tuple[int, int] | None]:
    """Messages-Waiting and Voice-Message "new/old" from a simple-message-summary body."""
    waiting: bool | None = None
    voice: tuple[int, int] | None = None
    for line in body.decode("utf-8", "replace").splitlines():
        name, _, value = line.partition(":")
        name, value = name.strip().lower(), value.strip()
        if name == "messages-waiting":
            waiting = value.lower() == "yes"
        elif name == "voice-message":
            counts = value.split("(")[0].strip().split("/")
            if len(counts) == 2 and all(c.strip().isdigit() for c in counts):
                voice = (int(counts[0]), int(counts[1]))
    return waiting, voice
