"""The shape of config.toml (its tables, keys, TOML types and choices) as plain data.

A file written in one schema must mean the same to every firmware that reads that schema, and
older firmware refuses keys it does not know, so every change of shape needs a new schema version
(see migrations.py). People forget; a test compares `schema_shape()` with the shape recorded for
`CURRENT_SCHEMA_VERSION` and names what changed. The shape is derived from the dataclasses and
their type hints, the same ones `decode.py` walks, so a new field shows up without anyone having
to remember to describe it. Value checks and defaults are not part of the shape: a narrower range
or a new default is a behaviour change, not a new file layout.

Each key is described by a dict: `type` (a TOML type: "string", "integer", "float", "boolean",
"array", "table", "array of tables"), `choices` for a `Literal` (sorted), `items` for an array,
`keys` for a table or an array of tables, and `required: true` for a key without a default.
The top-level `schema_version` key belongs to every schema and is not listed.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from typing import Any, Literal

from .schema import Config
from .secret import Secret

_SCALARS: dict[Any, str] = {bool: "boolean", int: "integer", float: "float", str: "string",
                            Secret: "string"}


def schema_shape(cls: type = Config) -> dict[str, Any]:
    """The keys of the table `cls` (a config dataclass; `Config` for the whole file), sorted."""
    hints = typing.get_type_hints(cls)
    keys: dict[str, Any] = {}
    for f in sorted(dataclasses.fields(cls), key=lambda f: f.name):
        described = _describe(hints[f.name], f"{cls.__name__}.{f.name}")
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            described["required"] = True
        keys[f.name] = described
    return keys


def _describe(hint: Any, where: str) -> dict[str, Any]:
    origin = typing.get_origin(hint)
    if origin is Literal:
        choices = typing.get_args(hint)
        return {**_describe(type(choices[0]), where),
                "choices": sorted(choices, key=lambda choice: (type(choice).__name__, choice))}
    if origin is tuple:
        args = typing.get_args(hint)
        if len(args) != 2 or args[1] is not Ellipsis:
            raise TypeError(f"{where}: config arrays are declared as tuple[X, ...], not {hint!r}")
        item = args[0]
        if dataclasses.is_dataclass(item):
            return {"type": "array of tables", "keys": schema_shape(item)}
        return {"type": "array", "items": _describe(item, where)}
    if dataclasses.is_dataclass(hint):
        return {"type": "table", "keys": schema_shape(hint)}
    if hint in _SCALARS:
        return {"type": _SCALARS[hint]}
    raise TypeError(f"{where}: no TOML shape for the type {hint!r}")


def shape_differences(recorded: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """What changed from the `recorded` shape to the `current` one, a line per key path (see
    `flatten_shape`), sorted by path; [] when they are the same."""
    old, new = flatten_shape(recorded), flatten_shape(current)
    changes = [f"added: {path} ({_summary(new[path])})" for path in new if path not in old]
    changes += [f"removed: {path} ({_summary(old[path])})" for path in old if path not in new]
    changes += [f"changed: {path}: {_summary(old[path])} -> {_summary(new[path])}"
                for path in old if path in new and old[path] != new[path]]
    return sorted(changes, key=lambda change: change.split(": ", 1)[1])


def flatten_shape(keys: Mapping[str, Any], prefix: str = "") -> dict[str, dict[str, Any]]:
    """Dotted path (`[]` for the items of an array of tables) -> the key's description without
    its sub-keys, which get paths of their own."""
    flat: dict[str, dict[str, Any]] = {}
    for name, described in keys.items():
        path = f"{prefix}{name}"
        flat[path] = {k: v for k, v in described.items() if k != "keys"}
        if "keys" in described:
            below = "[]." if described["type"] == "array of tables" else "."
            flat |= flatten_shape(described["keys"], path + below)
    return flat


def _summary(described: Mapping[str, Any]) -> str:
    text = described["type"]
    if "items" in described:
        text += f" of {_summary(described['items'])}"
    if "choices" in described:
        text += ", one of " + "/".join(str(choice) for choice in described["choices"])
    return text + (", required" if described.get("required") else "")
