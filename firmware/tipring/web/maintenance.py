"""Maintenance page: configuration export and import, firmware update, SIP trace download and
the log viewer.

Export leaves secrets out unless asked (the file then lets its holder register as you and sign
in here). Import is parsed and validated completely before anything is written; a file without
secrets keeps the stored ones, and the admin password hash is never taken from a file unless it
carries one, so an import cannot leave the device without a password.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import AsyncIterator
from typing import Protocol

from aiohttp import BodyPartReader, web

from tipring.config import (
    Config,
    ConfigError,
    Secret,
    config_to_dict,
    parse_config_bytes,
    render_config,
)

from tipring.runtime.firmware_update import BundleError, BundleTooLarge, UpdateBusy

from .appstate import client_address, device, session, state, upload
from .render import notify, render, see_other
from .signin import check_password

log = logging.getLogger("tipring.web")

MAX_IMPORT_BYTES = 256 * 1024  # the store refuses larger files too
LOG_LINES_SHOWN = 200
UPLOAD_CHUNK = 256 * 1024


def without_secrets(config: Config) -> Config:
    accounts = tuple(dataclasses.replace(a, password=Secret()) for a in config.accounts)
    web_cfg = dataclasses.replace(config.web, admin_password_hash=Secret())
    return dataclasses.replace(config, accounts=accounts, web=web_cfg)


def keep_stored_secrets(imported: Config, current: Config) -> Config:
    """Secrets missing from an imported file keep their stored values (matched by account id)."""
    stored = {a.id: a.password for a in current.accounts}
    accounts = tuple(
        a if a.password.is_set else dataclasses.replace(a, password=stored.get(a.id, Secret()))
        for a in imported.accounts)
    hashed = imported.web.admin_password_hash
    if not hashed.is_set:
        hashed = current.web.admin_password_hash
    return dataclasses.replace(imported, accounts=accounts,
                               web=dataclasses.replace(imported.web, admin_password_hash=hashed))


class SipTraceLike(Protocol):
    """What the SIP runtime's trace offers (`tipring.runtime.siptrace.SipTrace`)."""

    enabled: bool

    def pcap(self) -> bytes: ...

    def clear(self) -> None: ...


PCAP_TYPE = "application/vnd.tcpdump.pcap"
NO_TRACE = "SIP is not running (no enabled account), so there is no SIP trace."


def sip_trace(request: web.Request) -> SipTraceLike | None:
    """The running SIP stack's trace, or None when telephony is not started."""
    telephony = device(request).telephony
    return getattr(getattr(telephony, "sip", None), "trace", None) if telephony else None


