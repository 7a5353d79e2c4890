"""Caller ID on the line: which signals, in what order, at what moment of the ring cycle.

The modem and message encoders live in `media.dsp`; this module decides the signalling around
them, per standard:
- Bellcore (GR-30): ring once, then Bell 202 MDMF starting >= 500 ms after that ring ends and
  ending >= 200 ms before the next ring.
- ETSI EN 300 659-1 FSK (V.23) prior to ringing: line reversal, DT-AS (2130 + 2750 Hz, 100 ms),
  then the data, then ringing; or, where the profile says so, data in the first ring silence.
- BT SIN 227 (GB): the same order as ETSI prior-to-ringing (reversal, idle-state tone alert,
  V.23 data, ringing), with the profile's timings; the phone answers the alert with a DC wetting
  pulse, which `WettingPulseFilter` keeps from reading as an answer.
- ETSI DTMF (NL, SE, ...): the digit string before the first ring, after a line reversal where
  the profile asks for one.
- NTT (JP): sent off hook after a call-arrival signal, in `jclip`; VMWI (no ringing) in `vmwi`.
The first "ring" is the whole first cycle of the cadence (GB's double ring counts as one).
To keep the next ring in time whatever the message length, the line stops the cadence after its
first cycle, sends the data, and starts the cadence again on the beat (or later if the data is
long): the SLIC never rings over the data.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from tipring.hal.api import Linefeed, RingCadence
from tipring.media.dsp import Absence, CallerId, etsi_dtmf_clip, mdmf_message

from .region_data import BELLCORE, ETSI_FSK_PRIOR
from .regions import CallerIdStandard, CallerIdTiming, RegionProfile
from .signals import (
    LineCommand,
    PlayTone,
    SendCallerId,
    SetLinefeed,
    StartRing,
    StopRing,
)
from .tonespec import CadencePlan, CadenceSegment

log = logging.getLogger(__name__)

FSK_BAUD = 1200
ON_HOOK_SEIZURE_BITS = 300  # GR-30 and EN 300 659-1: channel seizure
ON_HOOK_MARK_BITS = 180
OFF_HOOK_MARK_BITS = 80  # after the ACK: no seizure, 80 marks (GR-30 off-hook)
POSTAMBLE_BITS = 10  # `FskModulator.start` default: a few marks so the last byte is not cut
BELLCORE_NAME_CHARS = 15  # GR-30 displays show 15 characters of the name
DTMF_CLIP_ON_S = 0.07  # EN 300 659-1 DTMF variant: 50-70 ms digits ...
DTMF_CLIP_OFF_S = 0.07  # ... with gaps of at least as long
ALERT_LEVEL_DBM0 = -15.0  # per tone, as the CAS of `media.dsp.cas_tone`
CAS_DURATION_S = 0.08  # GR-30 CPE alerting signal
DTAS_FREQUENCIES = (2130.0, 2750.0)  # DT-AS (ETSI) = CAS (Bellcore) = TAS (BT): one dual tone
RP_AS_S = 0.25  # ETSI ring-pulse alerting signal
# BT SIN 227: the terminal's DC wetting pulse after the idle-state tone alert is nominally 15 ms;
# a loop closure up to this long inside the wetting window is taken as that pulse, not an answer
# (the SLIC's debounce and the interrupt latency stretch the edges a little).
WETTING_PULSE_MAX_S = 0.04


def timing_for(profile: RegionProfile, standard: CallerIdStandard | None) -> CallerIdTiming:
    """The region's caller-ID timing, or the standard's usual one when the user overrides it."""
    if standard is None or standard == profile.caller_id.standard:
        return profile.caller_id
    if standard == "bellcore":
        return BELLCORE
    if standard == "etsi-fsk":
        return ETSI_FSK_PRIOR
    if standard == "etsi-dtmf":
        return CallerIdTiming("etsi-dtmf", before_ring=True, line_reversal=True,
                              alert_to_data_s=0.1, guard_before_ring_s=0.25)
    return CallerIdTiming(standard)


def alerting_plan(duration_s: float) -> CadencePlan:
    """The 2130 + 2750 Hz dual tone played once: DT-AS / TAS on hook, CAS off hook."""
    components = tuple((f, ALERT_LEVEL_DBM0) for f in DTAS_FREQUENCIES)
    return CadencePlan((CadenceSegment(components, duration_s, 0.0),), None)


def fsk_duration(message: bytes, seizure_bits: int, mark_bits: int) -> float:
    """Seconds the FSK burst lasts: 10 bits per byte (start + 8 + stop) at 1200 baud."""
    return (seizure_bits + mark_bits + 10 * len(message) + POSTAMBLE_BITS) / FSK_BAUD


def _presented(profile: RegionProfile, cid: CallerId, name_chars: int | None) -> CallerId:
    number = profile.number_display.present(cid.number) if cid.number else None
    name = cid.name[:name_chars] if cid.name and name_chars else cid.name
    return CallerId(number=number, name=name, when=cid.when, number_absence=cid.number_absence,
                    name_absence=cid.name_absence)


def ntt_caller_id(profile: RegionProfile, cid: CallerId) -> CallerId:
    """What NTT number display can carry: the presented number in digits, else its absence."""
    number = profile.number_display.present(cid.number) if cid.number else None
    if number is not None and not (number.isdigit() and len(number) <= 20):
        number = None
    absence = cid.number_absence or (Absence.UNAVAILABLE if number is None else None)
    return CallerId(number=number, number_absence=absence)


def caller_id_burst(profile: RegionProfile, standard: CallerIdStandard, cid: CallerId,
                    on_hook: bool) -> SendCallerId | None:
    """The caller-ID transmission for `cid` in `standard` (None: the standard sends nothing)."""
    if standard in ("bellcore", "etsi-fsk"):
        shown = _presented(profile, cid, BELLCORE_NAME_CHARS if standard == "bellcore" else None)
        message = mdmf_message(shown)
        seizure = ON_HOOK_SEIZURE_BITS if on_hook else 0
        marks = ON_HOOK_MARK_BITS if on_hook else OFF_HOOK_MARK_BITS
        kind = "fsk-bell202" if standard == "bellcore" else "fsk-v23"
        return SendCallerId(kind, message, on_hook, fsk_duration(message, seizure, marks),
                            seizure_bits=seizure, mark_bits=marks)
    if standard == "etsi-dtmf" and on_hook:
        number = profile.number_display.present(cid.number) if cid.number else None
        if number is not None and not number.isdigit():
            number = None  # DTMF carries decimal digits only
        digits = etsi_dtmf_clip(number, cid.number_absence or Absence.UNAVAILABLE)
        return SendCallerId("dtmf", digits, True,
                            len(digits) * (DTMF_CLIP_ON_S + DTMF_CLIP_OFF_S),
                            dtmf_on_s=DTMF_CLIP_ON_S, dtmf_off_s=DTMF_CLIP_OFF_S)
    return None


@dataclass(frozen=True)
class RingStep:
    """Commands due `offset_s` after the ring request."""

    offset_s: float
    commands: tuple[LineCommand, ...]


def first_ring_end(cadence: RingCadence) -> float:
    """Offset from the first burst to the end of the first cycle's last burst."""
    return cadence.period - cadence.segments[-1][1]


