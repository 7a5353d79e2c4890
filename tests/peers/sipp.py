"""SIPp running one scenario (UAC or UAS), bounded in time, with its message trace parsed.

Scenarios live in ``scenarios/``; each says in its header comment which ``-key`` values it
reads. SIPp's exit code is 0 when every call followed the scenario, 1 when one failed.
"""

from __future__ import annotations

import contextlib
import re
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .ports import free_port
from .process import PeerError, PeerProcess

SIPP = "/usr/bin/sipp"
SCENARIOS = Path(__file__).resolve().parent / "scenarios"

# Extra options a scenario needs to work as written.
SCENARIO_ARGS: dict[str, list[str]] = {
    # It re-sends the 200 itself and expects one ACK per copy: SIPp's own UDP retransmission
    # handling would take the (identical) second ACK for a retransmission of the first.
    "uas_lost_ack.xml": ["-nr"],
    # A REGISTER dialog has nothing to hang up when the registrar refuses it.
    "uac_register_digest.xml": ["-default_behaviors", "all,-bye"],
    "malformed.xml": ["-default_behaviors", "all,-bye"],
}

# Keys the scenarios read, so that a test need not pass all of them.
DEFAULT_KEYS: dict[str, str] = {"expires": "3600", "target": "sip:moved@127.0.0.1:5060"}


@dataclass(frozen=True)
class TracedMessage:
    """One SIP message SIPp sent or received."""

    direction: str  # "sent" | "received"
    text: str

    @property
    def first_line(self) -> str:
        return self.text.split("\r\n", 1)[0].split("\n", 1)[0].strip()

    @property
    def status(self) -> int | None:
        match = re.match(r"SIP/2\.0 (\d{3})", self.first_line)
        return int(match.group(1)) if match else None

    @property
    def method(self) -> str | None:
        if self.status is not None:
            return None
        return self.first_line.split(" ", 1)[0]

    def header(self, name: str) -> str | None:
        for line in self.text.replace("\r\n", "\n").split("\n")[1:]:
            if not line.strip():
                break
            key, _, value = line.partition(":")
            if key.strip().lower() == name.lower():
                return value.strip()
        return None


@dataclass
class SippResult:
    returncode: int
    messages: list[TracedMessage] = field(default_factory=list)
    errors: str = ""
    log: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def received(self) -> list[TracedMessage]:
        return [m for m in self.messages if m.direction == "received"]

    def sent(self) -> list[TracedMessage]:
        return [m for m in self.messages if m.direction == "sent"]

    def received_statuses(self) -> list[int]:
        return [m.status for m in self.received() if m.status is not None]

    def sent_statuses(self) -> list[int]:
        return [m.status for m in self.sent() if m.status is not None]

    def received_methods(self) -> list[str]:
        return [m.method for m in self.received() if m.method is not None]

    def sent_methods(self) -> list[str]:
        return [m.method for m in self.sent() if m.method is not None]

    def describe(self) -> str:
        lines = [f"sipp exit code {self.returncode}"]
        lines += [f"  {m.direction:8} {m.first_line}" for m in self.messages]
        if self.errors.strip():
            lines.append("--- sipp errors ---\n" + self.errors[-3000:])
        lines.append("--- sipp output ---\n" + self.log[-3000:])
        return "\n".join(lines)


def parse_trace(text: str) -> list[TracedMessage]:
    """Split a ``-trace_msg`` file into messages (its blocks start with a dashed line)."""
    messages: list[TracedMessage] = []
    for block in re.split(r"^-{10,}[^\n]*\n", text, flags=re.MULTILINE):
        head, _, body = block.partition("\n")
        if "message sent" in head:
            direction = "sent"
        elif "message received" in head:
            direction = "received"
        else:
            continue
        messages.append(TracedMessage(direction, body.strip("\r\n") + "\n"))
    return messages


