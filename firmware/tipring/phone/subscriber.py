"""The subscriber's own features: star codes and call forwarding, as part of `Phone`.

A star code (`features.recognise`) either switches a line setting (saved through
`SaveLineSetting`, confirmed with stutter dial tone so a number can follow) or places a call a
particular way (*67, *82, *70, call return, redial, voicemail), or opens the voice menu.
Forwarding answers the caller with a 302 and a Diversion reason (RFC 5806): "unconditional",
"user-busy", "do-not-disturb" or "no-answer".
"""

from __future__ import annotations

import logging
from collections.abc import Callable


from .actions import PhoneAction, SaveLineSetting
from .calls import Call
from .features import FORWARDS, SWITCHES, FeatureRequest
from .part import PhonePart
from .voicemenu import DeviceFacts, MenuAction, VoiceMenu

log = logging.getLogger("tipring.phone.controller")


class SubscriberFeatures(PhonePart):
    """Methods of `Phone`, kept apart by subject."""

    # What else these methods use of the Phone (beyond PhonePart's).
    last_caller: dict[int, str]
    last_dialled: dict[int, str]
    not_put_through: dict[str, str]
    facts: Callable[[], DeviceFacts] | None
    _place: Callable[..., list[PhoneAction]]
    _menu: Callable[[int, list[MenuAction], float], list[PhoneAction]]

    def _feature(self, line: int, feature: FeatureRequest, now: float) -> list[PhoneAction]:
        setup = self.lines[line]
        name = feature.name
        log.info("line %d: star code %s%s", line, name,
                 f" {feature.number}" if feature.number else "")
        if name in SWITCHES or name in FORWARDS:
            field, value = SWITCHES[name] if name in SWITCHES else (FORWARDS[name],
                                                                     feature.number)
            setattr(setup, field, value)
            out: list[PhoneAction] = [SaveLineSetting(line, field, value)]
            # Confirmed with stutter dial tone; keyed at recall dial tone (a call held), a flash
            # still takes the held call back.
            held = any(call.held for call in self.calls.values() if call.line == line)
            return out + self._fxs(line, lambda f: f.recall_dial(now, recall=held), now)
        if name == "hide_caller_id_once":
            return self._place(line, feature.number, now, anonymous=True, rule=name)
        if name == "show_caller_id_once":
            return self._place(line, feature.number, now, anonymous=False, rule=name)
        if name == "call_waiting_off_once":
            return self._place(line, feature.number, now, no_waiting=True, rule=name)
        if name == "voice_menu" and self.facts is not None and \
                not any(call.line == line for call in self.calls.values()):
            menu = self.menus[line] = VoiceMenu(self.facts)
            return self._menu(line, menu.start(now), now)
        number = {"call_return": self.last_caller.get(line), "redial":
                  self.last_dialled.get(line), "voicemail": setup.voicemail}.get(name)
        if number:
            return self._place(line, number, now, rule=name)
        log.info("line %d: nothing to dial for %s", line, name)
        return self._fxs(line, lambda f: f.play("congestion", now), now)

    def _forward(self, call: str, target: str, reason: str, now: float) -> list[PhoneAction]:
        """Send the caller elsewhere with a 302 and a Diversion saying why (RFC 5806)."""
        try:
            self.agent.redirect(call, [target], now, diversion=reason)
        except (KeyError, ValueError) as error:
            log.info("call %s: cannot forward to %r (%s): busy instead", call, target, error)
            self.not_put_through[call] = f"could not forward to {target}"
            self.agent.reject(call, 486, "Busy Here", now)
            return []
        log.info("call %s forwarded (%s) to %s", call, reason, target)
        self.not_put_through[call] = f"forwarded to {target} ({reason})"
        return []

    def _forward_no_answer(self, call: Call, now: float) -> list[PhoneAction]:
        if call.state not in ("ringing", "waiting") or call.recalling:
            return []
        target = self.lines[call.line].forward_no_answer
        if not target:
            return []
        del self.calls[call.call]
        out = self._fxs(call.line, (lambda f: f.stop_ring(now)) if call.state == "ringing"
                        else (lambda f: f.stop_call_waiting(now)), now)
        return out + self._forward(call.call, target, "no-answer", now)
