"""The call log: the last few hundred calls, kept in a JSON-lines file beside the configuration.

Each finished call appends one line (no fsync: a power cut can at worst tear the last line,
and reading skips lines it cannot use). When the file holds twice the cap it is rewritten with
the newest `capacity` entries atomically (temp file, fsync, rename, directory fsync), so it
stays bounded on an SD card without a rewrite per call. Entries hold who, when and how a call
went, never credentials; the file is 0600 because numbers are personal data.

Times are stored as Unix seconds (what the clock gives, valid whatever the time zone) and shown
in the device's time zone (`device.timezone`), which the user may change after the calls:
`local_time` converts at display time.
"""

from __future__ import annotations

import collections
import datetime
import functools
import json
import logging
import os
import zoneinfo
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

log = logging.getLogger("tipring.calllog")

CAPACITY = 200
FILE_NAME = "calls.jsonl"

Outcome = Literal["answered", "missed", "busy", "cancelled", "failed"]
OUTCOMES = ("answered", "missed", "busy", "cancelled", "failed")


@functools.lru_cache(maxsize=8)  # one warning per unknown zone, not one per page view
def time_zone(name: str) -> datetime.tzinfo:
    """The IANA zone `name`; UTC if this system has no such zone (the configuration checked the
    name, but an image without tzdata must still show a time)."""
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        log.warning("time zone unknown here: times shown in UTC", extra={"timezone": name})
        return datetime.UTC


def local_time(wall: float, zone: datetime.tzinfo) -> datetime.datetime | None:
    """Unix seconds as an aware datetime in `zone`; None for a time no calendar can show."""
    try:
        return datetime.datetime.fromtimestamp(wall, zone)
    except (OverflowError, OSError, ValueError):
        return None


@dataclass(frozen=True)
class CallLogEntry:
    time: float  # wall clock (Unix seconds) when the call began: dialled or rang
    line: int | None  # 0-based FXS port; None when no line took an incoming call
    direction: str  # "outgoing" or "incoming"
    number: str  # dialled number, or the caller's number ("" when withheld)
    name: str = ""  # the caller's display name, when one came
    duration_s: float = 0.0  # talk time: answer to hang-up (0 when never answered)
    outcome: str = "failed"  # one of OUTCOMES
    status: int | None = None  # the SIP final status, when there was one
    reason: str = ""  # the SIP reason phrase, or why the call ended in words
    codec: str = ""
    rtp: dict[str, Any] = field(default_factory=dict)  # last statistics: packets, loss, jitter

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def to_api(self, zone: datetime.tzinfo) -> dict[str, Any]:
        """`to_json` plus `started`: ISO 8601 with the UTC offset of `zone` at that moment."""
        when = local_time(self.time, zone)
        return {**self.to_json(), "started": when.isoformat() if when is not None else None}

    @classmethod
    def from_json(cls, raw: object) -> CallLogEntry:
        """Raises ValueError for anything that is not a usable entry."""
        if not isinstance(raw, dict):
            raise ValueError("not an object")
        try:
            time_ = float(raw["time"])
            line = raw.get("line")
            if line is not None and (not isinstance(line, int) or isinstance(line, bool)):
                raise ValueError("line")
            direction = raw["direction"]
            if direction not in ("outgoing", "incoming"):
                raise ValueError("direction")
            outcome = raw.get("outcome", "failed")
            if outcome not in OUTCOMES:
                raise ValueError("outcome")
            status = raw.get("status")
            if status is not None and (not isinstance(status, int) or isinstance(status, bool)):
                raise ValueError("status")
            rtp = raw.get("rtp") or {}
            if not isinstance(rtp, dict):
                raise ValueError("rtp")
            return cls(time=time_, line=line, direction=direction,
                       number=str(raw.get("number", "")), name=str(raw.get("name") or ""),
                       duration_s=float(raw.get("duration_s", 0.0)), outcome=outcome,
                       status=status, reason=str(raw.get("reason") or ""),
                       codec=str(raw.get("codec") or ""), rtp=rtp)
        except (KeyError, TypeError) as exc:
            raise ValueError(str(exc)) from exc


class CallLog:
    """The newest `capacity` calls, oldest first, mirrored in `path`."""

    def __init__(self, path: Path, capacity: int = CAPACITY) -> None:
        self.path = path
        self.capacity = capacity
        self.entries: collections.deque[CallLogEntry] = collections.deque(maxlen=capacity)
        self._lines_in_file = 0

    @classmethod
    def beside(cls, config_path: Path, capacity: int = CAPACITY) -> CallLog:
        return cls(config_path.with_name(FILE_NAME), capacity)

    def load(self) -> None:
        """Read the file; lines that are torn or not entries are skipped (and counted once)."""
        self.entries.clear()
        self._lines_in_file = 0
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return
        except OSError as exc:
            log.warning("call log unreadable", extra={"path": str(self.path),
                                                      "reason": str(exc)})
            return
        bad = 0
        for row in text.splitlines():
            if not row.strip():
                continue
            self._lines_in_file += 1
            try:
                self.entries.append(CallLogEntry.from_json(json.loads(row)))
            except ValueError:  # json.JSONDecodeError is a ValueError
                bad += 1
        if bad:
            log.warning("call log lines skipped", extra={"path": str(self.path), "lines": bad})

    def add(self, entry: CallLogEntry) -> None:
        """Keep `entry`; a disk error is logged, never raised (a call must not fail on it)."""
        self.entries.append(entry)
        try:
            if self._lines_in_file + 1 > 2 * self.capacity:
                self._rewrite()
            else:
                self._append(entry)
        except OSError as exc:
            log.error("call log not written", extra={"path": str(self.path),
                                                     "reason": str(exc)})

    def newest_first(self, limit: int | None = None) -> list[CallLogEntry]:
        out = list(reversed(self.entries))
        return out if limit is None else out[:limit]

    def _append(self, entry: CallLogEntry) -> None:
        row = json.dumps(entry.to_json(), ensure_ascii=False, separators=(",", ":")) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, row.encode("utf-8"))
        finally:
            os.close(fd)
        self._lines_in_file += 1

    def _rewrite(self) -> None:
        temp = self.path.with_name(self.path.name + ".tmp")
        data = "".join(json.dumps(e.to_json(), ensure_ascii=False, separators=(",", ":")) + "\n"
                       for e in self.entries)
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, self.path)
        try:
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
        except OSError:
            dir_fd = None
        if dir_fd is not None:
            try:
                os.fsync(dir_fd)
            except OSError:
                pass
            finally:
                os.close(dir_fd)
        self._lines_in_file = len(self.entries)