def data_without_ringing(timing: CallerIdTiming, burst: SendCallerId, ring_hz: float,
                         playout_delay_s: float) -> tuple[list[RingStep], float]:
    """Linefeed change, alerting signal and data for on-hook data sent before ringing (caller ID)
    or with no ringing at all (VMWI); also returns when the line may ring or return to normal:
    the data's end as the phone hears it (`playout_delay_s` later) plus the guard time."""
    steps: list[RingStep] = []
    if timing.line_reversal:
        steps.append(RingStep(0.0, (SetLinefeed(Linefeed.REVERSE_ACTIVE),)))
        t = timing.reversal_to_alert_s
    else:
        steps.append(RingStep(0.0, (SetLinefeed(Linefeed.ON_HOOK_TRANSMISSION),)))
        t = 0.0
    if timing.alerting_signal == "dt-as":
        steps.append(RingStep(t, (PlayTone("dt-as", alerting_plan(timing.alert_duration_s)),)))
        t += timing.alert_duration_s
    elif timing.alerting_signal == "rp-as":
        pulse = timing.alert_duration_s or RP_AS_S
        steps.append(RingStep(t, (StartRing(RingCadence(((pulse, 10.0),), ring_hz)),)))
        steps.append(RingStep(t + pulse, (StopRing(),)))
        t += pulse
    t += timing.alert_to_data_s
    steps.append(RingStep(t, (burst,)))
    return steps, t + burst.duration_s + playout_delay_s + timing.guard_before_ring_s


