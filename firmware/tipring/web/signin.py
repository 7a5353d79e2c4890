"""First-boot setup, sign-in and sign-out.

There is no default password: until the admin sets one on /setup (with the region and time
zone, which the line needs from the first call) nothing else is reachable. Password checks run
scrypt in an executor; failures are rate limited per address and counted *before* the check,
so a burst of parallel guesses cannot slip through while the first ones are being hashed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from urllib.parse import urlsplit

from aiohttp import web

from tipring.config import ConfigError, Secret

from . import forms
from .access import is_set_up
from .appstate import SESSION, client_address, device, session, state
from tipring.config.passwords import RULES, hash_password, password_problems, verify_password
from .render import notify, render, see_other
from .sessions import clear_cookie, set_cookie

log = logging.getLogger("tipring.web")

SETUP_DEVICE = forms.Section("device", forms.DEVICE.cls, tuple(
    f for f in forms.DEVICE_FIELDS if f.name in ("region", "timezone")))


def is_https(request: web.Request) -> bool:
    return request.secure


def _page(request: web.Request, template: str, *, code: int = 200, **context: object) -> web.Response:
    """Render a public page, creating its session first so the form gets a CSRF token."""
    if session(request) is None:
        token, fresh = state(request).sessions.create(
            client_address(request), request.headers.get("User-Agent", ""), signed_in=False,
            now=time.monotonic())
        request[SESSION] = fresh
        response = render(request, template, code=code, **context)
        set_cookie(response, token, secure=is_https(request))
        return response
    return render(request, template, code=code, **context)


def _sign_in(request: web.Request, location: str) -> web.Response:
    """Replace the visitor's session with a new signed-in one (no session fixation)."""
    st = state(request)
    old = session(request)
    if old is not None:
        st.sessions.drop(old)
    token, fresh = st.sessions.create(client_address(request),
                                      request.headers.get("User-Agent", ""), signed_in=True,
                                      now=time.monotonic())
    if old is not None:
        fresh.notices = old.notices
    response = see_other(location)
    set_cookie(response, token, secure=is_https(request))
    return response


def _setup_context(request: web.Request, errors: dict[str, str], posted: object | None,
                   other: list[str]) -> dict:
    current = None if posted is not None else forms.DEVICE.cls()
    loaded = device(request).loaded
    return {
        # A first boot can also be a fallback: a corrupt file left the device on defaults.
        "config_problems": list(loaded.problems) if loaded else [],
        "config_path": str(device(request).options.config_path),
        "rules": RULES,
        "device_fields": forms.widgets(SETUP_DEVICE, current, errors, posted),  # type: ignore[arg-type]
        "errors": errors,
        "other_errors": other,
    }


async def setup_page(request: web.Request) -> web.Response:
    return _page(request, "setup.html", **_setup_context(request, {}, None, []))


async def setup_submit(request: web.Request) -> web.Response:
    form = await request.post()
    password, confirm = str(form.get("password", "")), str(form.get("confirm", ""))
    errors: dict[str, str] = {}
    other: list[str] = []
    problems = password_problems(password)
    if problems:
        errors["password"] = "; ".join(problems)
    elif confirm != password:
        errors["confirm"] = "does not match the password"
    dev = device(request)
    async with state(request).setup_lock:
        if is_set_up(request):  # someone else finished first boot meanwhile
            raise web.HTTPSeeOther("/login")
        try:
            config = forms.merge(dev.config, [SETUP_DEVICE], form)
        except ConfigError as exc:
            placed, other = forms.place_errors(exc, [SETUP_DEVICE])
            errors.update(placed)
        if errors or other:
            return render(request, "setup.html", code=400,
                          **_setup_context(request, errors, form, other))
        hashed = await asyncio.get_running_loop().run_in_executor(None, hash_password, password)
        config = dataclasses.replace(
            config, web=dataclasses.replace(config.web, admin_password_hash=Secret(hashed)))
        try:
            await dev.apply_config(config)
        except OSError as exc:
            other = [f"the configuration could not be saved: {exc.strerror or exc}"]
            return render(request, "setup.html", code=500, **_setup_context(request, {}, form, other))
        # After a password reset (voice menu), nothing issued under the old password may
        # come back to life with the new one.
        if state(request).tokens.revoke_all():
            try:
                await state(request).tokens.flush()
            except OSError as exc:
                log.error("revoked API tokens not saved", extra={"reason": str(exc)})
    log.info("first-boot setup done", extra={"client": client_address(request)})
    notify(request, "The admin password is set. Next: add your SIP account.")
    return _sign_in(request, "/accounts")


def _safe_next(target: str) -> str:
    """Only a path on this device: never `//evil.example` or `https://...` (open redirect)."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") \
            or "\\" in target:
        return "/"
    return target


async def login_page(request: web.Request) -> web.Response:
    current = session(request)
    if current is not None and current.signed_in:
        raise web.HTTPSeeOther("/")
    return _page(request, "login.html", error=None, next=_safe_next(request.query.get("next", "/")))


async def check_password(request: web.Request, password: str) -> float | bool:
    """True if right, False if wrong, or the seconds to wait when rate limited."""
    st, address = state(request), client_address(request)
    wait = st.throttle.retry_after(address, time.monotonic())
    if wait > 0:
        log.warning("sign-in rate limited", extra={"client": address, "retry_after_s": round(wait)})
        return wait
    st.throttle.failed(address, time.monotonic())  # counted first: parallel guesses wait too
    stored = device(request).config.web.admin_password_hash.reveal()
    ok = await asyncio.get_running_loop().run_in_executor(None, verify_password, password, stored)
    if ok:
        st.throttle.succeeded(address)
    else:
        log.warning("wrong admin password", extra={"client": address})
    return ok


def too_many(request: web.Request, template: str, wait: float, **context: object) -> web.Response:
    response = render(request, template, code=429, **context,
                      error=f"Too many wrong passwords. Try again in {int(wait) + 1} seconds.")
    response.headers["Retry-After"] = str(int(wait) + 1)
    return response


async def login_submit(request: web.Request) -> web.Response:
    form = await request.post()
    target = _safe_next(str(form.get("next", "/")))
    result = await check_password(request, str(form.get("password", "")))
    if result is True:
        log.info("signed in", extra={"client": client_address(request)})
        return _sign_in(request, target)
    if result is False:
        return render(request, "login.html", code=401, error="Wrong password.", next=target)
    return too_many(request, "login.html", float(result), next=target)


async def logout(request: web.Request) -> web.Response:
    current = session(request)
    if current is not None:
        state(request).sessions.drop(current)
    response = see_other("/login")
    clear_cookie(response)
    return response


def routes() -> list[web.RouteDef]:
    return [
        web.get("/setup", setup_page), web.post("/setup", setup_submit),
        web.get("/login", login_page), web.post("/login", login_submit),
        web.post("/logout", logout),
    ]
