"""Turn the plain data `tomllib` gives into the typed config dataclasses, and back.

The walk is driven by the dataclass type hints, so adding a setting is one annotated field: the
hint says which TOML type is accepted (`Literal[...]` for a choice, `tuple[X, ...]` for an array,
a nested dataclass for a table, `Secret` for a password) and `setting(...)` attaches value checks.
A class may define `cross_check(self, at, report)` for rules involving several fields. Every
error is collected; a bad field gets a placeholder so the walk can go on and find the rest.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import typing
from collections.abc import Mapping
from typing import Any, Literal, TypeVar

from .errors import Report, describe, item_path, key_path, kind_of
from .rules import Check
from .secret import Secret

T = TypeVar("T")

_INT64 = range(-(2**63), 2**63)


class _Bad:
    """Marks a value that failed to decode (already reported)."""


_BAD = _Bad()


def setting(default: Any, *checks: Check, each: tuple[Check, ...] = ()) -> Any:
    """A field with a default and value checks; `each` checks every item of an array."""
    return dataclasses.field(default=default, metadata={"checks": checks, "each": each})


def required(*checks: Check) -> Any:
    """A field the file must set: there is no sensible default (e.g. an account's id)."""
    return dataclasses.field(metadata={"checks": checks, "each": ()})


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def decode(cls: type[T], raw: object, report: Report, at: str = "") -> T:
    """Build `cls` from `raw`, reporting every problem under path `at`; never raises for data."""
    if not isinstance(raw, Mapping):
        report.error(at, f"expected a table, got {kind_of(raw)}")
        return placeholder(cls)
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    names = [f.name for f in fields]
    for key in raw:
        if key not in names:
            report.error(key_path(at, str(key)), _unknown_key(str(key), names))
    hints = _hints(cls)
    values: dict[str, Any] = {}
    for f in fields:
        path = key_path(at, f.name)
        if f.name in raw:
            value = _decode_field(f, hints[f.name], raw[f.name], report, path)
            if value is not _BAD:
                values[f.name] = value
            elif not _has_default(f):
                values[f.name] = _zero(hints[f.name])
        elif not _has_default(f):
            report.error(path, "required")
            values[f.name] = _zero(hints[f.name])
    obj = cls(**values)
    cross_check = getattr(obj, "cross_check", None)
    if cross_check is not None:
        cross_check(at, report)
    return obj


def encode(obj: object, *, reveal_secrets: bool) -> Any:
    """Plain data (dicts, lists, scalars) from config objects, in field order.

    With `reveal_secrets=False` the `Secret` objects are kept as they are, so the result can be
    shown or logged; only the file writer asks for the plain values.
    """
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {
            f.name: encode(getattr(obj, f.name), reveal_secrets=reveal_secrets)
            for f in dataclasses.fields(obj)
        }
    if isinstance(obj, list | tuple):
        return [encode(item, reveal_secrets=reveal_secrets) for item in obj]
    if isinstance(obj, Secret) and reveal_secrets:
        return obj.reveal()
    return obj


def placeholder(cls: type[T]) -> T:
    """An instance with zero values for required fields, standing in for a table that failed."""
    hints = _hints(cls)
    return cls(**{  # type: ignore[call-arg]
        f.name: _zero(hints[f.name])
        for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        if not _has_default(f)
    })


def _has_default(f: dataclasses.Field[Any]) -> bool:
    return f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING


def _unknown_key(key: str, names: list[str]) -> str:
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.75)
    return f'unknown key (did you mean "{close[0]}"?)' if close else "unknown key"


def _decode_field(
    f: dataclasses.Field[Any], hint: Any, raw: object, report: Report, path: str
) -> Any:
    value = _decode_value(hint, raw, report, path)
    if value is _BAD:
        return _BAD
    for check in f.metadata.get("each", ()):
        for index, item in enumerate(value):
            reason = check(item)
            if reason:
                report.error(item_path(path, index), reason)
    for check in f.metadata.get("checks", ()):
        reason = check(value)
        if reason:
            report.error(path, reason)
            break
    return value


def _decode_value(hint: Any, raw: object, report: Report, path: str) -> Any:
    origin = typing.get_origin(hint)
    if origin is Literal:
        choices = typing.get_args(hint)
        value = _decode_value(type(choices[0]), raw, report, path)
        if value is _BAD:
            return _BAD
        if value not in choices:
            listed = ", ".join(describe(choice) for choice in choices)
            report.error(path, f"must be one of {listed}, got {describe(value)}")
            return _BAD
        return value
    if origin is tuple:
        item_hint, ellipsis = typing.get_args(hint)
        assert ellipsis is Ellipsis, "config arrays are declared as tuple[X, ...]"
        if not isinstance(raw, list | tuple):
            return _wrong_type(report, path, "an array", raw)
        items = [
            _decode_value(item_hint, item, report, item_path(path, index))
            for index, item in enumerate(raw)
        ]
        return _BAD if any(item is _BAD for item in items) else tuple(items)
    if dataclasses.is_dataclass(hint):
        return decode(hint, raw, report, path)
    if hint is Secret:
        if isinstance(raw, Secret):
            return raw
        if isinstance(raw, str) and _storable(raw):
            return Secret(raw)
        # Never quote the value: it is a password.
        report.error(path, f"expected a string, got {kind_of(raw)}"
                     + (" with unpaired surrogates" if isinstance(raw, str) else ""))
        return _BAD
    if hint is bool:
        return raw if isinstance(raw, bool) else _wrong_type(report, path, "a boolean", raw)
    if hint is int:
        if isinstance(raw, bool) or not isinstance(raw, int):
            return _wrong_type(report, path, "an integer", raw)
        if raw not in _INT64:
            report.error(path, f"{raw} does not fit in 64 bits")
            return _BAD
        return raw
    if hint is float:
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            return _wrong_type(report, path, "a number", raw)
        if not math.isfinite(raw):
            report.error(path, f"must be a finite number, got {describe(raw)}")
            return _BAD
        return float(raw)
    if hint is str:
        if not isinstance(raw, str):
            return _wrong_type(report, path, "a string", raw)
        if not _storable(raw):
            report.error(path, "contains unpaired surrogates, which cannot be stored")
            return _BAD
        return raw
    raise TypeError(f"unsupported config field type {hint!r} at {path}")


def _storable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _wrong_type(report: Report, path: str, expected: str, raw: object) -> _Bad:
    report.error(path, f"expected {expected}, got {describe(raw)}")
    return _BAD


def _zero(hint: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin is Literal:
        return typing.get_args(hint)[0]
    if origin is tuple:
        return ()
    if dataclasses.is_dataclass(hint):
        return placeholder(hint)
    if hint is Secret:
        return Secret()
    return hint()
