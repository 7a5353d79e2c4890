"""The config file on disk, with a last good copy, so a bad file never stops the device.

Files, for `path` = /data/tipring/config.toml:
  config.toml            the configuration (0600)
  config.toml.last-good  byte copy of the last config.toml that loaded cleanly (0600)
  config.toml.schema-N   the last file written in schema N, kept by the first save in a newer
                         schema (0600): firmware that reads up to schema N, rolled back to after
                         an update, starts with it rather than with the defaults, since both
                         files above are then in a schema it refuses
  .config.toml.lock      flock()ed by writers, so the daemon and the CLI never interleave
  .config.toml.*.tmp     temp files of interrupted writes; ignored by load, removed by save

`load()` never raises and never modifies config.toml: a bad file stays for inspection (and is
replaced at the next save) while the device runs with the last good copy or the defaults.
Both calls block on disk I/O: the runtime calls them from an executor thread.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from . import migrations
from .atomic import remove_temp_files, write_atomically
from .document import canonical_config, parse_config, parse_config_bytes, render_config
from .errors import ConfigError
from .schema import Config, default_config

log = logging.getLogger("tipring.config")

LAST_GOOD_SUFFIX = ".last-good"
SCHEMA_COPY_SUFFIX = ".schema-"
MAX_FILE_BYTES = 256 * 1024  # ~50 times a big real config; a stray huge file must not eat RAM
DIR_MODE = 0o700

Source = Literal["file", "last-good", "schema-copy", "defaults"]


@dataclass(frozen=True)
class LoadResult:
    """The config to run with, where it came from, and what the status page should say."""

    config: Config
    source: Source
    problems: list[str] = field(default_factory=list)


class _Unreadable(Exception):
    """The file exists but cannot be used as a config file; the message says why."""


def _read_file(path: Path) -> bytes | None:
    """The file's bytes, or None if it does not exist; _Unreadable for anything else wrong."""
    try:
        # O_NONBLOCK: a FIFO at the path must not hang the boot.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _Unreadable(f"cannot be opened ({exc.strerror})") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise _Unreadable("is a directory, not a file")
        if not stat.S_ISREG(info.st_mode):
            raise _Unreadable("is not a regular file")
        chunks, size = [], 0
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_FILE_BYTES:
                raise _Unreadable(f"is too large (over {MAX_FILE_BYTES} bytes)")
        return b"".join(chunks)
    except OSError as exc:
        raise _Unreadable(f"cannot be read ({exc.strerror})") from None
    finally:
        os.close(fd)


def check_file(path: str | os.PathLike[str]) -> list[str]:
    """Every problem with a config file, each as 'PATH: field: reason'; [] when it is good."""
    path = Path(path)
    try:
        data = _read_file(path)
    except _Unreadable as exc:
        return [f"{path}: {exc}"]
    if data is None:
        return [_missing(path)]
    try:
        parse_config_bytes(data)
    except ConfigError as exc:
        return [f"{path}: {error}" for error in exc.errors]
    return []


def _schema_version(data: bytes) -> int | None:
    """The schema a config file says it is in (1 when it does not say), from its top-level
    `schema_version` line; None for a value that is not a plain integer. Read by line, not by
    parsing the file: whatever is on disk (a bad file included) must not cost more than that."""
    for raw in data.decode("utf-8", "replace").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith("["):  # the first table: top-level keys are over
            break
        key, equals, value = line.partition("=")
        if equals and key.strip() == "schema_version":
            return int(value) if value.strip().isdigit() else None
    return migrations.FIRST_SCHEMA_VERSION


def _missing(path: Path) -> str:
    return f"{path}: does not exist"


