"""Jinja2 page rendering: autoescaped templates, the navigation and one-time notices.

Every page gets the session's CSRF token (for its forms), the navigation (only once signed in)
and the notices queued by the previous POST (post/redirect/get).
"""

from __future__ import annotations

import datetime
from typing import Any

import jinja2
from aiohttp import web

import tipring

from .appstate import device, session

TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("tipring.web", "templates"),
    autoescape=jinja2.select_autoescape(default=True),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _duration(seconds: float) -> str:
    return str(datetime.timedelta(seconds=int(seconds)))


def _clock(wall: float) -> str:
    try:
        when = datetime.datetime.fromtimestamp(wall, datetime.UTC)
    except (OverflowError, OSError, ValueError):
        return "unknown time"
    return when.strftime("%Y-%m-%d %H:%M UTC")


TEMPLATES.filters["duration"] = _duration
TEMPLATES.filters["clock"] = _clock


def is_sim(request: web.Request) -> bool:
    board = device(request).board
    return board is not None and hasattr(board, "handsets")


def navigation(request: web.Request) -> list[tuple[str, str]]:
    items = [("/", "Status"), ("/calls", "Call log"), ("/accounts", "Accounts"), ("/line", "Line"),
             ("/dialplan", "Dial plan"), ("/network", "Network"), ("/security", "Security"), ("/maintenance", "Maintenance")]
    if is_sim(request):
        items.append(("/phone", "Virtual phone"))
    return items


def render(request: web.Request, template: str, *, code: int = 200,
           **context: Any) -> web.Response:
    current = session(request)
    signed_in = bool(current and current.signed_in)
    notices: list[str] = []
    if current is not None:
        notices, current.notices = current.notices, []
    html = TEMPLATES.get_template(template).render(
        csrf=current.csrf if current else "",
        nav=navigation(request) if signed_in else [],
        here=request.path,
        notices=notices,
        version=tipring.__version__,
        **context,
    )
    return web.Response(text=html, status=code, content_type="text/html", charset="utf-8")


def render_error(request: web.Request, status: int, reason: str) -> web.Response:
    return render(request, "error.html", code=status, reason=reason)


def notify(request: web.Request, message: str) -> None:
    """Queue a notice for the next page this browser sees."""
    current = session(request)
    if current is not None:
        current.notices.append(message)


def see_other(location: str) -> web.Response:
    """303 after a POST (post/redirect/get), so a reload never re-submits the form."""
    return web.Response(status=303, headers={"Location": location})
