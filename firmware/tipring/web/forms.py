"""Config sections as HTML forms: what to show, how a posted form becomes a new `Config`, and
which input each validation error belongs next to.

Forms carry the config's own field paths as input names (`accounts[1].expires`), so the errors
`tipring.config` reports (`accounts[1].expires: must be between 60 and 86400, got 5`) map back
to the input without a translation table. The form is merged into the current config and the
whole config is validated, so cross-field rules (a line naming a missing account) are checked
as well. Secrets are never put into a form: a blank password input means "keep the stored one".
"""

from __future__ import annotations

import dataclasses
import re
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from tipring.config import (
    SUPPORTED_REGIONS,
    AccountConfig,
    Config,
    ConfigError,
    DeviceConfig,
    LineConfig,
    NetworkConfig,
    Secret,
    SipConfig,
    WebConfig,
    config_from_dict,
    config_to_dict,
)
from tipring.config.schema import FeatureCodes

Form = Mapping[str, Any]  # a MultiDictProxy from aiohttp, or a dict in tests
_INT = re.compile(r"[+-]?[0-9]{1,19}")
_STEP = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:\[([0-9]+)\])?")
_INDEX_SUFFIX = re.compile(r"\[[0-9]+\]$")


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    help: str = ""
    choices: tuple[tuple[str, str], ...] | None = None  # (value, label); else from the type
    multiline: bool = False  # PEM text: a text area (a browser posts its line ends as CRLF)


@dataclass(frozen=True)
class Section:
    """A config table (`device`, `network`, `lines[0]`, `accounts[2]`) and the fields shown."""

    path: str
    cls: type
    fields: tuple[Field, ...]

    def input_name(self, field: Field) -> str:
        return f"{self.path}.{field.name}"


@dataclass
class Widget:
    """One input as the template draws it."""

    name: str
    label: str
    kind: str  # checkbox, select, secret, secret-text, list, int, number, text, textarea
    value: str
    help: str
    error: str | None
    choices: tuple[tuple[str, str], ...] = ()
    secret_set: bool = False


