"""The configuration schema: what a TipRing ATA can be told, with defaults a new user can run.

Each section is a frozen dataclass (safe to share between the loop, the web UI and the media
thread; change it with `dataclasses.replace`). Arrays are tuples for the same reason. Fields are
keyword-only so adding one never shifts the others. To add a setting, add an annotated field
here: `decode.py` derives the accepted TOML type from the annotation, `setting()` adds value
checks, and `cross_check` methods hold rules that involve several fields.
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
    call_waiting: bool = True  # a second call waits (tone, CAS, caller ID); off = it gets busy

    def cross_check(self, at: str, report: Report) -> None:
        low, high = key_path(at, "flash_min_ms"), key_path(at, "flash_max_ms")
        if report.clean(low, high) and self.flash_min_ms >= self.flash_max_ms:
            report.error(low, f"must be less than flash_max_ms ({self.flash_max_ms}), "
                              f"got {self.flash_min_ms}")


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
class WebConfig:
    """The configuration web UI. Loopback by default: exposing it is a deliberate choice."""

    listen: str = setting("127.0.0.1", rules.ip_address)
    port: int = setting(8080, rules.between(1, 65535))
    https: bool = False
    # "" = first-boot setup not done: the UI asks for a password; there is no default one.
    admin_password_hash: Secret = dataclasses.field(default_factory=Secret)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config:
    """The whole configuration; `Config()` is a valid one a new user can start with."""

    device: DeviceConfig = dataclasses.field(default_factory=DeviceConfig)
    lines: tuple[LineConfig, ...] = setting(
        (LineConfig(),), rules.count_between(1, MAX_LINES, "line")
    )
    accounts: tuple[AccountConfig, ...] = ()
    network: NetworkConfig = dataclasses.field(default_factory=NetworkConfig)
    web: WebConfig = dataclasses.field(default_factory=WebConfig)

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
            path = key_path(item_path(key_path(at, "lines"), index), "account")
            if line.account and line.account not in known and report.clean(path):
                report.error(path, f"no account with id {describe(line.account)}")


def default_config() -> Config:
    """The configuration of a new device: one enabled line, no account, DHCP, UI on loopback."""
    return Config()
