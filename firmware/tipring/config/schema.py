"""The configuration schema: what a TipRing ATA can be told, with defaults a new user can run.

Each section is a frozen dataclass (safe to share between the loop, the web UI and the media
thread; change it with `dataclasses.replace`). Arrays are tuples for the same reason. Fields are
keyword-only so adding one never shifts the others. To add a setting, add an annotated field
here: `decode.py` derives the accepted TOML type from the annotation, `setting()` adds value
checks, and `cross_check` methods hold rules that involve several fields. A new, removed or
retyped field changes the file's shape, which needs a new schema version (see migrations.py).
"""

from __future__ import annotations

import dataclasses
import ipaddress
from typing import Literal, get_args

from . import rules
from .decode import required, setting
from .errors import Report, describe, item_path, key_path
from .secret import Secret

# ISO 3166-1 alpha-2 codes of the line profiles (tones, ring cadence, caller ID) we support.
SUPPORTED_REGIONS = frozenset(
    {"AU", "CA", "DE", "ES", "FR", "GB", "IT", "JP", "NL", "NZ", "SE", "US"}
)
MAX_LINES = 2  # FXS ports on the largest supported board
GAIN_DB = (-12, 6)
# Hook-flash window bounds: below ~20 ms is switch bounce, above 2 s is a hang-up to anyone.
FLASH_MS = (20, 2000)

LogLevel = Literal["debug", "info", "warning", "error"]
# "region": the standard of the line profile (Bellcore in North America, ETSI FSK in most of
# Europe, DTMF in the Netherlands and Sweden...); the others force one.
CallerIdStandard = Literal["region", "bellcore", "etsi-fsk", "etsi-dtmf", "none"]
Transport = Literal["udp", "tcp", "tls"]
SrtpMode = Literal["off", "optional", "mandatory"]
DtmfMode = Literal["rfc4733", "info", "inband"]
Codec = Literal["PCMU", "PCMA"]
SipSourcePolicy = Literal["registrar", "any"]
MessageWaitingMode = Literal["subscribe", "unsolicited", "off"]
# Any digits, sent on '#' or after the inter-digit timer, star codes, and Grandstream-style direct
# IP dialling (*47192*168*1*20, when the line allows it); emergency numbers always go through.
DEFAULT_DIAL_PLAN = "(*47[0-9*].|*x.|x.)"
NO_ANSWER_S = (5, 120)
MAX_SSH_KEYS = 32


@dataclasses.dataclass(frozen=True, kw_only=True)
class DeviceConfig:
    """Identity and locale of the box."""

    name: str = setting("tipring", rules.hostname_label)  # also the DHCP host name
    region: str = setting("US", rules.one_of(SUPPORTED_REGIONS))  # selects the line profile
    timezone: str = setting("UTC", rules.timezone_name)
    log_level: LogLevel = "info"