ACCOUNT_FIELDS = (
    Field("id", "Account name", "Short name lines refer to: letters, digits, - and _."),
    Field("enabled", "Enabled"),
    Field("display_name", "Display name", "Shown to the people you call, if the provider passes it."),
    Field("user", "User", "The SIP user (often the phone number) of the account."),
    Field("domain", "Domain", "The SIP domain (the part after @), optionally with :port."),
    Field("auth_user", "Authentication user", "Blank: same as User."),
    Field("password", "Password", "Write-only: it is never shown again."),
    Field("registrar", "Registrar", "Blank: the domain."),
    Field("outbound_proxy", "Outbound proxy", "Blank: none."),
    Field("transport", "Transport"),
    Field("expires", "Registration expiry (s)", "60 to 86400."),
    Field("srtp", "SRTP (media encryption)"),
    Field("dtmf", "DTMF mode"),
    Field("codecs", "Codec order", "Comma-separated, preferred first: PCMU, PCMA."),
    Field("keepalive_s", "NAT keep-alive (s)", "0 = off; else 10 to 3600."),
    Field("outbound", "SIP outbound (RFC 5626)",
          "Only if the provider's proxy supports it: keeps calls reaching this device behind NAT."),
    Field("allow_sip_from", "Who may call us",
          choices=(("registrar", "Only the registrar / outbound proxy (recommended)"),
                   ("any", "Anyone who can reach the device (trusted LAN only)"))),
    Field("message_waiting", "Message waiting",
          "How the lamp / stutter dial tone learns of new voicemail.",
          choices=(("subscribe", "Subscribe to the mailbox (RFC 3842)"),
                   ("unsolicited", "Only take notices the server sends unasked"),
                   ("off", "Off"))),
    Field("voicemail", "Voicemail number", "Dialled by the voicemail star code; blank: none."),
)
LINE_FIELDS = (
    Field("enabled", "Enabled"),
    Field("account", "Account", "Which account this phone line uses."),
    Field("ring_frequency_hz", "Ring frequency (Hz)",
          choices=(("0", "the region's"), ("16", "16"), ("20", "20"), ("25", "25"), ("50", "50"))),
    Field("tx_gain_db", "Gain phone → network (dB)", "-12 to 6."),
    Field("rx_gain_db", "Gain network → phone (dB)", "-12 to 6."),
    Field("flash_min_ms", "Hook flash, shortest (ms)", "Shorter on-hook blips are ignored."),
    Field("flash_max_ms", "Hook flash, longest (ms)", "Longer on-hook time is a hang-up."),
    Field("caller_id", "Caller-ID standard",
          choices=(("region", "the region's"), ("bellcore", "Bellcore FSK (North America)"),
                   ("etsi-fsk", "ETSI FSK (V.23)"), ("etsi-dtmf", "ETSI DTMF"),
                   ("none", "none"))),
    Field("message_lamp", "Message lamp (VMWI)",
          "How a waiting voicemail lights the phone's lamp; the dial tone stutters either way. "
          "SDMF exists for Bellcore caller ID only (other standards send MDMF).",
          choices=(("mdmf", "MDMF (current phones)"), ("sdmf", "SDMF (older Bellcore phones)"),
                   ("off", "off: stutter dial tone only"))),
    Field("message_lamp_alert", "Message lamp alert",
          "What wakes the phone before the lamp data.",
          choices=(("standard", "the caller-ID standard's own"), ("none", "none"),
                   ("rp-as", "a short ring pulse"), ("dt-as", "dual tone (2130+2750 Hz)"))),
    Field("ring_cadence", "Ring cadence",
          "On/off milliseconds, e.g. 2000/4000 or 400/200,400/2000; blank: the region's."),
    Field("dial_tone", "Dial tone",
          "Grandstream (f1=350@-13,f2=440@-13,c=0/0;) or Cisco ToneScript; blank: the "
          "region's."),
    Field("ringback_tone", "Ringback tone", "As dial tone."),
    Field("busy_tone", "Busy tone", "As dial tone."),
    Field("congestion_tone", "Reorder (congestion) tone", "As dial tone."),
    Field("call_waiting_tone", "Call-waiting tone", "As dial tone."),
)
# The subscriber's own calling features: shown as their own group under each line.
LINE_FEATURE_FIELDS = (
    Field("call_waiting", "Call waiting",
          "A second call beeps and shows its caller ID; flash to answer and to swap."),
    Field("do_not_disturb", "Do not disturb",
          "Calls in are refused as busy (or go to the busy forward); calls out still work."),
    Field("anonymous_rejection", "Reject anonymous calls",
          "Callers who withhold their number are refused."),
    Field("hide_caller_id", "Hide my number", "Withhold this line's number on every call."),
    Field("forward_all", "Forward all calls to", "A number or sip: URI; blank: off."),
    Field("forward_busy", "Forward when busy to", "Blank: off."),
    Field("forward_no_answer", "Forward when not answered to", "Blank: off."),
    Field("no_answer_s", "Ring before forwarding (s)", "5 to 120."),
    Field("dial_plan", "Dial plan",
          "Cisco SPA syntax, or Grandstream syntax starting with {; test it on the Dial plan "
          "page. Emergency numbers always go through."),
    Field("direct_ip", "Direct IP dialling",
          "*47 and an IPv4 address with * for dots calls it (the account must accept calls "
          "from anyone)."),
    Field("fallback_account", "Fallback account",
          "Used for calls out while the line's account is not registered."),
)
FEATURE_LABELS = {
    "forward_all_on": "Forward all on (+ number)", "forward_all_off": "Forward all off",
    "forward_busy_on": "Forward when busy on (+ number)",
    "forward_busy_off": "Forward when busy off",
    "forward_no_answer_on": "Forward when not answered on (+ number)",
    "forward_no_answer_off": "Forward when not answered off",
    "do_not_disturb_on": "Do not disturb on", "do_not_disturb_off": "Do not disturb off",
    "anonymous_rejection_on": "Reject anonymous on",
    "anonymous_rejection_off": "Reject anonymous off",
    "hide_caller_id_once": "Hide my number, this call (+ number)",
    "show_caller_id_once": "Show my number, this call (+ number)",
    "call_waiting_off_once": "No call waiting, this call (+ number)",
    "call_return": "Call back the last caller", "redial": "Redial",
    "voicemail": "Voicemail", "voice_menu": "Voice menu (address, state, version)",
}
FEATURE_FIELDS = tuple(Field(f.name, FEATURE_LABELS[f.name])
                       for f in dataclasses.fields(FeatureCodes))
