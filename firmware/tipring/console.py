"""Serial management console: status, configuration and the admin password over the UART.

For when the web page is out of reach: first installation, or a network setting that locked
the device off the LAN. Anyone at the serial port has the board in hand, so a device with no
password yet lets the console set it (the same one the web page uses); otherwise the console
asks for it, and locks for a while after three wrong tries. Settings are shown and changed as
`path = value` lines (`accounts[0].expires = 3600`) through the same validation as every other
way in; secrets are shown only as "(set)".

The terminal is a dumb one (minicom, screen, a USB serial adapter): the console echoes what is
typed, handles backspace and Ctrl-C, and echoes nothing while a password is typed.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import tomllib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from tipring.config import ConfigError, Secret, config_from_dict, config_to_dict
from tipring.config.passwords import RULES, hash_password, password_problems, verify_password

if TYPE_CHECKING:
    from tipring.runtime.app import Device

log = logging.getLogger("tipring.console")

MAX_LINE = 512
MAX_TRIES = 3
LOCKOUT_S = 30.0
CRLF = "\r\n"


class LineEditor:
    """Bytes from the terminal in; what to echo back and the completed lines out."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.secret = False  # password entry: echo nothing
        self._last = 0

    def feed(self, data: bytes) -> tuple[bytes, list[str]]:
        echo = bytearray()
        lines: list[str] = []
        for byte in data:
            if byte in (13, 10):
                if not (byte == 10 and self._last == 13):  # CR LF is one end of line
                    lines.append(self.buffer.decode("utf-8", errors="replace"))
                    self.buffer.clear()
                    echo += b"\r\n"
            elif byte in (8, 127):
                if self.buffer:
                    self.buffer.pop()
                    if not self.secret:
                        echo += b"\b \b"
            elif byte == 3:  # Ctrl-C: drop the line
                self.buffer.clear()
                echo += b"^C\r\n"
                lines.append("")
            elif byte >= 32 and len(self.buffer) < MAX_LINE:
                self.buffer.append(byte)
                if not self.secret:
                    echo.append(byte)
            self._last = byte
        return bytes(echo), lines


def flatten(value: Any, path: str = "") -> list[tuple[str, Any]]:
    """A config as (`path`, value) pairs, the form `config show` prints and `config set` takes."""
    if isinstance(value, dict):
        pairs = []
        for key, item in value.items():
            pairs += flatten(item, f"{path}.{key}" if path else key)
        return pairs
    if isinstance(value, list) and value and isinstance(value[0], dict):
        pairs = []
        for i, item in enumerate(value):
            pairs += flatten(item, f"{path}[{i}]")
        return pairs
    return [(path, value)]


def shown(value: Any) -> str:
    if isinstance(value, Secret):
        return "(set)" if value.is_set else "(not set)"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(shown(v) for v in value) + "]"
    return str(value)


