"""JSON API under /api/v1: the same operations as the pages, for scripts and provisioning.

Authentication: POST the admin password to /api/v1/token for a bearer token (rate limited like
sign-in), then send `Authorization: Bearer TOKEN`. The access middleware checks the token on
every other route, before any handler runs. Bodies are JSON objects whose keys are the config
schema's; validation errors come back as 422 with one {field, reason} per problem. Secrets are
accepted as strings and never returned: reads say only {"set": true|false}.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

from tipring.config import (
    Config,
    ConfigError,
    Secret,
    config_from_dict,
    config_to_dict,
    parse_config_bytes,
    render_config,
)

from .access import api_error, config_refused, bearer_token
from .appstate import device, state
from .dialplan import emergency_numbers, line_plan, test_plan
from .maintenance import (
    LOG_LINES_SHOWN,
    MAX_IMPORT_BYTES,
    NO_TRACE,
    UPLOAD_CHUNK,
    config_summary,
    keep_stored_secrets,
    pcap_response,
    sip_trace,
    without_secrets,
)
from tipring.config.passwords import hash_password, password_problems
from tipring.runtime.calllog import time_zone
from tipring.runtime.firmware_update import BundleError, BundleTooLarge, UpdateBusy
from .openapi import openapi_document
from .phone import ACTIONS, handset_status, press
from .signin import check_password
from .tokens import TOKEN_LIFETIME_S, TokenError

MAX_JSON_BYTES = 64 * 1024


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object; ApiError (413, 400) for anything else."""
    if request.content_length is not None and request.content_length > MAX_JSON_BYTES:
        raise _fail(413, "the body is too large")
    try:
        data = json.loads(await request.text())
    except (ValueError, UnicodeDecodeError):
        raise _fail(400, "the body must be a JSON object") from None
    if not isinstance(data, dict):
        raise _fail(400, "the body must be a JSON object")
    return data


class ApiError(web.HTTPException):
    """Raised inside a handler to answer with {"error": ...} and a chosen status."""

    def __init__(self, status: int, message: str) -> None:
        self.status_code = status
        super().__init__(text=json.dumps({"error": message}), content_type="application/json")


def _fail(status: int, message: str) -> ApiError:
    return ApiError(status, message)


async def apply_edit(request: web.Request, edit: Callable[[dict[str, Any]], None],
                     failed: str = "the configuration could not be saved"
                     ) -> Config | web.Response:
    """Apply `edit` (made to the running configuration as plain data) through the schema: the
    new configuration, or the answer refusing it (422 naming the fields; 500 saying `failed`
    and why when it could not be applied or saved)."""
    dev = device(request)
    raw = config_to_dict(dev.config)
    edit(raw)
    try:
        return await dev.apply_config(config_from_dict(raw))
    except ConfigError as exc:
        return config_refused(exc)
    except OSError as exc:
        return api_error(500, f"{failed}: {exc.strerror or exc}")


async def _apply(request: web.Request, edit: Callable[[dict[str, Any]], None]) -> web.Response:
    config = await apply_edit(request, edit)
    return config if isinstance(config, web.Response) else web.json_response(
        config_summary(config))


# -- token -------------------------------------------------------------------------------------

async def issue_token(request: web.Request) -> web.Response:
    """Body {password, name?, expires_in?}: the token is in this reply and nowhere else."""
    body = await json_body(request)
    refused = await _password_ok(request, str(body.get("password", "")))
    if refused is not None:
        return refused
    lifetime = body.get("expires_in", TOKEN_LIFETIME_S)
    tokens = state(request).tokens
    try:
        if isinstance(lifetime, bool):
            raise TokenError("expires_in must be a number of seconds")
        token, record = tokens.issue(str(body.get("name", "")), lifetime)
    except TokenError as exc:
        return web.json_response({"error": "invalid token request", "errors": [
            {"field": "expires_in" if "lifetime" in str(exc) else "name",
             "reason": str(exc)}]}, status=422)
    try:
        await tokens.flush()
    except OSError as exc:
        tokens.revoke(token)
        return api_error(500, f"the token could not be stored: {exc.strerror or exc}")
    return web.json_response({"token": token, "token_type": "Bearer",
                              "expires_in": round(record.expires - record.created),
                              **record.public()})


