"""The config file as text: parse and validate it, or render a config to it. No file access.

The web UI, `tipring config check` and the store all go through these functions, so a config is
judged the same way wherever it comes from.

Files written by TipRing start with a header comment and end with `END_MARKER`. A file that has
the header but not the end marker is refused as truncated: a file cut short at a line boundary
is still valid TOML (`expires = 360` instead of `3600`, or a missing `[web]` table) and would
otherwise load silently as a different configuration. Hand-written files without the header
need no marker. A file with no settings at all is refused too (empty, or cut inside the header).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from typing import Any

from . import migrations, toml
from .decode import decode, encode
from .errors import ConfigError, FieldError, Report
from .schema import Config

HEADER_MARK = "# TipRing configuration"
HEADER = (
    f"{HEADER_MARK}, written by the firmware.\n"
    "# Edit with care: unknown keys are errors. Keep the last line: without it this file is\n"
    "# taken as truncated. Check an edited copy with `tipring config check FILE`.\n"
)
END_MARKER = "# end of TipRing configuration"


# tomllib's memory grows with the square of a dotted key's depth (about 300 MB for a 80 kB file
# of 2000-deep keys), so absurd nesting is refused before parsing; the schema is 3 levels deep.
MAX_KEY_DEPTH = 16


def parse_config(text: str) -> Config:
    """Parse and validate TOML text (migrating older schemas); raises ConfigError."""
    for number, line in enumerate(text.split("\n"), start=1):
        key = line.split("=", 1)[0].split("#", 1)[0]
        if key.count(".") > MAX_KEY_DEPTH:
            raise ConfigError([FieldError("", f"line {number}: keys nested more than "
                                              f"{MAX_KEY_DEPTH} levels deep are not accepted")])
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message carries the line and column and never quotes the content.
        raise ConfigError([FieldError("", f"TOML syntax error: {exc}")]) from None
    except RecursionError:  # deeply nested arrays or inline tables
        raise ConfigError([FieldError("", "TOML nested too deeply")]) from None
    if not raw:
        raise ConfigError([FieldError("", "no settings found (the file is empty or truncated)")])
    lines = [line.rstrip("\r\t ") for line in text.split("\n")]  # TOML's line breaks only
    if lines[0].startswith(HEADER_MARK) and END_MARKER not in lines:
        raise ConfigError([FieldError("", f"the file is truncated: it was written by TipRing "
                                          f"but its last line {END_MARKER!r} is missing")])
    return config_from_dict(raw)


def parse_config_bytes(data: bytes) -> Config:
    """Like `parse_config`, for file contents; non-UTF-8 data is a ConfigError too."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([FieldError("", f"not UTF-8 text (invalid byte 0x{data[exc.start]:02x} "
                                          f"at offset {exc.start})")]) from None
    return parse_config(text)


def config_from_dict(raw: Mapping[str, Any]) -> Config:
    """Validate plain data as `tomllib` returns it (migrating older schemas); raises ConfigError."""
    data, _ = migrations.migrate(raw)
    report = Report()
    config = decode(Config, data, report)
    report.raise_if_any()
    return config


def validate(config: Config) -> list[FieldError]:
    """Every problem with a config object (e.g. one the web UI built); empty when valid."""
    report = Report()
    decode(Config, encode(config, reveal_secrets=False), report)
    return report.errors


def canonical_config(config: Config) -> Config:
    """The same settings with canonical types (tuples, Secret, float gains) or ConfigError.

    Objects built in code may hold a list where the schema says tuple; this is the config as it
    will read back from the file, so it compares equal to what `load()` returns later.
    """
    report = Report()
    canonical = decode(Config, encode(config, reveal_secrets=False), report)
    report.raise_if_any()
    return canonical


def config_to_dict(config: Config, *, reveal_secrets: bool = False) -> dict[str, Any]:
    """Plain data for JSON or display; secrets stay `Secret` objects unless asked for."""
    return {
        "schema_version": migrations.CURRENT_SCHEMA_VERSION,
        **encode(config, reveal_secrets=reveal_secrets),
    }


def render_config(config: Config) -> str:
    """The TOML file text for a valid config (raises ConfigError otherwise). Deterministic."""
    canonical = canonical_config(config)
    body = toml.dumps(config_to_dict(canonical, reveal_secrets=True))
    return f"{HEADER}\n{body}\n{END_MARKER}\n"
