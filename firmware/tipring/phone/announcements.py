"""What the phone says: the `***` voice menu and the recorded intercept after SIT.

Both become `PlayPrompt` actions (clip names; the runtime's `PromptLibrary` makes the audio)
and end with `prompt_finished`. The menu (`voicemenu.VoiceMenu`) gets the line's digits and, while
it counts the password reset's hook changes, its lifts, hang-ups and flashes; the line then gives
no dial tone and reports flashes (`FxsLine.quiet_lift`, `recall`).
"""

from __future__ import annotations

import logging

from tipring.line.tonespec import Signal, cadence_plan


from .actions import ClearWebPassword, PhoneAction, PlayPrompt
from .part import PhonePart
from .voicemenu import MenuAction, MenuEnded, ResetPassword, Say

log = logging.getLogger("tipring.phone.controller")


class SpokenServices(PhonePart):
    """Methods of `Phone`, kept apart by subject."""

    # What else these methods use of the Phone (beyond PhonePart's).
    announcing: set[int]
    _intercepts: dict[int, tuple[str, ...]]

    def prompt_finished(self, line: int, now: float) -> list[PhoneAction]:
        """The line's audio thread played the last sample of a prompt."""
        menu = self.menus.get(line)
        if menu is not None:
            return self._menu(line, menu.prompt_finished(now), now)
        if line in self.announcing:
            self.announcing.discard(line)
            return self._fxs(line, lambda f: f.play("congestion", now), now)
        return []

    def _lifted(self, line: int, now: float) -> list[PhoneAction]:
        menu = self.menus.get(line)
        if menu is None or not menu.awaiting_presence:
            return []
        return self._menu(line, menu.lifted(now), now)

    def _menu(self, line: int, actions: list[MenuAction], now: float) -> list[PhoneAction]:
        out: list[PhoneAction] = []
        for action in actions:
            if isinstance(action, Say):
                out.append(PlayPrompt(line, action.clips))
            elif isinstance(action, ResetPassword):
                log.warning("line %d: web password cleared from the voice menu (physical "
                            "presence shown on the hook switch)", line)
                out.append(ClearWebPassword(line))
            elif isinstance(action, MenuEnded):
                self.menus.pop(line, None)
        # While the menu counts the hook changes of the password reset, a lift gets no dial
        # tone and a quick press of the switch is reported as a flash (the line's recall mode)
        # instead of restarting dial tone.
        counting = line in self.menus and self.menus[line].awaiting_presence
        fxs = self.lines[line].fxs
        if fxs.quiet_lift != counting:
            fxs.quiet_lift = fxs.recall = counting
        return out

    def _announce(self, line: int, now: float) -> list[PhoneAction]:
        clips = self._intercepts.pop(line, None)
        fxs = self.lines[line].fxs
        if clips is None or fxs.tone != "sit" or self.calls_on(line):
            return []  # hung up, or something else happened on the line meanwhile
        self.announcing.add(line)
        return [PlayPrompt(line, clips)]


def _first_cycle_s(signal: Signal) -> float:
    """When the announcement starts after SIT: once its three tones have sounded (the long
    silence of SIT's cadence is where the intercept speaks)."""
    plan = cadence_plan(signal)
    return sum(segment.on_s for segment in plan.segments) + 0.2
