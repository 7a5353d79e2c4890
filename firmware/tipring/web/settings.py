"""Accounts, Line and Network pages: edit the configuration with per-field errors.

Each POST merges the form into the running config, validates the whole of it with
`tipring.config`, and only then saves it (in an executor, via `Device.apply_config`). A refused
form changes nothing: the page comes back with the user's input and each reason next to its
field; the device keeps running with its last good configuration.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web

from tipring.config import Config, ConfigError
from tipring.runtime.network import (
    NETWORK_DIR,
    TIMESYNCD_DIR,
    TIMESYNCD_FILE,
    SimNetworkBackend,
)

from . import forms
from .appstate import device
from .render import notify, render, see_other

Edit = Callable[[dict[str, Any]], None]


async def save_or_show(request: web.Request, template: str, sections: Sequence[forms.Section],
                       *, done: str, location: str, edit: Edit | None = None,
                       context: Callable[[Config, dict[str, str], Any, list[str]], dict[str, Any]]
                       ) -> web.Response:
    """Merge, validate, save; or re-render `template` with the errors (status 400)."""
    dev = device(request)
    form = await request.post()
    try:
        config = forms.merge(dev.config, sections, form, edit=edit)
        await dev.apply_config(config)
    except ConfigError as exc:
        errors, other = forms.place_errors(exc, sections)
        return render(request, template, code=400, **context(dev.config, errors, form, other))
    except OSError as exc:
        other = [(f"The configuration could not be saved ({exc.strerror or exc}); "
                 "nothing was changed.")]
        return render(request, template, code=500, **context(dev.config, {}, form, other))
    notify(request, done)
    return see_other(location)


# -- accounts ----------------------------------------------------------------------------------

def _account_index(config: Config, account_id: str) -> int:
    for index, account in enumerate(config.accounts):
        if account.id == account_id:
            return index
    raise web.HTTPNotFound(text=f"No account named {account_id!r}.")


def _account_context(section: forms.Section, current: object | None, *, new: bool,
                     action: str) -> Callable[..., dict[str, Any]]:
    def context(config: Config, errors: dict[str, str], posted: Any,
                other: list[str]) -> dict[str, Any]:
        return {"fields": forms.widgets(section, current, errors, posted), "new": new,
                "action": action, "other_errors": other}
    return context


def _accounts_context(config: Config, errors: dict[str, str], posted: Any,
                      other: list[str]) -> dict[str, Any]:
    used = {a.id: [i + 1 for i, line in enumerate(config.lines) if line.account == a.id]
            for a in config.accounts}
    return {"accounts": config.accounts, "used": used, "tls_errors": other,
            "tls_fields": forms.widgets(forms.SIP_TLS, config.sip, errors, posted)}


async def accounts_page(request: web.Request) -> web.Response:
    return render(request, "accounts.html",
                  **_accounts_context(device(request).config, {}, None, []))


async def sip_tls_submit(request: web.Request) -> web.Response:
    """The device-wide TLS settings; accounts re-register with them (after a call in progress)."""
    return await save_or_show(request, "accounts.html", [forms.SIP_TLS],
                              done="TLS settings saved.", location="/accounts",
                              context=_accounts_context)


async def account_new_page(request: web.Request) -> web.Response:
    section = forms.account_section(len(device(request).config.accounts))
    ctx = _account_context(section, None, new=True, action="/accounts/new")
    return render(request, "account.html", **ctx(device(request).config, {}, None, []))


async def account_new_submit(request: web.Request) -> web.Response:
    config = device(request).config
    index = len(config.accounts)
    section = forms.account_section(index)
    form = await request.post()
    new_id = str(form.get(f"{section.path}.id", "")).strip()
    idle = [i for i, line in enumerate(config.lines) if not line.account]

    def edit(raw: dict[str, Any]) -> None:
        raw["accounts"].append({"id": ""})
        if not config.accounts:  # the first account: give it to the lines that have none
            for i in idle:
                raw["lines"][i]["account"] = new_id

    done = f"Account {new_id} added."
    if not config.accounts and idle:
        done += f" Line {', '.join(str(i + 1) for i in idle)} uses it."
    return await save_or_show(request, "account.html", [section], done=done, location="/accounts",
                              edit=edit, context=_account_context(section, None, new=True,
                                                                  action="/accounts/new"))


async def account_page(request: web.Request) -> web.Response:
    config = device(request).config
    index = _account_index(config, request.match_info["id"])
    section = forms.account_section(index)
    ctx = _account_context(section, config.accounts[index], new=False, action=request.path)
    return render(request, "account.html", **ctx(config, {}, None, []))


async def account_submit(request: web.Request) -> web.Response:
    config = device(request).config
    old_id = request.match_info["id"]
    index = _account_index(config, old_id)
    section = forms.account_section(index)
    form = await request.post()
    new_id = str(form.get(f"{section.path}.id", "")).strip()

    def edit(raw: dict[str, Any]) -> None:  # a rename keeps the lines that used it
        for line in raw["lines"]:
            if line["account"] == old_id and new_id:
                line["account"] = new_id

    return await save_or_show(request, "account.html", [section], done=f"Account {new_id} saved.",
                              location="/accounts", edit=edit,
                              context=_account_context(section, config.accounts[index],
                                                       new=False, action=request.path))


async def account_delete(request: web.Request) -> web.Response:
    dev = device(request)
    config = dev.config
    old_id = request.match_info["id"]
    index = _account_index(config, old_id)

    def edit(raw: dict[str, Any]) -> None:
        del raw["accounts"][index]
        for line in raw["lines"]:
            if line["account"] == old_id:
                line["account"] = ""

    try:
        await dev.apply_config(forms.merge(config, [], {}, edit=edit))
    except (ConfigError, OSError) as exc:
        notify(request, f"Account {old_id} could not be removed: {exc}")
    else:
        notify(request, f"Account {old_id} removed; lines that used it are out of service.")
    return see_other("/accounts")


# -- line and region ---------------------------------------------------------------------------

def _line_sections(config: Config) -> list[forms.Section]:
    """Region, then per line its settings and its calling features, then the star codes."""
    ids = [a.id for a in config.accounts]
    per_line = [section for i in range(len(config.lines))
                for section in (forms.line_section(i, ids), forms.line_features_section(i, ids))]
    return [forms.DEVICE, *per_line, forms.FEATURES]


def _line_context(config: Config, errors: dict[str, str], posted: Any,
                  other: list[str]) -> dict[str, Any]:
    sections = _line_sections(config)
    per_line = sections[1:-1]
    return {
        "device_fields": forms.widgets(sections[0], config.device, errors, posted),
        "lines": [{"fields": forms.widgets(per_line[2 * i], line, errors, posted),
                   "features": forms.widgets(per_line[2 * i + 1], line, errors, posted)}
                  for i, line in enumerate(config.lines)],
        "feature_fields": forms.widgets(sections[-1], config.features, errors, posted),
        "other_errors": other,
    }


async def line_page(request: web.Request) -> web.Response:
    return render(request, "line.html", **_line_context(device(request).config, {}, None, []))


async def line_submit(request: web.Request) -> web.Response:
    sections = _line_sections(device(request).config)
    return await save_or_show(request, "line.html", sections, done="Line settings saved.",
                              location="/line", context=_line_context)


# -- network -----------------------------------------------------------------------------------

def _network_context(config: Config, errors: dict[str, str], posted: Any,
                     other: list[str]) -> dict[str, Any]:
    return {"fields": forms.widgets(forms.NETWORK, config.network, errors, posted),
            "other_errors": other}


async def network_page(request: web.Request) -> web.Response:
    return render(request, "network.html", sim=_is_sim(request), written=_written(request),
                  **_network_context(device(request).config, {}, None, []))


def _written(request: web.Request) -> list[tuple[str, str]]:
    """On the sim board, the files the image would have written for the last apply."""
    backend = device(request).network
    running = backend.running if isinstance(backend, SimNetworkBackend) else None
    if running is None:
        return []
    files = [(f"{NETWORK_DIR}/{name}", text) for name, text in running.networkd.items()]
    if running.timesyncd:
        files.append((f"{TIMESYNCD_DIR}/{TIMESYNCD_FILE}", running.timesyncd))
    return files


async def network_submit(request: web.Request) -> web.Response:
    sim = _is_sim(request)

    def context(*args: Any) -> dict[str, Any]:
        return {**_network_context(*args), "sim": sim, "written": _written(request)}

    if sim:
        done = ("Network settings saved. This is the sim board: they are checked, stored and "
                "recorded as the image would write them, not applied to this computer.")
    elif device(request).network is None:
        done = ("Network settings saved. Not applied: this system is not the TipRing image "
                "and manages its own network.")
    else:
        done = "Network settings applied and saved."
    return await save_or_show(request, "network.html", [forms.NETWORK], done=done,
                              location="/network", context=context)


def _is_sim(request: web.Request) -> bool:
    board = device(request).board
    return board is not None and board.driver == "sim"


def routes() -> list[web.RouteDef]:
    return [
        web.get("/accounts", accounts_page),
        web.get("/accounts/new", account_new_page), web.post("/accounts/new", account_new_submit),
        web.post("/accounts/tls", sip_tls_submit),
        web.get("/accounts/{id}/edit", account_page),
        web.post("/accounts/{id}/edit", account_submit),
        web.post("/accounts/{id}/delete", account_delete),
        web.get("/line", line_page), web.post("/line", line_submit),
        web.get("/network", network_page), web.post("/network", network_submit),
    ]
