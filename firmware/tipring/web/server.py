"""The device's web server: the status page and `/api/v1/status`.

Pages are rendered on the server with Jinja2 (autoescaped) and work without JavaScript; no CDN, no
build step, so the page loads on a device with no internet. Every response carries headers that
forbid framing, sniffing and third-party content.
"""

from __future__ import annotations

import datetime
import logging
from typing import TYPE_CHECKING

import jinja2
from aiohttp import web

if TYPE_CHECKING:
    from tipring.runtime.app import Device, Stopper

log = logging.getLogger("tipring.web")

DEVICE_KEY = web.AppKey("device", object)
TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("tipring.web", "templates"),
    autoescape=jinja2.select_autoescape(default=True),
    undefined=jinja2.StrictUndefined,
)
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _duration(seconds: float) -> str:
    return str(datetime.timedelta(seconds=int(seconds)))


TEMPLATES.filters["duration"] = _duration


@web.middleware
async def security_headers(request: web.Request, handler):  # type: ignore[no-untyped-def]
    response = await handler(request)
    response.headers.update(SECURITY_HEADERS)
    return response


async def status_page(request: web.Request) -> web.Response:
    device: Device = request.app[DEVICE_KEY]  # type: ignore[assignment]
    html = TEMPLATES.get_template("status.html").render(status=device.status())
    return web.Response(text=html, content_type="text/html", charset="utf-8")


async def status_api(request: web.Request) -> web.Response:
    device: Device = request.app[DEVICE_KEY]  # type: ignore[assignment]
    return web.json_response(device.status())


def make_app(device: Device) -> web.Application:
    app = web.Application(middlewares=[security_headers], client_max_size=64 * 1024)
    app[DEVICE_KEY] = device
    app.router.add_get("/", status_page)
    app.router.add_get("/api/v1/status", status_api)
    return app


async def start_web(device: Device) -> Stopper:
    """Serve the device's pages on its configured address; returns the coroutine that stops it."""
    host, port = device.web_address
    runner = web.AppRunner(make_app(device), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise OSError(exc.errno, f"web server cannot listen on {host}:{port}: {exc.strerror}") from exc
    shown = f"[{host}]" if ":" in host else host
    log.info("web server listening", extra={"url": f"http://{shown}:{port}/"})
    return runner.cleanup
