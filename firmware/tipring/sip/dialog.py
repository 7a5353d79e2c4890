"""Dialogs (RFC 3261 section 12) and the building of requests inside and outside them.

A dialog is the peer-to-peer relationship an INVITE sets up: Call-ID and both tags identify
it, the route set (from Record-Route, frozen when the dialog is made) says which proxies stay
on the path, and the remote target (the peer's Contact, refreshed by re-INVITE and UPDATE) is
where requests go. Requests follow loose routing (RFC 3261 12.2.1.1, 16.12): with an `;lr`
first hop the Request-URI is the remote target; a strict router gets the Request-URI instead
and the remote target goes last in Route.
"""

from __future__ import annotations

import ipaddress
import logging
import random
from dataclasses import dataclass, field

from .fields import Headers
from .grammar import SipParseError
from .headers import NameAddr, Via
from .message import Request, Response
from .timers import Address, new_branch, random_token
from .uri import SipUri, Uri

log = logging.getLogger(__name__)

# What the agent really handles.
ALLOW_METHODS = ("INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "INFO", "NOTIFY", "PRACK",
                 "REFER", "UPDATE")
ALLOW = ", ".join(ALLOW_METHODS)


def new_call_id(rng: random.Random, host: str) -> str:
    host = host.strip("[]").replace(":", "-")  # an IPv6 host must not put ":" in a Call-ID word
    return f"{random_token(rng, 96)}@{host}"


def new_tag(rng: random.Random) -> str:
    """A From/To tag with 64 random bits from the injected generator (RFC 3261 19.3)."""
    return random_token(rng, 64)


def via_for(local: Address, branch: str) -> str:
    """Our Via: sent-by is the local socket, with `;rport` asking for RFC 3581 treatment."""
    host, port, transport = local
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return str(Via(transport.upper(), host, port)) + f";rport;branch={branch}"


def new_request(method: str, uri: Uri, *, local: Address, rng: random.Random, from_: str,
                to: str, call_id: str, cseq: int, contact: str | None = None,
                route: list[str] | None = None, user_agent: str | None = None) -> Request:
    """A request with the header set RFC 3261 8.1.1 requires and a fresh branch."""
    headers = Headers()
    headers.add("Via", via_for(local, new_branch(rng)))
    for value in route or ():
        headers.add("Route", value)
    headers.add("Max-Forwards", "70")
    headers.add("From", from_)
    headers.add("To", to)
    headers.add("Call-ID", call_id)
    headers.add("CSeq", f"{cseq} {method}")
    if contact is not None:
        headers.add("Contact", contact)
    if user_agent:
        headers.add("User-Agent", user_agent)
    return Request(method, uri, headers)


def address_of(uri: Uri, default_transport: str = "udp") -> Address | None:
    """Where a SIP URI with a numeric host points (RFC 3263 4.2 with no lookup), else None."""
    if not isinstance(uri, SipUri):
        return None
    host = uri.maddr or uri.host
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    transport = (uri.transport or ("tls" if uri.scheme == "sips" else default_transport)).lower()
    port = uri.port or (5061 if transport == "tls" else 5060)
    return host.strip("[]"), port, transport


