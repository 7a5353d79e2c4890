"""Bearer tokens for the JSON API, kept across restarts in a file beside the configuration.

A token is as good as the admin password for its lifetime, so only its SHA-256 is stored (the
token is 256 random bits: a digest of it cannot be guessed back), it expires, and a password
change or factory reset revokes them all. The token itself is shown once, when it is made.
Each record has a name, creation time, last use and expiry (wall clock: they must mean the same
after a reboot). The file is 0600 and replaced atomically; last use is written at most every
few minutes per token, so a script polling the API does not wear out the SD card.

Changes are made in memory by the methods here and written by `flush()`, in an executor, so a
slow card never holds up the event loop (and with it SIP). A revocation that could not be
written raises from `flush()`: the caller must say so, or the token would return at the next
boot.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tipring.config.atomic import write_atomically

log = logging.getLogger("tipring.web")

FILE_NAME = "api-tokens.json"
TOKEN_LIFETIME_S = 12 * 3600  # for a token asked for without a lifetime
MIN_LIFETIME_S = 60
MAX_LIFETIME_S = 366 * 86400
MAX_TOKENS = 32
MAX_NAME = 64
LAST_USE_STEP_S = 300.0  # a token's last use is written when it moved by this much


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass
class TokenRecord:
    id: str  # a public handle for listing and revoking; random, not derived from the token
    sha256: str
    name: str
    created: float  # Unix seconds
    expires: float
    last_used: float | None = None

    def public(self) -> dict[str, Any]:
        """What the API and the page may show: everything but the digest."""
        return {"id": self.id, "name": self.name, "created": self.created,
                "expires": self.expires, "last_used": self.last_used}

    @classmethod
    def from_json(cls, raw: object) -> TokenRecord:
        """Raises ValueError for anything that is not a record."""
        if not isinstance(raw, dict):
            raise ValueError("not an object")
        try:
            record = cls(id=str(raw["id"]), sha256=str(raw["sha256"]), name=str(raw["name"]),
                         created=float(raw["created"]), expires=float(raw["expires"]),
                         last_used=None if raw.get("last_used") is None
                         else float(raw["last_used"]))
        except (KeyError, TypeError) as exc:
            raise ValueError(str(exc)) from exc
        if len(record.sha256) != 64 or not all(c in "0123456789abcdef" for c in record.sha256):
            raise ValueError("sha256")
        if not all(math.isfinite(t) for t in (record.created, record.expires)):
            raise ValueError("time")
        return record


class TokenError(ValueError):
    """A token request that cannot be granted (bad name or lifetime)."""


class ApiTokens:
    """The device's API tokens; `path` None keeps them in memory only."""

    def __init__(self, path: Path | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.clock = clock
        self._by_digest: dict[str, TokenRecord] = {}
        self._dirty = False
        self._written_use: dict[str, float | None] = {}  # id -> last_used as on disk
        self._lock = asyncio.Lock()

    @classmethod
    def beside(cls, config_path: Path, clock: Callable[[], float] = time.time) -> ApiTokens:
        tokens = cls(config_path.with_name(FILE_NAME), clock)
        tokens.load()
        return tokens

    def load(self) -> None:
        """Read the file; an unreadable one is logged and leaves no token valid (safe side)."""
        self._by_digest.clear()
        if self.path is None:
            return
        try:
            data = json.loads(self.path.read_bytes())
            rows = data["tokens"] if isinstance(data, dict) else None
            if not isinstance(rows, list):
                raise ValueError("no token list")
            records = [TokenRecord.from_json(row) for row in rows]
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError) as exc:
            log.warning("API token file unusable: every token must be issued again",
                        extra={"path": str(self.path), "reason": str(exc)})
            return
        now = self.clock()
        for record in records:
            if record.expires > now:
                self._by_digest[record.sha256] = record
                self._written_use[record.id] = record.last_used
        self._dirty = len(self._by_digest) != len(records)  # expired ones are dropped

    # -- changes (in memory; `flush` writes them) --

    def issue(self, name: str = "", lifetime_s: float = TOKEN_LIFETIME_S) -> tuple[str, TokenRecord]:
        """A new token (returned once, never stored) and its record."""
        name = name.strip()
        if len(name) > MAX_NAME or any(not c.isprintable() for c in name):
            raise TokenError(f"the name must be at most {MAX_NAME} printable characters")
        if not (isinstance(lifetime_s, int | float) and
                MIN_LIFETIME_S <= lifetime_s <= MAX_LIFETIME_S):
            raise TokenError(f"the lifetime must be between {MIN_LIFETIME_S} s and "
                             f"{MAX_LIFETIME_S // 86400} days")
        now = self.clock()
        self._prune(now)
        while len(self._by_digest) >= MAX_TOKENS:  # the least recently used goes
            oldest = min(self._by_digest.values(), key=lambda r: r.last_used or r.created)
            del self._by_digest[oldest.sha256]
            log.warning("API token dropped to make room", extra={"token": oldest.id,
                                                                 "token_name": oldest.name})
        token = secrets.token_urlsafe(32)
        record = TokenRecord(id=secrets.token_hex(6), sha256=_digest(token),
                             name=name or "unnamed", created=now, expires=now + lifetime_s)
        self._by_digest[record.sha256] = record
        self._dirty = True
        return token, record

    def check(self, token: str) -> TokenRecord | None:
        """The record of a valid `token` (its last use noted), or None."""
        if not token or len(token) > 100:
            return None
        record = self._by_digest.get(_digest(token))
        now = self.clock()
        if record is None or now >= record.expires:
            return None
        record.last_used = now
        written = self._written_use.get(record.id)
        if written is None or now - written >= LAST_USE_STEP_S:
            self._dirty = True
        return record

    def valid(self, token: str) -> bool:
        return self.check(token) is not None

    def revoke(self, token: str) -> bool:
        record = self._by_digest.pop(_digest(token), None)
        self._dirty |= record is not None
        return record is not None

    def revoke_id(self, token_id: str) -> bool:
        for digest, record in self._by_digest.items():
            if record.id == token_id:
                del self._by_digest[digest]
                self._dirty = True
                return True
        return False

    def revoke_all(self) -> int:
        count = len(self._by_digest)
        self._by_digest.clear()
        self._dirty = True
        return count

    def listing(self) -> list[TokenRecord]:
        """Valid tokens, newest first."""
        now = self.clock()
        return sorted((r for r in self._by_digest.values() if r.expires > now),
                      key=lambda r: r.created, reverse=True)

    def _prune(self, now: float) -> None:
        for digest in [d for d, r in self._by_digest.items() if r.expires <= now]:
            del self._by_digest[digest]
            self._dirty = True

    # -- persistence --

    @property
    def dirty(self) -> bool:
        return self._dirty and self.path is not None

    async def flush(self) -> None:
        """Write the changes (atomically, 0600) if there are any; raises OSError."""
        async with self._lock:
            if not self.dirty:
                return
            assert self.path is not None
            records = list(self._by_digest.values())
            data = json.dumps({"version": 1, "tokens": [asdict(r) for r in records]},
                              indent=1).encode()
            self._dirty = False
            try:
                await asyncio.get_running_loop().run_in_executor(
                    None, write_atomically, self.path, data)
            except OSError:
                self._dirty = True
                raise
            self._written_use = {r.id: r.last_used for r in records}
