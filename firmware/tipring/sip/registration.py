"""Keeping one account registered (RFC 3261 section 10, RFC 3581, RFC 5626 keep-alives).

A `Registration` owns one binding: one Call-ID, rising CSeqs, one Contact. It registers,
refreshes before the granted expiry runs out, answers digest challenges and 423 Min-Expires,
fails over to the next server address on a timeout, transport error or 5xx, returns to the
first address once it answers again (failback), backs off with jitter when every address has
failed (a long wait after 403, so a wrong password does not lock
the account at the provider), learns its public address from the `received`/`rport` a server
puts in our Via and re-registers with it, keeps the NAT binding open, and unregisters on
shutdown. With an `instance_id` it registers as an RFC 5626 outbound flow (+sip.instance and
reg-id on the Contact, `Supported: outbound`); when the registrar agrees (`Require: outbound`)
it keeps the flow alive at the server's Flow-Timer, with STUN Binding requests on UDP (a
changed mapped address means a new NAT binding: re-register) and CRLF pings on streams. Addresses come resolved (see `dns.py`): this module never asks DNS.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from tipring.config.schema import AccountConfig
from tipring.config.secret import Secret

from .auth import AuthError, AuthFailed, DigestClient
from .dialog import ALLOW, new_call_id, new_request, new_tag
from .grammar import SipParseError, quote
from .headers import parse_delta_seconds
from .message import Request, Response
from .stun import BindingResponse, binding_request
from .timers import Address, is_reliable
from .transaction import ClientTransaction, Timers, TransactionLayer
from .uri import SipUri, host_key, parse_uri

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RegistrationSettings:
    """One account's registration parameters (built from config.AccountConfig by the runtime)."""

    account: str
    user: str
    domain: str
    auth_user: str = ""
    password: Secret = field(default_factory=Secret)
    display_name: str = ""
    registrar: str = ""  # host[:port] for the Request-URI; "" = the domain
    backup_registrar: str = ""  # Request-URI while registered with the backup addresses
    expires: int = 3600
    transport: str = "udp"
    outbound_proxy: str = ""  # host[:port]; "" = none. Added as a loose Route.
    keepalive_s: float = 30.0  # 0 = off
    keepalive_method: str = "crlf"  # "crlf" or "options" (UDP); streams always use CRLF
    learn_public_address: bool = True  # RFC 3581: re-register with received/rport
    retry_base_s: float = 30.0  # RFC 5626 4.5 base time when every server failed
    retry_max_s: float = 1800.0
    forbidden_retry_s: float = 3600.0  # after 403 or a wrong password
    pong_timeout_s: float = 10.0  # RFC 5626 4.4.1: a CRLF ping unanswered this long = dead flow
    # While registered on a later address, ask the first one again this often (0 = never).
    # Five minutes: a probe costs one REGISTER transaction and never touches the working
    # binding, so it can be frequent; much shorter would chase a flapping primary.
    failback_s: float = 300.0
    # RFC 5626 outbound: this device's stable instance URN ("urn:uuid:..."); "" = not used.
    instance_id: str = ""
    reg_id: int = 1

    def __post_init__(self) -> None:
        if self.instance_id and (not self.instance_id.lower().startswith("urn:")
                                 or any(c in self.instance_id for c in '<>" \t\r\n')):
            raise ValueError("instance_id must be a URN such as urn:uuid:<uuid>")
        if not 1 <= self.reg_id <= 2**31 - 1:
            raise ValueError("reg_id must be a positive integer")

    @classmethod
    def from_account(cls, account: AccountConfig, **overrides: object) -> RegistrationSettings:
        """The settings for one configured account (the runtime adds keep-alive method,
        backup registrar and retry times when the config grows them)."""
        values: dict[str, object] = dict(
            account=account.id, user=account.user, domain=account.domain,
            auth_user=account.auth_username, password=account.password,
            display_name=account.display_name, registrar=account.registrar,
            expires=account.expires, transport=account.transport,
            outbound_proxy=account.outbound_proxy, keepalive_s=float(account.keepalive_s))
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]

    @property
    def aor(self) -> SipUri:
        uri = parse_uri(f"sip:{self.domain}")
        assert isinstance(uri, SipUri)
        uri.user = self.user
        return uri

    @property
    def registrar_uri(self) -> SipUri:
        return self.registrar_uri_for(self.registrar or self.domain)

    def registrar_uri_for(self, hostport: str) -> SipUri:
        uri = parse_uri(f"sip:{hostport}")
        assert isinstance(uri, SipUri)
        if self.transport != "udp":
            uri.params["transport"] = self.transport
        return uri


