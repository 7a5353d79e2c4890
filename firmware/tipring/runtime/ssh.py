"""SSH access applied to the system: dropbear on the image, a recorder on the sim board.

The image's root file system is read-only, so everything SSH needs lives on the data
partition: `/etc/dropbear` (host keys, made by dropbear's `-R` on first use) and `/root/.ssh`
are links into /data/ssh. dropbear's unit only runs while /data/ssh/enabled exists (its
`ConditionPathExists`), which keeps SSH off across reboots until the web page turns it on. A
condition is checked only when the unit starts, so switching SSH on or off here is both
halves: the file and `systemctl start|stop dropbear.service`.

An apply either takes effect or changes nothing: the files as they were are kept in memory,
and if a write or systemctl fails they are put back (and the service put back in its state)
before `SshApplyError` says why. The caller saves the configuration only after a good apply.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from tipring.config.atomic import fsync_directory, write_atomically
from tipring.config.schema import SshConfig
from tipring.config.sshkey import SshKeyError, parse_public_key

log = logging.getLogger("tipring.runtime")

SSH_DIR = Path("/data/ssh")
ENABLED_FLAG = "enabled"
AUTHORIZED_KEYS = Path("root/authorized_keys")  # root's ~/.ssh is <SSH_DIR>/root
SERVICE = "dropbear.service"
# Shipped by the image only: the sign that this system's dropbear is ours to switch.
IMAGE_DROPIN = Path("/usr/lib/systemd/system/dropbear.service.d/tipring.conf")
COMMAND_TIMEOUT_S = 20.0
DIR_MODE = 0o700


class SshApplyError(OSError):
    """SSH was not switched; what ran before still runs. An OSError, so the pages and the API
    report it like any save that did not happen."""


@dataclass(frozen=True)
class SshStatus:
    """What the page says: whether an SSH server is running, and in words."""

    on: bool
    detail: str  # "" when there is nothing to add to on/off


class SshBackend(Protocol):
    def apply(self, ssh: SshConfig) -> None:
        """Make `ssh` the running state, or raise SshApplyError leaving the previous one.
        Blocks (file writes, systemctl): call it in an executor."""
        ...

    def status(self) -> SshStatus:
        """Whether SSH is on now. May block (asks systemd): call it in an executor."""
        ...


def authorized_keys_text(keys: Sequence[str]) -> str:
    """The `authorized_keys` file for validated keys: one normalised line each ("" = none)."""
    lines = []
    for key in keys:
        try:
            lines.append(parse_public_key(key).line())
        except SshKeyError:
            continue  # never reached with a validated config; a bad line must not be written
    return "".join(line + "\n" for line in lines)


@dataclass(frozen=True)
class _Files:
    enabled: bool
    authorized_keys: str | None  # None: no file


@dataclass
class DropbearBackend:
    """The image's dropbear. The folder and the systemctl command are parameters so tests run
    the real file handling against a temporary folder and a stub program."""

    ssh_dir: Path = SSH_DIR
    systemctl: Sequence[str] = ("systemctl",)

    @property
    def _flag(self) -> Path:
        return self.ssh_dir / ENABLED_FLAG

    @property
    def _keys(self) -> Path:
        return self.ssh_dir / AUTHORIZED_KEYS

    def _current(self) -> _Files:
        try:
            text: str | None = self._keys.read_text(encoding="utf-8")
        except FileNotFoundError:
            text = None
        return _Files(self._flag.exists(), text)

    def _install(self, files: _Files) -> None:
        for folder in (self.ssh_dir, self._keys.parent):
            folder.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
            os.chmod(folder, DIR_MODE)  # dropbear refuses keys in a folder others can write
        if files.authorized_keys is None:
            self._keys.unlink(missing_ok=True)
        else:
            write_atomically(self._keys, files.authorized_keys.encode("utf-8"))  # 0600
        if files.enabled:
            self._flag.touch(mode=0o600, exist_ok=True)
        else:
            self._flag.unlink(missing_ok=True)
        fsync_directory(self.ssh_dir)

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [*self.systemctl, *args]
        try:
            return subprocess.run(command, capture_output=True, text=True, check=False,
                                  timeout=COMMAND_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SshApplyError(f"{' '.join(command)} could not run: {exc}") from exc

    def _switch(self, on: bool) -> None:
        done = self._run("start" if on else "stop", SERVICE)
        if done.returncode != 0:
            said = (done.stderr or done.stdout).strip().splitlines()
            raise SshApplyError(f"systemctl {'start' if on else 'stop'} {SERVICE} failed "
                                f"(exit {done.returncode})" + (f": {said[-1]}" if said else ""))

    def apply(self, ssh: SshConfig) -> None:
        text = authorized_keys_text(ssh.authorized_keys)
        wanted = _Files(ssh.enabled, text or None)
        try:
            previous = self._current()
        except OSError as exc:
            raise SshApplyError(f"the SSH files cannot be read: {exc}") from exc
        try:
            self._install(wanted)
            self._switch(ssh.enabled)  # also when nothing changed: the service follows
        except OSError as exc:
            self._restore(previous)
            reason = exc if isinstance(exc, SshApplyError) else f"writing the files: {exc}"
            raise SshApplyError(f"SSH was not switched {'on' if ssh.enabled else 'off'} "
                                f"({reason}); the previous state is still in effect") from exc
        log.info("SSH applied", extra={"enabled": ssh.enabled,
                                       "keys": len(ssh.authorized_keys)})

    def _restore(self, previous: _Files) -> None:
        try:
            self._install(previous)
            self._switch(previous.enabled)
        except OSError as exc:  # already failing: the first reason is the one raised
            log.error("SSH rollback incomplete", extra={"reason": str(exc)})

    def status(self) -> SshStatus:
        if not self._flag.exists():
            return SshStatus(False, "")
        with contextlib.suppress(SshApplyError):
            state = self._run("is-active", SERVICE).stdout.strip()
            if state == "active":
                return SshStatus(True, f"{SERVICE} is running")
            return SshStatus(False, f"switched on, but {SERVICE} is {state or 'unknown'}")
        return SshStatus(False, "switched on, but systemctl cannot say whether it runs")


@dataclass
class SimSshBackend:
    """The sim board's backend: records what the image would do (the keys file and on/off)
    without touching this computer's SSH. `fail_with` makes the next applies fail."""

    applied: list[tuple[bool, str]] = field(default_factory=list)  # (enabled, authorized_keys)
    fail_with: str = ""

    def apply(self, ssh: SshConfig) -> None:
        if self.fail_with:
            raise SshApplyError(f"SSH was not switched {'on' if ssh.enabled else 'off'} "
                                f"({self.fail_with}); the previous state is still in effect")
        self.applied.append((ssh.enabled, authorized_keys_text(ssh.authorized_keys)))
        log.info("SSH recorded (sim board: no SSH server started)",
                 extra={"enabled": ssh.enabled, "keys": len(ssh.authorized_keys)})

    def status(self) -> SshStatus:
        if self.applied and self.applied[-1][0]:
            return SshStatus(True, "sim board: recorded, no SSH server runs here")
        return SshStatus(False, "")


def backend_for(driver: str, image_dropin: Path = IMAGE_DROPIN) -> SshBackend | None:
    """The sim board records; a real board switches dropbear only on the TipRing image (its
    dropbear drop-in is the sign). Elsewhere the operating system's SSH is its own: None."""
    if driver == "sim":
        return SimSshBackend()
    return DropbearBackend() if image_dropin.exists() else None
