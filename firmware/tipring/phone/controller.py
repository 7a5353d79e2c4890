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

from tipring.config.schema import FeatureCodes
from tipring.line.fxs import FxsLine, LineState
from tipring.media.dsp import Absence, CallerId
from tipring.line.signals import (
    Answered,
    DialedNumber,
    Digit,
    Flash,
    LineCommand,
    LineEvent,
    LineOutput,
    OffHook,
    OnHook,
)
from tipring.sip.agent import UserAgent
from tipring.sip.grammar import SipParseError
from tipring.sip.mailbox import MessageWaiting
from tipring.sip.session import (
    CallAnswered,
    CallEnded,
    CallProgress,
    IncomingCall,
    MediaChanged,
    TransferProgress,
    TransferRequested,
)

from .actions import (
    AttachMedia,
    DetachMedia,
    DriveLine,
    PhoneAction,
    SendDigit,
    StopPrompt,
)
from .callerid import caller_id
from .calls import Call, dial_target
from .causes import INTERCEPTS, NO_SERVICE_TONE, tone_for_status
from .features import recognise
from .announcements import SpokenServices, _first_cycle_s
from .setup import LineSetup
from .subscriber import SubscriberFeatures
from .threeway import ThreeWayCalling
from .voicemenu import DeviceFacts, VoiceMenu


log = logging.getLogger(__name__)


