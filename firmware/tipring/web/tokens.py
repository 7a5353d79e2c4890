"""Bearer tokens for the JSON API, issued for the admin password.

Kept in RAM and stored only as SHA-256 digests: a token is as good as the password for its
lifetime, so it expires, and a reboot or password change revokes them all.
"""

from __future__ import annotations

import hashlib
import secrets

TOKEN_LIFETIME_S = 12 * 3600
MAX_TOKENS = 16


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class ApiTokens:
    def __init__(self) -> None:
        self._expiry: dict[str, float] = {}  # digest -> monotonic expiry

    def issue(self, now: float) -> str:
        self._prune(now)
        while len(self._expiry) >= MAX_TOKENS:  # oldest first
            del self._expiry[min(self._expiry, key=self._expiry.__getitem__)]
        token = secrets.token_urlsafe(32)
        self._expiry[_digest(token)] = now + TOKEN_LIFETIME_S
        return token

    def valid(self, token: str, now: float) -> bool:
        if not token or len(token) > 100:
            return False
        expiry = self._expiry.get(_digest(token))
        return expiry is not None and now < expiry

    def revoke(self, token: str) -> None:
        self._expiry.pop(_digest(token), None)

    def revoke_all(self) -> None:
        self._expiry.clear()

    def _prune(self, now: float) -> None:
        for key in [k for k, t in self._expiry.items() if t <= now]:
            del self._expiry[key]
