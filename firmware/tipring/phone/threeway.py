"""Three-way calling and transfer: the part of `Phone` that handles a line's second call.

A flash alone in a call holds it and gives recall dial tone (controller); the number dialled
then is the consultation call (`Call.consult_for`). From there: the subscriber hangs up while it
rings -> blind transfer (REFER to the number, RFC 3515); after it answered -> attended transfer
(REFER with Replaces naming our call to it, RFC 5589 7); a flash after it answered -> all three
talk, mixed by the audio path. The other way round, a far end that sends us REFER is followed
on the same line, and an INVITE with Replaces for one of our calls takes its place.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from tipring.line.fxs import LineState
from tipring.sip.grammar import SipParseError
from tipring.sip.session import IncomingCall, TransferProgress, TransferRequested

from .actions import DetachMedia, PhoneAction
from .calls import Call, dial_target
from .part import PhonePart

log = logging.getLogger("tipring.phone.controller")

TRANSFER_WAIT_S = 32.0  # REFER sent, no final NOTIFY yet: give the call back (64*T1 as SIP)
REPLACED_WAIT_S = 5.0  # attended transfer done: the target should BYE our leg by then


class ThreeWayCalling(PhonePart):
    """Methods of `Phone`, kept apart by subject."""

    # What else these methods use of the Phone (beyond PhonePart's).
    conference: set[int]
    _drop: Callable[[Call, float], list[PhoneAction]]
    _resume: Callable[[Call, float], list[PhoneAction]]
    _ring_back: Callable[[Call, float], list[PhoneAction]]

    def _join(self, held: Call, consult: Call, now: float) -> list[PhoneAction]:
        """Flash with the second party answered: take the first off hold; both streams are on
        the line and the audio path mixes them (each far end hears the other and us)."""
        log.info("line %d: three-way call %s + %s", held.line, held.call, consult.call)
        self.conference.add(held.line)
        return self._resume(held, now)

    def _transfer(self, held: Call, consult: Call, now: float) -> list[PhoneAction] | None:
        """The subscriber hung up while consulting: transfer the held party. Second party
        answered: attended transfer (REFER with Replaces naming our call to it, RFC 5589 7);
        still ringing: blind transfer to the number being called (our call to it is
        cancelled). None when the agent cannot (then the held call rings back as usual)."""
        attended = consult.state == "connected"
        try:
            if attended:
                self.agent.transfer(held.call, None, now, replacing=consult.call)
            else:
                target = dial_target(consult.number, self.lines[held.line].direct_ip)
                self.agent.transfer(held.call, target, now)
        except (KeyError, ValueError, SipParseError) as error:
            log.info("line %d: cannot transfer %s: %s", held.line, held.call, error)
            return None
        log.info("line %d: %s transfer of %s to %s", held.line,
                 "attended" if attended else "blind", held.call, consult.number)
        held.transfer = "attended" if attended else "blind"
        held.parked = True
        self._deadlines[("transfer", held.call)] = now + TRANSFER_WAIT_S
        out: list[PhoneAction] = []
        if attended:
            consult.parked = True  # the target ends it once the transferee replaces it
            if consult.media is not None:
                out.append(DetachMedia(consult.line, consult.call))
        else:
            out += self._drop(consult, now)
        return out

    def _transfer_progress(self, call: Call, event: TransferProgress,
                           now: float) -> list[PhoneAction]:
        if call.transfer is None or event.status < 200:
            return []
        self._deadlines.pop(("transfer", call.call), None)
        if event.status >= 300:
            log.info("line %d: transfer of %s failed: %d %s", call.line, call.call,
                     event.status, event.reason)
            return self._transfer_failed(call, now)
        log.info("line %d: transfer of %s done", call.line, call.call)
        self._let_go(call, now)
        for other in self.calls_on(call.line):
            if other.parked and other.consult_for == call.call:
                # Attended: the target drops our leg once the transferee's INVITE replaced it.
                self._deadlines[("release", other.call)] = now + REPLACED_WAIT_S
        return []

    def _transfer_failed(self, call: Call, now: float) -> list[PhoneAction]:
        """The held party could not be transferred: our leg to the target ends and the phone
        rings to give the held call back."""
        call.transfer = None
        out: list[PhoneAction] = []
        for other in list(self.calls_on(call.line)):
            if other.parked and other.consult_for == call.call:
                out += self._drop(other, now)
        if self.lines[call.line].fxs.state is not LineState.IDLE:
            call.parked = False
            return out  # the subscriber is busy again: the held call waits for a flash
        return out + self._ring_back(call, now)

    def _let_go(self, call: Call, now: float) -> None:
        self.calls.pop(call.call, None)
        if call.call in self.agent.sessions:
            self.agent.hangup(call.call, now)

    def _transfer_requested(self, call: Call, event: TransferRequested,
                            now: float) -> list[PhoneAction]:
        """The far end transfers us (REFER): call the target on the same line, report how it
        goes (NOTIFY), and put the new call on the line when it answers."""
        setup = self.lines[call.line]
        account = call.account or setup.account
        if any(c.transferred_from == call.call for c in self.calls.values()) or \
                len(self.calls_on(call.line)) > 1:
            self.agent.notify_transfer(call.call, 486, "Busy Here", now)
            return []
        slot = 1 - call.slot
        try:
            new = self.agent.invite(account, event.target, setup.policy(slot), now,
                                    replaces=event.replaces, referred_by=event.referred_by)
        except (KeyError, ValueError, SipParseError) as error:
            log.info("line %d: cannot follow the transfer to %s: %s", call.line, event.target,
                     error)
            self.agent.notify_transfer(call.call, 503, "Service Unavailable", now)
            return []
        number = str(getattr(event.target, "user", "") or event.target)
        log.info("line %d: transferred by %s to %s", call.line, call.call, number)
        self.calls[new] = Call(new, call.line, "outgoing", "calling", number, account=account,
                               slot=slot, transferred_from=call.call)
        return []

    def _replacing(self, event: IncomingCall, old: Call, now: float) -> list[PhoneAction]:
        """An INVITE with Replaces (RFC 3891) for a call of ours: someone completed an
        attended transfer to us. The new call takes the old one's place without ringing."""
        log.info("line %d: %s replaces %s", old.line, event.call, old.call)
        out = self._drop(old, now)
        self.calls[event.call] = Call(event.call, old.line, "incoming", "answering",
                                      old.number, account=event.account, slot=old.slot,
                                      caller=old.caller)
        self.agent.answer(event.call, self.lines[old.line].policy(old.slot), now)
        return out