def parse_value(text: str) -> Any:
    """A TOML value (8080, true, ["PCMU"], "text"); anything else is taken as a plain string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def set_path(raw: dict[str, Any], path: str, value: Any) -> None:
    """Set `accounts[1].user` in a plain-data config; index len(list) appends a new entry."""
    target: Any = raw
    parts = path.replace("]", "").split(".")
    for n, part in enumerate(parts):
        name, _, index = part.partition("[")
        last = n == len(parts) - 1
        if index:
            items = target.setdefault(name, [])
            i = int(index)
            if i == len(items):
                items.append({})
            elif not 0 <= i < len(items):
                raise KeyError(f"{name} has {len(items)} entries, no [{i}]")
            if last:
                raise KeyError(f"{path} names a whole table; set one of its fields")
            target = items[i]
        elif last:
            target[name] = value
        else:
            target = target.setdefault(name, {})


class ConsoleSession:
    """One conversation on the console. `write` sends text to the terminal."""

    def __init__(self, device: Device, write: Callable[[str], Awaitable[None]],
                 editor: LineEditor) -> None:
        self.device = device
        self.write = write
        self.editor = editor
        self.logged_in = False
        self.failures = 0
        self._pending: Callable[[str], Awaitable[None]] | None = None

    async def greet(self) -> None:
        await self.write(f"{CRLF}TipRing management console{CRLF}")
        await self._ask_credentials()

    async def _ask_credentials(self) -> None:
        if self._password_hash is None:
            await self.write(f"No admin password is set yet; set one now (the web page uses it "
                             f"too).{CRLF}" + "".join(f"  {rule}{CRLF}" for rule in RULES))
            await self._ask("New password: ", self._first_password, secret=True)
        else:
            await self._ask("Password: ", self._login, secret=True)

    @property
    def _password_hash(self) -> str | None:
        stored = self.device.config.web.admin_password_hash
        return stored.reveal() if stored.is_set else None

    async def _ask(self, prompt: str, then: Callable[[str], Awaitable[None]],
                   secret: bool = False) -> None:
        self.editor.secret = secret
        self._pending = then
        await self.write(prompt)

    async def line(self, text: str) -> None:
        handler, self._pending = self._pending, None
        self.editor.secret = False
        if handler is not None:
            await handler(text)
        elif self.logged_in:
            await self._command(text.strip())
            if self.logged_in and self._pending is None:
                await self.write("tipring> ")
        else:
            await self._ask_credentials()

    async def _login(self, password: str) -> None:
        stored = self._password_hash
        loop = asyncio.get_running_loop()
        ok = stored is not None and await loop.run_in_executor(None, verify_password, password,
                                                               stored)
        if ok:
            self.failures = 0
            self.logged_in = True
            log.info("console login")
            await self.write(f"Signed in. Type 'help' for the commands.{CRLF}tipring> ")
            return
        self.failures += 1
        log.warning("console login failed", extra={"failures": self.failures})
        if self.failures >= MAX_TRIES:
            await self.write(f"Wrong password. Locked for {LOCKOUT_S:.0f} s.{CRLF}")
            await asyncio.sleep(LOCKOUT_S)
            self.failures = 0
        else:
            await self.write(f"Wrong password.{CRLF}")
        await self._ask("Password: ", self._login, secret=True)

    async def _first_password(self, password: str) -> None:
        problems = password_problems(password)
        if problems:
            await self.write("".join(f"{p}{CRLF}" for p in problems))
            await self._ask("New password: ", self._first_password, secret=True)
            return

        async def confirm(again: str) -> None:
            if again != password:
                await self.write(f"The two entries differ.{CRLF}")
                await self._ask("New password: ", self._first_password, secret=True)
                return
            await self._store_password(password)
            self.logged_in = True
            await self.write(f"Password set. Type 'help' for the commands.{CRLF}tipring> ")

        await self._ask("Again: ", confirm, secret=True)

    async def _store_password(self, password: str) -> None:
        loop = asyncio.get_running_loop()
        hashed = await loop.run_in_executor(None, hash_password, password)
        raw = config_to_dict(self.device.config, reveal_secrets=True)
        raw["web"]["admin_password_hash"] = hashed
        await self.device.apply_config(config_from_dict(raw))
        log.info("admin password changed on the console")

    async def _command(self, text: str) -> None:
        words = text.split(maxsplit=3)
        if not words:
            return
        name, args = words[0].lower(), words[1:]
        if name == "help":
            await self.write(HELP.replace("\n", CRLF))
        elif name == "status":
            await self.write(self._status())
        elif name == "config" and args[:1] == ["show"]:
            prefix = args[1] if len(args) > 1 else ""
            pairs = flatten(config_to_dict(self.device.config))
            await self.write("".join(f"{path} = {shown(value)}{CRLF}" for path, value in pairs
                                     if path.startswith(prefix)))
        elif name == "config" and args[:1] == ["set"] and len(args) == 3:
            await self._set(args[1], args[2])
        elif name == "logs":
            count = int(args[0]) if args and args[0].isdigit() else 20
            lines = list(self.device.recent_logs.lines)[-count:]
            await self.write("".join(f"{line}{CRLF}" for line in lines))
        elif name == "password":
            await self._ask("New password: ", self._new_password, secret=True)
        elif name in ("logout", "exit", "quit"):
            self.logged_in = False
            await self.write(f"Signed out.{CRLF}")
            await self._ask_credentials()
        else:
            await self.write(f"Unknown command {name!r}; type 'help'.{CRLF}")

    async def _new_password(self, password: str) -> None:
        problems = password_problems(password)
        if problems:
            await self.write("".join(f"{p}{CRLF}" for p in problems) + "tipring> ")
            return

        async def confirm(again: str) -> None:
            if again != password:
                await self.write(f"The two entries differ; nothing changed.{CRLF}tipring> ")
                return
            await self._store_password(password)
            await self.write(f"Password changed.{CRLF}tipring> ")

        await self._ask("Again: ", confirm, secret=True)

    async def _set(self, path: str, text: str) -> None:
        if path.startswith("web.admin_password_hash"):
            await self.write(f"Use 'password' to change the admin password.{CRLF}")
            return
        raw = config_to_dict(self.device.config, reveal_secrets=True)
        try:
            set_path(raw, path, parse_value(text))
            await self.device.apply_config(config_from_dict(raw))
        except ConfigError as exc:
            await self.write("".join(f"{error}{CRLF}" for error in exc.errors) +
                             f"Nothing changed.{CRLF}")
        except (KeyError, ValueError, TypeError) as exc:
            await self.write(f"{path}: {exc}{CRLF}Nothing changed.{CRLF}")
        except OSError as exc:
            await self.write(f"Could not save: {exc.strerror or exc}{CRLF}")
        else:
            await self.write(f"Saved.{CRLF}")

    def _status(self) -> str:
        status = self.device.status()
        out = [(f"{status['firmware']['name']} {status['firmware']['version']}, up "
               f"{int(status['uptime_s'])} s, board {(status['board'] or {}).get('name')}")]
        for line in status["lines"]:
            out.append(f"line {line['index'] + 1}: {line['hook']}, {line.get('state') or '-'}, "
                       f"account {line['account'] or 'none'}, {line['registration']}")
        out += [f"config problem: {p}" for p in status["config"]["problems"]]
        return "".join(f"{line}{CRLF}" for line in out)


HELP = """Commands:
  status                     lines, registration, uptime
  config show [PREFIX]       settings as path = value (secrets shown as (set))
  config set PATH VALUE      change one setting, e.g. config set accounts[0].expires 600
  logs [N]                   the last N log lines (default 20)
  password                   change the admin password
  logout                     sign out