@dataclass
class Dialog:
    call_id: str
    local_tag: str
    remote_tag: str
    local_uri: str  # the From we send (name-addr text without tag)
    remote_uri: str  # the To we send (name-addr text without tag)
    remote_target: Uri
    route_set: list[NameAddr] = field(default_factory=list)
    local_cseq: int = 1
    remote_cseq: int | None = None
    local_contact: str = ""

    @property
    def id(self) -> tuple[str, str, str]:
        return (self.call_id, self.local_tag, self.remote_tag)

    @classmethod
    def as_uac(cls, request: Request, response: Response) -> Dialog:
        """12.1.2: route set is the response's Record-Route reversed; target its Contact."""
        contacts = response.contacts
        target = contacts[0].uri if contacts else request.uri
        return cls(
            call_id=request.call_id,
            local_tag=request.from_.tag or "",
            remote_tag=response.to.tag or "",
            local_uri=_without_tag(request.from_),
            remote_uri=_without_tag(request.to),
            remote_target=target,
            route_set=list(reversed(response.record_route)),
            local_cseq=request.cseq.number,
            local_contact=request.headers.get("Contact") or "",
        )

    @classmethod
    def as_uas(cls, request: Request, local_tag: str, local_contact: str) -> Dialog:
        """12.1.1: route set is the request's Record-Route in order; target its Contact."""
        contacts = request.contacts
        return cls(
            call_id=request.call_id,
            local_tag=local_tag,
            remote_tag=request.from_.tag or "",
            local_uri=_without_tag(request.to),
            remote_uri=_without_tag(request.from_),
            remote_target=contacts[0].uri if contacts else request.from_.uri,
            route_set=list(request.record_route),
            local_cseq=0,
            remote_cseq=request.cseq.number,
            local_contact=local_contact,
        )

    def create_request(self, method: str, *, local: Address, rng: random.Random,
                       cseq: int | None = None, user_agent: str | None = None) -> Request:
        """12.2.1.1. ACK and CANCEL reuse the INVITE's CSeq number (pass `cseq`)."""
        if cseq is None:
            self.local_cseq += 1
            cseq = self.local_cseq
        uri, route = self.request_uri_and_route()
        return new_request(
            method, uri, local=local, rng=rng,
            from_=f"{self.local_uri};tag={self.local_tag}",
            to=f"{self.remote_uri};tag={self.remote_tag}",
            call_id=self.call_id, cseq=cseq, contact=self.local_contact or None,
            route=route, user_agent=user_agent)

    def request_uri_and_route(self) -> tuple[Uri, list[str]]:
        if not self.route_set:
            return self.remote_target, []
        first = self.route_set[0].uri
        if isinstance(first, SipUri) and first.lr:
            return self.remote_target, [str(r) for r in self.route_set]
        # Strict routing (RFC 2543 proxies): the first route becomes the Request-URI.
        stripped = first
        if isinstance(first, SipUri):
            stripped = SipUri(first.host, first.user, first.password, first.port,
                              first.params.copy(), [], first.scheme)
            for name in ("method", "maddr", "ttl", "transport", "lr"):
                stripped.params.pop(name, None)
        rest = [str(r) for r in self.route_set[1:]] + [f"<{self.remote_target}>"]
        return stripped, rest

    def next_hop(self) -> Uri:
        """The URI a request of this dialog is sent towards (first Route, else the target)."""
        if self.route_set:
            return self.route_set[0].uri
        return self.remote_target

    def accept_remote_cseq(self, request: Request) -> bool:
        """12.2.2: a CSeq lower than the last one is out of order (answer 500)."""
        number = request.cseq.number
        if request.method in ("ACK", "CANCEL"):
            return True
        if self.remote_cseq is not None and number < self.remote_cseq:
            return False
        self.remote_cseq = number
        return True

    def refresh_target(self, message: Request | Response) -> None:
        """Target refresh (re-INVITE, UPDATE and their 2xx): the new Contact is the target."""
        try:
            contacts = message.contacts
        except SipParseError:
            return
        if contacts:
            self.remote_target = contacts[0].uri

    def matches(self, message: Request | Response, *, incoming: bool) -> bool:
        try:
            if message.call_id != self.call_id:
                return False
            local, remote = (message.to.tag, message.from_.tag) if incoming else \
                (message.from_.tag, message.to.tag)
        except SipParseError:
            return False
        return local == self.local_tag and remote == self.remote_tag


def _without_tag(address: NameAddr) -> str:
    params = address.params.copy()
    params.pop("tag", None)
    return str(NameAddr(address.uri, address.display_name, params))
