"""Schema validation: defaults, every kind of bad value, all errors at once."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest

from tipring.config import (
    AccountConfig,
    Config,
    ConfigError,
    FieldError,
    LineConfig,
    Secret,
    config_from_dict,
    default_config,
    parse_config,
    render_config,
    validate,
)


def valid_document() -> dict[str, Any]:
    """A full, valid document touching every section; each case below breaks one thing."""
    return {
        "schema_version": 1,
        "device": {"name": "kitchen-ata", "region": "GB", "timezone": "Europe/London"},
        "lines": [{"account": "sip1"}, {"enabled": False, "ring_frequency_hz": 25}],
        "accounts": [
            {"id": "sip1", "user": "+441234567890", "password": "s3cret",
             "domain": "sip.example.net", "registrar": "[2001:db8::5]:5061",
             "outbound_proxy": "10.0.0.2:5060", "transport": "tls", "srtp": "mandatory"},
            {"id": "pbx", "enabled": False},
        ],
        "network": {"mode": "static", "address": "192.168.1.20/24", "gateway": "192.168.1.1",
                    "dns": ["192.168.1.1", "2001:db8::53"], "ntp_servers": ["ntp.example"],
                    "vlan": 10},
        "web": {"listen": "0.0.0.0", "port": 80, "https": True,
                "admin_password_hash": "$argon2id$v=19$..."},
    }


def errors_after(change: dict[tuple[Any, ...], Any]) -> list[FieldError]:
    """Validation errors of the valid document with values at the given paths replaced
    (a value of `DELETE` removes the key)."""
    document = valid_document()
    for path, value in change.items():
        parent = document
        for step in path[:-1]:
            parent = parent[step]
        if value is DELETE:
            del parent[path[-1]]
        else:
            parent[path[-1]] = value
    with pytest.raises(ConfigError) as caught:
        config_from_dict(document)
    return caught.value.errors


DELETE = object()


def test_defaults_are_valid_and_usable() -> None:
    config = default_config()
    assert config == Config()
    assert validate(config) == []
    assert len(config.lines) == 1 and config.lines[0].enabled and config.lines[0].account == ""
    assert config.accounts == ()
    assert config.network.mode == "dhcp"
    assert config.web.listen == "127.0.0.1" and config.web.port == 8080
    assert not config.web.admin_password_hash.is_set  # no default password
    assert parse_config(render_config(config)) == config


def test_valid_document_loads_with_the_values_given() -> None:
    config = config_from_dict(valid_document())
    assert config.device.region == "GB"
    assert config.lines[1].ring_frequency_hz == 25
    assert config.accounts[0].password == Secret("s3cret")
    assert config.accounts[0].auth_username == "+441234567890"  # auth_user defaults to user
    assert config.accounts[0].registrar_address == "[2001:db8::5]:5061"
    assert config.accounts[1].registrar_address == ""
    assert config.account("pbx") is config.accounts[1]
    assert config.account("nope") is None
    assert config.network.dns == ("192.168.1.1", "2001:db8::53")


def test_empty_document_is_the_defaults_and_missing_version_means_schema_1() -> None:
    assert config_from_dict({}) == Config()


def test_integers_are_accepted_for_float_settings() -> None:
    document = valid_document()
    document["lines"][0]["tx_gain_db"] = -3
    config = config_from_dict(document)
    assert config.lines[0].tx_gain_db == -3.0 and isinstance(config.lines[0].tx_gain_db, float)


BAD_VALUES = [
    # wrong types (TOML booleans are not integers, strings are not numbers)
    ({("web", "port"): "80"}, "web.port", 'expected an integer, got "80"'),
    ({("web", "port"): True}, "web.port", "expected an integer, got true"),
    ({("web", "https"): 1}, "web.https", "expected a boolean, got 1"),
    ({("lines", 0, "enabled"): "yes"}, "lines[0].enabled", 'expected a boolean, got "yes"'),
    ({("lines", 0, "tx_gain_db"): "1"}, "lines[0].tx_gain_db", 'expected a number, got "1"'),
    ({("lines", 0, "tx_gain_db"): float("nan")}, "lines[0].tx_gain_db",
     "must be a finite number, got nan"),
    ({("lines", 0, "ring_frequency_hz"): 20.0}, "lines[0].ring_frequency_hz",
     "expected an integer, got 20.0"),
    ({("device", "name"): 5}, "device.name", "expected a string, got 5"),
    ({("device",): "x"}, "device", "expected a table, got a string"),
    ({("accounts",): {"id": "x"}}, "accounts", "expected an array, got a table"),
    ({("accounts", 1): "pbx"}, "accounts[1]", "expected a table, got a string"),
    ({("network", "dns"): "8.8.8.8"}, "network.dns", 'expected an array, got "8.8.8.8"'),
    ({("network", "dns"): [1]}, "network.dns[0]", "expected a string, got 1"),
    ({("accounts", 0, "codecs"): "PCMU"}, "accounts[0].codecs", "expected an array"),
    ({("schema_version",): "1"}, "schema_version", 'expected an integer, got "1"'),
    # out of range
    ({("accounts", 0, "expires"): 5}, "accounts[0].expires",
     "must be between 60 and 86400, got 5"),
    ({("accounts", 0, "expires"): 86401}, "accounts[0].expires",
     "must be between 60 and 86400, got 86401"),
    ({("web", "port"): 0}, "web.port", "must be between 1 and 65535, got 0"),
    ({("web", "port"): 65536}, "web.port", "must be between 1 and 65535, got 65536"),
    ({("lines", 0, "tx_gain_db"): -12.5}, "lines[0].tx_gain_db",
     "must be between -12 and 6, got -12.5"),
    ({("lines", 0, "rx_gain_db"): 7}, "lines[0].rx_gain_db", "must be between -12 and 6, got 7.0"),
    ({("lines", 0, "flash_min_ms"): 5}, "lines[0].flash_min_ms",
     "must be between 20 and 2000, got 5"),
    ({("network", "vlan"): 4095}, "network.vlan",
     "must be 0 (no VLAN) or between 1 and 4094, got 4095"),
    ({("accounts", 0, "keepalive_s"): 5}, "accounts[0].keepalive_s",
     "must be 0 (off) or between 10 and 3600, got 5"),
    ({("accounts", 0, "keepalive_s"): -1}, "accounts[0].keepalive_s",
     "must be 0 (off) or between 10 and 3600, got -1"),
    ({("web", "port"): 2**70}, "web.port", "does not fit in 64 bits"),
    ({("schema_version",): 0}, "schema_version", "must be at least 1, got 0"),
    # bad choices
    ({("accounts", 0, "transport"): "sctp"}, "accounts[0].transport",
     'must be one of "udp", "tcp", "tls", got "sctp"'),
    ({("accounts", 0, "transport"): "UDP"}, "accounts[0].transport", 'got "UDP"'),
    ({("accounts", 0, "srtp"): "yes"}, "accounts[0].srtp",
     'must be one of "off", "optional", "mandatory", got "yes"'),
    ({("accounts", 0, "dtmf"): "rfc2833"}, "accounts[0].dtmf",
     'must be one of "rfc4733", "info", "inband", got "rfc2833"'),
    ({("accounts", 0, "allow_sip_from"): "lan"}, "accounts[0].allow_sip_from",
     'must be one of "registrar", "any", got "lan"'),
    ({("lines", 0, "ring_frequency_hz"): 30}, "lines[0].ring_frequency_hz",
     "must be one of 0, 16, 20, 25, 50, got 30"),
    ({("lines", 0, "caller_id"): "dtmf"}, "lines[0].caller_id",
     'must be one of "region", "bellcore", "etsi-fsk", "etsi-dtmf", "none", got "dtmf"'),
    ({("device", "log_level"): "verbose"}, "device.log_level",
     'must be one of "debug", "info", "warning", "error", got "verbose"'),
    ({("network", "mode"): "auto"}, "network.mode", 'must be one of "dhcp", "static", got "auto"'),
    ({("device", "region"): "XX"}, "device.region",
     'must be one of AU, CA, DE, ES, FR, GB, IT, JP, NL, NZ, SE, US, got "XX"'),
    ({("device", "region"): "us"}, "device.region", 'must be upper case ("US"), got "us"'),
    ({("accounts", 0, "codecs"): ["PCMU", "G729"]}, "accounts[0].codecs[1]",
     'must be one of "PCMU", "PCMA", got "G729"'),
    # unknown keys (typos must not silently do nothing)
    ({("accounts", 0, "transprot"): "tcp"}, "accounts[0].transprot",
     'unknown key (did you mean "transport"?)'),
    ({("colour",): "red"}, "colour", "unknown key"),
    ({("device", "hostname"): "x"}, "device.hostname", "unknown key"),
    ({("web", "bind address"): "x"}, 'web."bind address"', "unknown key"),
    # required values
    ({("accounts", 1, "id"): DELETE}, "accounts[1].id", "required"),
    ({("accounts", 0, "user"): ""}, "accounts[0].user", "required when the account is enabled"),
    ({("accounts", 0, "domain"): DELETE}, "accounts[0].domain",
     "required when the account is enabled"),
    ({("network", "address"): ""}, "network.address", 'required when mode is "static"'),
    # references and uniqueness
    ({("accounts", 1, "id"): "sip1"}, "accounts[1].id",
     'duplicate account id "sip1" (also accounts[0].id)'),
    ({("lines", 0, "account"): "sip9"}, "lines[0].account", 'no account with id "sip9"'),
    ({("accounts", 0, "id"): "a b"}, "accounts[0].id",
     "must be 1 to 32 letters, digits, '-' or '_', starting with a letter or digit, got \"a b\""),
    ({("accounts", 0, "id"): "x" * 33}, "accounts[0].id", "must be 1 to 32 letters"),
    # host syntax
    ({("accounts", 0, "domain"): "sip example.net"}, "accounts[0].domain",
     '"sip example.net" is not a valid host name'),
    ({("accounts", 0, "domain"): "pbx.local."}, "accounts[0].domain", "is not a valid host name"),
    ({("accounts", 0, "domain"): "-sip.example.net"}, "accounts[0].domain",
     "is not a valid host name"),
    ({("accounts", 0, "domain"): "sip.example.net:0"}, "accounts[0].domain",
     'port must be a number between 1 and 65535, got "0"'),
    ({("accounts", 0, "domain"): "sip.example.net:70000"}, "accounts[0].domain",
     'port must be a number between 1 and 65535, got "70000"'),
    ({("accounts", 0, "domain"): "sip.example.net:"}, "accounts[0].domain",
     'port must be a number between 1 and 65535, got ""'),
    ({("accounts", 0, "registrar"): "2001:db8::5"}, "accounts[0].registrar",
     "write IPv6 addresses in brackets, e.g. [2001:db8::1]:5060"),
    ({("accounts", 0, "registrar"): "[2001:db8::5"}, "accounts[0].registrar",
     "has '[' without ']'"),
    ({("accounts", 0, "registrar"): "[10.0.0.1]:5060"}, "accounts[0].registrar",
     'in brackets is not an IPv6 address'),
    ({("accounts", 0, "registrar"): "[2001:db8::5]5060"}, "accounts[0].registrar",
     "has text after ']' that is not ':port'"),
    ({("accounts", 0, "outbound_proxy"): "10.0.0.256:5060"}, "accounts[0].outbound_proxy",
     'host "10.0.0.256" is not a valid IPv4 address'),
    ({("network", "ntp_servers"): ["ntp..example"]}, "network.ntp_servers[0]",
     '"ntp..example" is not a valid host name'),
    ({("network", "dns"): ["192.168.1.1", "dns.example"]}, "network.dns[1]",
     'must be an IPv4 or IPv6 address, got "dns.example"'),
    ({("web", "listen"): "localhost"}, "web.listen",
     'must be an IPv4 or IPv6 address, got "localhost"'),
    # addresses and networks
    ({("network", "address"): "192.168.1.20"}, "network.address",
     'must be an address with a prefix length, e.g. 192.168.1.20/24, got "192.168.1.20"'),
    ({("network", "address"): "192.168.1.300/24"}, "network.address",
     "must be an IPv4 or IPv6 address with a prefix length"),
    ({("network", "address"): "192.168.1.20/33"}, "network.address",
     "must be an IPv4 or IPv6 address with a prefix length"),
    ({("network", "address"): "192.168.1.0/24"}, "network.address",
     "192.168.1.0 is the network address of 192.168.1.0/24, not a host address"),
    ({("network", "address"): "192.168.1.255/24"}, "network.address",
     "192.168.1.255 is the broadcast address of 192.168.1.0/24"),
    ({("network", "gateway"): "10.0.0.1"}, "network.gateway",
     '"10.0.0.1" is outside the network 192.168.1.0/24 of network.address'),
    ({("network", "gateway"): "2001:db8::1"}, "network.gateway", "is outside the network"),
    ({("network", "gateway"): "192.168.1.20"}, "network.gateway",
     '"192.168.1.20" is this device\'s own address'),
    ({("network", "gateway"): "192.168.1"}, "network.gateway", "must be an IPv4 or IPv6 address"),
    # lists
    ({("accounts", 0, "codecs"): []}, "accounts[0].codecs", "must have at least 1 codec, got 0"),
    ({("accounts", 0, "codecs"): ["PCMA", "PCMA"]}, "accounts[0].codecs",
     '"PCMA" is listed more than once'),
    ({("lines",): []}, "lines", "must have at least 1 line, got 0"),
    ({("lines",): [{}, {}, {}]}, "lines", "must have at most 2 lines, got 3"),
    # cross-field
    ({("lines", 0, "flash_min_ms"): 1100}, "lines[0].flash_min_ms",
     "must be less than flash_max_ms (1100), got 1100"),
    ({("lines", 1, "flash_max_ms"): 90}, "lines[1].flash_min_ms",
     "must be less than flash_max_ms (90), got 100"),
    # free text and names
    ({("accounts", 0, "display_name"): "Kitchen\r\nVia: evil"}, "accounts[0].display_name",
     "must not contain control characters"),
    ({("accounts", 0, "display_name"): "x" * 65}, "accounts[0].display_name",
     "must be at most 64 characters, got 65"),
    ({("accounts", 0, "user"): "bob smith"}, "accounts[0].user", "must be a SIP user part"),
    ({("accounts", 0, "user"): "bob@example.com"}, "accounts[0].user", "must be a SIP user part"),
    ({("device", "name"): "kitchen_ata"}, "device.name",
     ('must be 1 to 63 letters, digits or hyphens, not starting or ending with a hyphen, '
      'got "kitchen_ata"')),
    ({("device", "name"): ""}, "device.name", "must be 1 to 63 letters"),
    ({("device", "timezone"): "Europe/Berlin "}, "device.timezone",
     'must be an IANA time zone name such as "UTC" or "Europe/Berlin", got "Europe/Berlin "'),
    ({("device", "timezone"): "/etc/localtime"}, "device.timezone", "IANA time zone name"),
    ({("device", "timezone"): "Europe/../../etc"}, "device.timezone", "IANA time zone name"),
    ({("device", "timezone"): ""}, "device.timezone", "IANA time zone name"),
    # line features and star codes
    ({("lines", 0, "dial_plan"): "(x.|[2-"}, "lines[0].dial_plan", "is not a valid dial plan"),
    ({("lines", 0, "forward_all"): "555 1234"}, "lines[0].forward_all",
     'must be a number (digits, * and #) or a sip: URI, got "555 1234"'),
    ({("lines", 0, "no_answer_s"): 3}, "lines[0].no_answer_s", "must be between 5 and 120, got 3"),
    ({("lines", 0, "fallback_account"): "nope"}, "lines[0].fallback_account",
     'no account with id "nope"'),
    ({("lines", 0, "fallback_account"): "sip1"}, "lines[0].fallback_account",
     "must differ from account"),
    ({("accounts", 0, "voicemail"): "voice mail"}, "accounts[0].voicemail", "must be a number"),
    ({("features",): {"redial": "66"}}, "features.redial", "must be * or # followed by"),
    ({("lines", 0, "dial_tone"): "f1=350@-13,c=0/"}, "lines[0].dial_tone", "is not a tone: "),
    ({("lines", 0, "busy_tone"): "480@-19,620@-19;10(.5/.5/1+3)"}, "lines[0].busy_tone",
     "is not a tone: "),
    ({("lines", 0, "ring_cadence"): "2s on"}, "lines[0].ring_cadence",
     "must be on/off pairs in milliseconds"),
    ({("features",): {"redial": "*7"}}, "features.redial",
     '"*7" clashes with features.forward_all_on ("*72"): one starts the other'),
]


@pytest.mark.parametrize(
    ("change", "path", "reason"), BAD_VALUES, ids=[f"{case[1]}-{i}" for i, case in
                                                   enumerate(BAD_VALUES)]
)
def test_bad_value_is_reported_with_path_and_reason(
    change: dict[tuple[Any, ...], Any], path: str, reason: str
) -> None:
    errors = errors_after(change)
    # Exactly one error, for the broken field (no confusing follow-on errors).
    assert [error.path for error in errors] == [path], errors
    assert reason in errors[0].reason
    assert str(errors[0]) == f"{path}: {errors[0].reason}"


@pytest.mark.parametrize("value", [
    "sip.example.net", "sip.example.net:5060", "10.0.0.1", "10.0.0.1:5080",
    "[2001:db8::1]", "[2001:db8::1]:5061", "localhost", "a-b.c-d.example",
])
def test_good_hosts_are_accepted(value: str) -> None:
    document = valid_document()
    document["accounts"][0]["domain"] = value
    document["accounts"][0]["outbound_proxy"] = value
    assert config_from_dict(document).accounts[0].domain == value


@pytest.mark.parametrize("zone", [
    "UTC", "Europe/Berlin", "America/Argentina/Buenos_Aires", "Etc/GMT+5", "America/Port-au-Prince",
    "EST5EDT",
])
def test_iana_zone_names_are_accepted_without_tzdata(zone: str) -> None:
    document = valid_document()
    document["device"]["timezone"] = zone
    assert config_from_dict(document).device.timezone == zone


def test_disabled_account_needs_no_user_or_domain_and_lines_may_use_it() -> None:
    document = valid_document()
    document["lines"][1]["account"] = "pbx"
    config = config_from_dict(document)
    assert config.accounts[1].enabled is False and config.lines[1].account == "pbx"


def test_dhcp_mode_keeps_static_fields_but_does_not_need_them() -> None:
    document = valid_document()
    document["network"] = {"mode": "dhcp"}
    assert config_from_dict(document).network.address == ""
    document["network"] = {"mode": "dhcp", "address": "10.1.2.3/8", "gateway": "10.0.0.1"}
    assert config_from_dict(document).network.gateway == "10.0.0.1"


def test_ipv6_static_network() -> None:
    document = valid_document()
    document["network"].update(address="2001:db8:1::20/64", gateway="2001:db8:1::1")
    assert config_from_dict(document).network.address == "2001:db8:1::20/64"


def test_all_errors_are_reported_at_once() -> None:
    errors = errors_after({
        ("web", "port"): "80",
        ("accounts", 0, "expires"): 5,
        ("accounts", 0, "transprot"): "udp",
        ("accounts", 1, "id"): "sip1",
        ("lines", 1, "account"): "ghost",
        ("lines", 0, "flash_min_ms"): 1200,
        ("network", "gateway"): "10.0.0.1",
        ("device", "region"): "ZZ",
        ("accounts", 0, "codecs"): [],
    })
    assert sorted(error.path for error in errors) == sorted([
        "web.port", "accounts[0].expires", "accounts[0].transprot", "accounts[1].id",
        "lines[1].account", "lines[0].flash_min_ms", "network.gateway", "device.region",
        "accounts[0].codecs",
    ])


def test_one_bad_field_does_not_cause_follow_on_errors() -> None:
    # flash_max is not a number: the min < max rule is not also reported.
    assert [e.path for e in errors_after({("lines", 0, "flash_max_ms"): "800"})] == [
        "lines[0].flash_max_ms"]
    # the id cannot be read: the line that refers to it is not also reported as dangling.
    assert [e.path for e in errors_after({("accounts", 0, "id"): 7})] == ["accounts[0].id"]
    # the gateway cannot be checked against an address that is not valid.
    assert [e.path for e in errors_after({("network", "address"): "nonsense"})] == [
        "network.address"]


def test_config_error_message_lists_every_error() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config('web = {port = "80"}\ndevice = {region = "XX"}\n')
    message = str(caught.value)
    assert 'web.port: expected an integer, got "80"' in message
    assert "device.region: must be one of" in message
    assert isinstance(caught.value, ValueError)


def test_validate_checks_objects_built_in_code() -> None:
    config = Config(
        accounts=(AccountConfig(id="a", user="1", domain="x.example", expires=10),),
        lines=(LineConfig(account="b"), LineConfig(tx_gain_db=float("inf"))),
    )
    assert [str(e) for e in validate(config)] == [
        "lines[1].tx_gain_db: must be a finite number, got inf",
        "accounts[0].expires: must be between 60 and 86400, got 10",
        'lines[0].account: no account with id "b"',
    ]
    wrong_type = dataclasses.replace(Config(), web=dataclasses.replace(Config().web, port="80"))
    assert [str(e) for e in validate(wrong_type)] == ['web.port: expected an integer, got "80"']


def test_render_refuses_an_invalid_config() -> None:
    bad = Config(lines=(LineConfig(flash_min_ms=1200),))
    with pytest.raises(ConfigError) as caught:
        render_config(bad)
    assert caught.value.errors == [
        FieldError("lines[0].flash_min_ms", "must be less than flash_max_ms (1100), got 1200")]


def test_input_document_is_not_modified() -> None:
    document = valid_document()
    snapshot = copy.deepcopy(document)
    config_from_dict(document)
    assert document == snapshot


def test_config_is_immutable() -> None:
    config = Config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.web.port = 1  # type: ignore[misc]


def test_line_features_and_star_codes_load() -> None:
    document = valid_document()
    document["lines"][0].update({"dial_plan": "{ x+ | <=1617>xxxxxxx }", "do_not_disturb": True,
                                 "forward_busy": "sip:voicemail@pbx.example", "no_answer_s": 30,
                                 "fallback_account": "pbx"})
    document["features"] = {"do_not_disturb_on": "#78", "voice_menu": ""}
    config = config_from_dict(document)
    line = config.lines[0]
    assert (line.do_not_disturb, line.forward_busy, line.no_answer_s) == (
        True, "sip:voicemail@pbx.example", 30)
    codes = config.features.codes()
    assert codes["do_not_disturb_on"] == "#78" and "voice_menu" not in codes
    assert codes["forward_all_on"] == "*72"  # the defaults stay for what was not given


def test_sip_tls_settings_are_checked_as_pem() -> None:
    document = valid_document()
    document["sip"] = {"tls_ca": "hello"}
    with pytest.raises(ConfigError) as caught:
        config_from_dict(document)
    assert [e.path for e in caught.value.errors] == ["sip.tls_ca"]
    assert "PEM" in caught.value.errors[0].reason
    certificate = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    document["sip"] = {"tls_certificate": certificate}
    with pytest.raises(ConfigError) as caught:
        config_from_dict(document)
    assert [(e.path, e.reason) for e in caught.value.errors] == [
        ("sip.tls_key", "a client certificate and its key go together")]
    document["sip"] = {"tls_certificate": certificate, "tls_key": certificate}
    with pytest.raises(ConfigError) as caught:
        config_from_dict(document)
    assert caught.value.errors[0].path == "sip.tls_key"
    assert "CERTIFICATE" in caught.value.errors[0].reason and "MIIB" not in str(caught.value)
    document["sip"] = {"tls_certificate": certificate,
                       "tls_key": "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"}
    assert config_from_dict(document).sip.tls_key.is_set