DEVICE_FIELDS = (
    Field("region", "Region", "Selects dial tone, ring cadence and caller-ID conventions.",
          choices=tuple((r, r) for r in sorted(SUPPORTED_REGIONS))),
    Field("timezone", "Time zone", "An IANA name such as Europe/Berlin or America/New_York."),
    Field("name", "Device name", "Also the DHCP host name."),
    Field("log_level", "Log level"),
)
NETWORK_FIELDS = (
    Field("mode", "Address", choices=(("dhcp", "DHCP (automatic)"), ("static", "Static"))),
    Field("address", "Static address", "With prefix length, e.g. 192.168.1.20/24."),
    Field("gateway", "Gateway", "Blank: none (local PBX only)."),
    Field("dns", "DNS servers", "Comma-separated IP addresses."),
    Field("ntp_servers", "NTP servers", "Comma-separated host names or addresses."),
    Field("vlan", "VLAN tag", "0 = untagged; else 1 to 4094."),
)
SIP_TLS_FIELDS = (
    Field("tls_ca", "Trusted CA certificates",
          "PEM. Blank: the system's CAs (enough for providers with a public certificate). Paste "
          "your PBX's CA when its certificate is self-made.", multiline=True),
    Field("tls_certificate", "Client certificate",
          "PEM, for providers that ask the device for a certificate; blank: none.",
          multiline=True),
    Field("tls_key", "Client certificate key",
          "PEM private key of that certificate. Write-only: it is never shown again.",
          multiline=True),
)
WEB_FIELDS = (
    Field("listen", "Web page address", "127.0.0.1 = this device only; 0.0.0.0 = every "
          "interface. Takes effect after a restart."),
    Field("port", "Web page port", "Takes effect after a restart."),
    Field("redirect_port", "HTTP redirect port",
          "With HTTPS on, plain http:// on this port sends browsers to the HTTPS page "
          "(e.g. 80); 0 = none. Takes effect after a restart."),
)

DEVICE = Section("device", DeviceConfig, DEVICE_FIELDS)
NETWORK = Section("network", NetworkConfig, NETWORK_FIELDS)
WEB = Section("web", WebConfig, WEB_FIELDS)
SIP_TLS = Section("sip", SipConfig, SIP_TLS_FIELDS)
FEATURES = Section("features", FeatureCodes, FEATURE_FIELDS)


def account_section(index: int) -> Section:
    return Section(f"accounts[{index}]", AccountConfig, ACCOUNT_FIELDS)


def _with_accounts(fields: tuple[Field, ...], account_ids: Sequence[str],
                   none: str) -> tuple[Field, ...]:
    choices = (("", none), *((a, a) for a in account_ids))
    return tuple(dataclasses.replace(f, choices=choices)
                 if f.name in ("account", "fallback_account") else f for f in fields)


def line_section(index: int, account_ids: Sequence[str]) -> Section:
    return Section(f"lines[{index}]", LineConfig,
                   _with_accounts(LINE_FIELDS, account_ids, "none (line out of service)"))


def line_features_section(index: int, account_ids: Sequence[str]) -> Section:
    """The same table as `line_section`, the calling-feature fields only."""
    return Section(f"lines[{index}]", LineConfig,
                   _with_accounts(LINE_FEATURE_FIELDS, account_ids, "none"))


def _hint(cls: type, name: str) -> Any:
    return typing.get_type_hints(cls)[name]


def _choices(field: Field, hint: Any) -> tuple[tuple[str, str], ...]:
    if field.choices is not None:
        return field.choices
    return tuple((str(c), str(c)) for c in typing.get_args(hint))


def _kind(field: Field, hint: Any) -> str:
    if hint is bool:
        return "checkbox"
    if hint is Secret:
        return "secret-text" if field.multiline else "secret"
    if field.choices is not None or typing.get_origin(hint) is Literal:
        return "select"
    if typing.get_origin(hint) is tuple:
        return "list"
    return {int: "int", float: "number"}.get(hint, "textarea" if field.multiline else "text")


