"""Browser sessions (in memory) and the cookie that names them.

A session exists from the first visit to the setup or login page, before anyone is signed in,
so those forms carry a CSRF token too (login CSRF). Signing in issues a new session id, so an id
planted before login is worthless (session fixation). Ids are 256-bit random values; the store
keys sessions by the SHA-256 of the id so a lookup's timing says nothing about valid ids.
Sessions live in RAM: a reboot signs everyone out, which is what a user expects of a router.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass, field

from aiohttp import web

COOKIE = "tipring_session"
IDLE_S = 30 * 60  # signed out after this long without a request
ABSOLUTE_S = 12 * 3600  # and after this long in any case
MAX_ANONYMOUS = 256  # pre-login sessions anyone can create: bounded, oldest evicted
MAX_SIGNED_IN = 32


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass
class Session:
    key: str  # SHA-256 of the cookie value; its first 8 characters identify it on the page
    csrf: str
    signed_in: bool
    address: str
    agent: str
    created: float  # monotonic
    last_seen: float  # monotonic
    created_wall: float = field(default_factory=time.time)
    notices: list[str] = field(default_factory=list)  # shown once on the next page
    fresh_token: str | None = None  # an API token just made here, shown once on the next page

    @property
    def label(self) -> str:
        return self.key[:8]


class SessionStore:
    """All sessions of this web server."""

    def __init__(self) -> None:
        self._sessions: dict[str, Session] = {}

    def create(self, address: str, agent: str, *, signed_in: bool, now: float) -> tuple[str, Session]:
        """A new session and its cookie value (shown to nobody but that browser)."""
        self._expire(now)
        self._evict(signed_in)
        token = secrets.token_urlsafe(32)
        session = Session(_digest(token), secrets.token_urlsafe(32), signed_in, address,
                          agent[:120], now, now)
        self._sessions[session.key] = session
        return token, session

    def get(self, token: str | None, now: float) -> Session | None:
        if not token or len(token) > 100:
            return None
        session = self._sessions.get(_digest(token))
        if session is None:
            return None
        if now - session.last_seen > IDLE_S or now - session.created > ABSOLUTE_S:
            self._sessions.pop(session.key, None)
            return None
        session.last_seen = now
        return session

    def alive(self, session: Session) -> bool:
        return self._sessions.get(session.key) is session

    def drop(self, session: Session) -> None:
        self._sessions.pop(session.key, None)

    def drop_by_label(self, label: str) -> bool:
        for session in self.signed_in():
            if session.label == label:
                self.drop(session)
                return True
        return False

    def drop_signed_in_except(self, keep: Session | None) -> int:
        """Sign out every other browser (after a password change); returns how many."""
        others = [s for s in self.signed_in() if s is not keep]
        for session in others:
            self.drop(session)
        return len(others)

    def signed_in(self) -> list[Session]:
        return [s for s in self._sessions.values() if s.signed_in]

    def _expire(self, now: float) -> None:
        stale = [k for k, s in self._sessions.items()
                 if now - s.last_seen > IDLE_S or now - s.created > ABSOLUTE_S]
        for key in stale:
            del self._sessions[key]

    def _evict(self, signed_in: bool) -> None:
        limit = MAX_SIGNED_IN if signed_in else MAX_ANONYMOUS
        same = [s for s in self._sessions.values() if s.signed_in == signed_in]
        for session in sorted(same, key=lambda s: s.last_seen)[: max(0, len(same) - limit + 1)]:
            del self._sessions[session.key]


def set_cookie(response: web.StreamResponse, token: str, *, secure: bool) -> None:
    """HttpOnly (no script can read it), SameSite=Strict (no cross-site request carries it),
    Secure under HTTPS. No Max-Age: it ends with the browser, and the server expires it anyway."""
    response.set_cookie(COOKIE, token, path="/", httponly=True, samesite="Strict", secure=secure)


def clear_cookie(response: web.StreamResponse) -> None:
    response.del_cookie(COOKIE, path="/")
