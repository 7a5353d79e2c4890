"""A password or password hash that does not show itself.

Configs get logged, printed in tracebacks, dumped by debuggers and rendered in status pages;
wrapping secrets means none of those paths can leak one by accident. The value is reachable only
through `reveal()`, which makes the few places that need it easy to find and review.
"""

from __future__ import annotations

import hmac

MASK = "********"


class Secret:
    """An immutable string whose repr, str and format are masked."""

    __slots__ = ("_value",)
    _value: str

    def __init__(self, value: str = "") -> None:
        if not isinstance(value, str):
            raise TypeError(f"a Secret holds a string, not {type(value).__name__}")
        object.__setattr__(self, "_value", value)

    def reveal(self) -> str:
        """The plain value: for the SIP digest, the password check and the config file only."""
        return self._value

    @property
    def is_set(self) -> bool:
        """Whether a value is present; safe to show (e.g. 'password: not set')."""
        return bool(self._value)

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return format(MASK, spec)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode("utf-8", "surrogatepass"),
                                   other._value.encode("utf-8", "surrogatepass"))

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Secret is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("Secret is immutable")

    def __reduce__(self) -> tuple[type[Secret], tuple[str]]:
        # copy/deepcopy (used by dataclasses.asdict and replace) need this because
        # __setattr__ is blocked.
        return (Secret, (self._value,))
