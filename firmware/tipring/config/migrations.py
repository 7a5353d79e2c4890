"""Schema versions and the migrations that upgrade older config files.

A file carries `schema_version`; on load the raw TOML dict is passed through the registered
migrations N -> N+1 in order until it reaches `CURRENT_SCHEMA_VERSION`, then validated. A file
without `schema_version` is read as schema 1, the first published schema (hand-written files
copied from early documentation). A file from newer firmware is refused rather than guessed at:
its meaning may have changed, and the device falls back to its last good copy instead.

Loading never rewrites the file: an upgraded config is written in the new schema at the next
save, so rolling back to the previous firmware image still finds a file it can read until then;
after it, that firmware finds the copy the save kept of the last file in its schema
(`config.toml.schema-N`, see store.py), so it starts with the settings it had, not the defaults.

The rule that makes this work: every change of the file's shape (a key or table added, removed
or renamed, a choice added or dropped, a type changed) bumps CURRENT_SCHEMA_VERSION and registers
a migration from the previous version, even one that returns the document unchanged. Schema 1 is
the shape of the first release. tests/test_config_shape.py compares `shape.schema_shape()` with
the shape recorded per version in tests/data/config_schema/ and fails on a change without a bump;
a recorded version is never edited once released, and its example file must keep loading.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

from .errors import ConfigError, FieldError, describe

FIRST_SCHEMA_VERSION = 1
CURRENT_SCHEMA_VERSION = 1

Migration = Callable[[dict[str, Any]], dict[str, Any]]

# from-version -> function returning the document in from-version + 1 (without schema_version).
MIGRATIONS: dict[int, Migration] = {}


def migration(from_version: int) -> Callable[[Migration], Migration]:
    """Register a migration from `from_version` to the next; use as a decorator."""

    def register(function: Migration) -> Migration:
        if from_version in MIGRATIONS:
            raise ValueError(f"a migration from schema {from_version} is already registered")
        MIGRATIONS[from_version] = function
        return function

    return register


def migrate(raw: Mapping[str, Any]) -> tuple[dict[str, Any], int]:
    """The document upgraded to the current schema, without its `schema_version` key, and the
    version it was written in. Raises ConfigError (never anything else) when it cannot be."""
    current = CURRENT_SCHEMA_VERSION  # read at call time, so tests can bump it
    data = copy.deepcopy(dict(raw))  # migrations may edit freely; the caller's dict is untouched
    version = data.pop("schema_version", FIRST_SCHEMA_VERSION)
    if isinstance(version, bool) or not isinstance(version, int):
        raise _error(f"expected an integer, got {describe(version)}")
    if version < FIRST_SCHEMA_VERSION:
        raise _error(f"must be at least {FIRST_SCHEMA_VERSION}, got {version}")
    if version > current:
        raise _error(f"written by newer firmware (schema {version}, "
                     f"this firmware reads up to {current})")
    written_in = version
    while version < current:
        step = MIGRATIONS.get(version)
        if step is None:
            raise _error(f"no migration from schema {version} to {version + 1}")
        try:
            data = step(data)
        except Exception as exc:  # a broken migration must not stop the device booting
            raise _error(f"migration from schema {version} to {version + 1} failed: "
                         f"{type(exc).__name__}: {exc}") from exc
        if not isinstance(data, dict):
            raise _error(f"migration from schema {version} to {version + 1} returned "
                         f"{type(data).__name__}, not a table")
        data.pop("schema_version", None)
        version += 1
    return data, written_in


def _error(reason: str) -> ConfigError:
    return ConfigError([FieldError("schema_version", reason)])
