"""Message-waiting: SUBSCRIBE to message-summary (RFC 6665, RFC 3842) and unsolicited NOTIFY."""

from __future__ import annotations

import random

import pytest

from sipnet import FakeRegistrar, VirtualNetwork
from test_sip_registration import PHONE, REG, events, settings
from tipring.sip.agent import Notified, UserAgent
from tipring.sip.message import Request, build_response, parse_message
from tipring.sip.mailbox import MessageWaiting
from tipring.sip.registration import Registered

SUMMARY = b"Messages-Waiting: yes\r\nMessage-Account: sip:*97@tipring.test\r\nVoice-Message: 3/1\r\n"


class MailboxServer(FakeRegistrar):
    """The registrar, plus a message-summary notifier: challenges the first SUBSCRIBE, then
    accepts with a 200 and sends a NOTIFY in the new dialog (before the 200 if `overtake`)."""

    def __init__(self, *, overtake: bool = False, state: str = "active;expires=600") -> None:
        super().__init__()
        self.overtake = overtake
        self.state = state
        self.subscribes: list[tuple[float, Request]] = []
        self.notify_cseq = 0

    def receive(self, data, source, now):
        message = parse_message(data) if data.strip(b"\r\n") else None
        if isinstance(message, Request) and message.method == "SUBSCRIBE":
            self.subscribes.append((now, message))
            if len(self.subscribes) == 1:
                challenge = build_response(message, 401, "Unauthorized", to_tag="mwi")
                challenge.headers.add("WWW-Authenticate",
                                      'Digest realm="tipring.test", nonce="m1", qop="auth"')
                self.send_to(bytes(challenge), source)
                return
            ok = build_response(message, 200, "OK", to_tag="mwi")
            ok.headers.add("Contact", "<sip:mwi@203.0.113.5>")
            ok.headers.add("Expires", message.headers.get("Expires") or "600")
            notify = self.notify(message)
            first, second = (notify, ok) if self.overtake else (ok, notify)
            self.send_to(bytes(first), source)
            self.send_to(bytes(second), source)
            return
        if isinstance(message, Request) and message.method == "NOTIFY":
            return
        if isinstance(message, Request) or message is None:
            super().receive(data, source, now)
        # responses (to our NOTIFYs) need nothing

    def notify(self, subscribe: Request) -> Request:
        self.notify_cseq += 1
        request = Request("NOTIFY", subscribe.contacts[0].uri)
        h = request.headers
        h.add("Via", f"SIP/2.0/UDP 203.0.113.5:5060;branch=z9hG4bKn{self.notify_cseq}")
        h.add("From", "<sip:alice@tipring.test>;tag=mwi")
        h.add("To", f"<sip:alice@tipring.test>;tag={subscribe.from_.tag}")
        h.add("Call-ID", subscribe.call_id)
        h.add("CSeq", f"{self.notify_cseq} NOTIFY")
        h.add("Contact", "<sip:mwi@203.0.113.5>")
        h.add("Event", "message-summary")
        h.add("Subscription-State", self.state)
        h.add("Content-Type", "application/simple-message-summary")
        request.body = SUMMARY
        return request


def setup(server: MailboxServer):
    net = VirtualNetwork(latency=0.01)
    agent = UserAgent(PHONE, rng=random.Random(4))
    agent.add_account(settings(), [REG])
    net.attach(PHONE, agent)
    net.attach(REG, server)
    agent.register("acct", 0.0)
    net.run(1)
    assert [type(e) for e in events(agent)] == [Registered]
    agent.subscribe_mailbox("acct", net.now, expires=600)
    return net, agent


@pytest.mark.parametrize("overtake", [False, True])
def test_subscription_reports_messages_and_refreshes_in_its_dialog(overtake):
    server = MailboxServer(overtake=overtake)
    net, agent = setup(server)
    net.run(2)
    assert events(agent) == [MessageWaiting("acct", True, (3, 1))]
    first, second = (r for _, r in server.subscribes)
    assert first.headers.get("Event") == "message-summary"
    assert first.headers.get("Accept") == "application/simple-message-summary"
    assert second.headers.get("Authorization") is not None  # the 401 was answered
    assert str(first.uri) == "sip:alice@tipring.test" and first.to.tag is None
    notify_ok = [p for p in net.sent("192.168.1.10", "SIP/2.0 200")]
    assert len(notify_ok) == 1 and parse_message(notify_ok[0].data).cseq.method == "NOTIFY"
    # Refreshed 60 s (10%) before the 600 s run out, inside the dialog the NOTIFY or 2xx made.
    net.run(1 + 540 + 0.5)
    refresh_time, refresh = server.subscribes[2]
    assert refresh_time == pytest.approx(1.03 + 540, abs=0.05)
    assert refresh.to.tag == "mwi" and refresh.call_id == first.call_id
    assert str(refresh.uri) == "sip:mwi@203.0.113.5"  # the notifier's Contact
    assert refresh.cseq.number > second.cseq.number


def test_terminated_subscription_starts_again_later():
    server = MailboxServer(state="terminated;reason=timeout")
    net, agent = setup(server)
    net.run(2)
    assert events(agent) == [MessageWaiting("acct", True, (3, 1))]
    mailbox = agent.mailboxes["acct"]
    assert mailbox.state == "failed" and mailbox.dialog is None
    retry_at = mailbox.timers.due("retry")
    assert 1 + 15 <= retry_at <= 1 + 31
    net.run(retry_at + 0.1)
    again = server.subscribes[-1][1]
    assert again.to.tag is None and again.call_id != server.subscribes[0][1].call_id


def test_unsolicited_message_summary_and_other_notify():
    ua = UserAgent(PHONE, rng=random.Random(1))
    ua.add_account(settings(), [REG])
    for event, content_type, body in (
            ("message-summary", "application/simple-message-summary", SUMMARY),
            ("check-sync", "application/simple-message-summary", b"")):
        notify = (
            f"NOTIFY sip:alice@192.168.1.10 SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 203.0.113.5:5060;branch=z9hG4bK{event}\r\n"
            f"From: <sip:alice@tipring.test>;tag=x\r\nTo: <sip:alice@tipring.test>\r\n"
            f"Call-ID: u-{event}\r\nCSeq: 1 NOTIFY\r\nEvent: {event}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        ua.receive(notify, REG, 0.0)
    statuses = [parse_message(d).status for d, _ in ua.datagrams_to_send()]
    assert statuses == [200, 200]
    assert events(ua) == [MessageWaiting("acct", True, (3, 1)),
                          Notified("acct", "check-sync", "application/simple-message-summary",
                                   b"")]
