"""The file store: round trip, fallbacks for every kind of bad file, modes, atomic-write details."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from tipring.config import (
    AccountConfig,
    Config,
    ConfigError,
    ConfigStore,
    DeviceConfig,
    LineConfig,
    Secret,
    WebConfig,
    check_file,
    parse_config,
    render_config,
)
from tipring.config import store as store_module


def sample_config(name: str = "hall") -> Config:
    return Config(
        device=DeviceConfig(name=name, region="DE", timezone="Europe/Berlin"),
        lines=(LineConfig(account="home", tx_gain_db=-3.5), LineConfig(enabled=False)),
        accounts=(
            AccountConfig(id="home", display_name='Anna "Hall" Müller \\ ☎', user="4930123",
                          password=Secret('pa"ss\\wörd'), domain="sip.example.de",
                          codecs=("PCMA",)),
            AccountConfig(id="spare", enabled=False),
        ),
        web=WebConfig(admin_password_hash=Secret("$hash$")),
    )


@pytest.fixture
def store(tmp_path: Path) -> ConfigStore:
    return ConfigStore(tmp_path / "data" / "tipring" / "config.toml")


def test_first_boot_without_a_file_uses_defaults_without_problems(store: ConfigStore) -> None:
    result = store.load()
    assert (result.config, result.source, result.problems) == (Config(), "defaults", [])
    assert not store.path.exists()  # loading never writes the main file


def test_save_then_load_round_trips(store: ConfigStore) -> None:
    config = sample_config()
    store.save(config)
    result = store.load()
    assert (result.config, result.source, result.problems) == (config, "file", [])
    assert store.last_good_path.name == "config.toml.last-good"
    assert store.last_good_path.read_bytes() == store.path.read_bytes()


def test_save_accepts_lists_where_the_schema_says_tuple(store: ConfigStore) -> None:
    config = Config(lines=[LineConfig()])  # type: ignore[arg-type]
    store.save(config)
    assert store.load().config == Config()


def test_files_are_0600_and_the_directory_0700(store: ConfigStore) -> None:
    store.save(sample_config())
    for path in (store.path, store.last_good_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(store.path.parent.stat().st_mode) == 0o700


def test_an_existing_world_readable_file_is_replaced_by_a_0600_one(store: ConfigStore) -> None:
    store.path.parent.mkdir(parents=True)
    store.path.write_text(render_config(Config()))
    store.path.chmod(0o644)
    store.save(sample_config())
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600


def test_temp_file_is_created_0600_from_the_start(
    store: ConfigStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    modes: list[int] = []
    real_open = os.open

    def spying_open(path: object, flags: int, mode: int = 0o777, **kwargs: object) -> int:
        if str(path).endswith(".tmp"):
            modes.append(mode)
            assert flags & os.O_CREAT and flags & os.O_EXCL
        return real_open(path, flags, mode, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", spying_open)
    store.save(sample_config())
    assert modes == [0o600, 0o600]  # main file and last good copy


def test_save_fsyncs_file_and_directory(
    store: ConfigStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def spying_fsync(fd: int) -> None:
        synced.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spying_fsync)
    store.save(sample_config())
    assert synced == ["file", "dir", "file", "dir"]


def test_invalid_config_is_refused_and_nothing_is_written(store: ConfigStore) -> None:
    store.save(sample_config())
    before = store.path.read_bytes()
    bad = Config(accounts=(AccountConfig(id="x", user="1", domain="d.example", expires=1),))
    with pytest.raises(ConfigError) as caught:
        store.save(bad)
    assert [str(e) for e in caught.value.errors] == [
        "accounts[0].expires: must be between 60 and 86400, got 1"]
    assert store.path.read_bytes() == before
    assert sorted(p.name for p in store.path.parent.iterdir()) == [
        ".config.toml.lock", "config.toml", "config.toml.last-good"]


def test_failed_write_leaves_old_file_and_no_temp(
    store: ConfigStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.save(sample_config())
    before = store.path.read_bytes()

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError):
        store.save(sample_config("other"))
    monkeypatch.undo()
    assert store.path.read_bytes() == before
    assert not [p for p in store.path.parent.iterdir() if p.name.endswith(".tmp")]


def test_bad_file_falls_back_to_last_good_and_reports(
    store: ConfigStore, caplog: pytest.LogCaptureFixture
) -> None:
    good = sample_config()
    store.save(good)
    store.path.write_text(store.path.read_text().replace("expires = 3600", "expires = 5", 1))
    with caplog.at_level(logging.DEBUG, logger="tipring.config"):
        result = store.load()
    assert result.config == good and result.source == "last-good"
    assert result.problems == [
        f"{store.path}: accounts[0].expires: must be between 60 and 86400, got 5",
        f"started with the last good copy {store.last_good_path}",
    ]
    # each problem logged once, as an error
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR] == \
        result.problems
    # the bad file is kept for inspection; the last good copy is not overwritten with it
    assert "expires = 5" in store.path.read_text()
    assert parse_config(store.last_good_path.read_text()) == good


def test_syntax_error_reports_line_and_column(store: ConfigStore) -> None:
    store.save(sample_config())
    store.path.write_text("schema_version = 1\n[device]\nname = tipring\n")
    result = store.load()
    assert result.source == "last-good"
    assert "TOML syntax error" in result.problems[0]
    assert "line 3, column 8" in result.problems[0]


@pytest.mark.parametrize(("content", "reason"), [
    (b"", "no settings found (the file is empty or truncated)"),
    (b"\n\n# only a comment\n", "no settings found"),
    (bytes(range(256)) * 4, "not UTF-8 text (invalid byte 0x80 at offset 128)"),
    (b"\x00\x01\x02garbage", "TOML syntax error"),
    (b"\xef\xbb\xbfschema_version = 1\n", "TOML syntax error"),
    (b"schema_version = 1\nschema_version = 1\n", "TOML syntax error: Cannot overwrite a value"),
])
def test_unusable_content_falls_back(store: ConfigStore, content: bytes, reason: str) -> None:
    good = sample_config()
    store.save(good)
    store.path.write_bytes(content)
    result = store.load()
    assert (result.config, result.source) == (good, "last-good")
    assert reason in result.problems[0] and result.problems[0].startswith(str(store.path))
    assert check_file(store.path) == result.problems[:1]


def test_truncated_file_at_every_offset_never_loads_as_something_else(
    store: ConfigStore,
) -> None:
    good = sample_config()
    store.save(good)
    data = store.path.read_bytes()
    assert len(data) > 900
    for cut in range(len(data) + 1):
        store.path.write_bytes(data[:cut])
        result = store.load()
        assert result.config == good, cut
        if result.source == "file":
            assert result.problems == [] and cut >= len(data) - 1, cut  # only the final newline
        else:
            assert result.source == "last-good" and result.problems, cut
        # the last good copy is only ever replaced by a copy that loaded cleanly
        assert parse_config(store.last_good_path.read_text()) == good


def test_truncation_that_is_valid_toml_is_still_caught(store: ConfigStore) -> None:
    store.save(sample_config())
    text = store.path.read_text()
    cut = text[: text.index("expires = 3600") + len("expires = 360")] + "\n"
    assert parse_config(cut.replace("# TipRing", "# Hand", 1)).accounts[0].expires == 360
    store.path.write_text(cut)
    result = store.load()
    assert result.source == "last-good"
    assert "the file is truncated" in result.problems[0]


def test_hand_written_file_without_header_needs_no_end_marker(store: ConfigStore) -> None:
    store.path.parent.mkdir(parents=True)
    store.path.write_text('[device]\nname = "hand-made"\n')
    result = store.load()
    assert (result.source, result.problems) == ("file", [])
    assert result.config.device.name == "hand-made"
    assert store.last_good_path.read_text() == store.path.read_text()  # refreshed


def test_directory_at_the_path(store: ConfigStore) -> None:
    store.path.mkdir(parents=True)
    result = store.load()
    assert (result.config, result.source) == (Config(), "defaults")
    assert result.problems == [f"{store.path}: is a directory, not a file",
                               f"{store.last_good_path}: does not exist",
                               "started with the default configuration"]
    assert check_file(store.path) == [f"{store.path}: is a directory, not a file"]


def test_fifo_at_the_path_does_not_hang(store: ConfigStore) -> None:
    store.path.parent.mkdir(parents=True)
    os.mkfifo(store.path)
    result = store.load()
    assert result.source == "defaults"
    assert result.problems[0] == f"{store.path}: is not a regular file"


def test_huge_file_is_refused(store: ConfigStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "MAX_FILE_BYTES", 100)
    store.path.parent.mkdir(parents=True)
    store.path.write_text("#" * 500)
    assert store.load().problems[0] == f"{store.path}: is too large (over 100 bytes)"


@pytest.mark.skipif(os.geteuid() == 0, reason="running as root: chmod 000 does not stop root "
                    "reading the file (the simulated-EACCES test below covers the code path)")
def test_unreadable_file_chmod_000(store: ConfigStore) -> None:
    good = sample_config()
    store.save(good)
    store.path.chmod(0)
    result = store.load()
    assert (result.config, result.source) == (good, "last-good")
    assert "cannot be opened (Permission denied)" in result.problems[0]


def test_unreadable_file_simulated_permission_denied(
    store: ConfigStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = sample_config()
    store.save(good)
    real_open = os.open

    def denying_open(path: object, *args: object, **kwargs: object) -> int:
        if Path(str(path)) == store.path:
            raise PermissionError(13, "Permission denied")
        return real_open(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", denying_open)
    result = store.load()
    assert (result.config, result.source) == (good, "last-good")
    assert result.problems[0] == f"{store.path}: cannot be opened (Permission denied)"


def test_both_files_bad_falls_back_to_defaults(store: ConfigStore) -> None:
    store.save(sample_config())
    store.path.write_text("garbage")
    store.last_good_path.write_text("[web]\nport = 0\n")
    result = store.load()
    assert (result.config, result.source) == (Config(), "defaults")
    assert result.problems[-1] == "started with the default configuration"
    assert f"{store.last_good_path}: web.port: must be between 1 and 65535, got 0" in \
        result.problems


def test_missing_main_file_with_a_last_good_copy_uses_it(store: ConfigStore) -> None:
    good = sample_config()
    store.save(good)
    store.path.unlink()
    result = store.load()
    assert (result.config, result.source) == (good, "last-good")
    assert result.problems[0] == f"{store.path}: does not exist"


def test_good_main_file_refreshes_a_missing_or_stale_last_good_copy(store: ConfigStore) -> None:
    store.save(sample_config())
    store.last_good_path.unlink()
    assert store.load().problems == []
    assert store.last_good_path.read_bytes() == store.path.read_bytes()
    store.last_good_path.write_text("stale")
    assert store.load().source == "file"
    assert store.last_good_path.read_bytes() == store.path.read_bytes()
    assert stat.S_IMODE(store.last_good_path.stat().st_mode) == 0o600


def test_failure_to_refresh_last_good_is_reported_not_raised(store: ConfigStore) -> None:
    store.save(sample_config())
    store.last_good_path.unlink()
    store.last_good_path.mkdir()  # cannot be replaced by a file
    result = store.load()
    assert result.source == "file" and result.config == sample_config()
    assert len(result.problems) == 1
    assert result.problems[0].startswith(f"{store.last_good_path}: could not be updated")


def test_save_removes_temp_files_left_by_a_crash_and_load_ignores_them(
    store: ConfigStore,
) -> None:
    store.save(sample_config())
    leftovers = [store.path.with_name(".config.toml.0123456789ab.tmp"),
                 store.path.with_name(".config.toml.last-good.ba9876543210.tmp")]
    for path in leftovers:
        path.write_text("half a fi")
    unrelated = store.path.with_name("notes.tmp")
    unrelated.write_text("keep me")
    assert store.load().problems == []
    store.save(sample_config("other"))
    assert not any(path.exists() for path in leftovers)
    assert unrelated.exists()


def test_check_file(store: ConfigStore, tmp_path: Path) -> None:
    assert check_file(tmp_path / "nope.toml") == [f"{tmp_path / 'nope.toml'}: does not exist"]
    store.save(sample_config())
    assert check_file(store.path) == []
    bad = tmp_path / "bad.toml"
    bad.write_text('[web]\nport = "80"\nlisten = "x"\n')
    assert check_file(bad) == [f'{bad}: web.listen: must be an IPv4 or IPv6 address, got "x"',
                               f'{bad}: web.port: expected an integer, got "80"']


@pytest.mark.parametrize(("content", "reason"), [
    ("k" + ".a" * 3000 + " = 1\n", "line 1: keys nested more than 16 levels deep are not accepted"),
    ("x = " + "[" * 3000 + "]" * 3000 + "\n", "TOML nested too deeply"),
    ("x = " + "{a=" * 3000 + "1" + "}" * 3000 + "\n", "TOML nested too deeply"),
])
def test_pathological_nesting_is_refused_cheaply(
    store: ConfigStore, content: str, reason: str
) -> None:
    store.path.parent.mkdir(parents=True)
    store.path.write_text(content)
    result = store.load()
    assert result.source == "defaults"
    assert result.problems[0] == f"{store.path}: {reason}"


def test_a_bug_in_validation_does_not_stop_the_device(
    store: ConfigStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = sample_config()
    store.save(good)
    calls: list[bytes] = []
    real_parse = store_module.parse_config_bytes

    def buggy_first_time(data: bytes) -> Config:
        calls.append(data)
        if len(calls) == 1:
            raise TypeError("internal detail that might quote a 'pa\"ss\\\\wörd'")
        return real_parse(data)

    monkeypatch.setattr(store_module, "parse_config_bytes", buggy_first_time)
    result = store.load()
    assert (result.config, result.source) == (good, "last-good")
    assert result.problems[0] == (f"{store.path}: could not be checked (internal error "
                                  "TypeError; please report this bug)")


def test_rolling_back_after_an_update_starts_with_the_settings_from_before_it(
    store: ConfigStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Schema 1 firmware saves; an update to schema 2 firmware loads (migrating) and saves a
    change; the update is rolled back: schema 1 firmware refuses both files, which are now schema
    2, and starts with the copy the update kept, not the defaults. Updating again migrates the
    file schema 1 wrote since, and keeps that one as the copy."""
    from tipring.config import migrations

    before = sample_config("before-update")
    store.save(before)
    v1_bytes = store.path.read_bytes()
    assert not store.schema_copy_path(1).exists()  # nothing older to keep

    with monkeypatch.context() as newer:  # the updated firmware
        newer.setattr(migrations, "CURRENT_SCHEMA_VERSION", 2)
        newer.setattr(migrations, "MIGRATIONS", {1: lambda document: document})
        assert store.load().config == before
        store.save(sample_config("after-update"))
        assert "schema_version = 2" in store.path.read_text()
        assert store.schema_copy_path(1).read_bytes() == v1_bytes
        assert stat.S_IMODE(store.schema_copy_path(1).stat().st_mode) == 0o600
        store.save(sample_config("later-still"))  # the copy stays the last schema 1 file
        assert store.schema_copy_path(1).read_bytes() == v1_bytes

    result = store.load()  # rolled back
    assert (result.config, result.source) == (before, "schema-copy")
    assert any("written by newer firmware (schema 2" in p for p in result.problems)
    assert result.problems[-1] == (f"started with {store.schema_copy_path(1)}, the configuration "
                                   "as it was before newer firmware changed it")
    store.save(sample_config("after-rollback"))
    v1_again = store.path.read_bytes()

    with monkeypatch.context() as newer:  # updated again
        newer.setattr(migrations, "CURRENT_SCHEMA_VERSION", 2)
        newer.setattr(migrations, "MIGRATIONS", {1: lambda document: document})
        assert store.load().config == sample_config("after-rollback")
        store.save(sample_config("second-update"))
        assert store.schema_copy_path(1).read_bytes() == v1_again


def test_without_a_copy_for_its_schema_newer_files_still_mean_the_defaults(
    store: ConfigStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tipring.config import migrations

    with monkeypatch.context() as newer:
        newer.setattr(migrations, "CURRENT_SCHEMA_VERSION", 3)
        newer.setattr(migrations, "MIGRATIONS", {1: lambda d: d, 2: lambda d: d})
        store.save(sample_config())  # a first boot on schema 3: nothing older to keep
    assert not list(store.path.parent.glob("*.schema-*"))
    result = store.load()
    assert result.source == "defaults"
    assert result.problems[-1] == "started with the default configuration"


@pytest.mark.parametrize(("head", "version"), [
    (b"schema_version = 4\n[device]\nname = 'x'\n", 4),
    (b"# hand-written\n[device]\nschema_version = 4\n", 1),  # not top-level: schema 1's file
    (b"schema_version = 'two'\n", None),
    (b"\xff\xfe schema_version = 2 # note\n", 1),  # junk before the key: the file does not say
    (b"schema_version=2 # note\n", 2),
])
def test_the_schema_a_file_says_it_is_in(head: bytes, version: int | None) -> None:
    assert store_module._schema_version(head) == version
