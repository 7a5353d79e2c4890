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
import datetime
import json
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from tipring.runtime.calllog import local_time, time_zone

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
        view[f"{key}.features"] = line.get("features") or "none"
        view.update(call_view(key, line.get("call"), line.get("other_calls") or []))
    for phone in status.get("handsets", []):
        key = f"phone{phone['line']}"
        view[f"{key}.switch"] = "lifted (off hook)" if phone["off_hook"] else "on hook"
        view[f"{key}.ringer"] = "RINGING" if phone["ringing"] else "silent"
        view[f"{key}.bursts"] = str(phone["ring_bursts"])
        view[f"{key}.heard"] = phone["heard"]
    return view


CALL_STATES = {"calling": "calling", "early": "ringing at the far end", "ringing": "ringing",
               "waiting": "waiting (call waiting)", "answering": "answering",
               "connected": "connected"}
RTP_KEYS = ("received", "sent", "loss", "jitter", "buffer", "rtt")


def party(number: str, name: str) -> str:
    """The remote party as a person reads it: name and number, or that none was given."""
    number = number or "number withheld"
    return f"{name} ({number})" if name else number


def call_view(key: str, call: dict[str, Any] | None,
              others: Sequence[dict[str, Any]] = ()) -> dict[str, str]:
    """The current call of one line; dashes when there is no call or no RTP yet (never 0s
    that were not measured)."""
    none = "-"
    if call is None:
        return {f"{key}.call": "no call", f"{key}.party": none, f"{key}.codec": none,
                f"{key}.duration": none, **{f"{key}.rtp.{k}": none for k in RTP_KEYS}}
    arrow = "to" if call["direction"] == "outgoing" else "from"
    state = "on hold" if call.get("held") and call["state"] == "connected" else \
        CALL_STATES.get(call["state"], call["state"])
    also = "; ".join(
        f"also {'on hold' if o['state'] == 'connected' else CALL_STATES.get(o['state'], o['state'])}"
        f": {party(o['number'], o.get('name') or '')}" for o in others)
    view = {
        f"{key}.call": f"{call['direction']}, {state}"
                       + (" (emergency)" if call.get("emergency") else "")
                       + (f"; {also}" if also else ""),
        f"{key}.party": f"{arrow} {party(call['number'], call.get('name') or '')}",
        f"{key}.codec": call.get("codec") or none,
        f"{key}.duration": (_duration(call["duration_s"]) if call["state"] == "connected"
                            else f"{_duration(call['elapsed_s'])} (not answered yet)"),
    }
    rtp = call.get("rtp")
    if rtp is None:
        view.update({f"{key}.rtp.{k}": none for k in RTP_KEYS})
        return view
    rtt = rtp.get("round_trip_ms")
    view.update({
        f"{key}.rtp.received": f"{rtp['received_packets']} packets",
        f"{key}.rtp.sent": f"{rtp['sent_packets']} packets",
        f"{key}.rtp.loss": f"{rtp['lost_packets']} lost ({rtp['loss_percent']:.1f} %)",
        f"{key}.rtp.jitter": f"{rtp['jitter_ms']:.1f} ms",
        f"{key}.rtp.buffer": (f"{rtp['buffer_delay_ms']:.0f} ms (target "
                              f"{rtp['buffer_target_ms']:.0f} ms)"),
        f"{key}.rtp.rtt": f"{rtt:.0f} ms" if rtt is not None else "not measured yet",
    })
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


OUTCOME_WORDS = {"answered": "answered", "missed": "missed", "busy": "busy",
                 "cancelled": "cancelled", "failed": "failed"}


def log_rows(entries: list[dict[str, Any]], zone: datetime.tzinfo) -> list[dict[str, str]]:
    """The call log as the page shows it, newest first, times in `zone`."""
    rows = []
    for e in entries:
        outcome = OUTCOME_WORDS.get(e["outcome"], e["outcome"])
        detail = " ".join(str(x) for x in (e.get("status") or "", e.get("reason") or "") if x)
        if e["outcome"] != "answered" and detail:
            outcome = f"{outcome} ({detail})"
        elif detail and e.get("reason"):
            outcome = f"{outcome}, {e['reason']}"
        rows.append({
            "time": _local_clock(e["time"], zone),
            "line": str(e["line"] + 1) if e.get("line") is not None else "-",
            "direction": e["direction"],
            "party": party(e.get("number", ""), e.get("name", "")),
            "duration": _duration(e.get("duration_s", 0)) if e["outcome"] == "answered" else "-",
            "outcome": outcome,
            "codec": e.get("codec") or "-",
        })
    return rows


def _local_clock(wall: float, zone: datetime.tzinfo) -> str:
    when = local_time(wall, zone)
    return when.strftime("%Y-%m-%d %H:%M %Z") if when is not None else "unknown time"


async def calls_page(request: web.Request) -> web.Response:
    dev = device(request)
    entries = [e.to_json() for e in dev.call_log.newest_first()]
    return render(request, "calls.html", rows=log_rows(entries, time_zone(
        dev.config.device.timezone)), capacity=dev.call_log.capacity,
        timezone=dev.config.device.timezone)


def routes() -> list[web.RouteDef]:
    return [web.get("/", status_page), web.get("/events", events),
            web.get("/calls", calls_page)]