@dataclasses.dataclass(frozen=True, kw_only=True)
class LineConfig:
    """One FXS port (the index in `Config.lines` is the port number)."""

    enabled: bool = True
    account: str = ""  # id of the account this line uses; "" = none (no service)
    ring_frequency_hz: Literal[0, 16, 20, 25, 50] = 0  # 0 = the region's (FR 50, JP 16 Hz)
    tx_gain_db: float = setting(0.0, rules.between(*GAIN_DB))  # phone -> network
    rx_gain_db: float = setting(0.0, rules.between(*GAIN_DB))  # network -> phone
    flash_min_ms: int = setting(100, rules.between(*FLASH_MS))
    flash_max_ms: int = setting(1100, rules.between(*FLASH_MS))  # longer on-hook = hang-up
    caller_id: CallerIdStandard = "region"
    # Voicemail lamp (VMWI, sent on hook): MDMF as current phones read it, SDMF for Bellcore
    # phones older than MDMF, or off (the stutter dial tone alone). The alert before the data:
    # the caller-ID standard's own, or one a phone needs to wake up (ring pulse, dual tone).
    message_lamp: Literal["mdmf", "sdmf", "off"] = "mdmf"
    message_lamp_alert: Literal["standard", "none", "rp-as", "dt-as"] = "standard"
    # Tone and ring overrides ("" = the region's), in Grandstream or Cisco ToneScript syntax.
    dial_tone: str = setting("", rules.blank_or(rules.tone_string))
    ringback_tone: str = setting("", rules.blank_or(rules.tone_string))
    busy_tone: str = setting("", rules.blank_or(rules.tone_string))
    congestion_tone: str = setting("", rules.blank_or(rules.tone_string))
    call_waiting_tone: str = setting("", rules.blank_or(rules.tone_string))
    ring_cadence: str = setting("", rules.blank_or(rules.ring_cadence))  # on/off ms pairs
    call_waiting: bool = True  # a second call waits (tone, CAS, caller ID); off = it gets busy
    # The calls below are the subscriber's own features: the star codes in [features] switch
    # them from the phone too (and the change is saved here).
    fallback_account: str = ""  # used for calls out while `account` is not registered
    dial_plan: str = setting(DEFAULT_DIAL_PLAN, rules.dial_plan)
    direct_ip: bool = False  # *47 + an IPv4 address with * for dots calls it (needs allow_sip_from)
    do_not_disturb: bool = False  # calls in get 486 (or go to forward_busy); calls out unaffected
    anonymous_rejection: bool = False  # calls that withhold their number get 433
    hide_caller_id: bool = False  # withhold our number on every call (RFC 3323 Privacy: id)
    forward_all: str = setting("", rules.blank_or(rules.dial_target))  # "" = off
    forward_busy: str = setting("", rules.blank_or(rules.dial_target))
    forward_no_answer: str = setting("", rules.blank_or(rules.dial_target))
    no_answer_s: int = setting(20, rules.between(*NO_ANSWER_S))  # ringing before forward_no_answer

    def cross_check(self, at: str, report: Report) -> None:
        low, high = key_path(at, "flash_min_ms"), key_path(at, "flash_max_ms")
        if report.clean(low, high) and self.flash_min_ms >= self.flash_max_ms:
            report.error(low, f"must be less than flash_max_ms ({self.flash_max_ms}), "
                              f"got {self.flash_min_ms}")
        fallback = key_path(at, "fallback_account")
        if self.fallback_account and self.fallback_account == self.account \
                and report.clean(fallback):
            report.error(fallback, "must differ from account (it is used when that one is down)")


@dataclasses.dataclass(frozen=True, kw_only=True)
class AccountConfig:
    """A SIP account (registration with a provider or PBX)."""

    id: str = required(rules.account_id)  # what lines refer to
    enabled: bool = True
    display_name: str = setting("", rules.printable(64))
    user: str = setting("", rules.blank_or(rules.sip_user))
    auth_user: str = setting("", rules.printable(128))  # "" = same as user
    password: Secret = dataclasses.field(default_factory=Secret)
    domain: str = setting("", rules.blank_or(rules.host_port))  # the AOR domain
    registrar: str = setting("", rules.blank_or(rules.host_port))  # "" = the domain
    transport: Transport = "udp"
    outbound_proxy: str = setting("", rules.blank_or(rules.host_port))  # "" = none
    expires: int = setting(3600, rules.between(60, 86400))
    srtp: SrtpMode = "off"
    dtmf: DtmfMode = "rfc4733"
    codecs: tuple[Codec, ...] = setting(  # in order of preference
        ("PCMU", "PCMA"), rules.no_duplicates, rules.count_between(1, len(get_args(Codec)), "codec")
    )
    keepalive_s: int = setting(30, rules.zero_or_between(10, 3600, "off"))  # NAT keep-alive
    # "registrar": accept SIP only from the registrar/outbound proxy (stops scanners ringing
    # the phone); "any" for direct IP calls on a trusted LAN.
    allow_sip_from: SipSourcePolicy = "registrar"
    # Message waiting: "subscribe" to the account's message-summary, or only take the NOTIFYs the
    # registrar sends unasked (Asterisk's default), or ignore them.
    message_waiting: MessageWaitingMode = "subscribe"
    # RFC 5626 outbound (+sip.instance, reg-id, flow keep-alives): for providers whose edge
    # proxy supports it; keeps calls reaching a device behind NAT when its address changes.
    outbound: bool = False
    voicemail: str = setting("", rules.blank_or(rules.dial_target))  # dialled by the voicemail code

    @property
    def auth_username(self) -> str:
        return self.auth_user or self.user

    @property
    def registrar_address(self) -> str:
        return self.registrar or self.domain

    def cross_check(self, at: str, report: Report) -> None:
        if not self.enabled:
            return
        for name in ("user", "domain"):
            path = key_path(at, name)
            if report.clean(path) and not getattr(self, name):
                report.error(path, "required when the account is enabled")


