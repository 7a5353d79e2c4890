"""Transfer inside a call: sending REFER (RFC 3515) and hearing how it went, taking a REFER
(202, then sipfrag NOTIFYs as our call to the target progresses) and reading Replaces
(RFC 3891) for attended transfer."""

from __future__ import annotations

from .callevents import TransferProgress, TransferRequested
from .grammar import SipParseError, parse_params
from .message import Request, Response, build_response
from .sessionbase import SessionBase
from .transaction import ClientTransaction, ServerTransaction
from .uri import SipUri, Uri


class TransferSide(SessionBase):
    """REFER sent and received inside a confirmed call."""

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


def sipfrag_status(body: bytes) -> tuple[int, str]:
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
