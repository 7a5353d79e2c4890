"""Helpers shared by the phone tests (no tests here): lines on a virtual clock and an MDMF
reader written from GR-30 (independent of the encoder under test)."""

from __future__ import annotations

from tipring.line.digitmap import DigitMap
from tipring.line.fxs import FxsLine
from tipring.line.regions import profile
from tipring.line.signals import PlayTone, SendCallerId, SetLinefeed, StartRing
from tipring.phone import DriveLine

PLAN = "(*47[0-9*].|*x.|x.)"


def fxs(region: str = "US", plan: str = PLAN) -> FxsLine:
    p = profile(region)
    return FxsLine(p, DigitMap.compile(plan, p.emergency_numbers))


def commands(actions: list, line: int | None = None) -> list:
    return [c for a in actions if isinstance(a, DriveLine) and (line is None or a.line == line)
            for c in a.commands]


def tones(actions: list, line: int | None = None) -> list[str]:
    return [c.name for c in commands(actions, line) if isinstance(c, PlayTone)]


def rings(actions: list, line: int | None = None) -> list[StartRing]:
    return [c for c in commands(actions, line) if isinstance(c, StartRing)]


def linefeeds(actions: list, line: int | None = None) -> list:
    return [c.state for c in commands(actions, line) if isinstance(c, SetLinefeed)]


def mdmf(burst: SendCallerId) -> dict[int, bytes]:
    """GR-30 MDMF: type 0x80, length, (param type, length, value)*, checksum (sum == 0)."""
    data = burst.payload
    assert isinstance(data, bytes)
    assert data[0] == 0x80 and data[1] == len(data) - 3 and sum(data) % 256 == 0
    params, i = {}, 2
    while i < len(data) - 1:
        kind, size = data[i], data[i + 1]
        params[kind] = data[i + 2:i + 2 + size]
        i += 2 + size
    return params