class Phone(ThreeWayCalling, SubscriberFeatures, SpokenServices):
    """The ATA's calls: one `LineSetup` per FXS port, one shared `UserAgent`. The subjects
    beyond plain calls live in their own modules: `threeway` (transfer, three-way calling),
    `subscriber` (star codes, forwarding), `announcements` (voice menu, intercepts)."""

    def __init__(self, agent: UserAgent, lines: Mapping[int, LineSetup], *,
                 local_time: Callable[[], datetime.datetime] | None = None,
                 codes: Mapping[str, str] | None = None,
                 facts: Callable[[], DeviceFacts] | None = None) -> None:
        self.agent = agent
        self.lines = dict(lines)
        self.calls: dict[str, Call] = {}
        # Caller ID carries the local date and time; the runtime injects the wall clock.
        self.local_time = local_time
        self.codes = dict(codes) if codes is not None else FeatureCodes().codes()
        self.conference: set[int] = set()  # lines whose two calls are mixed (three-way call)
        self.last_caller: dict[int, str] = {}  # for call return
        self.last_dialled: dict[int, str] = {}  # for redial
        self._deadlines: dict[tuple[str, str], float] = {}  # (what, call) -> when
        # Why an incoming call was not put through (forwarded, refused), for the call log;
        # the runtime takes each entry as it logs the call.
        self.not_put_through: dict[str, str] = {}
        # The *** voice menu (None: no recorded prompts on this device, so no menu).
        self.facts = facts
        self.menus: dict[int, VoiceMenu] = {}
        self.announcing: set[int] = set()  # lines hearing an intercept after SIT
        self._intercepts: dict[int, tuple[str, ...]] = {}

    def call_on(self, line: int) -> Call | None:
        return next((c for c in self.calls.values() if c.line == line), None)

    def calls_on(self, line: int) -> list[Call]:
        """The line's calls, oldest first: one, or two (call waiting, transfer, three-way)."""
        return [c for c in self.calls.values() if c.line == line]

    def talking_on(self, line: int) -> Call | None:
        """The call the subscriber is in (not held, not waiting, not ringing)."""
        return next((c for c in self.calls_on(line)
                     if not c.held and not c.parked and c.state not in ("waiting", "ringing")),
                    None)

    # --- the phone drives the lines ---------------------------------------------------------

    def hook(self, line: int, off_hook: bool, at: float) -> list[PhoneAction]:
        return self._drive(line, self.lines[line].fxs.hook(off_hook, at), at)

    def dtmf(self, line: int, digit: str, at: float) -> list[PhoneAction]:
        return self._drive(line, self.lines[line].fxs.dtmf(digit, at), at)

    def timer(self, now: float) -> list[PhoneAction]:
        out: list[PhoneAction] = []
        for index, setup in self.lines.items():
            out += self._drive(index, setup.fxs.timer(now), now)
        return out + self.call_timer(now)

    def next_deadline(self) -> float | None:
        deadlines = [d for s in self.lines.values() if (d := s.fxs.next_deadline()) is not None]
        own = self.call_deadline()
        return min([*deadlines, *([own] if own is not None else [])], default=None)

    def call_deadline(self) -> float | None:
        """The phone's own next timer (no-answer forwarding, transfer supervision, the voice
        menu), apart from the lines' (a runtime that drives the lines arms only this one)."""
        menus = [d for m in self.menus.values() if (d := m.next_deadline()) is not None]
        return min([*self._deadlines.values(), *menus], default=None)

    def call_timer(self, now: float) -> list[PhoneAction]:
        out: list[PhoneAction] = []
        for line, menu in list(self.menus.items()):
            due = menu.next_deadline()
            if due is not None and due <= now:
                out += self._menu(line, menu.timer(now), now)
        for key, when in sorted(self._deadlines.items(), key=lambda item: item[1]):
            if when > now or self._deadlines.get(key) != when:
                continue
            del self._deadlines[key]
            what, handle = key
            if what == "announce":
                out += self._announce(int(handle), now)
                continue
            call = self.calls.get(handle)
            if call is None:
                continue
            if what == "no-answer":
                out += self._forward_no_answer(call, now)
            elif what == "transfer":
                log.info("line %d: transfer of %s got no answer", call.line, call.call)
                out += self._transfer_failed(call, now)
            elif what == "release":
                self._let_go(call, now)
        return out

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
        if isinstance(event, OffHook):
            return self._lifted(line, now)
        return []  # DialInvalid/DialBarred (the line plays reorder)

    def _dialled(self, line: int, event: DialedNumber, now: float) -> list[PhoneAction]:
        feature = None if event.emergency else recognise(event.number, self.codes)
        if feature is not None:
            return self._feature(line, feature, now)
        return self._place(line, event.number, now, emergency=event.emergency, rule=event.rule)

    def _place(self, line: int, number: str, now: float, *, emergency: bool = False,
               rule: str = "", anonymous: bool | None = None,
               no_waiting: bool = False) -> list[PhoneAction]:
        setup = self.lines[line]
        account = self._account_for(setup, emergency)
        if account is None:
            log.info("line %d: no account in service, cannot call %s", line, number)
            return self._fxs(line, lambda fxs: fxs.play(NO_SERVICE_TONE, now), now)
        target = dial_target(number, setup.direct_ip)
        # An emergency call always shows who is calling (the answering point calls back).
        hide = not emergency and (setup.hide_caller_id if anonymous is None else anonymous)
        held = next((c for c in self.calls_on(line) if c.held and not c.parked), None)
        slot = self._free_slot(line)
        try:
            call = self.agent.invite(account, target, setup.policy(slot), now,
                                     **({"anonymous": True} if hide else {}))
        except (SipParseError, ValueError) as error:
            log.info("line %d: cannot call %r: %s", line, target, error)
            return self._fxs(line, lambda fxs: fxs.play("congestion", now), now)
        log.info("line %d: calling %s (%s)%s%s%s", line, target, rule,
                 " EMERGENCY" if emergency else "", " anonymously" if hide else "",
                 f" while {held.call} is held" if held is not None else "")
        if not emergency:
            self.last_dialled[line] = number
        self.calls[call] = Call(call, line, "outgoing", "calling", number, emergency,
                                account=account, slot=slot, no_waiting=no_waiting,
                                consult_for=held.call if held is not None else None)
        return []

    def _account_for(self, setup: LineSetup, emergency: bool) -> str | None:
        """The account a call out goes on: the line's, or its fallback while the line's
        registration has failed; an emergency call takes any account rather than none."""
        accounts = self.agent.accounts
        primary = setup.account if setup.account in accounts else None
        fallback = setup.fallback_account if setup.fallback_account in accounts else None
        for account in (primary, fallback):
            if account is not None and self._in_service(account):
                return account
        if emergency:
            return primary or fallback or next(iter(accounts), None)
        return None

    def _in_service(self, account: str) -> bool:
        """False once the account's registration failed (the phone then hears congestion at
        once instead of silence until an INVITE times out); an account never registered (no
        registrar: direct peering) is in service."""
        registration = getattr(self.agent, "registration", None)
        if registration is None:
            return True
        try:
            return getattr(registration(account), "state", "") != "failed"
        except KeyError:
            return False

    def _free_slot(self, line: int) -> int:
        used = {c.slot for c in self.calls_on(line)}
        return 0 if 0 not in used else 1

    # --- answering, hanging up, flash -------------------------------------------------------

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
        self._deadlines.pop(("no-answer", call.call), None)
        if call.call in self.agent.sessions:  # else a CANCEL crossed the pick-up: CallEnded next
            self.agent.answer(call.call, self.lines[call.line].policy(call.slot), now)

    def _hung_up(self, line: int, now: float) -> list[PhoneAction]:
        stop: list[PhoneAction] = []
        if line in self.announcing:
            self.announcing.discard(line)
            stop.append(StopPrompt(line))
        menu = self.menus.get(line)
        if menu is not None:
            # During the password reset's hook sequence a hang-up is part of it.
            return [StopPrompt(line), *self._menu(line, menu.hung_up(now), now)]
        calls = [c for c in self.calls_on(line) if not c.parked]
        if stop and not calls:
            return stop
        self.conference.discard(line)
        held = next((c for c in calls if c.held and not c.recalling), None)
        consult = next((c for c in calls if held is not None and c.consult_for == held.call),
                       None)
        if held is not None and consult is not None and held.transfer is None:
            transferred = self._transfer(held, consult, now)
            if transferred is not None:
                return transferred
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
        call.parked = False
        log.info("line %d: ringing back for %s call %s", call.line,
                 "held" if call.held else "waiting", call.call)
        when = self.local_time() if self.local_time is not None else None
        cid = call.caller or CallerId(number=call.number or None, when=when)
        cid = dataclasses.replace(cid, when=when)
        fxs = self.lines[call.line].fxs
        cadence = fxs.profile.ring_for(call.alert_info).cadence
        return self._fxs(call.line, lambda f: f.ring(cid, cadence, now), now)

    def _flash(self, line: int, now: float) -> list[PhoneAction]:
        """Hook flash. In a three-way call: drop the party added last. While consulting (a
        call held, a second one placed from recall dial tone): the second answered -> join
        all three; not answered -> abandon it and go back. With call waiting: take the waiting
        call (the talking one goes on hold), or swap between the talking and the held call.
        Alone in a call: hold it and give recall dial tone (transfer or three-way call next).
        Alone with a held call: take it back."""
        menu = self.menus.get(line)
        if menu is not None:
            return self._menu(line, menu.flashed(now), now)
        calls = [c for c in self.calls_on(line) if not c.parked]
        waiting = next((c for c in calls if c.state == "waiting"), None)
        held = next((c for c in calls if c.held), None)
        talking = self.talking_on(line)
        consult = next((c for c in calls if held is not None and c.consult_for == held.call),
                       None)
        if line in self.conference:
            last = next((c for c in reversed(calls) if c.consult_for is not None), calls[-1])
            return self._drop(last, now)
        if consult is not None and held is not None:
            if consult.state == "connected":
                return self._join(held, consult, now)
            log.info("line %d: flash abandons the call to %s", line, consult.number)
            out = self._drop(consult, now)
            return out + self._resume(held, now)
        if waiting is None and held is None:
            if talking is not None and talking.state == "connected":
                log.info("line %d: flash holds %s for a second call", line, talking.call)
                out = self._hold(talking, now)
                return out + self._fxs(line, lambda f: f.recall_dial(now), now)
            return []
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
        out = self._fxs(call.line, lambda f: f.back_to_call(now), now)
        return out + ([self._attach(call, early=False)] if call.media is not None else [])

    def _drop(self, call: Call, now: float) -> list[PhoneAction]:
        """End one of the line's calls from our side (the others stay)."""
        self.calls.pop(call.call, None)
        if call.line in self.conference:
            self.conference.discard(call.line)
            log.info("line %d: three-way call ends, %s leaves", call.line, call.call)
        if call.call in self.agent.sessions:
            self.agent.hangup(call.call, now)
        return [DetachMedia(call.line, call.call)] if call.media is not None and not call.held \
            else []

    def _digit(self, line: int, event: Digit, now: float) -> list[PhoneAction]:
        menu = self.menus.get(line)
        if menu is not None:
            return self._menu(line, menu.digit(event.digit, now), now)
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
        if isinstance(event, MessageWaiting):
            return self._message_waiting(event, now)
        call = self.calls.get(getattr(event, "call", ""))
        if call is None:
            return []  # a call the phone already let go of (hung up, refused)
        if isinstance(event, CallProgress):
            return self._progress(call, event, now)
        if isinstance(event, CallAnswered):
            return self._answered(call, event, now)
        if isinstance(event, MediaChanged):
            call.media = event.media
            if call.held or call.parked:
                return []  # the hold's answer: its stream stays off the line
            return [self._attach(call, early=False)]
        if isinstance(event, CallEnded):
            return self._ended(call, event, now)
        if isinstance(event, TransferProgress):
            return self._transfer_progress(call, event, now)
        if isinstance(event, TransferRequested):
            return self._transfer_requested(call, event, now)
        return []

    def _message_waiting(self, event: MessageWaiting, now: float) -> list[PhoneAction]:
        out: list[PhoneAction] = []
        for index, setup in self.lines.items():
            if event.account in (setup.account, setup.fallback_account) and \
                    event.waiting is not None:
                log.info("line %d: messages waiting: %s", index, event.waiting)
                out += self._drive(index, setup.fxs.message_waiting(event.waiting, now), now)
        return out

    def _incoming(self, event: IncomingCall, now: float) -> list[PhoneAction]:
        if event.replaces is not None and event.replaces in self.calls:
            return self._replacing(event, self.calls[event.replaces], now)
        mine = [i for i, s in self.lines.items()
                if event.account in (s.account, s.fallback_account)]
        if not mine:
            log.info("call for account %s refused 480: no line uses it", event.account)
            self.not_put_through[event.call] = "no line uses the account"
            self.agent.reject(event.call, 480, "Temporarily Unavailable", now)
            return []
        when = self.local_time() if self.local_time is not None else None
        cid = caller_id(event.caller, event.asserted_identity, event.privacy, when)
        first = self.lines[mine[0]]
        if first.forward_all:
            return self._forward(event.call, first.forward_all, "unconditional", now)
        if first.anonymous_rejection and cid.number_absence is Absence.PRIVATE:
            log.info("call %s refused 433: the caller withholds the number", event.call)
            self.not_put_through[event.call] = "refused: the caller withheld the number"
            self.agent.reject(event.call, 433, "Anonymity Disallowed", now)
            return []
        free = [i for i in mine if not self.lines[i].do_not_disturb and self.call_on(i) is None
                and self.lines[i].fxs.state is LineState.IDLE]
        if not free:
            waiting = next((i for i in mine if self._can_wait(i)), None)
            if waiting is not None:
                return self._call_waiting(waiting, event, cid, now)
            # Off hook, in a call without call waiting (or with a call already waiting or
            # held), or do-not-disturb on every line.
            dnd = all(self.lines[i].do_not_disturb for i in mine)
            if first.forward_busy:
                return self._forward(event.call, first.forward_busy,
                                     "do-not-disturb" if dnd else "user-busy", now)
            log.info("call for account %s refused 486: lines busy or do-not-disturb",
                     event.account)
            self.not_put_through[event.call] = "do-not-disturb" if dnd else "line busy"
            self.agent.reject(event.call, 486, "Busy Here", now)
            return []
        line = free[0]
        fxs = self.lines[line].fxs
        ring = fxs.profile.ring_for(event.alert_info)
        out = self._fxs(line, lambda f: f.ring(cid, ring.cadence, now), now)
        if fxs.state is not LineState.RINGING:
            self.agent.reject(event.call, 486, "Busy Here", now)
            return out
        self._presented(line, event, cid, "ringing", now)
        return out

    def _presented(self, line: int, event: IncomingCall, cid: CallerId, state: str,
                   now: float) -> None:
        """A call rings the line or waits on it: 180, the record, call return, no-answer
        forwarding armed."""
        self.calls[event.call] = Call(event.call, line, "incoming", state,  # type: ignore[arg-type]
                                      cid.number or "", caller=cid, alert_info=event.alert_info,
                                      account=event.account, slot=self._free_slot(line))
        if cid.number:
            self.last_caller[line] = cid.number
        setup = self.lines[line]
        if setup.forward_no_answer:
            self._deadlines[("no-answer", event.call)] = now + setup.no_answer_s
        self.agent.ring(event.call, now)

    def _can_wait(self, line: int) -> bool:
        """Call waiting applies: on for the line, which is in exactly one call, talking."""
        setup = self.lines[line]
        if not setup.call_waiting or setup.do_not_disturb:
            return False
        calls = self.calls_on(line)
        return (len(calls) == 1 and calls[0].state == "connected" and not calls[0].held
                and not calls[0].no_waiting and setup.fxs.state is LineState.CONNECTED)

    def _call_waiting(self, line: int, event: IncomingCall, cid: CallerId,
                      now: float) -> list[PhoneAction]:
        """A second call during a call: 180 to the caller, the call-waiting signal (tone, CAS,
        off-hook caller ID after the phone's ACK) to the subscriber; a flash takes it."""
        log.info("line %d: call waiting %s", line, event.call)
        self._presented(line, event, cid, "waiting", now)
        return self._fxs(line, lambda f: f.call_waiting(cid, now), now)

    def _progress(self, call: Call, event: CallProgress, now: float) -> list[PhoneAction]:
        if call.direction != "outgoing" or call.state not in ("calling", "early"):
            return []
        call.state = "early"
        if call.transferred_from is not None and call.transferred_from in self.agent.sessions:
            self.agent.notify_transfer(call.transferred_from, event.status, event.reason, now)
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
        origin = self.calls.get(call.transferred_from or "")
        if origin is not None:
            # The transfer worked: say so to the transferor, who then ends its call with us.
            if origin.call in self.agent.sessions:
                self.agent.notify_transfer(origin.call, 200, "OK", now)
            origin.held = True  # its stream leaves the line; its BYE ends it quietly
            if origin.media is not None:
                out.append(DetachMedia(origin.line, origin.call))
            out += self._fxs(call.line, lambda f: f.stop_tone(now), now)  # our ringback
        if call.media == event.media:
            return out  # the early media stream simply goes on (same SSRC, same sequence)
        call.media = event.media
        if call.held or call.parked:
            return out
        return [*out, self._attach(call, early=False)]

    def _ended(self, call: Call, event: CallEnded, now: float) -> list[PhoneAction]:
        del self.calls[call.call]
        for key in [k for k in self._deadlines if k[1] == call.call]:
            del self._deadlines[key]
        log.info("line %d: call ended %d %s (%s)", call.line, event.status, event.reason,
                 event.by)
        out: list[PhoneAction] = []
        if call.media is not None and not call.held and not call.parked:
            out.append(DetachMedia(call.line, call.call))
        if call.line in self.conference:
            self.conference.discard(call.line)  # the other party and the subscriber talk on
            return out
        if call.parked:
            return out  # the subscriber left it to a transfer: nothing to tell the line
        origin = self.calls.get(call.transferred_from or "")
        if origin is not None and call.state != "connected":
            if origin.call in self.agent.sessions:
                self.agent.notify_transfer(origin.call, event.status or 500, event.reason, now)
            return out + self._fxs(call.line, lambda f: f.stop_tone(now), now)
        others = [c for c in self.calls_on(call.line) if not c.parked]
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
        if call.state in ("answering", "connected"):
            return out + self._fxs(call.line, lambda f: f.far_end_disconnected(now), now)
        tone = tone_for_status(event.status) or "congestion"
        if event.status in INTERCEPTS and self.facts is not None:
            # SIT once, then the recorded intercept, then reorder (`prompt_finished`).
            plan = self.lines[call.line].fxs.profile.tone("sit")
            self._deadlines[("announce", str(call.line))] = now + _first_cycle_s(plan)
            self._intercepts[call.line] = INTERCEPTS[event.status]
        return out + self._fxs(call.line, lambda f: f.play(tone, now), now)

    # --- plumbing ---------------------------------------------------------------------------

    def _attach(self, call: Call, early: bool) -> AttachMedia:
        assert call.media is not None
        return AttachMedia(call.line, call.call, call.media,
                           self.lines[call.line].rtp_for(call.slot), early)

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
