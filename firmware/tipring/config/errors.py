"""Validation errors that name the field and the reason, collected rather than raised one by one.

Someone fixing a config file or a web form wants every mistake at once, each pointing at the exact
key (`accounts[1].expires`), so validation records `FieldError`s in a `Report` and raises one
`ConfigError` at the end.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .toml import quote_key, quote_string


@dataclass(frozen=True)
class FieldError:
    """One problem: `path` is the dotted key path ("" for the document as a whole)."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}" if self.path else self.reason


class ConfigError(ValueError):
    """A configuration (text, dict or object) was refused; `errors` lists every reason."""

    def __init__(self, errors: Iterable[FieldError]) -> None:
        self.errors: list[FieldError] = list(errors)
        super().__init__("\n".join(str(error) for error in self.errors) or "invalid configuration")


class Report:
    """Collects errors during one validation pass."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def error(self, path: str, reason: str) -> None:
        self.errors.append(FieldError(path, reason))

    def clean(self, *paths: str) -> bool:
        """True if nothing at or below any of `paths` was reported.

        Cross-field rules use this so a bad value is reported once, for itself, and not again as
        a confusing consequence ("min must be below max" when min was not even a number).
        """
        for error in self.errors:
            for path in paths:
                if error.path == path or error.path.startswith((path + ".", path + "[")):
                    return False
        return True

    def raise_if_any(self) -> None:
        if self.errors:
            raise ConfigError(self.errors)


def key_path(parent: str, key: str) -> str:
    """`parent.key`, quoting keys that are not bare TOML keys so the path reads unambiguously."""
    key = quote_key(key)
    return f"{parent}.{key}" if parent else key


def item_path(parent: str, index: int) -> str:
    return f"{parent}[{index}]"


_KINDS: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (bool, "a boolean"),
    (int, "an integer"),
    (float, "a number"),
    (str, "a string"),
    (Mapping, "a table"),
    ((list, tuple), "an array"),
    ((datetime.date, datetime.time), "a date/time"),
)
_MAX_SHOWN = 60


def kind_of(value: object) -> str:
    """What TOML would call the value's type, for 'expected X, got Y' messages."""
    for types, name in _KINDS:
        if isinstance(value, types):
            return name
    return type(value).__name__


def describe(value: object) -> str:
    """The value as it would appear in TOML, for messages; arrays and tables just by kind.

    Never use this for secrets: messages are logged and shown on the status page.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        text = value.encode("utf-8", "backslashreplace").decode("utf-8")
        if len(text) > _MAX_SHOWN:
            text = text[:_MAX_SHOWN] + "..."
        return quote_string(text)
    return kind_of(value)
