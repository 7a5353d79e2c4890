"""The FXS line state machine: what the analog phone hears and what its subscriber asks for.

Sans-IO like h11: inputs are hook edges, DTMF digits from the DSP, timer ticks and requests from
the phone layer, each with `now`; outputs are an ordered list of `LineCommand`s (for the adapter
that drives the SLIC and the line audio) and `LineEvent`s (for the phone layer). `next_deadline()`
says when to call `timer()` next. Nothing here reads a clock or touches hardware.

States: IDLE (on hook) -> RINGING (with caller ID per the region) -> CONNECTED on ring trip; or
IDLE -> DIAL_TONE on lift -> DIALING (digit map) -> CALL_PROCEEDING -> CONNECTED, with
CALL_WAITING (tone, CAS, ACK, off-hook caller ID) inside a call, RECEIVER_OFF_HOOK (reorder,
then howler, then silence) when the phone is left off hook, and PARKED after the far end hung up.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from typing import Literal

from tipring.hal.api import Linefeed, RingCadence
from tipring.media.dsp import CallerId

from . import callerid
from .callwaiting import CallWaitingAlert, CallWaitingTiming
from .digitmap import DigitMap, Match, Outcome
from .jclip import NttCallerId
from .jclip import Outcome as NttOutcome
from .pulse import HookDecoder, HookFlash, HookSignal, HungUp, Lifted, PulseDigit
from .regions import AlertingSignal, CallerIdStandard, CallerIdTiming, RegionProfile
from .signals import (
    Answered,
    DialBarred,
    DialedNumber,
    DialInvalid,
    Digit,
    Flash,
    LineCommand,
    LineOutput,
    MuteFarEnd,
    OffHook,
    OnHook,
    PlayTone,
    SendCallerId,
    SetLinefeed,
    StopRing,
    StopTone,
)
from .tonespec import cadence_plan
from .vmwi import VmwiFormat, VmwiSender, vmwi_plan

log = logging.getLogger(__name__)

DisconnectSignal = Literal["open-loop", "reversal", "none"]
AfterDisconnect = Literal["dial", "busy", "silence"]
_REVERSAL_REGIONS = frozenset({"DE", "FR", "IT", "ES", "NL", "SE"})  # CEPT: clear by reversal


class LineState(enum.Enum):
    IDLE = "idle"
    RINGING = "ringing"
    DIAL_TONE = "dial-tone"
    DIALING = "dialing"
    CALL_PROCEEDING = "call-proceeding"
    CONNECTED = "connected"
    CALL_WAITING = "call-waiting"
    RECEIVER_OFF_HOOK = "receiver-off-hook"
    PARKED = "parked"


@dataclass(frozen=True)
class LineSettings:
    """Per-line behaviour a user or the region may change; None = the region's value."""

    flash_min_s: float | None = None
    flash_max_s: float | None = None
    caller_id: CallerIdStandard | None = None
    digit_gap_s: float = 0.15  # rotary: a make longer than this ends the digit
    pulse_break_max_s: float = 0.1
    dial_tone_timeout_s: float = 15.0  # off hook without a digit -> permanent signal
    reorder_s: float = 10.0  # permanent signal (reorder) before the howler
    howler_s: float = 60.0  # receiver off-hook tone, then silence
    disconnect: DisconnectSignal | None = None  # far end hung up: how the line says so
    open_loop_s: float = 0.9  # CPC / open-loop disconnect (ATAs: 0.5-1 s; phones need > 350 ms)
    after_disconnect: AfterDisconnect | None = None
    playout_delay_s: float = 0.04  # audio path latency: caller-ID guards allow for it
    cw_sas_to_cas_s: float = 0.0  # CAS follows the call-waiting tone at once
    cw_ack_window_s: float = 0.25  # CAS end -> ACK (GR-30 160 ms, plus playout and detection)
    cw_ack_to_data_s: float = 0.1  # ACK -> FSK (GR-30: 50..500 ms)
    vmwi_alert: AlertingSignal | None = None  # None: the standard's own (see line/vmwi.py)
    vmwi_format: VmwiFormat = "mdmf"  # Bellcore only: "sdmf" for phones older than MDMF
    vmwi_lamp: bool = True  # False: the stutter dial tone only (a phone confused by the data)


