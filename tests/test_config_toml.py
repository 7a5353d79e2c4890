"""The TOML writer and the config round trip (render -> tomllib -> validate)."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tipring.config import (
    END_MARKER,
    AccountConfig,
    Config,
    DeviceConfig,
    LineConfig,
    NetworkConfig,
    Secret,
    WebConfig,
    parse_config,
    render_config,
)
from tipring.config.toml import dumps, quote_string

# --- the writer on its own ---------------------------------------------------------------------


def test_tricky_strings_round_trip() -> None:
    data = {
        "quote": 'say "hi"',
        "backslash": "C:\\path\\to\\",
        "unicode": "Zürich — 東京 ☎ \U0001f4de",
        "controls": "".join(chr(c) for c in range(32)) + "\x7f",
        "empty": "",
        "tricky key.with dots": "k",
        "": "empty key",
        "ключ": 1,
    }
    assert tomllib.loads(dumps(data)) == data


def test_nested_tables_arrays_of_tables_and_empty_lists_round_trip() -> None:
    data = {
        "top": 1,
        "flag": False,
        "ratio": -0.5,
        "big": 2**63 - 1,
        "small": -(2**63),
        "empty": [],
        "nested_arrays": [[1, 2], [], ["a"]],
        "a": {"b": {"c": {"d": "deep"}, "x": 1}, "empty_table": {}},
        "items": [
            {"name": "one", "sub": {"k": "v"}, "more": [{"n": 1}, {"n": 2}]},
            {},
            {"name": "three"},
        ],
        "after": {"z": [1.5, 2.0]},
    }
    assert tomllib.loads(dumps(data)) == data


def test_output_is_deterministic_and_readable() -> None:
    data = {"b": 1, "a": {"x": "y"}, "c": [{"n": 1}]}
    assert dumps(data) == dumps(dict(data))
    assert dumps(data) == 'b = 1\n\n[a]\nx = "y"\n\n[[c]]\nn = 1\n'


def test_float_specials_and_exponents() -> None:
    data = {"inf": float("inf"), "ninf": float("-inf"), "tiny": 1e-300, "huge": 1.5e300,
            "negzero": -0.0}
    assert tomllib.loads(dumps(data)) == data


@pytest.mark.parametrize("value", [None, {1, 2}, b"bytes", [{"a": 1}, 2], object()])
def test_unwritable_values_are_refused(value: object) -> None:
    with pytest.raises(TypeError):
        dumps({"k": value})


def test_out_of_range_integer_and_surrogates_are_refused() -> None:
    with pytest.raises(ValueError, match="64-bit"):
        dumps({"k": 2**63})
    with pytest.raises(ValueError, match="surrogates"):
        quote_string("\ud800")


scalars = (
    st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text()
)
tables = st.recursive(
    st.dictionaries(st.text(), scalars | st.lists(scalars), max_size=4),
    lambda children: st.dictionaries(
        st.text(), scalars | st.lists(scalars) | children | st.lists(children, max_size=3),
        max_size=4,
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(tables)
def test_any_supported_document_round_trips(data: dict[str, Any]) -> None:
    assert tomllib.loads(dumps(data)) == data


# --- configs ------------------------------------------------------------------------------------

# Free text (display names, passwords) may hold anything storable; names follow their rules.
free_text = st.text(st.characters(exclude_categories=("Cs", "Cc")), max_size=64)
any_secret = st.text(st.characters(exclude_categories=("Cs",)), max_size=40).map(Secret)
label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
host_names = st.lists(label, min_size=1, max_size=3).map(".".join).filter(
    lambda name: not name.split(".")[-1].isdigit())
hosts = host_names | st.ip_addresses(v=4).map(str) | st.ip_addresses(v=6).map(
    lambda a: f"[{a}]")
host_ports = st.tuples(hosts, st.none() | st.integers(1, 65535)).map(
    lambda hp: hp[0] if hp[1] is None else f"{hp[0]}:{hp[1]}")
gains = st.floats(-12, 6, allow_nan=False)


@st.composite
def accounts(draw: st.DrawFn, account_id: str) -> AccountConfig:
    return AccountConfig(
        id=account_id,
        enabled=draw(st.booleans()),
        display_name=draw(free_text),
        user=draw(st.from_regex(r"[A-Za-z0-9+*._-]{1,20}", fullmatch=True)),
        auth_user=draw(free_text),
        password=draw(any_secret),
        domain=draw(host_ports),
        registrar=draw(st.just("") | host_ports),
        transport=draw(st.sampled_from(["udp", "tcp", "tls"])),
        outbound_proxy=draw(st.just("") | host_ports),
        expires=draw(st.integers(60, 86400)),
        srtp=draw(st.sampled_from(["off", "optional", "mandatory"])),
        dtmf=draw(st.sampled_from(["rfc4733", "info", "inband"])),
        codecs=draw(st.permutations(["PCMU", "PCMA"]).flatmap(
            lambda codecs: st.integers(1, 2).map(lambda n: tuple(codecs[:n])))),
        keepalive_s=draw(st.just(0) | st.integers(10, 3600)),
        allow_sip_from=draw(st.sampled_from(["registrar", "any"])),
    )


@st.composite
def configs(draw: st.DrawFn) -> Config:
    ids = draw(st.lists(st.from_regex(r"[a-z0-9][a-z0-9_-]{0,7}", fullmatch=True), unique=True,
                        max_size=3))
    account_list = tuple(draw(accounts(account_id)) for account_id in ids)
    lines = []
    for _ in range(draw(st.integers(1, 2))):
        flash_min = draw(st.integers(20, 1999))
        lines.append(LineConfig(
            enabled=draw(st.booleans()),
            account=draw(st.sampled_from(["", *ids])),
            ring_frequency_hz=draw(st.sampled_from([0, 16, 20, 25, 50])),
            tx_gain_db=draw(gains),
            rx_gain_db=draw(gains),
            flash_min_ms=flash_min,
            flash_max_ms=draw(st.integers(flash_min + 1, 2000)),
            caller_id=draw(st.sampled_from(["region", "bellcore", "etsi-fsk", "etsi-dtmf",
                                            "none"])),
        ))
    static = draw(st.booleans())
    return Config(
        device=DeviceConfig(
            name=draw(label),
            region=draw(st.sampled_from(sorted(["US", "GB", "DE", "JP", "NZ"]))),
            timezone=draw(st.sampled_from(["UTC", "Europe/Paris", "America/Argentina/Salta"])),
            log_level=draw(st.sampled_from(["debug", "info", "warning", "error"])),
        ),
        lines=tuple(lines),
        accounts=account_list,
        network=NetworkConfig(
            mode="static" if static else "dhcp",
            address="10.20.30.40/16" if static else "",
            gateway=draw(st.sampled_from(["", "10.20.0.1"])) if static else "",
            dns=tuple(draw(st.lists(st.ip_addresses().map(str), max_size=3))),
            ntp_servers=tuple(draw(st.lists(host_names, max_size=3))),
            vlan=draw(st.just(0) | st.integers(1, 4094)),
        ),
        web=WebConfig(
            listen=str(draw(st.ip_addresses())),
            port=draw(st.integers(1, 65535)),
            https=draw(st.booleans()),
            admin_password_hash=draw(any_secret),
        ),
    )


@settings(max_examples=150, deadline=None)
@given(configs())
def test_any_valid_config_round_trips(config: Config) -> None:
    text = render_config(config)
    assert parse_config(text) == config
    assert render_config(parse_config(text)) == text  # deterministic


def test_rendered_file_has_header_version_and_end_marker() -> None:
    text = render_config(Config())
    assert text.startswith("# TipRing configuration")
    assert text.rstrip("\n").endswith(END_MARKER)
    assert tomllib.loads(text)["schema_version"] == 1
    assert tomllib.loads(text)["accounts"] == []