def _shown(value: Any) -> str:
    if isinstance(value, tuple | list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def widgets(section: Section, current: object | None, errors: Mapping[str, str],
            posted: Form | None = None) -> list[Widget]:
    """The inputs of `section`, filled from what was just posted (so a refused form keeps the
    user's typing) or else from `current`; secrets are never filled in."""
    out = []
    for field in section.fields:
        hint = _hint(section.cls, field.name)
        kind = _kind(field, hint)
        name = section.input_name(field)
        stored = getattr(current, field.name) if current is not None else None
        if kind.startswith("secret"):
            value = ""
        elif posted is not None:
            value = "on" if kind == "checkbox" and name in posted else str(posted.get(name, ""))
        elif stored is None:
            default = next(f for f in dataclasses.fields(section.cls) if f.name == field.name)
            value = _shown(default.default) if default.default is not dataclasses.MISSING else ""
            value = "on" if kind == "checkbox" and default.default is True else value
        else:
            value = ("on" if stored else "") if kind == "checkbox" else _shown(stored)
        out.append(Widget(
            name=name, label=field.label, kind=kind, value=value, help=field.help,
            error=errors.get(name), choices=_choices(field, hint) if kind == "select" else (),
            secret_set=isinstance(stored, Secret) and stored.is_set,
        ))
    return out


def _convert(hint: Any, text: str) -> Any:
    """Form text to the TOML-like value the schema decodes; a value that cannot be converted
    is passed on as text, so the schema reports it with its own words and the field path."""
    origin = typing.get_origin(hint)
    if origin is Literal:
        first = typing.get_args(hint)[0]
        return int(text) if isinstance(first, int) and _INT.fullmatch(text) else text
    if origin is tuple:
        return [item for item in re.split(r"[\s,]+", text) if item]
    if hint is int:
        return int(text) if _INT.fullmatch(text) else text
    if hint is float:
        try:
            return float(text)
        except ValueError:
            return text
    return text


def _text(value: str, field: Field) -> str:
    """What was typed, trimmed; a text area's CRLF line ends made plain newlines (PEM text is
    stored and shown as it would be in a file)."""
    value = value.strip()
    return value.replace("\r\n", "\n") + "\n" if field.multiline and value else value


def _locate(raw: dict[str, Any], path: str) -> dict[str, Any]:
    node: Any = raw
    for step in path.split("."):
        match = _STEP.fullmatch(step)
        assert match, f"bad section path {path!r}"
        node = node[match.group(1)]
        if match.group(2) is not None:
            node = node[int(match.group(2))]
    return node


def merge(config: Config, sections: Sequence[Section], form: Form,
          *, edit: typing.Callable[[dict[str, Any]], None] | None = None) -> Config:
    """`config` with the posted values of `sections`; raises ConfigError with field paths.

    `edit` may change the plain data first (add or remove an account).
    """
    raw = config_to_dict(config)  # secrets stay Secret objects: nothing here reveals them
    if edit is not None:
        edit(raw)
    for section in sections:
        table = _locate(raw, section.path)
        for field in section.fields:
            name = section.input_name(field)
            hint = _hint(section.cls, field.name)
            if hint is bool:
                table[field.name] = name in form
            elif hint is Secret:
                typed = form.get(name, "")
                if form.get(name + ".clear"):
                    table[field.name] = Secret("")
                elif isinstance(typed, str) and typed.strip():
                    table[field.name] = Secret(_text(typed, field))
            elif name in form:  # absent (an older page, a script): the field keeps its value
                value = form.get(name, "")
                text = _text(value, field) if isinstance(value, str) else ""
                table[field.name] = _convert(hint, text)
    return config_from_dict(raw)


def place_errors(error: ConfigError, sections: Sequence[Section]) -> tuple[dict[str, str], list[str]]:
    """Errors by input name, and the ones that belong to no input on this page (shown on top)."""
    names = {s.input_name(f) for s in sections for f in s.fields}
    by_input: dict[str, str] = {}
    elsewhere: list[str] = []
    for item in error.errors:
        path = item.path
        while _INDEX_SUFFIX.search(path) and path not in names:
            path = _INDEX_SUFFIX.sub("", path)
        if path in names:
            reason = item.reason if path == item.path else f"{item.path[len(path):]}: {item.reason}"
            by_input[path] = f"{by_input[path]}; {reason}" if path in by_input else reason
        else:
            elsewhere.append(str(item))
    return by_input, elsewhere