@dataclass(frozen=True)
class Registered:
    account: str
    expires: int  # seconds granted
    contact: str
    server: Address
    outbound: bool = False  # the registrar runs RFC 5626 outbound for this flow


@dataclass(frozen=True)
class RegistrationFailed:
    account: str
    status: int
    reason: str
    retry_in: float | None  # seconds until the next attempt


@dataclass(frozen=True)
class Unregistered:
    account: str


RegistrationEvent = Registered | RegistrationFailed | Unregistered


class Registration:
    """The state machine for one binding: unregistered, registering, registered, failed."""

    def __init__(self, settings: RegistrationSettings, targets: list[Address], *,
                 layer: TransactionLayer, rng: random.Random, local: Address,
                 emit: Callable[[object], None], user_agent: str = "TipRing",
                 backup_targets: list[Address] | None = None) -> None:
        self.settings = settings
        self.targets = list(targets) + list(backup_targets or ())
        self.backup_from = len(targets)  # indexes from here on are the backup registrar's
        self.layer = layer
        self.rng = rng
        self.local = local
        self.emit = emit
        self.user_agent = user_agent
        self.state = "unregistered"
        self.call_id = new_call_id(rng, local[0])
        self.tag = new_tag(rng)
        self.cseq = 0
        self.target_index = 0
        self.failures = 0
        self.granted = 0
        self.contact_host, self.contact_port = local[0], local[1]
        self.timers = Timers()
        self.auth = DigestClient(settings.auth_user or settings.user, settings.password,
                                 cnonce_source=lambda: f"{rng.getrandbits(128):032x}")
        self._expires = settings.expires
        self._tx: ClientTransaction | None = None
        self._unregister_after = False
        self._old_contact: str | None = None
        # Failback: the REGISTER in flight is a probe of the first address, sent while the
        # binding stays on `target_index`; `_refresh_due` notes a refresh that fell in it.
        self._probing = False
        self._refresh_due = False
        self._probe_after_refresh = False
        # RFC 5626: whether the registrar agreed to outbound, the keep-alive interval in use
        # (its Flow-Timer, else ours), the STUN request awaiting its answer and the address
        # the server last saw us at.
        self.outbound = False
        self._keepalive_s = settings.keepalive_s
        self._stun_id: bytes | None = None
        self._mapped: tuple[str, int] | None = None

    # --- what the agent reads -------------------------------------------------------------

    @property
    def server(self) -> Address | None:
        """The address the binding currently lives on (also where keep-alives go)."""
        return self.targets[self.target_index] if self.targets else None

    @property
    def on_backup(self) -> bool:
        return bool(self.settings.backup_registrar) and self.target_index >= self.backup_from

    @property
    def registrar_uri(self) -> SipUri:
        """The REGISTER Request-URI for the server in use (primary or backup registrar)."""
        s = self.settings
        backup = self.on_backup and not self._probing  # a probe asks the primary registrar
        return s.registrar_uri_for(s.backup_registrar) if backup else s.registrar_uri

    @property
    def _register_target(self) -> Address | None:
        """Where the next REGISTER goes: the first address while probing it, else the server."""
        return self.targets[0] if self._probing and self.targets else self.server

    @property
    def contact_uri(self) -> SipUri:
        host = self.contact_host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        uri = SipUri(host, self.settings.user, port=self.contact_port)
        if self.local[2] != "udp":
            uri.params["transport"] = self.local[2]
        return uri

    @property
    def contact(self) -> str:
        return f"<{self.contact_uri}>"

    @property
    def dialog_contact(self) -> str:
        """The Contact for requests that make dialogs: with `ob` over an outbound flow, so
        requests in the dialog come back over it (RFC 5626 5.4)."""
        if not self.outbound:
            return self.contact
        uri = self.contact_uri
        uri.params["ob"] = None
        return f"<{uri}>"

    def get_timer(self) -> float | None:
        due = self.timers.next()
        return due[0] if due else None

    # --- commands -------------------------------------------------------------------------

    def register(self, now: float) -> None:
        self._unregister_after = False
        self.timers.stop("retry")
        if self._tx is None:
            self._send(now)

    def unregister(self, now: float) -> None:
        """Remove the binding (shutdown, account disabled). Ends with `Unregistered`."""
        self.timers.clear()
        # The binding to remove is the current one.
        self._probing = self._refresh_due = self._probe_after_refresh = False
        if self.state in ("unregistered", "failed") and self._tx is None:
            self.state = "unregistered"
            self.emit(Unregistered(self.settings.account))
            return
        self.state = "unregistering"
        if self._tx is not None:
            self._unregister_after = True  # let the pending REGISTER finish first
            return
        self._send(now)

    def set_targets(self, targets: list[Address], now: float,
                    backup_targets: list[Address] | None = None) -> None:
        """New DNS results: start again from the first address on the next attempt."""
        self.targets = list(targets) + list(backup_targets or ())
        self.backup_from = len(targets)
        self.target_index = 0
        self._probing = self._probe_after_refresh = False
        self.timers.stop("failback")

    def flow_failed(self, now: float) -> None:
        """The flow to the server died (no pong, connection lost): re-register at once."""
        if self.state not in ("registered", "registering"):
            return
        log.info("registration flow for %s failed; re-registering", self.settings.account)
        self.timers.stop("pong", "keepalive", "refresh")
        self._next_target()
        if self._tx is None:
            self._send(now)
        elif self._probing:
            self._refresh_due = True  # if the probe fails, register where we moved to

    def pong_received(self) -> None:
        self.timers.stop("pong")

    def stun_response(self, response: BindingResponse, now: float) -> None:
        """A STUN Binding answer from our server: the flow lives; a new mapped address means
        a NAT moved us, and the binding must be refreshed from the new one (RFC 5626 4.4.2)."""
        if response.transaction_id != self._stun_id:
            return
        self._stun_id = None
        self.timers.stop("pong")
        if response.mapped is None:
            return
        if self._mapped is not None and response.mapped != self._mapped:
            log.info("registration of %s: NAT mapping changed; re-registering",
                     self.settings.account)
            self._mapped = response.mapped
            if self._tx is None and self.state == "registered":
                self.timers.stop("refresh")
                self._send(now)
            return
        self._mapped = response.mapped

    # --- timers ---------------------------------------------------------------------------

    def handle_timer(self, now: float) -> None:
        while (due := self.timers.next()) is not None and due[0] <= now:
            name = due[1]
            self.timers.stop(name)
            if name in ("refresh", "retry"):
                if self._tx is None and self.state != "unregistering":
                    self._send(now)
                elif self._probing:
                    self._refresh_due = True  # sent once the probe is answered
            elif name == "failback":
                self._failback(now)
            elif name == "keepalive":
                self._keepalive(now)
            elif name == "pong":
                self.flow_failed(now)

    def _keepalive(self, now: float) -> None:
        server = self.server
        if server is None or self.state != "registered":
            return
        s = self.settings
        if self.outbound and not is_reliable(server):  # RFC 5626 4.4.2: STUN on UDP
            self._stun_id = self.rng.getrandbits(96).to_bytes(12, "big")
            self.layer.send(binding_request(self._stun_id), server)
            self.timers.start("pong", now + s.pong_timeout_s)
        elif is_reliable(server) or s.keepalive_method == "crlf":
            self.layer.send(b"\r\n\r\n", server)
            if is_reliable(server):
                self.timers.start("pong", now + s.pong_timeout_s)
        else:  # a fresh Call-ID each time: the ping is not part of the REGISTER sequence
            request = new_request(
                "OPTIONS", self.registrar_uri, local=self.local, rng=self.rng,
                from_=f"<{s.aor}>;tag={new_tag(self.rng)}", to=f"<{s.aor}>",
                call_id=new_call_id(self.rng, self.local[0]), cseq=1, route=self.route(),
                user_agent=self.user_agent)
            self.layer.start_client(request, server, now, self._on_options)
        self.timers.start("keepalive", now + self._keepalive_s)

    def _on_options(self, tx: ClientTransaction, response: Response, now: float) -> None:
        if tx.error is not None:  # any answer, even 405, proves the path; silence does not
            self.flow_failed(now)

    # --- REGISTER -------------------------------------------------------------------------

    def route(self) -> list[str]:
        """The preloaded Route to the outbound proxy (RFC 3261 8.1.2), or none."""
        proxy = self.settings.outbound_proxy
        if not proxy:
            return []
        uri = parse_uri(f"sip:{proxy}")
        assert isinstance(uri, SipUri)
        uri.params["lr"] = None
        if self.settings.transport != "udp":
            uri.params["transport"] = self.settings.transport
        return [f"<{uri}>"]

    def _build(self, expires: int, contact: str | None = None) -> Request:
        s = self.settings
        self.cseq += 1
        display = quote(s.display_name) + " " if s.display_name else ""
        request = new_request(
            "REGISTER", self.registrar_uri, local=self.local, rng=self.rng,
            from_=f"{display}<{s.aor}>;tag={self.tag}", to=f"{display}<{s.aor}>",
            call_id=self.call_id, cseq=self.cseq, route=self.route(),
            contact=f"{contact or self.contact};expires={expires}{self._flow_params()}",
            user_agent=self.user_agent)
        if s.instance_id:
            request.headers.add("Supported", "outbound")
        if self._old_contact is not None and expires:
            # The public address changed: remove the stale binding in the same request.
            request.headers.add("Contact", f"{self._old_contact};expires=0")
        request.headers.add("Expires", str(expires))
        request.headers.add("Allow", ALLOW)
        for name, value in self.auth.preauthorize("REGISTER", str(request.uri)):
            request.headers.add(name, value)
        return request

    def _failback(self, now: float) -> None:
        """Probe the first address with a REGISTER; the binding where we are stays in use.

        A probe that could still be unanswered (Timer F) when the refresh falls due waits
        for that refresh's 2xx instead, so the refresh always has its full margin.
        """
        if self.target_index == 0 or self.state != "registered" or self._tx is not None:
            if self.target_index > 0 and self.state != "unregistering":
                self.timers.start("failback", now + self.settings.failback_s)
            return
        refresh = self.timers.due("refresh")
        if refresh is not None and refresh < now + self.layer.timers.b:
            self._probe_after_refresh = True
            return
        log.info("registration of %s: asking the first registrar address again",
                 self.settings.account)
        self._probing = True
        self._send(now)

    def _probe_failed(self, status: int, now: float) -> None:
        """The first address still fails: carry on where the binding is, ask again later."""
        self._probing = False
        log.info("registration of %s: first registrar address still failing (%d)",
                 self.settings.account, status)
        self.timers.start("failback", now + self.settings.failback_s)
        if self._refresh_due:
            self._refresh_due = False
            self._send(now)

    def _flow_params(self) -> str:
        """RFC 5626 4.2: the Contact header parameters that name this device's flow."""
        s = self.settings
        return f';reg-id={s.reg_id};+sip.instance="<{s.instance_id}>"' if s.instance_id else ""

    def _send(self, now: float, request: Request | None = None) -> None:
        server = self._register_target
        if server is None:
            self._fail(503, "no server address", now, failover=False)
            return
        if request is None:
            expires = 0 if self.state == "unregistering" else self._expires
            request = self._build(expires)
            if self.state not in ("registered", "unregistering"):
                self.state = "registering"
        self._tx = self.layer.start_client(request, server, now, self._on_response)

    def _on_response(self, tx: ClientTransaction, response: Response, now: float) -> None:
        status = response.status
        if status < 200:
            return
        self._tx = None
        unregistering = self.state == "unregistering" or self._unregister_after
        try:
            if 200 <= status < 300:
                self._success(tx.request, response, now)
            elif status in (401, 407):
                self._challenged(tx.request, response, now)
            elif status == 423:
                self._too_brief(response, now)
            elif self._probing:
                self._probe_failed(status, now)
            elif unregistering:
                self._unregistered(now)
            elif status == 403:
                self._fail(403, response.reason, now, failover=False,
                           wait=self.settings.forbidden_retry_s)
            else:
                failover = status in (408, 503) or status >= 500
                self._fail(status, response.reason, now, failover=failover)
        except SipParseError as error:  # the registrar's answer had a bad header we needed
            log.info("bad REGISTER response from registrar: %s", error.reason)
            if self._probing:
                self._probe_failed(status, now)
            else:
                self._fail(status, "bad response", now, failover=True)

    def _success(self, request: Request, response: Response, now: float) -> None:
        if self.state == "unregistering" or request.headers.get("Expires") == "0":
            self._old_contact = None
            self._unregistered(now)
            return
        if self._unregister_after:
            self.state = "unregistering"
            self._unregister_after = False
            self._send(now)
            return
        granted = self._granted(response)
        if granted <= 0 and self._probing:
            self._probe_failed(response.status, now)
            return
        if self._probing:  # the first address answers again: the binding moves back to it
            log.info("registration of %s is back on the first registrar address",
                     self.settings.account)
            self._probing = self._refresh_due = False
            self.target_index = 0
        self._old_contact = None
        if granted <= 0:
            self._fail(response.status, "registrar granted no binding", now, failover=False)
            return
        if self.settings.learn_public_address and self._learn_public_address(response):
            self.state = "registering"
            self._send(now)
            return
        self.failures = 0
        self.granted = granted
        self.state = "registered"
        self.timers.stop("retry")
        self.timers.start("refresh", now + refresh_delay(granted))
        self._learn_flow(response)
        if self._keepalive_s > 0:
            self.timers.start("keepalive", now + self._keepalive_s)
        if self.target_index == 0:
            self.timers.stop("failback")
            self._probe_after_refresh = False
        elif self._probe_after_refresh:
            self._probe_after_refresh = False
            self.timers.start("failback", now)
        elif self.settings.failback_s > 0 and not self.timers.running("failback"):
            self.timers.start("failback", now + self.settings.failback_s)
        self.emit(Registered(self.settings.account, granted, str(self.contact_uri),
                             self.server or ("", 0, ""), self.outbound))

    def _learn_flow(self, response: Response) -> None:
        """RFC 5626 4.2.1/4.4.1: outbound is on when the registrar requires it back; its
        Flow-Timer sets the keep-alive interval (80-100 % of it, so devices spread out)."""
        s = self.settings
        was = self.outbound
        self.outbound = bool(s.instance_id) and "outbound" in [t.lower() for t in response.require]
        if self.outbound != was:
            self._mapped = None
        self._keepalive_s = s.keepalive_s
        flow_timer = response.headers.get("Flow-Timer")
        if self.outbound and flow_timer is not None and flow_timer.strip().isdigit() and \
                int(flow_timer) > 0:
            self._keepalive_s = int(flow_timer) * self.rng.uniform(0.8, 1.0)

    def _granted(self, response: Response) -> int:
        """10.2.4: our Contact's `expires`, else the Expires header, else what we asked."""
        ours = self.contact_uri
        for address in response.contacts:
            uri = address.uri
            if isinstance(uri, SipUri) and uri.user == ours.user and \
                    host_key(uri.host) == host_key(ours.host) and \
                    (uri.port or 5060) == (ours.port or 5060) and address.expires is not None:
                return address.expires
        if response.expires is not None:
            return response.expires
        return self._expires

    def _learn_public_address(self, response: Response) -> bool:
        """RFC 3581: a `received`/`rport` unlike our Contact means a NAT; True to re-register."""
        via = response.via[0]
        host = via.received or via.host
        # Over TCP/TLS the rport is our connection's ephemeral source port, which nothing
        # listens on: only the address can be a NAT's; the Contact keeps our listening port.
        port = self.contact_port if is_reliable(self.local) else (via.rport or self.contact_port)
        if host_key(host) == host_key(self.contact_host) and port == self.contact_port:
            return False
        if via.received is None and via.rport is None:
            return False
        log.info("account %s is behind NAT: public address %s:%d", self.settings.account,
                 host, port)
        self._old_contact = self.contact
        self.contact_host, self.contact_port = host.strip("[]"), port
        return True

    def _challenged(self, request: Request, response: Response, now: float) -> None:
        sent = [(n, v) for n, v in request.headers if n in ("Authorization", "Proxy-Authorization")]
        challenges = [(n, v) for n, v in response.headers
                      if n in ("WWW-Authenticate", "Proxy-Authenticate")]
        expires = int(request.headers.get("Expires") or self._expires)
        try:
            retry = self._build(expires)
            for name in ("Authorization", "Proxy-Authorization"):
                retry.headers.remove(name)
            answers = self.auth.authorize(challenges, "REGISTER", str(retry.uri), sent=sent)
        except (AuthFailed, AuthError) as error:
            reason = error.reason if isinstance(error, AuthFailed) else "bad challenge"
            if expires == 0:
                self._unregistered(now)
                return
            if self._probing:
                self._probe_failed(response.status, now)
                return
            self._fail(response.status, reason, now, failover=False,
                       wait=self.settings.forbidden_retry_s)
            return
        for name, value in answers:
            retry.headers.add(name, value)
        self._send(now, retry)

    def _too_brief(self, response: Response, now: float) -> None:
        """423 (10.2.8): ask again with the registrar's Min-Expires."""
        value = response.headers.get("Min-Expires")
        minimum = parse_delta_seconds(value, "Min-Expires") if value else None
        if minimum is None or minimum <= self._expires:
            self._fail(423, "Interval Too Brief without a usable Min-Expires", now, failover=False)
            return
        self._expires = minimum
        self._send(now)

    def _unregistered(self, now: float) -> None:
        self.state = "unregistered"
        self.timers.clear()
        self.emit(Unregistered(self.settings.account))

    def _next_target(self) -> bool:
        if self.target_index + 1 < len(self.targets):
            self.target_index += 1
            return True
        return False

    def _fail(self, status: int, reason: str, now: float, *, failover: bool,
              wait: float | None = None) -> None:
        self.timers.stop("refresh", "keepalive", "pong")
        if failover and self._next_target():
            log.info("registrar %s failed (%d); trying the next address", self.settings.account,
                     status)
            self.state = "registering"
            self._send(now)
            return
        self.target_index = 0
        self.failures += 1
        self.state = "failed"
        if wait is None:
            wait = backoff(self.failures, self.settings.retry_base_s, self.settings.retry_max_s)
        wait *= self.rng.uniform(0.5, 1.0)  # RFC 5626 4.5: 50-100% so devices spread out
        self.timers.start("retry", now + wait)
        log.info("registration of %s failed: %d %s; retry in %.0f s", self.settings.account,
                 status, reason, wait)
        self.emit(RegistrationFailed(self.settings.account, status, reason, wait))


def refresh_delay(granted: int) -> float:
    """When to refresh: 10% early (at least 32 s, Timer F, at most half the interval).

    The margin must cover one whole non-INVITE transaction, or a lost REGISTER would let the
    binding lapse while it is still being retried.
    """
    margin = min(max(granted * 0.1, 32.0), granted / 2)
    return granted - margin


def backoff(failures: int, base: float, maximum: float) -> float:
    """RFC 5626 4.5: base * 2^(failures-1), capped (jitter is applied by the caller)."""
    return min(maximum, base * 2 ** min(failures - 1, 20))