async def _tokens_saved(request: web.Request) -> web.Response | None:
    """None once the token file holds the change; else the 500 reply."""
    try:
        await state(request).tokens.flush()
    except OSError as exc:
        return api_error(500, f"revoked until the next restart only: the token file could not "
                              f"be written ({exc.strerror or exc})")
    return None


async def revoke_token(request: web.Request) -> web.Response:
    state(request).tokens.revoke(bearer_token(request))
    return await _tokens_saved(request) or web.Response(status=204)


async def list_tokens(request: web.Request) -> web.Response:
    return web.json_response({"tokens": [r.public() for r in state(request).tokens.listing()]})


async def revoke_token_by_id(request: web.Request) -> web.Response:
    token_id = request.match_info["id"]
    if not state(request).tokens.revoke_id(token_id):
        return api_error(404, f"no token with id {token_id!r}")
    return await _tokens_saved(request) or web.Response(status=204)


# -- reads -------------------------------------------------------------------------------------

async def get_status(request: web.Request) -> web.Response:
    status = device(request).status()
    status["handsets"] = handset_status(request)
    return web.json_response(status)


async def get_calls(request: web.Request) -> web.Response:
    call_log = device(request).call_log
    limit_text = request.query.get("limit", "")
    limit = None
    if limit_text:
        if not limit_text.isdigit():
            return api_error(400, "limit must be a whole number")
        limit = int(limit_text)
    zone = time_zone(device(request).config.device.timezone)
    return web.json_response({"calls": [e.to_api(zone) for e in call_log.newest_first(limit)],
                              "capacity": call_log.capacity})


async def get_config(request: web.Request) -> web.Response:
    return web.json_response(config_summary(device(request).config))


async def get_logs(request: web.Request) -> web.Response:
    return web.json_response({"lines": list(device(request).recent_logs.lines)[-LOG_LINES_SHOWN:]})


# -- accounts, lines, network, device ----------------------------------------------------------

def _find(raw: dict[str, Any], account_id: str) -> int:
    for index, account in enumerate(raw["accounts"]):
        if account["id"] == account_id:
            return index
    raise _fail(404, f"no account with id {account_id!r}")


async def list_accounts(request: web.Request) -> web.Response:
    return web.json_response(config_summary(device(request).config)["accounts"])


def _account_body(body: dict[str, Any]) -> dict[str, Any]:
    """Accept what GET returns: `"password": {"set": true}` means "keep the stored one"."""
    if isinstance(body.get("password"), dict):
        body.pop("password")
    return body


async def add_account(request: web.Request) -> web.Response:
    body = _account_body(await json_body(request))
    return await _apply(request, lambda raw: raw["accounts"].append(body))


async def get_account(request: web.Request) -> web.Response:
    accounts = config_summary(device(request).config)["accounts"]
    for account in accounts:  # type: ignore[union-attr]
        if account["id"] == request.match_info["id"]:
            return web.json_response(account)
    return api_error(404, f"no account with id {request.match_info['id']!r}")


async def update_account(request: web.Request) -> web.Response:
    body = _account_body(await json_body(request))

    def edit(raw: dict[str, Any]) -> None:
        raw["accounts"][_find(raw, request.match_info["id"])].update(body)

    return await _apply(request, edit)


async def delete_account(request: web.Request) -> web.Response:
    account_id = request.match_info["id"]

    def edit(raw: dict[str, Any]) -> None:
        del raw["accounts"][_find(raw, account_id)]
        for line in raw["lines"]:
            if line["account"] == account_id:
                line["account"] = ""

    return await _apply(request, edit)


async def update_line(request: web.Request) -> web.Response:
    body = await json_body(request)
    index = int(request.match_info["index"])

    def edit(raw: dict[str, Any]) -> None:
        if not 0 <= index < len(raw["lines"]):
            raise _fail(404, f"no line {index}")
        raw["lines"][index].update(body)

    return await _apply(request, edit)