class ConfigStore:
    """Loads and saves one config file and its last good copy."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.last_good_path = self.path.with_name(self.path.name + LAST_GOOD_SUFFIX)
        self._lock_path = self.path.with_name(f".{self.path.name}.lock")

    def load(self) -> LoadResult:
        """The config to run with. Never raises; problems are logged once and returned."""
        problems: list[str] = []
        result = self._load(problems)
        for problem in problems:
            log.error("%s", problem)
        return result

    def save(self, config: Config) -> None:
        """Validate, then replace the file and the last good copy atomically.

        Raises ConfigError (writing nothing) for an invalid config, OSError if storage fails;
        after a failure or a crash the file holds either the old or the new config, complete.
        """
        text = render_config(config)
        if parse_config(text) != canonical_config(config):  # never write what won't read back
            raise RuntimeError("bug: the rendered configuration does not read back equal")
        data = text.encode("utf-8")
        with self._locked():
            remove_temp_files(self.path)
            self._keep_older_schema()
            write_atomically(self.path, data)
            write_atomically(self.last_good_path, data)
        log.info("saved configuration to %s", self.path)

    def schema_copy_path(self, version: int) -> Path:
        return self.path.with_name(f"{self.path.name}{SCHEMA_COPY_SUFFIX}{version}")

    def _keep_older_schema(self) -> None:
        """Before the file is replaced: if it is in an older schema, keep it for that schema's
        firmware (see the module docstring). Its content is that firmware's to judge."""
        try:
            data = _read_file(self.path)
        except _Unreadable:
            return
        if data is None:
            return
        version = _schema_version(data)
        if version is not None and version < migrations.CURRENT_SCHEMA_VERSION:
            write_atomically(self.schema_copy_path(version), data)
            log.info("kept the schema %d configuration as %s", version,
                     self.schema_copy_path(version))

    def _load(self, problems: list[str]) -> LoadResult:
        loaded = self._try(self.path, problems)
        if loaded is not None:
            config, data = loaded
            self._refresh_last_good(data, problems)
            return LoadResult(config, "file", problems)
        fallback = self._try(self.last_good_path, problems)
        if problems == [_missing(self.path), _missing(self.last_good_path)]:
            problems.clear()  # first boot: nothing saved yet, and nothing wrong
            return LoadResult(default_config(), "defaults", problems)
        if fallback is not None:
            problems.append(f"started with the last good copy {self.last_good_path}")
            return LoadResult(fallback[0], "last-good", problems)
        copy_path = self.schema_copy_path(migrations.CURRENT_SCHEMA_VERSION)
        kept = self._try(copy_path, [])  # silent when absent, as it nearly always is
        if kept is not None:
            problems.append(f"started with {copy_path}, the configuration as it was before "
                            f"newer firmware changed it")
            return LoadResult(kept[0], "schema-copy", problems)
        problems.append("started with the default configuration")
        return LoadResult(default_config(), "defaults", problems)

    def _try(self, path: Path, problems: list[str]) -> tuple[Config, bytes] | None:
        """The config in `path` and its bytes; None (with the reasons) if unusable or missing."""
        try:
            data = _read_file(path)
        except _Unreadable as exc:
            problems.append(f"{path}: {exc}")
            return None
        if data is None:
            problems.append(_missing(path))
            return None
        try:
            return parse_config_bytes(data), data
        except ConfigError as exc:
            problems.extend(f"{path}: {error}" for error in exc.errors)
        except Exception as exc:  # a bug in validation must not stop the device booting
            # Only the type: the message of an unexpected error might quote a secret.
            problems.append(f"{path}: could not be checked (internal error {type(exc).__name__}; "
                            "please report this bug)")
        return None

    def _refresh_last_good(self, data: bytes, problems: list[str]) -> None:
        """Keep the last good copy equal to a file that just loaded cleanly."""
        with contextlib.suppress(_Unreadable):
            if _read_file(self.last_good_path) == data:
                return
        try:
            with self._locked():
                with contextlib.suppress(_Unreadable):
                    if _read_file(self.path) != data:
                        return  # a save got in first; it wrote the last good copy itself
                write_atomically(self.last_good_path, data)
        except OSError as exc:
            problems.append(f"{self.last_good_path}: could not be updated ({exc.strerror or exc})")

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock
