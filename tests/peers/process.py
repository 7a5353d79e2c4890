"""One peer process: started in its own session, logged to a file, always reaped.

Every process is tracked in ``LIVE`` until it has been waited for, so a failing test's report
can show the logs of the peers it started (see ``fixtures.pytest_runtest_makereport``) and a
last-resort ``atexit`` hook kills whatever a crashed test left behind.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

LIVE: list[PeerProcess] = []
LOG_TAIL_CHARS = 6000


class PeerError(RuntimeError):
    """A peer did not start, did not answer in time, or refused a command."""


class PeerProcess:
    """A child process in its own process group whose output goes to ``log_path``."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        *,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        stdin_pipe: bool = False,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.cwd = cwd
        self.env = env
        self.stdin_pipe = stdin_pipe
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if self.proc is not None:
            raise PeerError(f"{self.name} already started")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"$ {' '.join(self.argv)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.PIPE if self.stdin_pipe else subprocess.DEVNULL,
                cwd=self.cwd,
                env=self.env,
                start_new_session=True,
            )
        LIVE.append(self)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def returncode(self) -> int | None:
        return self.proc.poll() if self.proc else None

    def wait(self, timeout: float) -> int:
        """Wait for a normal exit; kill and raise when it takes longer than ``timeout``."""
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise PeerError(f"{self.name} still running after {timeout} s\n{self.log_tail()}") from None
        finally:
            self._forget_if_done()

    def stop(self, grace: float = 3.0) -> int | None:
        """SIGTERM the whole process group, SIGKILL it after ``grace`` seconds; reap."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        # Children (Kamailio's workers) may outlive the leader: the group goes in every case.
        self._signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        if self.proc.stdin:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        self._forget_if_done()
        return self.proc.returncode

    def _signal_group(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)

    def _forget_if_done(self) -> None:
        if self.proc is not None and self.proc.poll() is not None and self in LIVE:
            LIVE.remove(self)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, chars: int = LOG_TAIL_CHARS) -> str:
        text = self.log_text()
        cut = text[-chars:]
        return f"--- {self.name} log ({self.log_path}) ---\n{cut}"

    def wait_for_log(self, pattern: str, timeout: float, start: int = 0) -> re.Match[str]:
        """Wait until the log (from offset ``start``) matches ``pattern``; raise on timeout or exit."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern, re.MULTILINE)
        while True:
            match = regex.search(self.log_text(), start)
            if match:
                return match
            if not self.running():
                raise PeerError(f"{self.name} exited ({self.returncode()}) before /{pattern}/\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise PeerError(f"{self.name}: no /{pattern}/ within {timeout} s\n{self.log_tail()}")
            time.sleep(0.05)


def live_pids() -> list[int]:
    return [p.pid for p in LIVE if p.running() and p.pid is not None]


def stop_all() -> None:
    for peer in list(LIVE):
        peer.stop(grace=1.0)


atexit.register(stop_all)
