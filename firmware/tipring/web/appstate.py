"""What the web server keeps between requests, reachable from any handler through the app."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import MultipartReader, web

from .sessions import Session, SessionStore
from .system import SystemBackend
from .throttle import LoginThrottle
from .tokens import ApiTokens

if TYPE_CHECKING:
    from tipring.runtime.app import Device


@dataclass
class WebState:
    device: Device
    sessions: SessionStore = field(default_factory=SessionStore)
    throttle: LoginThrottle = field(default_factory=LoginThrottle)
    tokens: ApiTokens = field(default_factory=ApiTokens)
    setup_lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one first-boot at a time
    closing: asyncio.Event = field(default_factory=asyncio.Event)  # ends live streams at shutdown
    system: SystemBackend | None = None  # reboot / factory reset, if this board has them


STATE = web.AppKey("tipring_web", WebState)
# Per-request values: under aiohttp's typed RequestKey where it exists (3.14 on; it warns about
# plain keys), else plain strings (the image's Buildroot builds aiohttp 3.13).
_REQUEST_KEY: Any = getattr(web, "RequestKey", None)
SESSION: Any = (_REQUEST_KEY("tipring_session", Session) if _REQUEST_KEY is not None
                else "tipring_session")  # the Session of this request, if any
UPLOAD: Any = (_REQUEST_KEY("tipring_upload", MultipartReader) if _REQUEST_KEY is not None
               else "tipring_upload")  # a streamed upload's body, its CSRF part already read


def state(request: web.Request) -> WebState:
    return request.app[STATE]


def device(request: web.Request) -> Device:
    return request.app[STATE].device


def session(request: web.Request) -> Session | None:
    found = request.get(SESSION)
    return found if isinstance(found, Session) else None


def upload(request: web.Request) -> MultipartReader | None:
    found = request.get(UPLOAD)
    return found if isinstance(found, MultipartReader) else None


def client_address(request: web.Request) -> str:
    """The peer's address (not X-Forwarded-For: nothing proxies the device, and a header
    would let a guesser pick a fresh address per try)."""
    return request.remote or "unknown"
