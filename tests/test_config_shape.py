"""The schema-version guard: a change of config.toml's shape without a new schema version fails
here, and the file recorded for every schema version still loads."""

from __future__ import annotations

import dataclasses
import json
import shutil
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import pytest
from record_config_schema import RECORDS, example_config, main, record

from tipring.config import ConfigStore, LineConfig, parse_config, render_config
from tipring.config import migrations
from tipring.config.schema import Config, SshConfig, WebConfig
from tipring.config.shape import flatten_shape, schema_shape, shape_differences

VERSIONS = range(migrations.FIRST_SCHEMA_VERSION, migrations.CURRENT_SCHEMA_VERSION + 1)
RECORDER = ".venv/bin/python tests/record_config_schema.py"


def shape_problem(cls: type, version: int) -> str | None:
    """Why the shape of `cls` may not be called schema `version`, with what to do; None if it
    may. The test below applies it to `Config`; the others check that it can fail."""
    recorded_file = RECORDS / f"{version}.json"
    if not recorded_file.is_file():
        return (f"no shape is recorded for schema {version} ({recorded_file}): add the new "
                f"settings to example_config() in tests/record_config_schema.py and run {RECORDER}")
    recorded = json.loads(recorded_file.read_text(encoding="utf-8"))["keys"]
    changes = shape_differences(recorded, schema_shape(cls))
    if not changes:
        return None
    listed = "\n".join(f"  {change}" for change in changes)
    after = version + 1
    return (
        f"config.toml's shape differs from the one recorded for schema {version} "
        f"({recorded_file}):\n{listed}\n"
        "Firmware refuses keys it does not know, and a rollback after an update finds its "
        "settings by schema version (config.toml.schema-N), so every change of shape needs a "
        "new schema version:\n"
        f"  1. bump CURRENT_SCHEMA_VERSION in firmware/tipring/config/migrations.py to {after};\n"
        f"  2. register a migration, @migration(from_version={version}), that turns a schema "
        f"{version} document into a schema {after} one (renamed keys, converted values; it "
        "returns the document as it is when only keys with defaults were added);\n"
        "  3. put the new settings into example_config() in tests/record_config_schema.py and "
        f"record schema {after}: {RECORDER}\n"
        f"Never edit {version}.json or {version}.toml once a release has shipped schema "
        f"{version}: they stand for the files in the field. Only while no release has, "
        f"`{RECORDER} --replace` records schema {version} again."
    )


def test_the_shape_is_the_one_recorded_for_the_current_schema() -> None:
    problem = shape_problem(Config, migrations.CURRENT_SCHEMA_VERSION)
    assert problem is None, problem


def variant(cls: type, name: str | None = None, **fields: Any) -> type:
    """`cls` with fields added or their types replaced, as a developer would edit it."""
    return dataclasses.make_dataclass(
        name or cls.__name__,
        [(field, hint, dataclasses.field(default=None)) for field, hint in fields.items()],
        bases=(cls,), frozen=True, kw_only=True)


def guard_report(cls: type) -> str:
    problem = shape_problem(cls, migrations.CURRENT_SCHEMA_VERSION)
    assert problem is not None, "the guard let a change of shape through"
    assert "bump CURRENT_SCHEMA_VERSION" in problem
    assert f"@migration(from_version={migrations.CURRENT_SCHEMA_VERSION})" in problem
    assert RECORDER in problem
    return problem


def changes_reported(problem: str) -> list[str]:
    return [line.strip() for line in problem.splitlines()
            if line.startswith(("  added:", "  removed:", "  changed:"))]


def test_guard_fires_for_a_new_key() -> None:
    ssh = variant(SshConfig, port=int)
    problem = guard_report(variant(Config, ssh=ssh))
    assert changes_reported(problem) == ["added: ssh.port (integer)"]


def test_guard_fires_for_a_new_table() -> None:
    problem = guard_report(variant(Config, syslog=variant(WebConfig, "SyslogConfig")))
    reported = changes_reported(problem)
    assert reported[0] == "added: syslog (table)"
    assert "added: syslog.admin_password_hash (string)" in reported
    assert len(reported) == 1 + len(dataclasses.fields(WebConfig))


def test_guard_fires_for_a_new_choice() -> None:
    line = variant(LineConfig, message_lamp=Literal["mdmf", "sdmf", "off", "polarity"])
    problem = guard_report(variant(Config, lines=tuple[line, ...]))
    lamp = "changed: lines[].message_lamp: string, one of mdmf/off/sdmf -> string, one of {}"
    assert changes_reported(problem) == [lamp.format("mdmf/off/polarity/sdmf")]


def test_guard_fires_for_a_changed_type() -> None:
    problem = guard_report(variant(Config, web=variant(WebConfig, port=str)))
    assert changes_reported(problem) == ["changed: web.port: integer -> string"]
    problem = guard_report(variant(Config, ssh=variant(SshConfig, authorized_keys=str)))
    assert changes_reported(problem) == [
        "changed: ssh.authorized_keys: array of string -> string"]


def test_guard_fires_for_a_renamed_key() -> None:
    @dataclasses.dataclass(frozen=True, kw_only=True)
    class RenamedSsh:
        on: bool = False
        authorized_keys: tuple[str, ...] = ()

    problem = guard_report(variant(Config, ssh=RenamedSsh))
    assert changes_reported(problem) == ["removed: ssh.enabled (boolean)",
                                         "added: ssh.on (boolean)"]


def test_guard_fires_for_a_key_that_becomes_required() -> None:
    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Web(WebConfig):
        port: int = dataclasses.field()  # no default: files must now set it

    problem = guard_report(variant(Config, web=Web))
    assert changes_reported(problem) == ["changed: web.port: integer -> integer, required"]