def _rounded(t: float) -> float:
    return round(t, 9)


class FxsLine:
    """One FXS port's line logic. All methods return the outputs to act on, in order."""

    def __init__(self, profile: RegionProfile, digit_map: DigitMap,
                 settings: LineSettings | None = None) -> None:
        self.profile = profile
        self.digit_map = digit_map
        self.settings = settings = settings or LineSettings()
        self.flash_min_s = (settings.flash_min_s if settings.flash_min_s is not None
                            else profile.flash_min_ms / 1000)
        self.flash_max_s = (settings.flash_max_s if settings.flash_max_s is not None
                            else profile.flash_max_ms / 1000)
        self.caller_id_timing = callerid.timing_for(profile, settings.caller_id)
        self.disconnect: DisconnectSignal = settings.disconnect or (
            "reversal" if profile.code in _REVERSAL_REGIONS else "open-loop")
        self.after_disconnect: AfterDisconnect = settings.after_disconnect or (
            "dial" if profile.code in ("US", "CA") else "busy")
        self.hook_decoder = HookDecoder(profile.pulse_mapping, flash_min_s=self.flash_min_s,
                                        flash_max_s=self.flash_max_s,
                                        digit_gap_s=settings.digit_gap_s,
                                        pulse_break_max_s=settings.pulse_break_max_s)
        self.state = LineState.IDLE
        self.messages_waiting = False
        self.recall = False  # a call is held for a transfer or 3-way call: flash goes back to it
        # The phone is counting hook changes (the voice menu's password reset): a lift gets
        # no dial tone, and a flash is reported (set together with `recall`).
        self.quiet_lift = False
        self.dialled = ""
        self.tone: str | None = None  # the tone playing now (for status and tests)
        self._deadline: float | None = None  # the state's own timer
        self._ring_steps: list[tuple[float, tuple[LineCommand, ...]]] = []
        self._cw: CallWaitingAlert | None = None
        self._roh_phase: str | None = None  # "reorder" / "howler" / "silent"
        self._open_loop = False
        self._reversed = False
        self._wetting = callerid.WettingPulseFilter()
        self._ntt: NttCallerId | None = None  # NTT number display under way (JP)
        self._vmwi = VmwiSender(self._vmwi_plan, settings.playout_delay_s)

    # -- inputs from the hardware ----------------------------------------------------------------

    def hook(self, off_hook: bool, at: float) -> list[LineOutput]:
        """A debounced hook edge from the SLIC, with the time it happened."""
        out = self._due(at)
        intercepted = self._caller_id_edge(off_hook, at)
        if intercepted is not None:
            return out + intercepted  # part of a caller-ID exchange, not a lift or hang-up
        return out + self._hook_edge(off_hook, at)

    def dtmf(self, digit: str, at: float) -> list[LineOutput]:
        """A DTMF digit from the line's detector (reported at its start)."""
        out = self._due(at)
        if self._cw is not None and self._cw.dtmf(digit, at):
            return out  # the ACK, and anything while the far end is cut off, stays local
        out += self._digit(digit, at, "dtmf")
        return out

    def timer(self, now: float) -> list[LineOutput]:
        """Run whatever is due by `now`; call at `next_deadline()` (earlier calls are harmless)."""
        return self._due(now)

    def next_deadline(self) -> float | None:
        cw = self._cw.deadline if self._cw is not None else None
        times = [t for t in (self._deadline, self.hook_decoder.next_deadline(), cw,
                             self._wetting.deadline(), self._vmwi.deadline(self._vmwi_idle()),
                             self._ntt.deadline if self._ntt is not None else None)
                 if t is not None]
        if self._ring_steps:
            times.append(self._ring_steps[0][0])
        return min(times) if times else None

    # -- requests from the phone layer ---------------------------------------------------------

    def ring(self, caller_id: CallerId | None, cadence: RingCadence | None,
             now: float) -> list[LineOutput]:
        """Ring the idle phone, with caller ID placed per the region's standard."""
        out = self._due(now)
        if self.state is not LineState.IDLE:
            log.info("ring refused: line is %s", self.state.value)
            return out
        out += self._noted(self._vmwi.abort())  # a call outranks the lamp: it is sent later
        cadence = cadence or self.profile.ring
        if caller_id is not None and self.caller_id_timing.standard == "ntt":
            return out + self._ring_ntt(caller_id, cadence, now)
        burst = None
        if caller_id is not None:
            burst = callerid.caller_id_burst(self.profile, self.caller_id_timing.standard,
                                             caller_id, on_hook=True)
        plan = callerid.ring_plan(cadence, self.caller_id_timing, burst,
                                  self.settings.playout_delay_s)
        self.state = LineState.RINGING
        self._ring_steps = [(_rounded(now + step.offset_s), step.commands) for step in plan]
        self._open_wetting_window(now, self.caller_id_timing if burst is not None else None)
        return out + self._due(now)

    def stop_ring(self, now: float) -> list[LineOutput]:
        """The caller gave up (or another device answered): stop ringing and caller ID."""
        out = self._due(now)
        if self.state is not LineState.RINGING:
            return out
        self._ring_steps = []
        self._ntt = None
        self.state = LineState.IDLE
        return [*out, StopRing(), *self._silence(), SetLinefeed(Linefeed.FORWARD_ACTIVE)]

    def call_connected(self, now: float) -> list[LineOutput]:
        """The far end answered an outgoing call (reverse polarity on answer in CEPT regions)."""
        out = self._due(now)
        if self.state not in (LineState.CALL_PROCEEDING, LineState.DIALING):
            return out
        self._enter(LineState.CONNECTED)
        out += self._silence()
        if self.disconnect == "reversal" and not self._reversed:
            self._reversed = True
            out.append(SetLinefeed(Linefeed.REVERSE_ACTIVE))
        return out

    def play(self, tone_name: str, now: float) -> list[LineOutput]:
        """Play a region tone (ringback, busy, congestion, sit, ...) while the phone is off hook."""
        out = self._due(now)
        if not self.hook_decoder.off_hook or self.state is LineState.RINGING:
            return out
        return out + self._tone(tone_name)

    def stop_tone(self, now: float) -> list[LineOutput]:
        return self._due(now) + self._silence()

    def call_waiting(self, caller_id: CallerId | None, now: float) -> list[LineOutput]:
        """A second call: call-waiting beep, then (with caller ID) CAS, ACK and off-hook FSK."""
        out = self._due(now)
        if self.state is not LineState.CONNECTED:
            return out
        out += self._end_call_waiting()
        settings = self.settings
        self._cw = CallWaitingAlert(self.profile, self.caller_id_timing.standard, caller_id,
                                    CallWaitingTiming(settings.cw_sas_to_cas_s,
                                                      settings.cw_ack_window_s,
                                                      settings.cw_ack_to_data_s,
                                                      settings.playout_delay_s))
        self.state = LineState.CALL_WAITING
        return out + self._noted(self._cw.start(now))

    def stop_call_waiting(self, now: float) -> list[LineOutput]:
        """The waiting caller gave up or was answered elsewhere: no more call-waiting beeps."""
        return self._due(now) + self._end_call_waiting()

    def far_end_disconnected(self, now: float) -> list[LineOutput]:
        """The other party hung up: signal the disconnect, then dial tone, busy or silence."""
        out = self._due(now)
        if self.state not in (LineState.CONNECTED, LineState.CALL_WAITING,
                              LineState.CALL_PROCEEDING):
            return out
        out += [*self._end_call_waiting(), *self._silence()]
        self._enter(LineState.PARKED)
        if self.disconnect == "open-loop":
            self._open_loop = True
            self._deadline = _rounded(now + self.settings.open_loop_s)
            out.append(SetLinefeed(Linefeed.OPEN))
            return out
        if self.disconnect == "reversal":
            self._reversed = not self._reversed
            out.append(SetLinefeed(Linefeed.REVERSE_ACTIVE if self._reversed
                                   else Linefeed.FORWARD_ACTIVE))
        return out + self._after_disconnect(now)

    def recall_dial(self, now: float, *, recall: bool = True) -> list[LineOutput]:
        """Hook flash in a call: the phone put the call on hold; give recall dial tone (the
        stutter form) so the subscriber can dial a second party. While `recall` is set, a
        flash before the next call is up reports `Flash` (the phone takes the held call back)
        instead of restarting the dialling. With `recall=False` it is the confirmation after
        a star code: the same stutter, then dialling as after lifting the handset."""
        out = self._due(now)
        if not self.hook_decoder.off_hook or self.state in (LineState.IDLE, LineState.RINGING):
            return out
        out += self._end_call_waiting()
        self.recall = recall
        self._enter(LineState.DIAL_TONE)
        self._deadline = _rounded(now + self.settings.dial_tone_timeout_s)
        return out + self._tone("stutter_dial")

    def back_to_call(self, now: float) -> list[LineOutput]:
        """The subscriber is in a call again (the held call resumed, a conference formed, a
        transfer handed over): stop any tone and leave dialling."""
        out = self._due(now)
        self.recall = False
        if not self.hook_decoder.off_hook or self.state in (
                LineState.IDLE, LineState.RINGING, LineState.CONNECTED, LineState.CALL_WAITING):
            return out  # already in the call (a swap): nothing on the line changes
        self._enter(LineState.CONNECTED)
        return out + self._silence()

    def message_waiting(self, on: bool, now: float) -> list[LineOutput]:
        """Voicemail waiting or not (a SIP message-summary NOTIFY): the dial tone stutters while
        it is, and the phone's lamp is set with on-hook data when the line is idle (now, or once
        the call or ringing in progress is over; see line/vmwi.py)."""
        out = self._due(now)
        self.messages_waiting = on
        self._vmwi.want(on, now)
        return out + self._due(now)

    def reset(self, now: float, off_hook: bool = False) -> list[LineOutput]:
        """Back to a known state (after a config change or a driver restart)."""
        self.hook_decoder.reset(off_hook)
        self._ring_steps = []
        self._cw = None
        self.recall = False
        self._vmwi.abort()
        self._wetting.clear()
        self._ntt = None
        self._enter(LineState.IDLE)
        self._reversed = False
        self._open_loop = False
        out: list[LineOutput] = [StopRing(), *self._silence(), MuteFarEnd(False),
                                 SetLinefeed(Linefeed.FORWARD_ACTIVE)]
        if off_hook:
            out += self._dial_tone_state(now)
        return out

    # -- internals ----------------------------------------------------------------------------

    def _due(self, now: float) -> list[LineOutput]:
        out: list[LineOutput] = []
        while True:
            for signal in self.hook_decoder.expire(now):
                out += self._hook_signal(signal)
            if self._ring_steps and self._ring_steps[0][0] <= now + 1e-9:
                _, commands = self._ring_steps.pop(0)
                out += self._noted(list(commands))
                continue
            cw = self._cw
            if cw is not None and cw.deadline is not None and cw.deadline <= now + 1e-9:
                out += self._noted(cw.expire(cw.deadline))
                if self.state is LineState.CALL_WAITING and not cw.interrupting:
                    self.state = LineState.CONNECTED
                if cw.phase == "idle":
                    self._cw = None
                continue
            if self._deadline is not None and self._deadline <= now + 1e-9:
                at, self._deadline = self._deadline, None
                out += self._expired(at)
                continue
            extra = self._due_line_signalling(now)
            if extra:
                out += extra
                continue
            return out

    def _due_line_signalling(self, now: float) -> list[LineOutput]:
        """A held off-hook that outlasted a wetting pulse; the VMWI burst's next step."""
        out: list[LineOutput] = []
        lifted = self._wetting.expire(now)
        if lifted is not None:
            out += self._hook_edge(True, lifted)
        ntt = self._ntt
        if ntt is not None and ntt.deadline is not None and ntt.deadline <= now + 1e-9:
            out += self._ntt_outcome(ntt.expire(ntt.deadline))
        commands = self._vmwi.due(now, self._vmwi_idle())
        if self._vmwi.wetting_window is not None:
            self._wetting.open(*self._vmwi.wetting_window)
        return out + self._noted(commands)

    def _enter(self, state: LineState) -> None:
        self.state = state
        self._deadline = None
        self._roh_phase = None
        if state in (LineState.IDLE, LineState.DIAL_TONE):
            self.dialled = ""

    def _noted(self, commands: list[LineCommand]) -> list[LineOutput]:
        """Pass commands on, remembering what is sounding (so it can be silenced later)."""
        for command in commands:
            if isinstance(command, PlayTone):
                self.tone = command.name
            elif isinstance(command, SendCallerId):
                self.tone = "caller-id"
            elif isinstance(command, StopTone):
                self.tone = None
        return list(commands)

    def _end_call_waiting(self) -> list[LineOutput]:
        cw, self._cw = self._cw, None
        if self.state is LineState.CALL_WAITING:
            self.state = LineState.CONNECTED
        return [] if cw is None else self._noted(cw.stop())

    def _silence(self) -> list[LineOutput]:
        if self.tone is None:
            return []
        self.tone = None
        return [StopTone()]

    def _tone(self, name: str) -> list[LineOutput]:
        self.tone = name
        return [PlayTone(name, cadence_plan(self.profile.tone(name)))]

    def _hook_signal(self, signal: HookSignal) -> list[LineOutput]:
        if isinstance(signal, Lifted):
            return self._lifted(signal.at)
        if isinstance(signal, HungUp):
            return self._hung_up(signal.at)
        if isinstance(signal, HookFlash):
            return self._flash(signal.at)
        if isinstance(signal, PulseDigit):
            return self._digit(signal.digit, signal.at, "pulse")
        return []

    def _lifted(self, at: float) -> list[LineOutput]:
        if self.state is LineState.RINGING:
            self._ring_steps = []
            self._enter(LineState.CONNECTED)
            out: list[LineOutput] = [StopRing(), *self._silence()]
            out.append(SetLinefeed(Linefeed.FORWARD_ACTIVE))
            return [*out, Answered(at)]
        out = [OffHook(at)]
        hot = self.digit_map.hot_line
        if hot is not None:
            self._enter(LineState.CALL_PROCEEDING)
            return [*out, DialedNumber(hot, "", "hot line")]
        return out + self._dial_tone_state(at)

    def _dial_tone_state(self, at: float) -> list[LineOutput]:
        self._enter(LineState.DIAL_TONE)
        warm = self.digit_map.warm_line
        timeout = self.settings.dial_tone_timeout_s
        if warm is not None and warm.delay_s > 0:
            timeout = min(timeout, warm.delay_s)
        self._deadline = _rounded(at + timeout)
        if self.quiet_lift:
            return []
        return self._tone("stutter_dial" if self.messages_waiting else "dial")

    def _hung_up(self, at: float) -> list[LineOutput]:
        self._ring_steps = []
        self.recall = False
        out = [*self._end_call_waiting(), *self._silence()]
        self._enter(LineState.IDLE)
        if self._reversed or self._open_loop:
            out.append(SetLinefeed(Linefeed.FORWARD_ACTIVE))
        self._reversed = self._open_loop = False
        return [*out, OnHook(at)]

    def _flash(self, at: float) -> list[LineOutput]:
        if self.state in (LineState.DIAL_TONE, LineState.DIALING):
            if self.recall:
                return [*self._silence(), Flash(at)]  # back to the held call
            return self._dial_tone_state(at)  # a flash while dialling starts again
        if self.state in (LineState.CONNECTED, LineState.CALL_WAITING, LineState.CALL_PROCEEDING,
                          LineState.PARKED, LineState.RECEIVER_OFF_HOOK):
            return [*self._end_call_waiting(), Flash(at)]
        return []

    def _digit(self, digit: str, at: float, source: Literal["dtmf", "pulse"]) -> list[LineOutput]:
        if self.state in (LineState.CONNECTED, LineState.CALL_PROCEEDING):
            return [Digit(digit, at, source)]
        if self.state not in (LineState.DIAL_TONE, LineState.DIALING):
            return []
        self.state = LineState.DIALING
        self.dialled += digit
        return self._decide(self.digit_map.match(self.dialled), at)

    def _decide(self, match: Match, at: float) -> list[LineOutput]:
        dialled = self.dialled
        if match.outcome is Outcome.PARTIAL:
            self._deadline = match.deadline(at)
            if match.dial_tone:
                return [] if self.tone == "dial" else self._tone("dial")
            return self._silence()
        if match.outcome is Outcome.COMPLETE:
            self._enter(LineState.CALL_PROCEEDING)
            return [*self._silence(),
                    DialedNumber(match.number or "", dialled, match.rule, match.emergency)]
        event = (DialBarred(dialled, match.rule) if match.outcome is Outcome.BARRED
                 else DialInvalid(dialled))
        return [event, *self._receiver_off_hook(at)]

    def _receiver_off_hook(self, at: float) -> list[LineOutput]:
        self._enter(LineState.RECEIVER_OFF_HOOK)
        self._roh_phase = "reorder"
        self._deadline = _rounded(at + self.settings.reorder_s)
        return self._tone("congestion")

    def _expired(self, at: float) -> list[LineOutput]:
        state = self.state
        if state is LineState.DIAL_TONE:
            warm = self.digit_map.warm_line
            if (warm is not None and warm.number
                    and 0 < warm.delay_s <= self.settings.dial_tone_timeout_s):
                self._enter(LineState.CALL_PROCEEDING)
                return [*self._silence(), DialedNumber(warm.number, "", "warm line")]
            return self._receiver_off_hook(at)
        if state is LineState.DIALING:
            return self._decide(self.digit_map.expire(self.dialled), at)
        if state is LineState.RECEIVER_OFF_HOOK:
            if self._roh_phase == "reorder":
                self._roh_phase = "howler"
                self._deadline = _rounded(at + self.settings.howler_s)
                return self._tone("howler")
            self._roh_phase = "silent"
            return self._silence()
        if state is LineState.PARKED and self._open_loop:
            self._open_loop = False
            return [SetLinefeed(Linefeed.FORWARD_ACTIVE), *self._after_disconnect(at)]
        return []

    def _after_disconnect(self, at: float) -> list[LineOutput]:
        if self.after_disconnect == "dial":
            return self._dial_tone_state(at)
        if self.after_disconnect == "busy":
            self._enter(LineState.RECEIVER_OFF_HOOK)
            self._roh_phase = "reorder"
            self._deadline = _rounded(at + self.settings.reorder_s)
            return self._tone("busy")
        return []

    # -- line signalling without a call: VMWI bursts, wetting pulses ------------------------------

    def _hook_edge(self, off_hook: bool, at: float) -> list[LineOutput]:
        out = self._noted(self._vmwi.abort()) if off_hook else []
        for signal in self.hook_decoder.edge(off_hook, at):
            out += self._hook_signal(signal)
        return out

    def _caller_id_edge(self, off_hook: bool, at: float) -> list[LineOutput] | None:
        """Hook edges that belong to caller ID: a SIN 227 wetting pulse, NTT's primary response
        and release. None: an ordinary edge for the hook decoder."""
        if self._wetting.holds(off_hook, at):
            return []
        if self._ntt is None:
            return None
        outcome = self._ntt.edge(off_hook, at)
        if outcome is None:
            self._ntt = None  # normal ringing now: a lift answers as usual
            return None
        return self._ntt_outcome(outcome)

    def _ring_ntt(self, caller_id: CallerId, cadence: RingCadence,
                  now: float) -> list[LineOutput]:
        self._ntt = NttCallerId(callerid.ntt_caller_id(self.profile, caller_id), cadence,
                                self.settings.playout_delay_s)
        self.state = LineState.RINGING
        return self._noted(self._ntt.start(now))

    def _ntt_outcome(self, outcome: NttOutcome) -> list[LineOutput]:
        out: list[LineOutput] = self._noted(outcome.commands)
        if outcome.answered_at is not None:
            self._ntt = None
            self.hook_decoder.reset(True)
            self._enter(LineState.CONNECTED)
            out.append(Answered(outcome.answered_at))
        return out

    def _vmwi_idle(self) -> bool:
        return (self.state is LineState.IDLE and not self.hook_decoder.off_hook
                and self._wetting.held is None)

    def _vmwi_plan(self, on: bool) -> tuple[list[callerid.RingStep], CallerIdTiming] | None:
        settings = self.settings
        if not settings.vmwi_lamp:
            return None  # as on a line whose standard has no VMWI: the tone tells
        return vmwi_plan(self.caller_id_timing, on, alert=settings.vmwi_alert,
                         fmt=settings.vmwi_format, ring_hz=self.profile.ring.frequency_hz,
                         playout_delay_s=settings.playout_delay_s)

    def _open_wetting_window(self, now: float, timing: CallerIdTiming | None) -> None:
        window = (None if timing is None
                  else callerid.wetting_window(timing, self.settings.playout_delay_s))
        if window is not None:
            self._wetting.open(_rounded(now + window[0]), _rounded(now + window[1]))


__all__ = ["FxsLine", "LineSettings", "LineState"]
