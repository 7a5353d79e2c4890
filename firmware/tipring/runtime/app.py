"""The running device: load the configuration, open the board, start services, stop on a signal.

`Device` owns what lives as long as the process (configuration, board, hook state) and hands
hardware callbacks to the asyncio loop. Services that sit above the runtime (the web server) are
passed in as `Service` callables, so nothing here imports `web`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import platform
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tipring
from tipring.config import ConfigStore, LoadResult
from tipring.hal.api import Board, HardwareError, HookEvent
from tipring.hal.profile import find_profile, load_profile, open_board
from tipring.runtime import logs

log = logging.getLogger("tipring.runtime")

STOP_BUDGET_S = 1.5  # SIGTERM to exit must stay under 2 s (init systems escalate to SIGKILL)

Stopper = Callable[[], Awaitable[None]]
Service = Callable[["Device"], Awaitable[Stopper]]


@dataclass(frozen=True)
class Options:
    config_path: Path
    board: str = "sim"
    listen: str | None = None  # overrides web.listen from the configuration
    port: int | None = None  # overrides web.port


class Device:
    """Configuration, board and line state of the running firmware."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.store = ConfigStore(options.config_path)
        self.loaded: LoadResult | None = None
        self.board: Board | None = None
        self.started_at = time.monotonic()
        self.started_wall = time.time()
        self.off_hook: dict[int, bool] = {}

    @property
    def web_address(self) -> tuple[str, int]:
        assert self.loaded is not None
        web = self.loaded.config.web
        return (self.options.listen or web.listen, self.options.port or web.port)

    def start(self) -> None:
        """Load the configuration (never fails: falls back) and open the board (may raise)."""
        self.loaded = self.store.load()
        logging.getLogger("tipring").setLevel(self.loaded.config.device.log_level.upper())
        log.info(
            "configuration loaded",
            extra={"path": str(self.options.config_path), "source": self.loaded.source,
                   "problems": len(self.loaded.problems)},
        )
        profile = load_profile(find_profile(self.options.board))
        self.board = open_board(profile)
        loop = asyncio.get_running_loop()
        for port in self.board.lines:
            self.off_hook[port.index] = port.slic.off_hook
            # gpiozero and the sim call back on their own threads: hop onto the loop.
            port.slic.on_hook_event = lambda ev: loop.call_soon_threadsafe(self._hook_event, ev)
        log.info(
            "board opened",
            extra={"board": profile.name, "driver": profile.driver, "lines": profile.lines},
        )

    def _hook_event(self, event: HookEvent) -> None:
        self.off_hook[event.line] = event.off_hook
        log.info("hook", extra={"line": event.line, "state": "off" if event.off_hook else "on"})

    def close(self) -> None:
        if self.board is not None:
            self.board.close()
            self.board = None

    def status(self) -> dict[str, Any]:
        """A JSON-ready snapshot for the status page and API; never contains secrets."""
        loaded = self.loaded
        lines = []
        if self.board is not None:
            for port in self.board.lines:
                line_cfg = None
                if loaded is not None and port.index < len(loaded.config.lines):
                    line_cfg = loaded.config.lines[port.index]
                lines.append({
                    "index": port.index,
                    "hook": "off-hook" if self.off_hook.get(port.index) else "on-hook",
                    "linefeed": port.slic.linefeed.value,
                    "ringing": port.slic.ringing,
                    "account": (line_cfg.account or None) if line_cfg else None,
                    "registration": "not configured",
                })
        return {
            "firmware": {"name": "TipRing", "version": tipring.__version__},
            "board": {"name": self.board.name, "driver": self.board.driver} if self.board else None,
            "uptime_s": round(time.monotonic() - self.started_at, 1),
            "config": {
                "path": str(self.options.config_path),
                "source": loaded.source if loaded else None,
                "problems": list(loaded.problems) if loaded else [],
            },
            "lines": lines,
            "system": system_facts(),
        }


def system_facts() -> dict[str, Any]:
    facts: dict[str, Any] = {
        "hostname": socket.gethostname(),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    try:
        facts["load_1m"] = round(os.getloadavg()[0], 2)
    except OSError:
        pass
    try:
        meminfo = Path("/proc/meminfo").read_text().split("\n")
        fields = {ln.split(":")[0]: int(ln.split()[1]) for ln in meminfo if ln.endswith("kB")}
        facts["memory_available_kib"] = fields.get("MemAvailable")
        facts["memory_total_kib"] = fields.get("MemTotal")
    except (OSError, ValueError, IndexError):
        pass
    try:
        milli = int(Path("/sys/class/thermal/thermal_zone0/temp").read_text())
        facts["temperature_c"] = milli / 1000
    except (OSError, ValueError):
        pass
    return facts


async def serve(options: Options, services: Sequence[Service] = ()) -> int:
    """Run the device until SIGTERM or SIGINT; returns the process exit code."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    device = Device(options)
    stoppers: list[Stopper] = []
    try:
        device.start()
        for service in services:
            stoppers.append(await service(device))
    except (HardwareError, OSError) as exc:
        log.error("cannot start", extra={"reason": str(exc)})
        await _shutdown(device, stoppers)
        return 2
    log.info("running", extra={"version": tipring.__version__, "pid": os.getpid()})
    await stop.wait()
    log.info("stopping")
    await _shutdown(device, stoppers)
    log.info("stopped")
    return 0


async def _shutdown(device: Device, stoppers: list[Stopper]) -> None:
    try:
        async with asyncio.timeout(STOP_BUDGET_S):
            for stopper in reversed(stoppers):
                await stopper()
    except TimeoutError:
        log.warning("services did not stop in time", extra={"budget_s": STOP_BUDGET_S})
    device.close()


def run(options: Options, services: Sequence[Service] = ()) -> int:
    logs.configure()
    return asyncio.run(serve(options, services))
