"""Replace a file so that a crash or power cut leaves either the old or the new contents.

The new bytes go to a temp file in the same directory (same filesystem, so the rename is
atomic), created 0600 from the start so a secret is never readable by others even for an
instant, fsynced, renamed over the target, and the directory fsynced so the rename itself is
durable. A crash can leave a temp file behind; its name never matches the target, so nothing
reads it, and `remove_temp_files` clears them (the store does so, under its lock, on save).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

FILE_MODE = 0o600


def temp_name(target: Path) -> str:
    """`.config.toml.<random>.tmp`: hidden, unique per write, recognisable for cleanup."""
    return f".{target.name}.{secrets.token_hex(6)}.tmp"


def is_temp_name(name: str, target: Path) -> bool:
    """Whether `name` is a temp file of `target` (or of a file whose name extends it)."""
    return name.startswith(f".{target.name}.") and name.endswith(".tmp")


def write_atomically(target: Path, data: bytes) -> None:
    """Replace `target` with `data` (mode 0600), durably and all-or-nothing."""
    temp = target.with_name(temp_name(target))
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    try:
        with open(fd, "wb", closefd=True) as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    fsync_directory(target.parent)


def fsync_directory(directory: Path) -> None:
    """Make renames and creations in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_temp_files(target: Path) -> list[Path]:
    """Delete temp files left by interrupted writes of `target`; only call while no write of it
    can be in progress (the store holds its lock). Returns what was removed."""
    removed = []
    with os.scandir(target.parent) as entries:
        for entry in entries:
            if is_temp_name(entry.name, target) and entry.is_file(follow_symlinks=False):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
    return removed