class Sipp:
    """One SIPp run of ``scenario`` (a file name in ``scenarios/`` or a path).

    UAC: give ``remote`` ("host:port"). UAS: leave it None; ``start()`` returns once SIPp
    listens on ``local_port``. ``timeout`` bounds the whole run (SIPp's ``-timeout``, and a
    kill a few seconds later if SIPp ignores it).
    """

    def __init__(
        self,
        workdir: Path,
        scenario: str | Path,
        *,
        remote: str | None = None,
        local_port: int | None = None,
        host: str = "127.0.0.1",
        transport: str = "udp",
        calls: int = 1,
        timeout: float = 15.0,
        service: str | None = None,
        auth_user: str | None = None,
        password: str | None = None,
        keys: Mapping[str, str] | None = None,
        duration_ms: int = 0,
        extra_args: Sequence[str] = (),
        name: str = "sipp",
    ) -> None:
        if transport not in ("udp", "tcp"):
            raise ValueError("transport must be udp or tcp")
        path = Path(scenario)
        self.scenario = path if path.is_absolute() or path.exists() else SCENARIOS / path
        if not self.scenario.is_file():
            raise FileNotFoundError(self.scenario)
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.remote = remote
        self.host = host
        self.local_port = local_port or free_port(host)
        self.transport = transport
        self.timeout = timeout
        self.name = name
        self.trace_path = self.workdir / "messages.log"
        self.error_path = self.workdir / "errors.log"
        self.log_path = self.workdir / "sipp.log"
        argv = [
            SIPP,
            "-sf", str(self.scenario),
            "-i", host,
            "-mi", host,
            "-p", str(self.local_port),
            "-t", "u1" if transport == "udp" else "t1",
            "-m", str(calls),
            "-timeout", f"{int(timeout)}s",
            "-timeout_error",
            "-d", str(duration_ms),
            "-nostdin",
            "-trace_msg", "-message_file", str(self.trace_path),
            "-trace_err", "-error_file", str(self.error_path),
        ]
        if service:
            argv += ["-s", service]
        if auth_user:
            argv += ["-au", auth_user]
        if password is not None:
            argv += ["-ap", password]
        for key, value in {**DEFAULT_KEYS, **(keys or {})}.items():
            argv += ["-key", key, str(value)]
        argv += SCENARIO_ARGS.get(self.scenario.name, [])
        argv += list(extra_args)
        if remote:
            argv.append(remote)
        self.argv = argv
        self.process: PeerProcess | None = None
        self._deadline = 0.0

    @property
    def uri_hostport(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.local_port}"

    def start(self, ready_timeout: float = 5.0) -> Sipp:
        self.process = PeerProcess(self.name, self.argv, self.log_path, cwd=self.workdir)
        self.process.start()
        self._deadline = time.monotonic() + self.timeout + 5
        if self.remote is None:
            self._wait_listening(ready_timeout)
        return self

    def _wait_listening(self, timeout: float) -> None:
        """SIPp has bound its port once we no longer can."""
        assert self.process is not None
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        kind = socket.SOCK_DGRAM if self.transport == "udp" else socket.SOCK_STREAM
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.process.running():
                raise PeerError(f"sipp exited ({self.process.returncode()})\n{self.process.log_tail()}")
            with socket.socket(family, kind) as probe:
                try:
                    probe.bind((self.host, self.local_port))
                except OSError:
                    return
            time.sleep(0.02)
        self.stop()
        raise PeerError(f"sipp not listening on {self.local_port} after {timeout} s\n{self.process.log_tail()}")

    def wait(self) -> SippResult:
        """Wait for the scenario to end (bounded by ``timeout``); the result, whatever it is."""
        assert self.process is not None
        remaining = max(0.1, self._deadline - time.monotonic())
        try:
            code = self.process.wait(remaining)
        except PeerError:
            code = -9
        return self.result(code)

    def result(self, code: int) -> SippResult:
        trace = self.trace_path.read_text(errors="replace") if self.trace_path.exists() else ""
        errors = self.error_path.read_text(errors="replace") if self.error_path.exists() else ""
        log = self.process.log_text() if self.process else ""
        return SippResult(code, parse_trace(trace), errors, log)

    def run(self) -> SippResult:
        return self.start().wait()

    def stop(self) -> None:
        if self.process is not None:
            with contextlib.suppress(Exception):
                self.process.stop(grace=1.0)

    def __enter__(self) -> Sipp:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
