"""Schema versions: newer files refused (with fallback), the migration hook, failing migrations."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from tipring.config import (
    Config,
    ConfigError,
    ConfigStore,
    FieldError,
    config_from_dict,
    migration,
    parse_config,
    render_config,
)
from tipring.config import migrations

V1_FILE = """\
# A schema 1 file as the previous firmware wrote it.
schema_version = 1

[[accounts]]
id = "home"
user = "100"
domain = "pbx.example"

[[lines]]
account = "home"
"""


@pytest.fixture
def schema_2(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Pretend this firmware reads schema 2, whose migration from schema 1 puts the device on
    voice VLAN 20 (something visible); returns the documents the migration was given."""
    seen: list[dict[str, Any]] = []
    monkeypatch.setattr(migrations, "CURRENT_SCHEMA_VERSION", 2)
    monkeypatch.setattr(migrations, "MIGRATIONS", {})

    @migration(from_version=1)
    def tag_voice_vlan(document: dict[str, Any]) -> dict[str, Any]:
        seen.append(document)
        document.setdefault("network", {})["vlan"] = 20
        return document

    return seen


def test_v1_file_is_upgraded_on_load_and_saved_as_v2(
    tmp_path: Path, schema_2: list[dict[str, Any]]
) -> None:
    store = ConfigStore(tmp_path / "config.toml")
    store.path.write_text(V1_FILE)
    result = store.load()
    assert (result.source, result.problems) == ("file", [])
    assert result.config.network.vlan == 20
    assert result.config.account("home") is not None
    assert "schema_version" not in schema_2[0]  # migrations get the document without it
    assert store.path.read_text() == V1_FILE  # loading does not rewrite (firmware rollback)
    store.save(result.config)
    assert tomllib.loads(store.path.read_text())["schema_version"] == 2
    assert store.load().config == result.config
    assert len(schema_2) == 1  # a v2 file is not migrated again


def test_file_without_schema_version_is_read_as_schema_1(schema_2: list[dict[str, Any]]) -> None:
    assert config_from_dict({"device": {"name": "x"}}).network.vlan == 20
    assert len(schema_2) == 1


def test_newer_schema_is_refused_and_the_device_falls_back(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("schema_version = 3\n")
    assert caught.value.errors == [FieldError(
        "schema_version", "written by newer firmware (schema 3, this firmware reads up to 1)")]

    store = ConfigStore(tmp_path / "config.toml")
    good = Config()
    store.save(good)
    store.path.write_text(render_config(good).replace("schema_version = 1", "schema_version = 3"))
    result = store.load()
    assert (result.config, result.source) == (good, "last-good")
    assert result.problems[0] == (f"{store.path}: schema_version: written by newer firmware "
                                  "(schema 3, this firmware reads up to 1)")


def test_failing_migration_is_reported_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(document: dict[str, Any]) -> dict[str, Any]:
        raise KeyError("lines")

    monkeypatch.setattr(migrations, "CURRENT_SCHEMA_VERSION", 2)
    monkeypatch.setattr(migrations, "MIGRATIONS", {1: broken})
    store = ConfigStore(tmp_path / "config.toml")
    store.path.write_text(V1_FILE)
    result = store.load()
    assert (result.config, result.source) == (Config(), "defaults")
    assert result.problems[0] == (f"{store.path}: schema_version: migration from schema 1 to 2 "
                                  "failed: KeyError: 'lines'")


@pytest.mark.parametrize(("registry", "reason"), [
    ({}, "no migration from schema 1 to 2"),
    ({1: lambda document: None}, "migration from schema 1 to 2 returned NoneType, not a table"),
])
def test_missing_or_wrong_migration_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, registry: dict[int, Any], reason: str
) -> None:
    monkeypatch.setattr(migrations, "CURRENT_SCHEMA_VERSION", 2)
    monkeypatch.setattr(migrations, "MIGRATIONS", registry)
    with pytest.raises(ConfigError) as caught:
        parse_config(V1_FILE)
    assert caught.value.errors == [FieldError("schema_version", reason)]


def test_migration_cannot_be_registered_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(migrations, "MIGRATIONS", {})
    migration(1)(lambda document: document)
    with pytest.raises(ValueError, match="already registered"):
        migration(1)(lambda document: document)


def test_migration_does_not_modify_the_callers_document(schema_2: list[dict[str, Any]]) -> None:
    document: dict[str, Any] = {"schema_version": 1, "network": {"vlan": 0}}
    config_from_dict(document)
    assert document == {"schema_version": 1, "network": {"vlan": 0}}
