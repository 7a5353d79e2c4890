"""The Status page and its live updates (server-sent events).

The page is complete without JavaScript (it refreshes itself through a <noscript> meta
refresh); with JavaScript, /events pushes a flat {key: text} view whenever the device reports a
change (hook, ringer, config) and every few seconds for the clock-driven figures, and the
script writes each text into the element with that `data-key`. The same view function renders
the page, so the two can never show different wording.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from aiohttp import web

from .appstate import device, session, state
from .render import TEMPLATES, render

REFRESH_S = 5.0


def _duration(seconds: float) -> str:
    return TEMPLATES.filters["duration"](seconds)


def status_view(status: dict[str, Any]) -> dict[str, str]:
    """What the status page shows, as display text keyed like the page's `data-key`s."""
    system = status["system"]
    view = {"uptime": _duration(status["uptime_s"])}
    if "load_1m" in system:
        view["load"] = f"{system['load_1m']:.2f}"
    if system.get("memory_available_kib") and system.get("memory_total_kib"):
        view["memory"] = (f"{system['memory_available_kib'] // 1024} MiB free of "
                          f"{system['memory_total_kib'] // 1024} MiB")
    if "temperature_c" in system:
        view["temperature"] = f"{system['temperature_c']:.1f} °C"
    for line in status["lines"]:
        key = f"line{line['index']}"
        view[f"{key}.hook"] = line["hook"] + (" (ringing)" if line["ringing"] else "")
        view[f"{key}.state"] = (line.get("state") or "-").replace("-", " ")
        view[f"{key}.linefeed"] = line["linefeed"]
        view[f"{key}.account"] = line["account"] or "none"
        view[f"{key}.registration"] = line["registration"]
    for phone in status.get("handsets", []):
        key = f"phone{phone['line']}"
        view[f"{key}.switch"] = "lifted (off hook)" if phone["off_hook"] else "on hook"
        view[f"{key}.ringer"] = "RINGING" if phone["ringing"] else "silent"
        view[f"{key}.bursts"] = str(phone["ring_bursts"])
        view[f"{key}.heard"] = phone["heard"]
    return view


def full_status(request: web.Request) -> dict[str, Any]:
    from .phone import handset_status  # the virtual phone's state, on the sim board only

    status = device(request).status()
    status["handsets"] = handset_status(request)
    return status


async def status_page(request: web.Request) -> web.Response:
    status = full_status(request)
    return render(request, "status.html", status=status, view=status_view(status))


async def events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: one `data:` line of JSON per update, until sign-out or shutdown."""
    st, dev, current = state(request), device(request), session(request)
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-store"})
    await response.prepare(request)
    closing = asyncio.ensure_future(st.closing.wait())
    try:
        while not st.closing.is_set() and current is not None and st.sessions.alive(current):
            seen = dev.changes
            payload = json.dumps(status_view(full_status(request)), ensure_ascii=False)
            await response.write(f"retry: 3000\ndata: {payload}\n\n".encode())
            change = asyncio.ensure_future(dev.wait_changed(seen, REFRESH_S))
            await asyncio.wait({change, closing}, return_when=asyncio.FIRST_COMPLETED)
            change.cancel()
    except ConnectionResetError:  # the browser went away
        pass
    finally:
        closing.cancel()
        with contextlib.suppress(Exception):
            await response.write_eof()
    return response


def routes() -> list[web.RouteDef]:
    return [web.get("/", status_page), web.get("/events", events)]