def wetting_window(timing: CallerIdTiming, playout_delay_s: float) -> tuple[float, float] | None:
    """When (offsets from the start of the sequence) the phone may draw its DC wetting pulse.

    BT SIN 227 terminals answer the idle-state tone alert with a short DC load (a "wetting
    pulse") before the data; the SLIC sees it as a brief off-hook, which must not answer the
    call. The window runs from the start of the alert to the start of the data as heard, plus
    the longest pulse the line tolerates."""
    if not timing.te_wetting_pulse or not timing.before_ring:
        return None
    start = timing.reversal_to_alert_s if timing.line_reversal else 0.0
    data_at = start + timing.alert_duration_s + timing.alert_to_data_s
    return start, data_at + playout_delay_s + WETTING_PULSE_MAX_S


def ring_plan(cadence: RingCadence, timing: CallerIdTiming, burst: SendCallerId | None,
              playout_delay_s: float) -> list[RingStep]:
    """Ringing with caller ID placed per `timing`; `playout_delay_s` is how late the audio path
    plays (the ring after the data waits for it, so the guard time is kept at the phone)."""
    if burst is None:
        return [RingStep(0.0, (StartRing(cadence),))]
    if timing.before_ring:
        steps, ring_at = data_without_ringing(timing, burst, cadence.frequency_hz,
                                              playout_delay_s)
        steps.append(RingStep(ring_at, (SetLinefeed(Linefeed.FORWARD_ACTIVE),
                                        StartRing(cadence))))
        return steps
    first_end = first_ring_end(cadence)
    data_at = first_end + timing.after_first_ring_s
    second = max(cadence.period,
                 data_at + burst.duration_s + playout_delay_s + timing.guard_before_ring_s)
    return [
        RingStep(0.0, (StartRing(cadence),)),
        RingStep(first_end, (StopRing(), SetLinefeed(Linefeed.ON_HOOK_TRANSMISSION))),
        RingStep(data_at, (burst,)),
        RingStep(second, (SetLinefeed(Linefeed.FORWARD_ACTIVE), StartRing(cadence))),
    ]


class WettingPulseFilter:
    """Holds back an off-hook edge inside a wetting window until it is clearly not the BT
    terminal's DC wetting pulse: if the loop opens again within `WETTING_PULSE_MAX_S` neither
    edge reaches the hook decoder; otherwise the off-hook is released with its own time."""

    def __init__(self) -> None:
        self._windows: list[tuple[float, float]] = []
        self.held: float | None = None  # time of the off-hook edge held back

    def open(self, start: float, end: float) -> None:
        if (start, end) not in self._windows:
            self._windows.append((start, end))

    def clear(self) -> None:
        self._windows = []
        self.held = None

    def holds(self, off_hook: bool, at: float) -> bool:
        """True when the edge is swallowed (held, or the end of a wetting pulse)."""
        if off_hook:
            self._windows = [w for w in self._windows if w[1] >= at]
            if self.held is None and any(s <= at <= e for s, e in self._windows):
                self.held = at
                return True
            return False
        if self.held is not None and at - self.held <= WETTING_PULSE_MAX_S + 1e-9:
            log.info("DC wetting pulse of %.0f ms from the phone: not an answer",
                     (at - self.held) * 1000)
            self.held = None
            return True
        return False

    def deadline(self) -> float | None:
        return None if self.held is None else self.held + WETTING_PULSE_MAX_S

    def expire(self, now: float) -> float | None:
        """The held off-hook's time once it has lasted too long to be a wetting pulse."""
        if self.held is not None and now >= self.held + WETTING_PULSE_MAX_S - 1e-9:
            at, self.held = self.held, None
            return at
        return None
