"""Who may reach what: first-boot gating, sign-in, CSRF and origin checks, in one middleware.

Order matters and is the same for every route, so a new page cannot forget a check:
1. static assets are public (the setup page needs its stylesheet);
2. until an admin password exists, every page redirects to /setup and the API answers 401;
3. pages need a signed-in session, except /login (and /setup during first boot);
4. every state-changing page request carries the session's CSRF token and, when the browser
   sends one, a same-origin Origin header. The API uses bearer tokens, which a browser never
   attaches on its own, so it needs no CSRF token.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from urllib.parse import quote, urlsplit

from aiohttp import BodyPartReader, web

from tipring.config import ConfigError


from .appstate import SESSION, UPLOAD, client_address, state
from .openapi import query_parameters
from .render import render_error
from .sessions import COOKIE

log = logging.getLogger("tipring.web")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PUBLIC_WHILE_SIGNED_OUT = frozenset({"/login"})
# Uploads larger than the server's request cap (firmware bundles): the form sends the CSRF token
# as its first part, which is read here; the handler streams the rest (request[UPLOAD]).
STREAMED_UPLOADS = frozenset({"/maintenance/firmware"})
API = "/api/v1"
QUERY_PARAMETERS = query_parameters()


def is_set_up(request: web.Request) -> bool:
    return state(request).device.config.web.admin_password_hash.is_set


def bearer_token(request: web.Request) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def api_error(status: int, message: str, **extra: object) -> web.Response:
    headers = {"WWW-Authenticate": 'Bearer realm="tipring"'} if status == 401 else None
    return web.json_response({"error": message, **extra}, status=status, headers=headers)


def config_refused(error: ConfigError) -> web.Response:
    """422 naming each refused field and why (the API's answer to any configuration change)."""
    return web.json_response({"error": "invalid configuration", "errors": [
        {"field": e.path, "reason": e.reason} for e in error.errors]}, status=422)


@web.middleware
async def access(request: web.Request, handler: Handler) -> web.StreamResponse:
    path = request.path
    if path.startswith("/static/"):
        return await handler(request)
    st = state(request)
    now = time.monotonic()
    if path.startswith("/api/"):
        if not is_set_up(request):
            return api_error(401, "first-boot setup is not done: open the web page and set the "
                                  "admin password")
        public = path == "/api/v1/token" and request.method == "POST"  # takes the password
        if not public and st.tokens.check(bearer_token(request)) is None:
            return api_error(401, "a valid bearer token is required (POST /api/v1/token)")
        if st.tokens.dirty:  # a last-use time worth writing
            try:
                await st.tokens.flush()
            except OSError as exc:
                log.warning("API token last use not saved", extra={"reason": str(exc)})
        return await _api_answer(request, handler)

    session = st.sessions.get(request.cookies.get(COOKIE), now)
    request[SESSION] = session
    if not is_set_up(request):
        if path != "/setup":
            return _redirect(request, "/setup")
    elif path == "/setup":
        return _redirect(request, "/")
    elif path not in PUBLIC_WHILE_SIGNED_OUT and not (session and session.signed_in):
        if request.method in SAFE_METHODS and not path.startswith("/events"):
            target = request.path_qs
            return _redirect(request, "/login" if target == "/" else f"/login?next={quote(target)}")
        return _refuse(request, 401, "Sign in first.")
    if request.method not in SAFE_METHODS:
        problem = await _forgery_problem(request, session)
        if problem:
            log.warning("request refused", extra={"path": path, "reason": problem,
                                                  "client": client_address(request)})
            return _refuse(request, 403, problem)
    return await handler(request)


async def _api_answer(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The API speaks JSON even when aiohttp answers for it (no such route, wrong method, a
    body over the size cap), so a client parses every reply the same way."""
    resource = request.match_info.route.resource
    if resource is not None:
        taken = QUERY_PARAMETERS.get((request.method, resource.canonical.removeprefix(API)))
        unknown = sorted(set(request.query) - taken) if taken is not None else []
        if unknown:
            return api_error(400, f"unknown query parameter {unknown[0]!r}")
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.content_type == "application/json" or exc.status < 400:
            raise
        reply = api_error(exc.status, (exc.reason or "error").lower())
        if "Allow" in exc.headers:
            reply.headers["Allow"] = exc.headers["Allow"]
        return reply


async def _forgery_problem(request: web.Request, session: object) -> str | None:
    origin = request.headers.get("Origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.host:
        return "the request came from another site"
    if session is None:
        return "your session has expired (or cookies are blocked): reload the page and try again"
    token = request.headers.get("X-CSRF-Token", "")
    if not token and request.path in STREAMED_UPLOADS:
        token = await _first_part_csrf(request)
    elif not token and request.content_type in ("application/x-www-form-urlencoded",
                                                "multipart/form-data"):
        form = await request.post()
        value = form.get("csrf", "")
        token = value if isinstance(value, str) else ""
    expected: str = session.csrf  # type: ignore[attr-defined]
    if not hmac.compare_digest(token.encode(), expected.encode()):
        return "the form's security token is missing or stale: reload the page and try again"
    return None


async def _first_part_csrf(request: web.Request) -> str:
    """The CSRF token of a streamed upload: its first part, named "csrf" (browsers send the
    parts in the form's order). The reader is kept for the handler."""
    if request.content_type != "multipart/form-data":
        return ""
    try:
        reader = await request.multipart()
        part = await reader.next()
    except (ValueError, AssertionError):  # a malformed multipart body
        return ""
    if not isinstance(part, BodyPartReader) or part.name != "csrf":
        return ""
    value = b""
    while not part.at_eof() and len(value) <= 256:  # a token is 43 characters
        value += await part.read_chunk(256)
    if not part.at_eof():
        return ""
    request[UPLOAD] = reader
    return value.decode("utf-8", "replace")


def _redirect(request: web.Request, location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def _refuse(request: web.Request, status: int, reason: str) -> web.Response:
    return render_error(request, status, reason)