@dataclasses.dataclass(frozen=True, kw_only=True)
class FeatureCodes:
    """Star codes dialled from the phone ("" switches one off). Codes marked "+ number" take the
    number dialled after them (*72 5551234). Defaults are the usual North American ones."""

    forward_all_on: str = setting("*72", rules.blank_or(rules.feature_code))  # + number
    forward_all_off: str = setting("*73", rules.blank_or(rules.feature_code))
    forward_busy_on: str = setting("*90", rules.blank_or(rules.feature_code))  # + number
    forward_busy_off: str = setting("*91", rules.blank_or(rules.feature_code))
    forward_no_answer_on: str = setting("*92", rules.blank_or(rules.feature_code))  # + number
    forward_no_answer_off: str = setting("*93", rules.blank_or(rules.feature_code))
    do_not_disturb_on: str = setting("*78", rules.blank_or(rules.feature_code))
    do_not_disturb_off: str = setting("*79", rules.blank_or(rules.feature_code))
    anonymous_rejection_on: str = setting("*77", rules.blank_or(rules.feature_code))
    anonymous_rejection_off: str = setting("*87", rules.blank_or(rules.feature_code))
    hide_caller_id_once: str = setting("*67", rules.blank_or(rules.feature_code))  # + number
    show_caller_id_once: str = setting("*82", rules.blank_or(rules.feature_code))  # + number
    call_waiting_off_once: str = setting("*70", rules.blank_or(rules.feature_code))  # + number
    call_return: str = setting("*69", rules.blank_or(rules.feature_code))  # the last caller
    redial: str = setting("*66", rules.blank_or(rules.feature_code))  # the last number dialled
    voicemail: str = setting("*98", rules.blank_or(rules.feature_code))  # the account's voicemail
    voice_menu: str = setting("***", rules.blank_or(rules.feature_code))  # IP, state, version

    def codes(self) -> dict[str, str]:
        """Feature name -> code, for the codes that are on."""
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)
                if getattr(self, field.name)}

    def cross_check(self, at: str, report: Report) -> None:
        # One dialled string must mean one feature: no code may equal or start another.
        seen: list[tuple[str, str]] = []
        for name, code in self.codes().items():
            path = key_path(at, name)
            if not report.clean(path):
                continue
            clash = next((other for other, known in seen
                          if code.startswith(known) or known.startswith(code)), None)
            if clash is not None:
                report.error(path, f"{describe(code)} clashes with {key_path(at, clash)} "
                                   f"({describe(getattr(self, clash))}): one starts the other")
            else:
                seen.append((name, code))


@dataclasses.dataclass(frozen=True, kw_only=True)
class NetworkConfig:
    """The Ethernet interface. Static fields are kept (and checked) in DHCP mode too, so
    switching modes back and forth in the UI does not lose them."""

    mode: Literal["dhcp", "static"] = "dhcp"
    address: str = setting("", rules.blank_or(rules.ip_interface))  # CIDR, e.g. 192.168.1.20/24
    gateway: str = setting("", rules.blank_or(rules.ip_address))  # "" = none (local PBX only)
    dns: tuple[str, ...] = setting((), each=(rules.ip_address,))
    ntp_servers: tuple[str, ...] = setting(("pool.ntp.org",), each=(rules.host,))
    vlan: int = setting(0, rules.zero_or_between(1, 4094, "no VLAN"))

    def cross_check(self, at: str, report: Report) -> None:
        address, gateway = key_path(at, "address"), key_path(at, "gateway")
        if self.mode == "static" and report.clean(address) and not self.address:
            report.error(address, "required when mode is \"static\"")
        if not (self.address and self.gateway and report.clean(address, gateway)):
            return
        interface = ipaddress.ip_interface(self.address)
        router = ipaddress.ip_address(self.gateway)
        if router not in interface.network:
            report.error(gateway, f"{describe(self.gateway)} is outside the network "
                                  f"{interface.network} of {address}")
        elif router == interface.ip:
            report.error(gateway, f"{describe(self.gateway)} is this device's own address")


@dataclasses.dataclass(frozen=True, kw_only=True)
class SipConfig:
    """Device-wide SIP settings: how TLS connections to registrars and proxies are checked."""

    # PEM certificates of the CA(s) that sign the provider's TLS certificate; "" = the system's.
    tls_ca: str = setting("", rules.blank_or(rules.pem({"CERTIFICATE"}, "certificates")))
    # A client certificate (chain) for providers that ask for one, and its private key.
    tls_certificate: str = setting("", rules.blank_or(rules.pem({"CERTIFICATE"},
                                                                "certificates")))
    tls_key: Secret = dataclasses.field(default_factory=Secret)

    def cross_check(self, at: str, report: Report) -> None:
        certificate, key = key_path(at, "tls_certificate"), key_path(at, "tls_key")
        if not report.clean(certificate, key):
            return
        if bool(self.tls_certificate) != self.tls_key.is_set:
            report.error(key if self.tls_certificate else certificate,
                         "a client certificate and its key go together")
        elif self.tls_key.is_set:
            problem = rules.pem({"PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"},
                                "a private key")(self.tls_key.reveal())
            if problem:
                report.error(key, problem)


