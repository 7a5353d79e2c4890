"""Test helpers for the web UI: an in-process device + web app, and form helpers.

Holds no tests; the other `tests/test_web_*.py` modules import it.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tipring.runtime.app import Device, Options
from tipring.web.server import make_app

PASSWORD = "correct horse battery staple"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def run_client(config_path: Path,
               scenario: Callable[[TestClient, Device], Awaitable[Any]]) -> Any:
    """Start a device on the sim board and its web app on loopback; run `scenario`."""
    async def main() -> Any:
        device = Device(Options(config_path, "sim"))
        device.start()
        try:
            async with TestClient(TestServer(make_app(device))) as client:
                return await scenario(client, device)
        finally:
            device.close()

    return asyncio.run(main())


async def setup_done(client: TestClient, password: str = PASSWORD) -> None:
    """First boot through the real form; leaves the client signed in."""
    page = await (await client.get("/setup")).text()
    response = await client.post("/setup", data={
        "csrf": csrf_of(page), "password": password, "confirm": password,
        "device.region": "US", "device.timezone": "UTC"}, allow_redirects=False)
    assert response.status == 303, await response.text()


async def csrf_for(client: TestClient, path: str) -> str:
    return csrf_of(await (await client.get(path)).text())


class ThreadedServer:
    """The device and its real web server on a loopback port, on a loop in its own thread
    (Playwright's sync API owns the test thread)."""

    def __init__(self, config_path: Path, **options: Any) -> None:
        self.config_path = config_path
        self.options = options  # more Options fields, e.g. sip_host/sip_port for real peers
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self.device: Device | None = None
        self._ready = threading.Event()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> ThreadedServer:
        self._thread.start()
        assert self._ready.wait(20), "web server did not start"
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._start())
        self._ready.set()
        self.loop.run_forever()

    async def _start(self) -> None:
        self.device = Device(Options(self.config_path, "sim", **self.options))
        self.device.start()
        self._runner = web.AppRunner(make_app(self.device), shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run `fn` on the server's loop thread and return its result."""
        async def wrapper() -> Any:
            return fn()
        return asyncio.run_coroutine_threadsafe(wrapper(), self.loop).result(10)

    def stop(self) -> None:
        async def stop() -> None:
            assert self._runner is not None
            await self._runner.cleanup()
            assert self.device is not None
            await self.device.stop_telephony(deadline=0.0)  # SIP is running once an account is
            self.device.close()
        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
