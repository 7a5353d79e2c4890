"""Security page: change the admin password, see and end sessions, the web page's address,
SSH access (off by default, keys only).

A password change needs the current password (so a borrowed, signed-in browser cannot lock the
owner out), is rate limited like sign-in, signs out every other browser and revokes API tokens.
API tokens are made here too (with the password, for the same reason), shown once, listed with
their last use, and revoked one by one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from typing import Any

from aiohttp import web

from tipring.config import Config, ConfigError, Secret

from . import forms, ssh, tls
from .appstate import client_address, device, session, state
from tipring.config.passwords import RULES, hash_password, password_problems
from .render import notify, render, see_other
from .settings import save_or_show
from .signin import check_password, too_many
from .tokens import TokenError

log = logging.getLogger("tipring.web")

# Form value -> (label, seconds): what the page offers.
TOKEN_LIFETIMES = {"1d": ("1 day", 86400), "30d": ("30 days", 30 * 86400),
                   "90d": ("90 days", 90 * 86400), "365d": ("1 year", 365 * 86400)}


def _context(request: web.Request, *, errors: dict[str, str] | None = None,
             web_errors: dict[str, str] | None = None, posted: Any = None,
             other: list[str] | None = None,
             token_errors: dict[str, str] | None = None,
             ssh_view: dict[str, Any] | None = None) -> dict[str, Any]:
    config = device(request).config
    now, current = time.monotonic(), session(request)
    sessions = [{"label": s.label, "address": s.address, "agent": s.agent,
                 "since": s.created_wall, "idle_s": now - s.last_seen, "mine": s is current}
                for s in state(request).sessions.signed_in()]
    fresh = current.fresh_token if current is not None else None
    if current is not None:
        current.fresh_token = None  # shown once
    return {
        "tokens": state(request).tokens.listing(), "fresh_token": fresh,
        "token_errors": token_errors or {}, "lifetimes": TOKEN_LIFETIMES,
        "rules": RULES, "errors": errors or {}, "other_errors": other or [],
        "web_fields": forms.widgets(forms.WEB, config.web, web_errors or {}, posted),
        "sessions": sessions, "https": config.web.https, "secure": request.secure,
        "fingerprint": tls.current_fingerprint(_cert_files(request)),
        "accounts": [(a.id, a.allow_sip_from) for a in config.accounts],
        "ssh": ssh_view or ssh.view(config.ssh, device(request).ssh_seen),
    }


def _cert_files(request: web.Request) -> tls.CertificateFiles:
    return tls.CertificateFiles.beside(device(request).options.config_path)


async def _upload(form: Any, name: str) -> bytes:
    field = form.get(name)
    data = getattr(field, "file", None)
    return data.read(tls.MAX_PEM_BYTES + 1) if data is not None else b""


async def https_submit(request: web.Request) -> web.Response:
    """Install an uploaded certificate + key (checked first) and/or switch HTTPS on or off."""
    form = await request.post()
    files = _cert_files(request)
    cert, key = await _upload(form, "cert"), await _upload(form, "key")
    loop = asyncio.get_running_loop()
    done = []
    if cert or key:
        try:
            print_ = await loop.run_in_executor(None, tls.install, files, cert, key)
        except tls.CertificateError as exc:
            return render(request, "security.html", code=400, **_context(
                request, other=[f"The certificate was not installed: {exc}."]))
        except OSError as exc:
            return render(request, "security.html", code=500, **_context(
                request, other=[f"The certificate could not be stored ({exc.strerror})."]))
        log.info("web certificate installed", extra={"sha256": print_})
        done.append(f"Certificate installed (SHA-256 {print_}).")
    wanted = "https" in form
    dev = device(request)
    if wanted and not await loop.run_in_executor(None, tls.server_context, files):
        return render(request, "security.html", code=400, **_context(
            request, other=["HTTPS needs a certificate and key: upload them first."]))
    if wanted != dev.config.web.https:
        await dev.apply_config(dataclasses.replace(
            dev.config, web=dataclasses.replace(dev.config.web, https=wanted)))
        done.append(f"HTTPS {'on' if wanted else 'off'} after the next restart.")
    notify(request, " ".join(done) or "Nothing changed.")
    return see_other("/security")


async def security_page(request: web.Request) -> web.Response:
    await device(request).ssh_status()
    return render(request, "security.html", **_context(request))


async def ssh_submit(request: web.Request) -> web.Response:
    """SSH on/off and the keys it takes; applied to the system, then saved (or neither)."""
    form = await request.post()
    text, wanted = str(form.get("ssh.authorized_keys", "")), "ssh.enabled" in form
    keys, numbers = ssh.keys_from_text(text)
    dev = device(request)

    def again(code: int, error: str | None, other: list[str]) -> web.Response:
        shown = ssh.view(dev.config.ssh, dev.ssh_seen, posted_text=text, error=error,
                         posted_enabled=wanted)
        return render(request, "security.html", code=code,
                      **_context(request, other=other, ssh_view=shown))

    try:
        config = await dev.apply_config(ssh.with_ssh(dev.config, wanted, keys))
    except ConfigError as exc:
        error, other = ssh.key_errors(exc, numbers)
        return again(400, error, other)
    except OSError as exc:
        return again(500, None, [f"SSH was not changed: {exc.strerror or exc}"])
    log.info("SSH settings saved", extra={"enabled": config.ssh.enabled,
                                          "keys": len(config.ssh.authorized_keys)})
    status = await dev.ssh_status()
    notify(request, f"SSH settings saved ({len(config.ssh.authorized_keys)} key(s)). SSH is "
                    f"{'on' if status.on else 'off'}"
                    + (f" ({status.detail})." if status.detail else "."))
    return see_other("/security#ssh")


async def change_password(request: web.Request) -> web.Response:
    form = await request.post()
    current_pw, new, confirm = (str(form.get(k, "")) for k in ("current", "password", "confirm"))
    errors: dict[str, str] = {}
    problems = password_problems(new)
    if problems:
        errors["password"] = "; ".join(problems)
    elif confirm != new:
        errors["confirm"] = "does not match the new password"
    if errors:
        return render(request, "security.html", code=400, **_context(request, errors=errors))
    result = await check_password(request, current_pw)
    if result is False:
        return render(request, "security.html", code=401,
                      **_context(request, errors={"current": "wrong password"}))
    if result is not True:
        return too_many(request, "security.html", float(result), **_context(request))
    hashed = await asyncio.get_running_loop().run_in_executor(None, hash_password, new)
    dev = device(request)
    config: Config = dev.config
    try:
        await dev.apply_config(dataclasses.replace(
            config, web=dataclasses.replace(config.web, admin_password_hash=Secret(hashed))))
    except OSError as exc:
        return render(request, "security.html", code=500, **_context(
            request, other=[(f"The password could not be saved ({exc.strerror or exc}); "
                            "the old one still applies.")]))
    st = state(request)
    ended = st.sessions.drop_signed_in_except(session(request))
    st.tokens.revoke_all()
    log.info("admin password changed", extra={"client": client_address(request),
                                               "sessions_ended": ended})
    notify(request, f"Password changed. {ended} other session(s) signed out; API tokens revoked."
           + await _tokens_unsaved(request))
    return see_other("/security")


async def _tokens_unsaved(request: web.Request) -> str:
    """Write the token file; "" when done, else a sentence saying what was not saved."""
    try:
        await state(request).tokens.flush()
    except OSError as exc:
        log.error("API token file not written", extra={"reason": str(exc)})
        return (f" The token list could not be written ({exc.strerror or exc}): revoked "
                "tokens work again after a restart unless you revoke them again.")
    return ""


async def create_token(request: web.Request) -> web.Response:
    """Needs the current password (like a password change): a token outlives this session."""
    form = await request.post()
    name = str(form.get("name", ""))
    lifetime = TOKEN_LIFETIMES.get(str(form.get("lifetime", "")))
    if lifetime is None:
        return render(request, "security.html", code=400, **_context(
            request, token_errors={"lifetime": "choose one of the lifetimes offered"}))
    result = await check_password(request, str(form.get("password", "")))
    if result is False:
        return render(request, "security.html", code=401, **_context(
            request, token_errors={"password": "wrong password"}))
    if result is not True:
        return too_many(request, "security.html", float(result), **_context(request))
    tokens = state(request).tokens
    try:
        token, record = tokens.issue(name, lifetime[1])
    except TokenError as exc:
        return render(request, "security.html", code=400, **_context(
            request, token_errors={"name": str(exc)}))
    try:
        await tokens.flush()
    except OSError as exc:
        tokens.revoke(token)
        return render(request, "security.html", code=500, **_context(request, other=[
            f"The token could not be stored ({exc.strerror or exc}); none was made."]))
    current = session(request)
    if current is not None:
        current.fresh_token = token
    log.info("API token created", extra={"token": record.id, "token_name": record.name,
                                         "client": client_address(request)})
    notify(request, f"API token {record.name!r} created.")
    return see_other("/security#api-tokens")


async def revoke_token(request: web.Request) -> web.Response:
    token_id = request.match_info["id"]
    if state(request).tokens.revoke_id(token_id):
        log.info("API token revoked", extra={"token": token_id})
        notify(request, "API token revoked." + await _tokens_unsaved(request))
    else:
        notify(request, "That token no longer exists.")
    return see_other("/security#api-tokens")


async def end_session(request: web.Request) -> web.Response:
    label = request.match_info["label"]
    mine = session(request)
    if state(request).sessions.drop_by_label(label):
        notify(request, f"Session {label} signed out.")
    if mine is not None and mine.label == label:
        return see_other("/login")
    return see_other("/security")


async def web_submit(request: web.Request) -> web.Response:
    def context(config: Config, errors: dict[str, str], posted: Any,
                other: list[str]) -> dict[str, Any]:
        return _context(request, web_errors=errors, posted=posted, other=other)

    return await save_or_show(request, "security.html", [forms.WEB], location="/security",
                              done="Web page address saved; restart the device to use it.",
                              context=context)


def routes() -> list[web.RouteDef]:
    return [
        web.get("/security", security_page),
        web.post("/security/password", change_password),
        web.post("/security/sessions/{label}/end", end_session),
        web.post("/security/web", web_submit),
        web.post("/security/https", https_submit),
        web.post("/security/ssh", ssh_submit),
        web.post("/security/tokens", create_token),
        web.post("/security/tokens/{id}/revoke", revoke_token),
    ]