def test_removed_key_and_section_are_reported() -> None:
    recorded = schema_shape()
    current = json.loads(json.dumps(recorded))
    del current["ssh"]
    del current["accounts"]["keys"]["outbound"]
    assert shape_differences(recorded, current) == [
        "removed: accounts[].outbound (boolean)",
        "removed: ssh (table)",
        "removed: ssh.authorized_keys (array of string)",
        "removed: ssh.enabled (boolean)",
    ]


def test_a_bumped_schema_without_a_recording_is_reported(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(migrations, "CURRENT_SCHEMA_VERSION", migrations.CURRENT_SCHEMA_VERSION + 1)
    problem = shape_problem(Config, migrations.CURRENT_SCHEMA_VERSION)
    assert problem is not None
    assert problem.startswith(f"no shape is recorded for schema {migrations.CURRENT_SCHEMA_VERSION}")


def test_the_shape_is_derived_from_the_type_hints() -> None:
    shape = schema_shape()
    assert list(shape) == sorted(field.name for field in dataclasses.fields(Config))
    assert shape["lines"]["type"] == "array of tables"
    assert shape["device"]["type"] == "table"
    lines, accounts = shape["lines"]["keys"], shape["accounts"]["keys"]
    assert lines["ring_frequency_hz"] == {"type": "integer", "choices": [0, 16, 20, 25, 50]}
    assert lines["tx_gain_db"] == {"type": "float"}
    assert lines["call_waiting"] == {"type": "boolean"}
    assert accounts["id"] == {"type": "string", "required": True}
    assert accounts["password"] == {"type": "string"}  # a Secret is a string in the file
    assert accounts["codecs"] == {"type": "array",
                                  "items": {"type": "string", "choices": ["PCMA", "PCMU"]}}
    assert shape["network"]["keys"]["dns"] == {"type": "array", "items": {"type": "string"}}
    # The order choices are declared in is no part of the file's shape.
    reordered = variant(LineConfig, message_lamp=Literal["off", "sdmf", "mdmf"])
    assert schema_shape(reordered) == schema_shape(LineConfig)


@pytest.mark.parametrize("hint", [dict[str, int], int | None, tuple[int, str], tuple[int], bytes])
def test_a_type_without_a_toml_shape_is_refused(hint: Any) -> None:
    with pytest.raises(TypeError, match=r"^Web\.extra: "):
        schema_shape(variant(WebConfig, "Web", extra=hint))


def test_every_schema_version_is_recorded_with_an_example_file() -> None:
    recorded = sorted(RECORDS.iterdir())
    assert [path.name for path in recorded] == sorted(
        f"{version}.{kind}" for version in VERSIONS for kind in ("json", "toml"))
    for version in VERSIONS:
        document = json.loads((RECORDS / f"{version}.json").read_text(encoding="utf-8"))
        assert document["schema_version"] == version
        example = tomllib.loads((RECORDS / f"{version}.toml").read_text(encoding="utf-8"))
        assert example["schema_version"] == version


def toml_paths(table: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    for key, value in table.items():
        yield prefix + key
        if isinstance(value, dict):
            yield from toml_paths(value, f"{prefix}{key}.")
        elif isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
            for item in value:
                yield from toml_paths(item, f"{prefix}{key}[].")


@pytest.mark.parametrize("version", VERSIONS)
def test_the_example_file_of_a_schema_sets_every_key_of_it(version: int) -> None:
    example = tomllib.loads((RECORDS / f"{version}.toml").read_text(encoding="utf-8"))
    del example["schema_version"]
    recorded = json.loads((RECORDS / f"{version}.json").read_text(encoding="utf-8"))["keys"]
    assert set(toml_paths(example)) == set(flatten_shape(recorded))
    assert len(example["lines"]) == 2
    assert example["accounts"]


@pytest.mark.parametrize("version", VERSIONS)
def test_the_example_file_of_every_schema_loads_cleanly(version: int, tmp_path: Path) -> None:
    example = RECORDS / f"{version}.toml"
    config = parse_config(example.read_text(encoding="utf-8"))
    store = ConfigStore(tmp_path / "config.toml")
    shutil.copyfile(example, store.path)
    store.path.chmod(0o600)
    result = store.load()
    assert (result.source, result.problems) == ("file", [])
    assert result.config == config
    assert parse_config(render_config(config)) == config  # and saves in the current schema


def test_the_recorded_example_is_example_config() -> None:
    version = migrations.CURRENT_SCHEMA_VERSION
    assert (RECORDS / f"{version}.toml").read_text(encoding="utf-8") == \
        render_config(example_config())


def test_the_recorder_writes_once_and_never_over_a_different_recording(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    version = migrations.CURRENT_SCHEMA_VERSION
    assert main(["--dir", str(tmp_path)]) == 0
    for kind in ("json", "toml"):
        assert (tmp_path / f"{version}.{kind}").read_bytes() == \
            (RECORDS / f"{version}.{kind}").read_bytes()
    assert record(tmp_path) == [f"{tmp_path}/{version}.json: unchanged",
                                f"{tmp_path}/{version}.toml: unchanged"]
    capsys.readouterr()

    shape = tmp_path / f"{version}.json"
    shape.write_text(shape.read_text().replace('"boolean"', '"integer"'))
    assert main(["--dir", str(tmp_path)]) == 1
    assert f"schema {version} is recorded already, differently" in capsys.readouterr().err
    assert '"integer"' in shape.read_text()  # left as it was
    assert main(["--dir", str(tmp_path), "--replace"]) == 0
    assert shape.read_bytes() == (RECORDS / f"{version}.json").read_bytes()
