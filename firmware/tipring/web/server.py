"""The device's web server: pages, live status, virtual phone and the JSON API.

Pages are rendered on the server with Jinja2 (autoescaped) and work without JavaScript; one
small script and one stylesheet are served from /static (no CDN, no build step), so the page
loads on a device with no internet. Every response, static files and errors included, carries
headers that forbid framing, sniffing, inline script and third-party content.
"""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from . import api, dialplan, maintenance, phone, security, settings, signin, ssh, status, tls
from .access import access
from .appstate import STATE, WebState
from .memory import return_large_blocks
from .system import backend_for
from .tokens import ApiTokens

if TYPE_CHECKING:
    from tipring.runtime.app import Device, Stopper

log = logging.getLogger("tipring.web")

STATIC = Path(__file__).with_name("static")
MAX_REQUEST_BYTES = 300 * 1024  # a configuration import is the largest thing anyone posts
SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'self'; script-src 'self'; style-src 'self'; "
                                "img-src 'self' data:; connect-src 'self'; object-src 'none'; "
                                "base-uri 'none'; frame-ancestors 'none'; form-action 'self'"),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


async def _headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(SECURITY_HEADERS)
    if request.path.startswith("/static/"):
        response.headers["Cache-Control"] = "public, max-age=3600"
    else:
        response.headers["Cache-Control"] = "no-store"
    if request.secure:
        response.headers["Strict-Transport-Security"] = "max-age=31536000"


async def _closing(app: web.Application) -> None:
    app[STATE].closing.set()  # live event streams end now, so shutdown is not held up


def make_app(device: Device) -> web.Application:
    app = web.Application(middlewares=[access], client_max_size=MAX_REQUEST_BYTES)
    app[STATE] = WebState(device, system=backend_for(device),
                          tokens=ApiTokens.beside(device.options.config_path))
    app.on_response_prepare.append(_headers)
    app.on_shutdown.append(_closing)
    for module in (signin, status, settings, dialplan, security, maintenance, phone, ssh, api):
        app.router.add_routes(module.routes())
    app.router.add_static("/static", STATIC, follow_symlinks=False)
    return app


# A Host header's name part we are willing to put back into a Location: a DNS name, IPv4, or
# a bracketed IPv6 literal. Anything else is answered with the device's listen address.
_HOST_NAME = re.compile(r"[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\]")


def redirect_app(https_port: int, fallback_host: str) -> web.Application:
    """Plain HTTP that answers every request with 308 to the same path on HTTPS: a browser
    that types http://tipring.local lands on the real page instead of a TLS error. It serves
    nothing else, so nothing (not a cookie, not a form) ever travels unencrypted."""

    async def to_https(request: web.Request) -> web.Response:
        asked = request.host or ""
        name = asked if asked.endswith("]") else (asked.rpartition(":")[0] or asked)
        if not _HOST_NAME.fullmatch(name):
            name = f"[{fallback_host}]" if ":" in fallback_host else fallback_host
        port = "" if https_port == 443 else f":{https_port}"
        raise web.HTTPPermanentRedirect(f"https://{name}{port}{request.rel_url}")

    app = web.Application(client_max_size=1024)
    app.router.add_route("*", "/{tail:.*}", to_https)
    return app


async def _start_redirect(device: Device, host: str, https_port: int) -> Stopper | None:
    port = device.config.web.redirect_port
    runner = web.AppRunner(redirect_app(https_port, host), access_log=None,
                           shutdown_timeout=0.5)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:  # the HTTPS page still works; say why http:// does not
        await runner.cleanup()
        log.error("HTTP redirect cannot listen on %s:%d: %s", host, port, exc.strerror or exc)
        return None
    log.info("HTTP redirect listening", extra={"port": port})
    return runner.cleanup


async def start_web(device: Device) -> Stopper:
    """Serve the device's pages on its configured address; returns the coroutine that stops it."""
    host, port = device.web_address
    return_large_blocks()  # password hashing must not leave 16 MiB behind per thread
    runner = web.AppRunner(make_app(device), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    context = None
    files = tls.CertificateFiles.beside(device.options.config_path)
    if not files.present:  # first start: the device's own certificate, for HTTPS when wanted
        from tipring.runtime.app import interface_addresses

        names = [f"{device.config.device.name}.local", *interface_addresses()]
        made = await asyncio.get_running_loop().run_in_executor(
            None, tls.make_self_signed, files, names)
        if made is not None:
            log.info("self-signed web certificate made", extra={"fingerprint": made})
    if device.config.web.https:
        context = tls.server_context(files)
        if context is None:
            log.error("web.https is on but the certificate or key is missing or unusable: "
                      "serving plain HTTP so the device stays reachable")
    site = web.TCPSite(runner, host, port, ssl_context=context)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise OSError(exc.errno, f"web server cannot listen on {host}:{port}: {exc.strerror}") from exc
    shown = f"[{host}]" if ":" in host else host
    scheme = "https" if context is not None else "http"
    log.info("web server listening", extra={"url": f"{scheme}://{shown}:{port}/"})
    if not device.config.web.admin_password_hash.is_set:
        log.warning("no admin password yet: open the web page to set one",
                    extra={"url": f"{scheme}://{shown}:{port}/setup"})
    redirect = None
    if context is not None and device.config.web.redirect_port:
        redirect = await _start_redirect(device, host, port)

    async def stop() -> None:
        if redirect is not None:
            await redirect()
        await runner.cleanup()
    return stop