@dataclasses.dataclass(frozen=True, kw_only=True)
class WebConfig:
    """The configuration web UI. Loopback by default: exposing it is a deliberate choice."""

    listen: str = setting("127.0.0.1", rules.ip_address)
    port: int = setting(8080, rules.between(1, 65535))
    https: bool = False
    # With HTTPS on: a plain-HTTP port that only sends browsers to the HTTPS page (308), so
    # http://tipring.local still works; 0 = none.
    redirect_port: int = setting(0, rules.between(0, 65535))
    # "" = first-boot setup not done: the UI asks for a password; there is no default one.
    admin_password_hash: Secret = dataclasses.field(default_factory=Secret)

    def cross_check(self, at: str, report: Report) -> None:
        path = key_path(at, "redirect_port")
        if self.redirect_port and self.redirect_port == self.port and report.clean(path):
            report.error(path, f"must not be the web port itself ({self.port})")


@dataclasses.dataclass(frozen=True, kw_only=True)
class SshConfig:
    """Administrator access over SSH (the image's dropbear), off by default. Keys only: the
    device has no password that SSH would take, so switching it on needs at least one key."""

    enabled: bool = False
    # OpenSSH public keys, one `authorized_keys` line each (`ssh-ed25519 AAAA... me@laptop`).
    authorized_keys: tuple[str, ...] = setting(
        (), rules.count_between(0, MAX_SSH_KEYS, "key"), rules.distinct_ssh_keys,
        each=(rules.ssh_public_key,))

    def cross_check(self, at: str, report: Report) -> None:
        keys = key_path(at, "authorized_keys")
        if self.enabled and not self.authorized_keys and report.clean(keys):
            report.error(keys, "at least one public key is needed to switch SSH on (it takes "
                               "keys only, never a password)")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config:
    """The whole configuration; `Config()` is a valid one a new user can start with."""

    device: DeviceConfig = dataclasses.field(default_factory=DeviceConfig)
    lines: tuple[LineConfig, ...] = setting(
        (LineConfig(),), rules.count_between(1, MAX_LINES, "line")
    )
    accounts: tuple[AccountConfig, ...] = ()
    features: FeatureCodes = dataclasses.field(default_factory=FeatureCodes)
    sip: SipConfig = dataclasses.field(default_factory=SipConfig)
    network: NetworkConfig = dataclasses.field(default_factory=NetworkConfig)
    web: WebConfig = dataclasses.field(default_factory=WebConfig)
    ssh: SshConfig = dataclasses.field(default_factory=SshConfig)

    def account(self, account_id: str) -> AccountConfig | None:
        """The account with this id, or None."""
        return next((a for a in self.accounts if a.id == account_id), None)

    def cross_check(self, at: str, report: Report) -> None:
        accounts = key_path(at, "accounts")
        # If an account or its id could not be read at all, we cannot tell which ids were meant
        # to exist, and "no account with id" would be a confusing consequence of that error.
        unreadable = {accounts}
        for index in range(len(self.accounts)):
            unreadable |= {item_path(accounts, index), key_path(item_path(accounts, index), "id")}
        ids_known = not any(error.path in unreadable for error in report.errors)
        first_seen: dict[str, str] = {}
        for index, account in enumerate(self.accounts):
            path = key_path(item_path(accounts, index), "id")
            if not report.clean(path):
                continue
            if account.id in first_seen:
                report.error(path, f"duplicate account id {describe(account.id)} "
                                   f"(also {first_seen[account.id]})")
            else:
                first_seen[account.id] = path
        if not ids_known:
            return
        known = {account.id for account in self.accounts}
        for index, line in enumerate(self.lines):
            for name in ("account", "fallback_account"):
                path = key_path(item_path(key_path(at, "lines"), index), name)
                value = getattr(line, name)
                if value and value not in known and report.clean(path):
                    report.error(path, f"no account with id {describe(value)}")


def default_config() -> Config:
    """The configuration of a new device: one enabled line, no account, DHCP, UI on loopback."""
    return Config()
