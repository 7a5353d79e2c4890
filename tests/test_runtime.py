"""`tipring run` as a process: starts on the sim board, serves the status page, stops on a signal.

These start the real command in a subprocess (the way an init system does) and talk to it over
loopback HTTP; each waits for a named log line with a deadline instead of sleeping.
"""

from __future__ import annotations

import http.cookiejar
import json
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

import tipring

pytestmark = pytest.mark.slow

START_DEADLINE_S = 20.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Firmware:
    """A `tipring run` subprocess whose stderr lines are collected by a reader thread."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tipring", *args],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, needle: str, deadline_s: float = START_DEADLINE_S) -> str:
        end = time.monotonic() + deadline_s
        while True:
            remaining = end - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no log line with {needle!r}; got:\n" + "\n".join(self.lines))
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(
                    f"process exited ({self.proc.wait()}) before {needle!r}:\n" + "\n".join(self.lines)
                )
            self.lines.append(line)
            if needle in line:
                return line

    def drain(self) -> None:
        while True:
            try:
                line = self._queue.get(timeout=5)
            except queue.Empty:
                return
            if line is None:
                return
            self.lines.append(line)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def firmware(tmp_path: Path) -> Iterator[tuple[Firmware, int, Path]]:
    port = free_port()
    config = tmp_path / "data" / "config.toml"
    fw = Firmware("run", "--board", "sim", "--config", str(config), "--listen", "127.0.0.1",
                  "--port", str(port))
    try:
        yield fw, port, config
    finally:
        fw.kill()


ADMIN_PASSWORD = "runtime test passphrase"


def get(port: int, path: str, opener: urllib.request.OpenerDirector | None = None,
        data: dict[str, str] | None = None,
        headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body,
                                     headers=headers or {})
    with (opener or urllib.request.build_opener()).open(request, timeout=5) as resp:
        return resp.status, dict(resp.headers), resp.read().decode()


def with_admin_password(config: Path) -> None:
    """A configuration past first boot (the web UI refuses everything else until then)."""
    import dataclasses

    from tipring.config import ConfigStore, Secret, default_config
    from tipring.config.passwords import hash_password

    base = default_config()
    ConfigStore(config).save(dataclasses.replace(base, web=dataclasses.replace(
        base.web, admin_password_hash=Secret(hash_password(ADMIN_PASSWORD)))))


def signed_in(port: int) -> urllib.request.OpenerDirector:
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    page = get(port, "/login", opener)[2]
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf, page
    status, _, html = get(port, "/login", opener,
                          data={"csrf": csrf.group(1), "password": ADMIN_PASSWORD})
    assert status == 200 and "Sign out" in html
    return opener


def api_token(port: int) -> dict[str, str]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/token", method="POST",
        data=json.dumps({"password": ADMIN_PASSWORD}).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as resp:
        return {"Authorization": f"Bearer {json.load(resp)['token']}"}


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_run_serves_status_and_stops_on_signal(firmware: tuple[Firmware, int, Path],
                                               sig: signal.Signals) -> None:
    fw, port, config = firmware
    fw.wait_for("web server listening")
    status, _, html = get(port, "/")  # first boot: every page leads to the password setup
    assert status == 200 and 'action="/setup"' in html
    assert "no default password" in html
    fw.proc.send_signal(sig)
    assert fw.proc.wait(timeout=5) == 0
    fw.drain()

    with_admin_password(config)
    fw = Firmware("run", "--board", "sim", "--config", str(config), "--listen", "127.0.0.1",
                  "--port", str(port))
    try:
        _serves_status_and_stops_on(fw, port, sig)
    finally:
        fw.kill()


def _serves_status_and_stops_on(fw: Firmware, port: int, sig: signal.Signals) -> None:
    fw.wait_for("web server listening")
    opener = signed_in(port)
    status, headers, html = get(port, "/", opener)
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    assert headers["X-Frame-Options"] == "DENY"
    assert "TipRing" in html and tipring.__version__ in html
    assert "sim driver" in html
    assert 'class="line"' in html and "on-hook" in html
    assert "Configuration problems" not in html

    status, _, body = get(port, "/api/v1/status", headers=api_token(port))
    data = json.loads(body)
    assert data["firmware"]["version"] == tipring.__version__
    assert data["board"] == {"name": "sim", "driver": "sim"}
    assert data["config"]["source"] == "file"
    assert data["config"]["problems"] == []
    assert [line["hook"] for line in data["lines"]] == ["on-hook"]

    # A browser watching the live status must not hold up the stop.
    events = opener.open(f"http://127.0.0.1:{port}/events", timeout=5)
    assert events.readline().startswith(b"retry:")
    fw.proc.send_signal(sig)
    signalled = time.monotonic()
    code = fw.proc.wait(timeout=5)
    took = time.monotonic() - signalled
    events.close()
    assert code == 0
    assert took < 2.0, f"stopped {took:.2f} s after the signal; the limit is 2 s"
    fw.drain()
    assert any("msg=stopped" in line for line in fw.lines)


def test_log_lines_are_structured(firmware: tuple[Firmware, int, Path]) -> None:
    fw, port, _ = firmware
    line = fw.wait_for("web server listening")
    assert f"url=http://127.0.0.1:{port}/" in line
    fw.proc.terminate()
    fw.proc.wait(timeout=5)
    fw.drain()
    assert fw.lines
    for entry in fw.lines:
        fields = entry.split(" ")
        assert fields[0].startswith("ts=") and fields[0].endswith("Z"), entry
        assert fields[1] in {"level=info", "level=warning", "level=error", "level=debug"}, entry
        assert fields[2].startswith("logger=tipring"), entry
        assert fields[3].startswith("msg="), entry


def test_bad_config_starts_with_defaults_and_reports_it(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('schema_version = 1\n[web]\nport = "eighty"\n')
    port = free_port()
    fw = Firmware("run", "--config", str(config), "--port", str(port), "--listen", "127.0.0.1")
    try:
        fw.wait_for("web server listening")
        # Running on defaults means no admin password: the setup page says why.
        html = get(port, "/")[2]
        assert 'action="/setup"' in html
        assert "Configuration problems" in html and "web.port" in html
        assert config.read_text() == 'schema_version = 1\n[web]\nport = "eighty"\n'  # untouched
    finally:
        fw.kill()
    assert any("web.port" in line and ("level=warning" in line or "level=error" in line)
               for line in fw.lines), fw.lines


def test_unknown_board_fails_with_a_clear_message(tmp_path: Path) -> None:
    fw = Firmware("run", "--board", "no-such-board", "--config", str(tmp_path / "c.toml"),
                  "--port", str(free_port()))
    assert fw.proc.wait(timeout=20) == 2
    fw.drain()
    assert any("no board profile named" in line and "no-such-board" in line for line in fw.lines)


def test_busy_port_fails_with_a_clear_message(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        fw = Firmware("run", "--config", str(tmp_path / "c.toml"), "--listen", "127.0.0.1",
                      "--port", str(port))
        assert fw.proc.wait(timeout=20) == 2
    fw.drain()
    assert any(f"cannot listen on 127.0.0.1:{port}" in line for line in fw.lines), fw.lines


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tipring", *args], capture_output=True, text=True,
                          timeout=30, check=False)


def test_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"TipRing {tipring.__version__}"


def test_config_check(tmp_path: Path) -> None:
    from tipring.config import ConfigStore, default_config

    good = tmp_path / "good.toml"
    ConfigStore(good).save(default_config())
    result = run_cli("config", "check", str(good))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{good}: ok"

    bad = tmp_path / "bad.toml"
    bad.write_text("schema_version = 1\n[web]\nport = 0\n[device]\nregion = 'XX'\n")
    result = run_cli("config", "check", str(bad))
    assert result.returncode == 1
    problems = result.stderr.strip().splitlines()
    assert any("web.port" in p for p in problems), problems
    assert any("device.region" in p for p in problems), problems

    missing = run_cli("config", "check", str(tmp_path / "nope.toml"))
    assert missing.returncode == 1 and "nope.toml" in missing.stderr


def test_bad_port_argument_is_a_usage_error() -> None:
    result = run_cli("run", "--port", "70000")
    assert result.returncode == 2
    assert "port must be 1..65535, got 70000" in result.stderr


def test_hook_events_reach_the_status(tmp_path: Path) -> None:
    """In process: a sim handset lifted on its own thread shows up in the device status."""
    import asyncio

    from tipring.runtime.app import Device, Options

    async def scenario() -> list[str]:
        device = Device(Options(tmp_path / "c.toml", "sim"))
        device.start()
        try:
            seen = [device.status()["lines"][0]["hook"]]
            device.board.handsets[0].lift()  # type: ignore[union-attr]
            for _ in range(200):  # the edge hops threads via call_soon_threadsafe
                await asyncio.sleep(0.005)
                if device.off_hook[0]:
                    break
            seen.append(device.status()["lines"][0]["hook"])
            return seen
        finally:
            device.close()

    assert asyncio.run(scenario()) == ["on-hook", "off-hook"]



def test_interface_addresses_are_ip_addresses() -> None:
    """The status page's address list: only real addresses, loopback left out."""
    import ipaddress

    from tipring.runtime.app import interface_addresses

    for address in interface_addresses():
        parsed = ipaddress.ip_address(address.split("%")[0])
        assert not parsed.is_loopback
