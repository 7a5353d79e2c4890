"""What an INVITE session tells the phone layer: one frozen dataclass per thing that happened
to a call, named by the Call-ID the phone uses as the call's handle."""

from __future__ import annotations

from dataclasses import dataclass

from tipring.sdp import NegotiatedMedia

from .headers import NameAddr
from .uri import Uri


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