"""


def console_service(url: str, baudrate: int = 115200) -> Callable[[Device], Awaitable[Any]]:
    """A runtime service running the console on a serial port (a pyserial URL or device path).
    A port that cannot be opened is logged and left out; the device runs on without it."""

    async def start(device: Device) -> Callable[[], Awaitable[None]]:
        import serial  # pyserial, imported when a console is asked for

        try:
            port = serial.serial_for_url(url, baudrate=baudrate, timeout=0.1)
        except (serial.SerialException, ValueError, OSError) as exc:
            # The telephone matters more than the console: a board whose UART is missing or
            # taken still makes calls, and the log says why the console is not there.
            log.error("console not started", extra={"port": url, "reason": str(exc)})

            async def nothing_to_stop() -> None:
                return None

            return nothing_to_stop
        loop = asyncio.get_running_loop()
        incoming: asyncio.Queue[bytes] = asyncio.Queue()
        running = threading.Event()
        running.set()

        def reader() -> None:  # pyserial blocks; its thread hands bytes to the loop
            while running.is_set():
                try:
                    data = port.read(256)
                except (serial.SerialException, OSError, TypeError):
                    break
                if data:
                    loop.call_soon_threadsafe(incoming.put_nowait, data)

        async def write(text: str) -> None:
            await loop.run_in_executor(None, port.write, text.encode("utf-8", "replace"))

        editor = LineEditor()
        session = ConsoleSession(device, write, editor)

        async def serve() -> None:
            await session.greet()
            while True:
                data = await incoming.get()
                echo, lines = editor.feed(data)
                if echo:
                    await write(echo.decode("utf-8", "replace"))
                for line in lines:
                    try:
                        await session.line(line)
                    except Exception:  # a bug must not take the console away
                        log.exception("console command failed")
                        await write(f"Internal error; see the log.{CRLF}tipring> ")

        thread = threading.Thread(target=reader, name="console", daemon=True)
        thread.start()
        task = asyncio.create_task(serve())
        log.info("console listening", extra={"port": url})

        async def stop() -> None:
            task.cancel()
            running.clear()
            await loop.run_in_executor(None, thread.join, 1.0)
            port.close()

        return stop

    return start
