"""The call controller: analog line events and SIP call events in, line/SIP/media actions out.

Each entry point takes `now` and returns the `PhoneAction`s to carry out, in order; SIP requests
are made on the `UserAgent` directly (it is as pure as this class). Line events can arrive two
ways: the phone drives each `FxsLine` itself (`hook`, `dtmf`, `timer`), or a runner that already
drives it passes the `LineEvent`s it produced to `line_event`. Either way, the line commands the
phone's own requests produce (ringing, tones, answer supervision) come back as `DriveLine`.

A line has at most two calls (call waiting): the talking one, and one waiting or held. A call
on hold keeps its record (`Call.held`) but not the line's stream; its hold answer
(`MediaChanged`) is noted, not attached.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
from collections.abc import Callable, Mapping

from tipring.line.fxs import FxsLine, LineState
from tipring.media.dsp import CallerId
from tipring.line.signals import (
    Answered,
    DialedNumber,
    Digit,
    Flash,
    LineCommand,
    LineEvent,
    LineOutput,
    OnHook,
)
from tipring.sip.agent import UserAgent
from tipring.sip.grammar import SipParseError
from tipring.sip.session import (
    CallAnswered,
    CallEnded,
    CallProgress,
    IncomingCall,
    MediaChanged,
)

from .actions import AttachMedia, DetachMedia, DriveLine, PhoneAction, SendDigit
from .callerid import caller_id
from .calls import Call, dial_target
from .causes import NO_SERVICE_TONE, tone_for_status
from .setup import LineSetup

log = logging.getLogger(__name__)


class Phone:
    """The ATA's calls: one `LineSetup` per FXS port, one shared `UserAgent`."""

    def __init__(self, agent: UserAgent, lines: Mapping[int, LineSetup], *,
                 local_time: Callable[[], datetime.datetime] | None = None) -> None:
        self.agent = agent
        self.lines = dict(lines)
        self.calls: dict[str, Call] = {}
        # Caller ID carries the local date and time; the runtime injects the wall clock.
        self.local_time = local_time

    def call_on(self, line: int) -> Call | None:
        return next((c for c in self.calls.values() if c.line == line), None)

    def calls_on(self, line: int) -> list[Call]:
        """The line's calls, oldest first: one, or two with call waiting."""
        return [c for c in self.calls.values() if c.line == line]

    def talking_on(self, line: int) -> Call | None:
        """The call the subscriber is in (not held, not waiting, not ringing)."""
        return next((c for c in self.calls_on(line)
                     if not c.held and c.state not in ("waiting", "ringing")), None)

    # --- the phone drives the lines ---------------------------------------------------------

    def hook(self, line: int, off_hook: bool, at: float) -> list[PhoneAction]:
        return self._drive(line, self.lines[line].fxs.hook(off_hook, at), at)

    def dtmf(self, line: int, digit: str, at: float) -> list[PhoneAction]:
        return self._drive(line, self.lines[line].fxs.dtmf(digit, at), at)

    def timer(self, now: float) -> list[PhoneAction]:
        out: list[PhoneAction] = []
        for index, setup in self.lines.items():
            out += self._drive(index, setup.fxs.timer(now), now)
        return out

    def next_deadline(self) -> float | None:
        deadlines = [d for s in self.lines.values() if (d := s.fxs.next_deadline()) is not None]
        return min(deadlines, default=None)

    # --- line events ------------------------------------------------------------------------

    def line_event(self, line: int, event: LineEvent, now: float) -> list[PhoneAction]:
        """A subscriber action on `line` (from `FxsLine`), already past the state machine."""
        if isinstance(event, DialedNumber):
            return self._dialled(line, event, now)
        if isinstance(event, Answered):
            return self._answer(line, now)
        if isinstance(event, OnHook):
            return self._hung_up(line, now)
        if isinstance(event, Digit):
            return self._digit(line, event, now)
        if isinstance(event, Flash):
            return self._flash(line, now)
        return []  # OffHook (the line gives dial tone), DialInvalid/DialBarred (reorder)

    def _dialled(self, line: int, event: DialedNumber, now: float) -> list[PhoneAction]:
        setup = self.lines[line]
        account = setup.account
        if event.emergency and account not in self.agent.accounts:
            # An emergency call goes out on any account the device has, never refused.
            account = next(iter(self.agent.accounts), "")
        if account not in self.agent.accounts:
            log.info("line %d: no account, cannot call %s", line, event.number)
            return self._fxs(line, lambda fxs: fxs.play(NO_SERVICE_TONE, now), now)
        target = dial_target(event.number, setup.direct_ip)
        try:
            call = self.agent.invite(account, target, setup.policy(), now)
        except (SipParseError, ValueError) as error:
            log.info("line %d: cannot call %r: %s", line, target, error)
            return self._fxs(line, lambda fxs: fxs.play("congestion", now), now)
        log.info("line %d: calling %s (%s)%s", line, target, event.rule,
                 " EMERGENCY" if event.emergency else "")
        self.calls[call] = Call(call, line, "outgoing", "calling", event.number, event.emergency)
        return []

    def _answer(self, line: int, now: float) -> list[PhoneAction]:
        calls = self.calls_on(line)
        call = next((c for c in calls if c.direction == "incoming" and c.state == "ringing"),
                    None)
        if call is not None:
            self._take_up(call, now)
            return []
        recalled = next((c for c in calls if c.recalling), None)
        if recalled is not None:  # the phone rang to give back a held call: lifting resumes it
            return self._resume(recalled, now)
        return []

    def _take_up(self, call: Call, now: float) -> None:
        call.state = "answering"
        if call.call in self.agent.sessions:  # else a CANCEL crossed the pick-up: CallEnded next
            self.agent.answer(call.call, self.lines[call.line].policy(), now)  # CallAnswered next

    def _hung_up(self, line: int, now: float) -> list[PhoneAction]:
        calls = self.calls_on(line)
        out: list[PhoneAction] = []
        for call in calls:
            if call.held or call.state == "waiting":
                continue
            del self.calls[call.call]
            if call.call in self.agent.sessions:
                self.agent.hangup(call.call, now)  # BYE, or CANCEL before an answer
            if call.media is not None:
                out.append(DetachMedia(line, call.call))
        left = next((c for c in calls if c.held or c.state == "waiting"), None)
        if left is not None:
            out += self._ring_back(left, now)
        return out

    def _ring_back(self, call: Call, now: float) -> list[PhoneAction]:
        """The subscriber hung up with a call on hold or waiting: ring to hand it over."""
        if call.held:
            call.recalling = True
        else:
            call.state = "ringing"  # still unanswered: lifting answers it as any incoming call
        log.info("line %d: ringing back for %s call %s", call.line,
                 "held" if call.held else "waiting", call.call)
        when = self.local_time() if self.local_time is not None else None
        cid = call.caller or CallerId(number=call.number or None, when=when)
        cid = dataclasses.replace(cid, when=when)
        fxs = self.lines[call.line].fxs
        cadence = fxs.profile.ring_for(call.alert_info).cadence
        return self._fxs(call.line, lambda f: f.ring(cid, cadence, now), now)

    def _flash(self, line: int, now: float) -> list[PhoneAction]:
        """Hook flash: take the waiting call (the talking one goes on hold), or swap between
        the talking and the held call, or take back the held one when alone with it."""
        calls = self.calls_on(line)
        waiting = next((c for c in calls if c.state == "waiting"), None)
        held = next((c for c in calls if c.held), None)
        talking = self.talking_on(line)
        if waiting is None and held is None:
            return []  # a flash in a single call: no feature for it yet
        out: list[PhoneAction] = []
        if talking is not None:
            if talking.state != "connected":
                return []  # the other call is not up yet: nothing to swap to
            out += self._hold(talking, now)
        if waiting is not None:
            log.info("line %d: flash answers waiting call %s", line, waiting.call)
            self._take_up(waiting, now)
            return out
        assert held is not None
        return out + self._resume(held, now)

    def _hold(self, call: Call, now: float) -> list[PhoneAction]:
        call.held = True
        if call.call in self.agent.sessions:
            self.agent.hold(call.call, now)  # re-INVITE a=sendonly; MediaChanged follows
        return [DetachMedia(call.line, call.call)] if call.media is not None else []

    def _resume(self, call: Call, now: float) -> list[PhoneAction]:
        """Off hold: re-INVITE a=sendrecv; the media is attached as it is now and again when
        the far end's answer (MediaChanged) says how it flows."""
        call.held = call.recalling = False
        if call.call in self.agent.sessions:
            self.agent.resume(call.call, now)
        return [self._attach(call, early=False)] if call.media is not None else []

    def _digit(self, line: int, event: Digit, now: float) -> list[PhoneAction]:
        call = self.talking_on(line)
        if call is None or call.media is None:
            return []
        setup = self.lines[line]
        if setup.dtmf == "info" and call.state == "connected" and call.call in self.agent.sessions:
            self.agent.send_dtmf(call.call, event.digit, setup.digit_ms, now)
        elif setup.dtmf == "rfc4733" and call.media.telephone_event_pt is not None:
            return [SendDigit(line, call.call, event.digit, setup.digit_ms)]
        return []  # in band: the digit is in the audio already

    # --- SIP events -------------------------------------------------------------------------

    def sip_event(self, event: object, now: float) -> list[PhoneAction]:
        """An event from the agent; those that are not about calls are ignored."""
        if isinstance(event, IncomingCall):
            return self._incoming(event, now)
        call = self.calls.get(getattr(event, "call", ""))
        if call is None:
            return []  # a call the phone already let go of (hung up, refused)
        if isinstance(event, CallProgress):
            return self._progress(call, event, now)
        if isinstance(event, CallAnswered):
            return self._answered(call, event, now)
        if isinstance(event, MediaChanged):
            call.media = event.media
            if call.held:
                return []  # the hold's answer: its stream stays off the line
            return [self._attach(call, early=False)]
        if isinstance(event, CallEnded):
            return self._ended(call, event, now)
        return []

    def _incoming(self, event: IncomingCall, now: float) -> list[PhoneAction]:
        mine = [i for i, s in self.lines.items() if s.account == event.account]
        if not mine:
            log.info("call for account %s refused 480: no line uses it", event.account)
            self.agent.reject(event.call, 480, "Temporarily Unavailable", now)
            return []
        free = [i for i in mine if not self.lines[i].do_not_disturb and self.call_on(i) is None
                and self.lines[i].fxs.state is LineState.IDLE]
        when = self.local_time() if self.local_time is not None else None
        cid = caller_id(event.caller, event.asserted_identity, event.privacy, when)
        if not free:
            waiting = next((i for i in mine if self._can_wait(i)), None)
            if waiting is not None:
                return self._call_waiting(waiting, event, cid, now)
            # Off hook, in a call without call waiting (or with a call already waiting or
            # held), or do-not-disturb on every line.
            log.info("call for account %s refused 486: lines busy or do-not-disturb",
                     event.account)
            self.agent.reject(event.call, 486, "Busy Here", now)
            return []
        line = free[0]
        fxs = self.lines[line].fxs
        ring = fxs.profile.ring_for(event.alert_info)
        out = self._fxs(line, lambda f: f.ring(cid, ring.cadence, now), now)
        if fxs.state is not LineState.RINGING:
            self.agent.reject(event.call, 486, "Busy Here", now)
            return out
        self.calls[event.call] = Call(event.call, line, "incoming", "ringing", cid.number or "",
                                      caller=cid, alert_info=event.alert_info)
        self.agent.ring(event.call, now)
        return out

    def _can_wait(self, line: int) -> bool:
        """Call waiting applies: on for the line, which is in exactly one call, talking."""
        setup = self.lines[line]
        if not setup.call_waiting or setup.do_not_disturb:
            return False
        calls = self.calls_on(line)
        return (len(calls) == 1 and calls[0].state == "connected" and not calls[0].held
                and setup.fxs.state is LineState.CONNECTED)

    def _call_waiting(self, line: int, event: IncomingCall, cid: CallerId,
                      now: float) -> list[PhoneAction]:
        """A second call during a call: 180 to the caller, the call-waiting signal (tone, CAS,
        off-hook caller ID after the phone's ACK) to the subscriber; a flash takes it."""
        log.info("line %d: call waiting %s", line, event.call)
        self.calls[event.call] = Call(event.call, line, "incoming", "waiting", cid.number or "",
                                      caller=cid, alert_info=event.alert_info)
        self.agent.ring(event.call, now)
        return self._fxs(line, lambda f: f.call_waiting(cid, now), now)

    def _progress(self, call: Call, event: CallProgress, now: float) -> list[PhoneAction]:
        if call.direction != "outgoing" or call.state not in ("calling", "early"):
            return []
        call.state = "early"
        if event.early_media is not None:
            # The far end plays its own ringback or announcement: ours must stop (RFC 3960).
            call.media = event.early_media
            out = self._fxs(call.line, lambda f: f.stop_tone(now), now)
            return [*out, self._attach(call, early=True)]
        if call.media is None and event.status in (180, 183):
            return self._fxs(call.line, lambda f: f.play("ringback", now), now)
        return []

    def _answered(self, call: Call, event: CallAnswered, now: float) -> list[PhoneAction]:
        out: list[PhoneAction] = []
        if call.direction == "outgoing" and call.state in ("calling", "early"):
            out += self._fxs(call.line, lambda f: f.call_connected(now), now)
        call.state = "connected"
        if call.media == event.media:
            return out  # the early media stream simply goes on (same SSRC, same sequence)
        call.media = event.media
        return [*out, self._attach(call, early=False)]

    def _ended(self, call: Call, event: CallEnded, now: float) -> list[PhoneAction]:
        del self.calls[call.call]
        log.info("line %d: call ended %d %s (%s)", call.line, event.status, event.reason,
                 event.by)
        out: list[PhoneAction] = []
        if call.media is not None and not call.held:
            out.append(DetachMedia(call.line, call.call))
        others = self.calls_on(call.line)
        if call.state == "waiting":  # the waiting caller gave up: no more call-waiting signal
            return out + self._fxs(call.line, lambda f: f.stop_call_waiting(now), now)
        if call.held and not call.recalling:
            if others:
                return out  # the held party left; the subscriber talks on undisturbed
            return out + self._fxs(call.line, lambda f: f.far_end_disconnected(now), now)
        if call.state == "ringing" or call.recalling:
            return out + self._fxs(call.line, lambda f: f.stop_ring(now), now)
        if others and call.state in ("answering", "connected"):
            # The talking party left with another call held or waiting: that call stays (a
            # flash takes it, hanging up rings it back); the line stays in its call.
            return out
            return out + self._fxs(call.line, lambda f: f.stop_ring(now), now)
        if call.state in ("answering", "connected"):
            return out + self._fxs(call.line, lambda f: f.far_end_disconnected(now), now)
        tone = tone_for_status(event.status) or "congestion"
        return out + self._fxs(call.line, lambda f: f.play(tone, now), now)

    # --- plumbing ---------------------------------------------------------------------------

    def _attach(self, call: Call, early: bool) -> AttachMedia:
        assert call.media is not None
        return AttachMedia(call.line, call.call, call.media, self.lines[call.line].rtp, early)

    def _fxs(self, line: int, request: Callable[[FxsLine], list[LineOutput]],
             now: float) -> list[PhoneAction]:
        return self._drive(line, request(self.lines[line].fxs), now)

    def _drive(self, line: int, outputs: list[LineOutput], now: float) -> list[PhoneAction]:
        """Line commands become `DriveLine` actions; line events are acted on where they
        fall, so what the phone does in answer comes after the commands before it."""
        out: list[PhoneAction] = []
        commands: list[LineCommand] = []
        for output in outputs:
            if isinstance(output, LineCommand):
                commands.append(output)
                continue
            if commands:
                out.append(DriveLine(line, tuple(commands)))
                commands = []
            if isinstance(output, LineEvent):
                out += self.line_event(line, output, now)
        if commands:
            out.append(DriveLine(line, tuple(commands)))
        return out
