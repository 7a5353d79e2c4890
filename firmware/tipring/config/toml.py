"""A small TOML writer: the stdlib reads TOML (`tomllib`) but cannot write it.

Only what the config needs: strings, integers, floats, booleans, arrays of those, tables and
arrays of tables. Output is deterministic (keys in the order given), and every string is written
as a basic string with escapes, so control characters, quotes and backslashes survive the round
trip through `tomllib` and a hand edit in a text editor cannot be confused by them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
# TOML basic strings may not contain raw control characters other than tab, nor DEL; escape
# tab too so a config line never hides whitespace.
_NEEDS_ESCAPE = re.compile(r'[\x00-\x1f"\\\x7f]')
_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f",
                  "\r": "\\r"}
_INT64 = range(-(2**63), 2**63)


def quote_string(text: str) -> str:
    """Return `text` as a TOML basic string literal (also used to quote values in messages)."""
    if any(0xD800 <= ord(ch) <= 0xDFFF for ch in text):
        raise ValueError("string contains unpaired surrogates, which TOML cannot represent")
    return '"' + _NEEDS_ESCAPE.sub(_escape, text) + '"'


def _escape(match: re.Match[str]) -> str:
    ch = match.group()
    return _SHORT_ESCAPES.get(ch) or f"\\u{ord(ch):04X}"


def quote_key(key: str) -> str:
    """Bare keys where TOML allows them, a quoted key otherwise (spaces, dots, unicode...)."""
    return key if _BARE_KEY.fullmatch(key) else quote_string(key)


def dumps(data: Mapping[str, Any]) -> str:
    """Serialize a mapping to TOML text that `tomllib.loads` reads back equal.

    Raises TypeError for values TOML (or this writer) cannot hold, e.g. None or a mixed array
    of tables and scalars, rather than writing something that reads back different.
    """
    lines: list[str] = []
    _write_table(lines, (), data, header=None)
    return "\n".join(lines).lstrip("\n") + "\n" if lines else ""


def _is_table(value: object) -> bool:
    return isinstance(value, Mapping)


def _is_array_of_tables(value: object) -> bool:
    return (
        isinstance(value, list | tuple)
        and len(value) > 0
        and all(_is_table(item) for item in value)
    )


def _write_table(
    lines: list[str], path: tuple[str, ...], table: Mapping[str, Any], header: str | None
) -> None:
    # Plain values must come before any sub-table header, or TOML would file them under it.
    if header is not None:
        lines.append("")
        lines.append(header)
    for key, value in table.items():
        if not isinstance(key, str):
            raise TypeError(f"TOML keys must be strings, got {type(key).__name__}")
        if not (_is_table(value) or _is_array_of_tables(value)):
            lines.append(f"{quote_key(key)} = {_value(value)}")
    for key, value in table.items():
        sub = (*path, key)
        dotted = ".".join(quote_key(part) for part in sub)
        if _is_table(value):
            _write_table(lines, sub, value, header=f"[{dotted}]")
        elif _is_array_of_tables(value):
            for item in value:
                _write_table(lines, sub, item, header=f"[[{dotted}]]")


def _value(value: object) -> str:
    if isinstance(value, bool):  # before int: bool is an int subclass, TOML keeps them apart
        return "true" if value else "false"
    if isinstance(value, int):
        if value not in _INT64:
            raise ValueError(f"integer {value} does not fit TOML's 64-bit range")
        return str(value)
    if isinstance(value, float):
        # repr gives the shortest text that reads back to the same float; TOML spells the
        # specials inf/-inf/nan, as Python's repr does.
        return repr(value)
    if isinstance(value, str):
        return quote_string(value)
    if isinstance(value, list | tuple):  # not any Sequence: bytes would become integers
        if any(_is_table(item) for item in value):
            raise TypeError("an array mixing tables and other values cannot be written")
        return "[" + ", ".join(_value(item) for item in value) + "]"
    raise TypeError(f"cannot write a {type(value).__name__} value as TOML")
