"""The call controller: analog line events and SIP call events in, line/SIP/media actions out.

Each entry point takes `now` and returns the `PhoneAction`s to carry out, in order; SIP requests
are made on the `UserAgent` directly (it is as pure as this class). Line events can arrive two
ways: the phone drives each `FxsLine` itself (`hook`, `dtmf`, `timer`), or a runner that already
drives it passes the `LineEvent`s it produced to `line_event`. Either way, the line commands the
phone's own requests produce (ringing, tones, answer supervision) come back as `DriveLine`.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable, Mapping

from tipring.line.fxs import FxsLine, LineState
from tipring.line.signals import (
    Answered,
    DialedNumber,
    Digit,
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
        return []  # OffHook (the line gives dial tone), DialInvalid/DialBarred (reorder), Flash

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
        call = self.call_on(line)
        if call is None or call.direction != "incoming" or call.state != "ringing":
            return []
        call.state = "answering"
        if call.call in self.agent.sessions:  # else a CANCEL crossed the pick-up: CallEnded next
            self.agent.answer(call.call, self.lines[line].policy(), now)  # CallAnswered follows
        return []

    def _hung_up(self, line: int, now: float) -> list[PhoneAction]:
        call = self.call_on(line)
        if call is None:
            return []
        del self.calls[call.call]
        if call.call in self.agent.sessions:
            self.agent.hangup(call.call, now)  # BYE, or CANCEL before an answer
        return [DetachMedia(line, call.call)] if call.media is not None else []

    def _digit(self, line: int, event: Digit, now: float) -> list[PhoneAction]:
        call = self.call_on(line)
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
        if not free:
            # Off hook (call waiting is not built yet) or do-not-disturb on every line.
            log.info("call for account %s refused 486: lines busy or do-not-disturb",
                     event.account)
            self.agent.reject(event.call, 486, "Busy Here", now)
            return []
        line = free[0]
        fxs = self.lines[line].fxs
        when = self.local_time() if self.local_time is not None else None
        cid = caller_id(event.caller, event.asserted_identity, event.privacy, when)
        ring = fxs.profile.ring_for(event.alert_info)
        out = self._fxs(line, lambda f: f.ring(cid, ring.cadence, now), now)
        if fxs.state is not LineState.RINGING:
            self.agent.reject(event.call, 486, "Busy Here", now)
            return out
        self.calls[event.call] = Call(event.call, line, "incoming", "ringing", cid.number or "")
        self.agent.ring(event.call, now)
        return out

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
        if call.media is not None:
            out.append(DetachMedia(call.line, call.call))
        if call.state == "ringing":
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