def pcap_response(trace: SipTraceLike) -> web.Response:
    """The trace as a pcap file (Wireshark opens it), named with the time it was taken."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    log.info("SIP trace downloaded")
    return web.Response(body=trace.pcap(), content_type=PCAP_TYPE, headers={
        "Content-Disposition": f'attachment; filename="tipring-sip-{stamp}.pcap"'})


async def download_sip_trace(request: web.Request) -> web.Response:
    trace = sip_trace(request)
    if trace is None:
        return _page(request, [NO_TRACE], 409)
    return pcap_response(trace)


async def clear_sip_trace(request: web.Request) -> web.Response:
    trace = sip_trace(request)
    if trace is None:
        return _page(request, [NO_TRACE], 409)
    trace.clear()
    log.info("SIP trace cleared")
    notify(request, "SIP trace cleared.")
    return see_other("/maintenance#sip-trace")


def _page(request: web.Request, errors: list[str], code: int = 200) -> web.Response:
    trace = sip_trace(request)
    return render(request, "maintenance.html", code=code, errors=errors,
                  trace=None if trace is None else {"enabled": bool(trace.enabled)},
                  system=state(request).system is not None,
                  firmware=device(request).firmware.status(),
                  max_bundle_mib=device(request).firmware.max_bytes // 2**20,
                  logs=list(device(request).recent_logs.lines)[-LOG_LINES_SHOWN:])


async def _part_chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    while chunk := await part.read_chunk(UPLOAD_CHUNK):
        yield chunk


async def firmware_upload(request: web.Request) -> web.Response:
    """A bundle from the form, streamed (the access check has read the CSRF part), checked,
    then handed to RAUC in the background; the page shows the progress."""
    update = device(request).firmware
    reader = upload(request)
    part = await reader.next() if reader is not None else None
    if not isinstance(part, BodyPartReader) or part.name != "bundle" or not part.filename:
        return _page(request, ["Choose a firmware bundle (.raucb) to upload."], 400)
    try:
        bundle = await update.receive(_part_chunks(part), request.content_length)
    except BundleError as exc:
        return _page(request, [f"The firmware was not installed: {exc}. Nothing was written."],
                     413 if isinstance(exc, BundleTooLarge) else 400)
    except UpdateBusy as exc:
        return _page(request, [f"Not now: {exc}."], 409)
    except OSError as exc:
        return _page(request, [(f"The bundle could not be stored ({exc.strerror or exc}); "
                                "nothing was installed.")], 500)
    update.start_install(bundle)
    log.warning("firmware update started from the web page",
                extra={"client": client_address(request)})
    notify(request, "Firmware bundle received and checked; installing it now.")
    return see_other("/maintenance#firmware")


async def firmware_status(request: web.Request) -> web.Response:
    return web.json_response(device(request).firmware.status())


async def maintenance_page(request: web.Request) -> web.Response:
    return _page(request, [])


async def reboot(request: web.Request) -> web.Response:
    backend = state(request).system
    if backend is None:
        return _page(request, ["Reboot is not available on this board yet."], 501)
    notify(request, await backend.reboot())
    return see_other("/maintenance")


async def factory_reset(request: web.Request) -> web.Response:
    """Needs the password and a ticked box: it erases the accounts and the password."""
    st, backend = state(request), state(request).system
    if backend is None:
        return _page(request, ["Factory reset is not available on this board yet."], 501)
    form = await request.post()
    if "confirm" not in form:
        return _page(request, ["Tick the box to confirm the factory reset."], 400)
    result = await check_password(request, str(form.get("password", "")))
    if result is not True:
        return _page(request, ["Wrong password: nothing was erased." if result is False else
                               f"Too many wrong passwords; try again in {int(result) + 1} s."],
                     401 if result is False else 429)
    try:
        message = await backend.factory_reset()
    except (ConfigError, OSError) as exc:
        return _page(request, [f"The factory reset failed: {exc}"], 500)
    st.sessions.drop_signed_in_except(None)
    st.tokens.revoke_all()
    try:
        await st.tokens.flush()
    except OSError as exc:
        log.error("API token file not written", extra={"reason": str(exc)})
    current = session(request)
    if current is not None:
        st.sessions.drop(current)
    log.warning("factory reset from the web page", extra={"result": message})
    return see_other("/setup")  # everyone is signed out: first boot is next


async def export_config(request: web.Request) -> web.Response:
    form = await request.post()
    config = device(request).config
    secrets = "secrets" in form
    if not secrets:
        config = without_secrets(config)
    log.info("configuration exported", extra={"with_secrets": secrets})
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    return web.Response(text=render_config(config), content_type="application/toml",
                        charset="utf-8", headers={
                            "Content-Disposition": f'attachment; filename="tipring-{stamp}.toml"'})


async def import_config(request: web.Request) -> web.Response:
    dev = device(request)
    form = await request.post()
    upload = form.get("file")
    data = getattr(upload, "file", None)
    errors: list[str] = []
    if data is None:
        errors = ["Choose a configuration file to import."]
    else:
        content = data.read(MAX_IMPORT_BYTES + 1)
        if len(content) > MAX_IMPORT_BYTES:
            errors = [f"The file is larger than {MAX_IMPORT_BYTES} bytes."]
        else:
            try:
                imported = keep_stored_secrets(parse_config_bytes(content), dev.config)
                await dev.apply_config(imported)
            except ConfigError as exc:
                errors = [str(e) for e in exc.errors]
            except OSError as exc:
                errors = [f"The configuration could not be saved ({exc.strerror or exc})."]
    if errors:
        log.warning("configuration import refused", extra={"problems": len(errors)})
        return _page(request, errors, 400)
    notify(request, "Configuration imported and saved.")
    return see_other("/maintenance")


async def download_logs(request: web.Request) -> web.Response:
    text = "\n".join(device(request).recent_logs.lines) + "\n"
    return web.Response(text=text, content_type="text/plain", charset="utf-8", headers={
        "Content-Disposition": 'attachment; filename="tipring-log.txt"'})


def config_summary(config: Config) -> dict[str, object]:
    """The config as JSON for the API: secrets only say whether they are set."""
    def plain(value: object) -> object:
        if isinstance(value, Secret):
            return {"set": value.is_set}
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value

    return plain(config_to_dict(config))  # type: ignore[return-value]


def routes() -> list[web.RouteDef]:
    return [
        web.get("/maintenance", maintenance_page),
        web.post("/maintenance/export", export_config),
        web.post("/maintenance/import", import_config),
        web.get("/maintenance/log.txt", download_logs),
        web.post("/maintenance/reboot", reboot),
        web.post("/maintenance/factory-reset", factory_reset),
        web.post("/maintenance/firmware", firmware_upload),
        web.get("/maintenance/firmware.json", firmware_status),
        web.get("/maintenance/sip-trace.pcap", download_sip_trace),
        web.post("/maintenance/sip-trace/clear", clear_sip_trace),
    ]