async def get_features(request: web.Request) -> web.Response:
    return web.json_response(config_summary(device(request).config)["features"])


async def update_features(request: web.Request) -> web.Response:
    body = await json_body(request)
    return await _apply(request, lambda raw: raw["features"].update(body))


async def update_network(request: web.Request) -> web.Response:
    body = await json_body(request)
    return await _apply(request, lambda raw: raw["network"].update(body))


async def update_device(request: web.Request) -> web.Response:
    body = await json_body(request)
    return await _apply(request, lambda raw: raw["device"].update(body))


async def phone_action(request: web.Request) -> web.Response:
    handsets = list(getattr(device(request).board, "handsets", []))
    index, action = int(request.match_info["line"]), request.match_info["action"]
    if not handsets:
        return api_error(404, "the virtual phone exists on the sim board only")
    if not 0 <= index < len(handsets) or action not in ACTIONS:
        return api_error(404, "no such line or action")
    body = await json_body(request) if request.can_read_body else {}
    try:
        message = press(handsets[index], action, str(body.get("digits", ""))[:32])
    except (ValueError, RuntimeError) as exc:
        return api_error(409, str(exc))
    return web.json_response({"ok": True, "message": message})


async def _password_ok(request: web.Request, password: str) -> web.Response | None:
    """None when right; else the 401/429 reply."""
    result = await check_password(request, password)
    if result is True:
        return None
    if result is False:
        return api_error(401, "wrong password")
    response = api_error(429, "too many wrong passwords", retry_after_s=int(result) + 1)
    response.headers["Retry-After"] = str(int(result) + 1)
    return response


async def change_password(request: web.Request) -> web.Response:
    """Body {current, new}; revokes every token (this one too) and signs out every browser."""
    body = await json_body(request)
    new = str(body.get("new", ""))
    problems = password_problems(new)
    if problems:
        return web.json_response({"error": "invalid password", "errors": [
            {"field": "new", "reason": p} for p in problems]}, status=422)
    refused = await _password_ok(request, str(body.get("current", "")))
    if refused is not None:
        return refused
    hashed = await asyncio.get_running_loop().run_in_executor(None, hash_password, new)
    dev = device(request)
    try:
        await dev.apply_config(dataclasses.replace(dev.config, web=dataclasses.replace(
            dev.config.web, admin_password_hash=Secret(hashed))))
    except OSError as exc:
        return api_error(500, f"the password could not be saved: {exc.strerror or exc}")
    st = state(request)
    st.tokens.revoke_all()
    st.sessions.drop_signed_in_except(None)
    return await _tokens_saved(request) or web.Response(status=204)


async def export_config(request: web.Request) -> web.Response:
    config = device(request).config
    choice = request.query.get("secrets", "false")
    if choice not in ("true", "false"):
        return api_error(400, "secrets must be true or false")
    if choice != "true":
        config = without_secrets(config)
    return web.Response(text=render_config(config), content_type="application/toml",
                        charset="utf-8")


async def import_config(request: web.Request) -> web.Response:
    """Body: the TOML file. Validated completely before anything is written."""
    data = await request.content.read(MAX_IMPORT_BYTES + 1)
    if len(data) > MAX_IMPORT_BYTES:
        return api_error(413, f"larger than {MAX_IMPORT_BYTES} bytes")
    dev = device(request)
    try:
        config = await dev.apply_config(keep_stored_secrets(parse_config_bytes(data), dev.config))
    except ConfigError as exc:
        return config_refused(exc)
    except OSError as exc:
        return api_error(500, f"the configuration could not be saved: {exc.strerror or exc}")
    return web.json_response(config_summary(config))


async def dialplan_test(request: web.Request) -> web.Response:
    body = await json_body(request)
    dev = device(request)
    try:
        plan, codes = line_plan(dev.config, body.get("line", 0))
    except LookupError as exc:
        return api_error(404, str(exc))
    if "plan" in body:
        plan = str(body["plan"])
    return web.json_response(test_plan(plan, str(body.get("digits", "")),
                                       emergency_numbers(dev), codes))


