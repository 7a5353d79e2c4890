"""The checks a UAS makes before acting on a request (RFC 3261 8.2), each naming its response.

`check_request` runs them in the RFC's order (method, headers, Request-URI, Require, content)
and returns the rejection to send, or None when the request may be processed. What an ATA
supports (methods, option tags, body types) is a `UasPolicy` the agent passes in. Where RFC
4475 leaves an element a choice, the comment on the check says which one this makes and why.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from .grammar import SipParseError
from .message import Request, Response, build_response
from .uri import SipUri

log = logging.getLogger(__name__)

# The IANA SIP method registry: a method outside it is "not recognised" (501); one inside it
# that the policy does not allow is "recognised but not supported" (405 with Allow).
KNOWN_METHODS = frozenset(
    {
        "ACK", "BYE", "CANCEL", "INFO", "INVITE", "MESSAGE", "NOTIFY", "OPTIONS", "PRACK",
        "PUBLISH", "REFER", "REGISTER", "SUBSCRIBE", "UPDATE",
    }
)
MAGIC_COOKIE = "z9hG4bK"

_DEFAULT_BODY_TYPES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "INVITE": ("application/sdp",),
        "ACK": ("application/sdp",),
        "UPDATE": ("application/sdp",),
        "PRACK": ("application/sdp",),
        "INFO": ("application/dtmf-relay", "application/dtmf"),
        "NOTIFY": ("application/simple-message-summary", "message/sipfrag"),
    }
)


@dataclass(frozen=True)
class UasPolicy:
    """What this user agent accepts. The defaults are an ATA's: no registrar, no proxy.

    `body_types` maps a method to the Content-Types its body may have; a method not listed
    takes no body. `proxy` makes Max-Forwards 0 a 483 (RFC 3261 16.3); an endpoint processes
    such a request (RFC 4475 3.3.11).
    """

    allowed_methods: tuple[str, ...] = (
        "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "INFO", "NOTIFY", "REFER", "UPDATE",
    )
    supported_options: tuple[str, ...] = ()
    uri_schemes: tuple[str, ...] = ("sip", "sips", "tel")
    body_types: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: _DEFAULT_BODY_TYPES)
    content_encodings: tuple[str, ...] = ("identity",)
    proxy: bool = False


ATA_POLICY = UasPolicy()


def response_to_error(error: SipParseError) -> Response | None:
    """The answer to a request that failed to parse, or None when it must only be dropped."""
    if error.request is None:
        return None
    return build_response(error.request, error.status, error.reason)


def check_request(request: Request, policy: UasPolicy = ATA_POLICY) -> Response | None:
    """The rejection RFC 3261 8.2 names for `request`, or None to process it.

    An ACK is never answered (RFC 3261 17.2.3): when one is rejected here the caller drops it
    instead of sending the response.
    """
    try:
        rejection = _check(request, policy)
    except SipParseError as error:  # a header read lazily here was malformed
        rejection = build_response(request, 400, error.reason)
    if rejection is not None:
        log.info("rejecting %s request: %d %s", request.method, rejection.status, rejection.reason)
    return rejection


def _check(request: Request, policy: UasPolicy) -> Response | None:
    if request.version != "SIP/2.0":
        return build_response(request, 505, "Version Not Supported")  # RFC 4475 badvers

    # 8.2.1: method first. RFC 4475 mismatch02 (an unknown method whose CSeq also disagrees)
    # prefers 501 to 400, so the method is judged before the CSeq is.
    method = request.method
    if method not in policy.allowed_methods:
        if method not in KNOWN_METHODS:
            return build_response(request, 501, "Not Implemented")
        rejection = build_response(request, 405, "Method Not Allowed")
        rejection.headers.add("Allow", ", ".join(policy.allowed_methods))
        return rejection

    # RFC 3261 8.1.1: To, From, CSeq, Call-ID and Via are mandatory (the parser insists on
    # Via). Max-Forwards is not required here: RFC 2543 senders omit it and RFC 4475 inv2543
    # asks that they be accepted.
    missing = [n for n in ("Via", "To", "From", "CSeq", "Call-ID") if n not in request.headers]
    if missing:
        noun = "header" if len(missing) == 1 else "headers"
        return build_response(request, 400, f"Missing {', '.join(missing)} {noun}")  # insuf
    if request.cseq.method != method:
        return build_response(request, 400, "CSeq method does not match")  # mismatch01

    # A Max-Forwards that is not a number at all is a syntax error (400); one out of range
    # is read as absent (`_max_forwards`), the leeway RFC 4475 3.1.2.4 gives for range only.
    hops = request.headers.get("Max-Forwards")
    if hops is not None and not (hops.strip().isascii() and hops.strip().isdigit()):
        return build_response(request, 400, "Bad Max-Forwards header")

    # RFC 4475 3.2.1 badbranch: the magic cookie alone is no transaction identifier. The RFC
    # allows a 400 or a fallback to RFC 2543 matching; guessing at matching is worse.
    top = request.via[0]
    if top.branch == MAGIC_COOKIE:
        return build_response(request, 400, "Via branch has no transaction identifier")

    if policy.proxy and _max_forwards(request) == 0:
        return build_response(request, 483, "Too Many Hops")

    # 8.2.2.1: a Request-URI scheme we cannot serve (RFC 4475 unkscm, novelsc).
    if request.uri.scheme not in policy.uri_schemes:
        return build_response(request, 416, "Unsupported URI Scheme")

    # 8.2.2.3: every Require option tag must be supported; CANCEL and ACK ignore Require.
    if method not in ("ACK", "CANCEL"):
        unknown = [tag for tag in request.require if tag.lower() not in _lower(policy.supported_options)]
        if unknown:
            rejection = build_response(request, 420, "Bad Extension")  # RFC 4475 bext01
            rejection.headers.add("Unsupported", ", ".join(unknown))
            return rejection

    rejection = _check_body(request, policy)
    if rejection is not None:
        return rejection

    # RFC 4475 3.3.15 sdp01: an INVITE answer carries SDP; if Accept rules SDP out, 406.
    if method == "INVITE":
        accept = request.accept
        if accept is not None and not any(m.matches("application/sdp") for m in accept):
            rejection = build_response(request, 406, "Not Acceptable")
            rejection.headers.add("Accept", "application/sdp")
            return rejection

    # RFC 4475 3.3.4 unksm2: a registrar needs a SIP or SIPS address-of-record in To.
    if method == "REGISTER" and not isinstance(request.to.uri, SipUri):
        return build_response(request, 400, "To is not a SIP or SIPS address-of-record")
    return None


def _check_body(request: Request, policy: UasPolicy) -> Response | None:
    """8.2.3: a body we cannot read is a 415 that lists what we can (RFC 4475 invut)."""
    if not request.body:
        return None
    content_type = request.content_type
    if content_type is None:
        return build_response(request, 400, "Missing Content-Type header")  # RFC 3261 20.15
    accepted = policy.body_types.get(request.method, ())
    encodings = [e.lower() for e in request.tokens("Content-Encoding")]
    if content_type.mime not in accepted:
        rejection = build_response(request, 415, "Unsupported Media Type")
        rejection.headers.add("Accept", ", ".join(accepted))
        return rejection
    if any(e not in _lower(policy.content_encodings) for e in encodings):
        rejection = build_response(request, 415, "Unsupported Media Type")
        rejection.headers.add("Accept-Encoding", ", ".join(policy.content_encodings))
        return rejection
    return None


def _max_forwards(request: Request) -> int | None:
    """Max-Forwards, or None when absent or out of range.

    RFC 4475 3.1.2.4 (scalar02): when only Max-Forwards is in error an element may process
    the request as if the field were absent, which is what this does.
    """
    try:
        return request.max_forwards
    except SipParseError:
        return None


def _lower(values: tuple[str, ...]) -> frozenset[str]:
    return frozenset(v.lower() for v in values)


def check_response(response: Response) -> str | None:
    """Why a UAC must discard `response`, or None to pass it to the transaction layer.

    RFC 3261 8.1.3.3: a response with more than one Via is discarded (it was meant for a
    proxy; RFC 4475 bcast would otherwise send on to a broadcast address).
    """
    reason = None
    try:
        if response.version != "SIP/2.0":
            reason = "unsupported SIP version"
        elif len(response.via) != 1:
            reason = "response must carry exactly one Via"
        else:
            missing = [n for n in ("From", "To", "Call-ID", "CSeq") if n not in response.headers]
            if missing:
                reason = f"missing {', '.join(missing)}"
            else:
                response.cseq  # noqa: B018 - parse check
    except SipParseError as error:
        reason = error.reason
    if reason is not None:
        log.info("discarding SIP %d response: %s", response.status, reason)
    return reason
