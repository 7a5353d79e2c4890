"""Alerting a subscriber in a call to a second, waiting call (call waiting with caller ID).

Order (GR-30 off-hook data transmission; ETSI EN 300 659-2 is the same shape with V.23): mute the
far end, play the region's call-waiting beep (the subscriber alerting signal), then the CPE
alerting signal (2130 + 2750 Hz, 80 ms). A phone that can show caller ID off hook answers with
DTMF D (or A); only then is the FSK sent, 50-500 ms after the ACK, with no channel seizure and 80
mark bits. No ACK means an ordinary phone: no FSK, which would only be noise in its earpiece.
Afterwards the beep comes back once per period of the region's tone until the call is taken
(flash) or the waiting caller gives up.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from tipring.media.dsp import CallerId

from . import callerid
from .regions import CallerIdStandard, RegionProfile
from .signals import LineCommand, MuteFarEnd, PlayTone, StopTone
from .tonespec import CadencePlan, CadenceSegment, cadence_plan

log = logging.getLogger(__name__)

ACK_DIGITS = frozenset("DA")  # GR-30: the CPE acknowledges CAS with DTMF D (or A)
STEADY_BEEP_S = 0.3  # a call-waiting tone written as steady still beeps this long


@dataclass(frozen=True)
class CallWaitingTiming:
    sas_to_cas_s: float = 0.0  # CAS follows the call-waiting beep at once
    ack_window_s: float = 0.25  # CAS end -> ACK (GR-30 160 ms, plus playout and detection)
    ack_to_data_s: float = 0.1  # ACK -> FSK (GR-30: 50..500 ms)
    playout_delay_s: float = 0.04  # keep the far end muted until the FSK has been heard


def call_waiting_beep(profile: RegionProfile) -> tuple[CadencePlan, float, float | None]:
    """One round of the region's call-waiting tone (its bursts, without the long silence after),
    how long that lasts, and how often it comes back (None: played once)."""
    plan = cadence_plan(profile.call_waiting)
    segments = [s if s.on_s is not None else CadenceSegment(s.components, STEADY_BEEP_S, s.off_s)
                for s in plan.segments]
    last = segments[-1]
    segments[-1] = CadenceSegment(last.components, last.on_s, 0.0)
    length = sum((s.on_s or 0.0) + s.off_s for s in segments)
    period = None
    if plan.repeat_from == 0 and all(s.on_s is not None for s in plan.segments):
        period = length + last.off_s
    return CadencePlan(tuple(segments), None), length, period


def _at(t: float) -> float:
    return round(t, 9)  # deadlines built from sums compare equal to the same instant


class CallWaitingAlert:
    """The alerting for one waiting call; the FXS line feeds it time and DTMF."""

    def __init__(self, profile: RegionProfile, standard: CallerIdStandard,
                 caller: CallerId | None, timing: CallWaitingTiming) -> None:
        self.profile = profile
        self.timing = timing
        self.burst = (None if caller is None else
                      callerid.caller_id_burst(profile, standard, caller, on_hook=False))
        self.beep, self.beep_s, self.period_s = call_waiting_beep(profile)
        self.phase = "idle"  # sas, await-ack, send, data, repeat-wait, repeat-beep
        self.deadline: float | None = None
        self._round_start = 0.0

    @property
    def interrupting(self) -> bool:
        """The far end is cut off for the alerting and caller ID (the line's CALL_WAITING)."""
        return self.phase in ("sas", "await-ack", "send", "data")

    @property
    def sounding(self) -> bool:
        return self.phase not in ("idle", "repeat-wait")

    def start(self, now: float) -> list[LineCommand]:
        self.phase = "sas"
        self._round_start = now
        self.deadline = _at(now + self.beep_s + self.timing.sas_to_cas_s)
        return [MuteFarEnd(True), PlayTone("call_waiting", self.beep)]

    def dtmf(self, digit: str, at: float) -> bool:
        """True if the digit belonged to the alerting (the ACK, or anything while muted)."""
        if not self.interrupting:
            return False
        if self.phase == "await-ack" and digit in ACK_DIGITS:
            self.phase = "send"
            self.deadline = _at(at + self.timing.ack_to_data_s)
        return True

    def expire(self, at: float) -> list[LineCommand]:
        phase = self.phase
        if phase == "sas":
            if self.burst is None:
                return self._between_rounds()
            self.phase = "await-ack"
            self.deadline = _at(at + callerid.CAS_DURATION_S + self.timing.ack_window_s)
            return [PlayTone("cas", callerid.alerting_plan(callerid.CAS_DURATION_S))]
        if phase == "await-ack":
            log.info("no caller-ID ACK from the phone after CAS: no off-hook caller ID")
            return self._between_rounds()
        if phase == "send":
            assert self.burst is not None
            self.phase = "data"
            self.deadline = _at(at + self.burst.duration_s + self.timing.playout_delay_s)
            return [self.burst]
        if phase == "repeat-wait":
            self.phase = "repeat-beep"
            self._round_start = at
            self.deadline = _at(at + self.beep_s)
            return [MuteFarEnd(True), PlayTone("call_waiting", self.beep)]
        return self._between_rounds()

    def stop(self) -> list[LineCommand]:
        """The waiting call was taken or has gone: end any beep or data and restore the far end."""
        sounding = self.sounding
        self.phase = "idle"
        self.deadline = None
        return [StopTone(), MuteFarEnd(False)] if sounding else []

    def _between_rounds(self) -> list[LineCommand]:
        if self.period_s is None:
            self.phase = "idle"
            self.deadline = None
        else:
            self.phase = "repeat-wait"
            self.deadline = _at(self._round_start + self.period_s)
        return [MuteFarEnd(False)]