async def reboot(request: web.Request) -> web.Response:
    backend = state(request).system
    if backend is None:
        return api_error(501, "reboot is not available on this board yet")
    return web.json_response({"message": await backend.reboot()})


async def factory_reset(request: web.Request) -> web.Response:
    """Body {password}: erases everything, the admin password too; every token is revoked."""
    st = state(request)
    if st.system is None:
        return api_error(501, "factory reset is not available on this board yet")
    refused = await _password_ok(request, str((await json_body(request)).get("password", "")))
    if refused is not None:
        return refused
    message = await st.system.factory_reset()
    st.tokens.revoke_all()
    st.sessions.drop_signed_in_except(None)
    return await _tokens_saved(request) or web.json_response({"message": message})


async def firmware_upload(request: web.Request) -> web.Response:
    """Body: the bundle itself (application/octet-stream), streamed; 202 once it is checked
    and handed to the installer; GET /firmware follows the installation."""
    update = device(request).firmware
    try:
        bundle = await update.receive(request.content.iter_chunked(UPLOAD_CHUNK),
                                      request.content_length)
    except BundleError as exc:
        return api_error(413 if isinstance(exc, BundleTooLarge) else 400,
                         f"not installed: {exc}; nothing was written")
    except UpdateBusy as exc:
        return api_error(409, str(exc))
    except OSError as exc:
        return api_error(500, f"the bundle could not be stored: {exc.strerror or exc}")
    update.start_install(bundle)
    return web.json_response(update.status(), status=202)


async def firmware_status(request: web.Request) -> web.Response:
    return web.json_response(device(request).firmware.status())


async def get_sip_trace(request: web.Request) -> web.Response:
    trace = sip_trace(request)
    return api_error(409, NO_TRACE) if trace is None else pcap_response(trace)


async def clear_sip_trace(request: web.Request) -> web.Response:
    trace = sip_trace(request)
    if trace is None:
        return api_error(409, NO_TRACE)
    trace.clear()
    return web.Response(status=204)


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


def routes() -> list[web.RouteDef]:
    v1 = "/api/v1"
    return [
        web.post(f"{v1}/token", issue_token), web.delete(f"{v1}/token", revoke_token),
        web.get(f"{v1}/tokens", list_tokens),
        web.delete(f"{v1}/tokens/{{id}}", revoke_token_by_id),
        web.get(f"{v1}/status", get_status), web.get(f"{v1}/config", get_config),
        web.get(f"{v1}/logs", get_logs), web.get(f"{v1}/calls", get_calls),
        web.get(f"{v1}/accounts", list_accounts), web.post(f"{v1}/accounts", add_account),
        web.get(f"{v1}/accounts/{{id}}", get_account),
        web.put(f"{v1}/accounts/{{id}}", update_account),
        web.delete(f"{v1}/accounts/{{id}}", delete_account),
        web.put(rf"{v1}/lines/{{index:\d+}}", update_line),
        web.get(f"{v1}/features", get_features), web.put(f"{v1}/features", update_features),
        web.put(f"{v1}/network", update_network), web.put(f"{v1}/device", update_device),
        web.post(rf"{v1}/phone/{{line:\d+}}/{{action}}", phone_action),
        web.post(f"{v1}/password", change_password),
        web.get(f"{v1}/config/export", export_config),
        web.post(f"{v1}/config/import", import_config),
        web.post(f"{v1}/dialplan/test", dialplan_test),
        web.post(f"{v1}/reboot", reboot), web.post(f"{v1}/factory-reset", factory_reset),
        web.post(f"{v1}/firmware", firmware_upload), web.get(f"{v1}/firmware", firmware_status),
        web.get(f"{v1}/sip-trace", get_sip_trace), web.delete(f"{v1}/sip-trace", clear_sip_trace),
        web.get(f"{v1}/openapi.json", openapi),
    ]
