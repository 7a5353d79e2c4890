"""What the subject modules (`threeway`, `subscriber`, `announcements`) use of the `Phone` whose
methods they hold: declared once, for readers and type checkers; `Phone` provides them all."""

from __future__ import annotations

from collections.abc import Callable

from tipring.line.fxs import FxsLine
from tipring.line.signals import LineOutput
from tipring.sip.agent import UserAgent

from .actions import PhoneAction
from .calls import Call
from .setup import LineSetup
from .voicemenu import VoiceMenu


class PhonePart:
    agent: UserAgent
    lines: dict[int, LineSetup]
    calls: dict[str, Call]
    menus: dict[int, VoiceMenu]
    _deadlines: dict[tuple[str, str], float]
    _fxs: Callable[[int, Callable[[FxsLine], list[LineOutput]], float], list[PhoneAction]]
    calls_on: Callable[[int], list[Call]]
