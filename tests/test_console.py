"""The serial management console, driven through a real pseudo-terminal (pyserial opens the tty
end as it would /dev/serial0; the test types on the other end)."""

from __future__ import annotations

import asyncio
import os
import select
import time
from pathlib import Path

import pytest

from tipring import console
from tipring.config import ConfigStore
from tipring.runtime.app import Device, Options

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery staple"


class Terminal:
    """The user's side of the pty."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.seen = ""

    def type(self, text: str) -> None:
        os.write(self.fd, text.encode())

    async def run(self, command: str) -> str:
        """Type a command; return its output up to the next prompt."""
        self.type(command + "\r")
        return await self.expect("tipring> ")

    async def expect(self, needle: str, deadline_s: float = 5.0) -> str:
        """Wait until `needle` has appeared since the last expect; return what came."""
        loop = asyncio.get_running_loop()
        end = time.monotonic() + deadline_s
        while needle not in self.seen:
            remaining = end - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {needle!r} within {deadline_s} s; got {self.seen!r}")
            ready = await loop.run_in_executor(
                None, lambda r=remaining: select.select([self.fd], [], [], min(r, 0.2))[0])
            if ready:
                self.seen += os.read(self.fd, 4096).decode("utf-8", "replace")
        head, _, tail = self.seen.partition(needle)
        self.seen = tail
        return head + needle


async def session(config: Path, script) -> None:  # type: ignore[no-untyped-def]
    master, slave = os.openpty()
    device = Device(Options(config, "sim"))
    device.start()
    stop = await console.console_service(os.ttyname(slave))(device)
    try:
        await script(Terminal(master), device)
    finally:
        await stop()
        device.close()
        os.close(master)
        os.close(slave)


def test_first_boot_sets_the_password_then_commands_work(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"

    async def script(term: Terminal, device: Device) -> None:
        await term.expect("No admin password is set yet")
        await term.expect("New password: ")
        term.type("short\r")
        await term.expect("must be at least 12 characters, got 5")
        await term.expect("New password: ")
        term.type(PASSWORD + "\r")
        out = await term.expect("Again: ")
        assert PASSWORD not in out  # nothing typed is echoed while entering a password
        term.type(PASSWORD + "\r")
        await term.expect("Password set.")
        await term.expect("tipring> ")

        out = await term.run("config set web.port 0")
        assert "web.port: must be between 1 and 65535, got 0" in out and "Nothing changed." in out
        assert "Saved." in await term.run("config set device.region GB")
        assert 'device.region = "GB"' in await term.run("config show device")
        out = await term.run("config show web")
        assert "web.admin_password_hash = (set)" in out
        assert "scrypt" not in out and PASSWORD not in out
        assert "line 1: on-hook" in await term.run("status")
        assert "Unknown command 'bogus'" in await term.run("bogus")

    asyncio.run(session(config, script))
    saved = ConfigStore(config).load()
    assert saved.source == "file"
    assert saved.config.web.admin_password_hash.is_set
    assert saved.config.device.region == "GB"
    assert saved.config.web.port == 8080  # the refused change left the file alone


def test_login_locks_after_three_wrong_passwords(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(console, "LOCKOUT_S", 0.3)
    config = tmp_path / "config.toml"
    from tipring.config import config_from_dict, config_to_dict, default_config
    from tipring.config.passwords import hash_password

    raw = config_to_dict(default_config(), reveal_secrets=True)
    raw["web"]["admin_password_hash"] = hash_password(PASSWORD)
    ConfigStore(config).save(config_from_dict(raw))

    async def script(term: Terminal, device: Device) -> None:
        await term.expect("Password: ")
        for _ in range(2):
            term.type("guess-guess-guess\r")
            await term.expect("Wrong password.")
        term.type("guess-guess-guess\r")
        await term.expect("Locked for")
        started = time.monotonic()
        await term.expect("Password: ")
        assert time.monotonic() - started >= 0.25
        term.type("x\x7f" + PASSWORD + "\r")  # a typo corrected with backspace
        await term.expect("Signed in.")
        term.type("logout\r")
        await term.expect("Signed out.")
        await term.expect("Password: ")

    asyncio.run(session(config, script))


def test_line_editor_echo_backspace_and_secret_entry() -> None:
    editor = console.LineEditor()
    echo, lines = editor.feed(b"abc\x7fd\r\n")
    assert echo == b"abc\b \bd\r\n" and lines == ["abd"]
    editor.secret = True
    echo, lines = editor.feed(b"hunter2\r")
    assert echo == b"\r\n" and lines == ["hunter2"]
    editor.secret = False
    echo, lines = editor.feed(b"half\x03")
    assert lines == [""] and b"^C" in echo


def test_set_path_and_values() -> None:
    raw: dict = {"accounts": [{"id": "a"}], "web": {"port": 80}}
    console.set_path(raw, "web.port", console.parse_value("8080"))
    console.set_path(raw, "accounts[0].codecs", console.parse_value('["PCMA", "PCMU"]'))
    console.set_path(raw, "accounts[1].id", console.parse_value("office"))
    assert raw == {"accounts": [{"id": "a", "codecs": ["PCMA", "PCMU"]}, {"id": "office"}],
                   "web": {"port": 8080}}
    with pytest.raises(KeyError):
        console.set_path(raw, "accounts[5].id", "x")


def test_a_console_port_that_cannot_open_leaves_the_device_running(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        device = Device(Options(tmp_path / "config.toml", "sim"))
        device.start()
        try:
            stop = await console.console_service(str(tmp_path / "no-such-tty"))(device)
            await stop()
            assert device.status()["lines"]  # still the device it was
        finally:
            device.close()

    asyncio.run(main())
    errors = [r for r in caplog.records if r.name == "tipring.console" and r.levelname == "ERROR"]
    assert errors and errors[0].getMessage() == "console not started"
    assert "no-such-tty" in errors[0].port  # type: ignore[attr-defined]
