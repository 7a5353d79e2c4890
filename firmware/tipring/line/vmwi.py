"""Visual message-waiting indicator (VMWI): the lamp or envelope icon on a caller-ID phone.

The phone layer learns from a SIP message-summary NOTIFY whether voicemail is waiting. The dial
tone then stutters (`fxs.FxsLine`), and on a line whose caller-ID standard carries it the
indicator itself is sent as on-hook data with no ringing, so the phone's lamp follows the
mailbox without anyone lifting the handset:

- Bellcore / Telcordia GR-30: MDMF message type 0x82 with the visual indicator parameter 0x0B
  (0xFF = messages waiting, 0x00 = none). Phones older than MDMF know only the SDMF message 0x06
  with three bytes 0x42 ("B", on) or 0x6F ("o", off); `VmwiFormat` picks one (MDMF by default,
  as current CPE and ATAs use). The line switches to on-hook transmission and sends the usual
  300-bit channel seizure and 180 marks, which is what wakes the phone's receiver: GR-30 needs no
  alerting signal before data that is not tied to ringing. A ring-pulse alert (RP-AS, for
  phones that sleep until they see ring voltage) or the dual-tone alert can be asked for
  (`LineSettings.vmwi_alert`), with the EN 300 659-1 timings.
- ETSI EN 300 659-1 (data transmission not associated with ringing) with the EN 300 659-3
  message 0x82 / parameter 0x0B: line reversal, then the DT-AS dual tone (or RP-AS, a short ring
  pulse), then V.23 data, then normal polarity again. Regions whose caller ID already uses an
  alert before ringing (FR, IT, ES, GB) use that same sequence and timing, so a GB phone also
  gets its SIN 227 wetting-pulse window.
- DTMF caller ID (NL, SE, ...) has no message-waiting message, and NTT's caller ID is sent with
  the phone off hook after a call-arrival signal, which a VMWI must not imitate: those lines get
  the stutter dial tone only.

A line that is busy (off hook, ringing, a burst under way) sends the latest state once it is idle
again; a change during a burst is sent after it, and a burst cut short by a lift or a call is
sent again later.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable
from typing import Literal

from tipring.hal.api import Linefeed
from tipring.media.dsp import checksum

from . import callerid
from .callerid import RingStep
from .regions import AlertingSignal, CallerIdTiming
from .region_data import ETSI_FSK_PRIOR
from .signals import LineCommand, SendCallerId, SetLinefeed, StopRing, StopTone

log = logging.getLogger(__name__)

VmwiFormat = Literal["mdmf", "sdmf"]

MDMF_MESSAGE_WAITING = 0x82  # GR-30 MDMF and EN 300 659-3: "message waiting" message type
SDMF_MESSAGE_WAITING = 0x06  # GR-30 SDMF message waiting
PARAM_VISUAL_INDICATOR = 0x0B  # GR-30 / EN 300 659-3 parameter: 0xFF on, 0x00 off
SDMF_ON, SDMF_OFF = b"BBB", b"ooo"  # GR-30 SDMF: 0x42 x3 activates, 0x6F x3 deactivates

OHT_SETTLE_S = 0.1  # on-hook transmission applied -> first seizure bit: the SLIC settles
RP_AS_TO_DATA_S = 0.6  # EN 300 659-1 RP-AS: the data follows the ring pulse after >= 500 ms
GUARD_AFTER_DATA_S = 0.2  # data heard -> normal linefeed, as the guard before a ring
BURST_GAP_S = 0.5  # a second burst (the state changed meanwhile) waits this long after the first

# EN 300 659-1 without ringing, for regions whose caller ID has no alert of its own (DE, AU, NZ):
# the prior-to-ringing DT-AS sequence (reversal, >= 100 ms, DT-AS 100 ms, data 45-500 ms after).
ETSI_VMWI_DT_AS = dataclasses.replace(ETSI_FSK_PRIOR, guard_before_ring_s=GUARD_AFTER_DATA_S)
ETSI_VMWI_RP_AS = CallerIdTiming("etsi-fsk", before_ring=True, alerting_signal="rp-as",
                                 alert_duration_s=callerid.RP_AS_S,
                                 alert_to_data_s=RP_AS_TO_DATA_S,
                                 guard_before_ring_s=GUARD_AFTER_DATA_S)


def vmwi_message(on: bool, fmt: VmwiFormat = "mdmf") -> bytes:
    """The message-waiting message with its checksum, ready for the FSK modulator."""
    if fmt == "sdmf":
        frame = bytes([SDMF_MESSAGE_WAITING, 3]) + (SDMF_ON if on else SDMF_OFF)
    elif fmt == "mdmf":
        frame = bytes([MDMF_MESSAGE_WAITING, 3, PARAM_VISUAL_INDICATOR, 1, 0xFF if on else 0x00])
    else:
        raise ValueError(f"VMWI format {fmt!r}: 'mdmf' or 'sdmf'")
    return frame + bytes([checksum(frame)])


def vmwi_sequence(timing: CallerIdTiming,
                  alert: AlertingSignal | None) -> tuple[CallerIdTiming, SendCallerId] | None:
    """The on-hook sequence (as a before-ring timing) and an empty burst template for a line whose
    caller ID is `timing`; None where the standard has no VMWI message."""
    if timing.standard == "bellcore":
        if alert == "rp-as":
            sequence = dataclasses.replace(ETSI_VMWI_RP_AS, standard="bellcore")
        elif alert == "dt-as":  # asked for by name: the DT-AS timing, without a reversal
            sequence = dataclasses.replace(ETSI_VMWI_DT_AS, standard="bellcore",
                                           line_reversal=False, reversal_to_alert_s=0.0)
        else:
            sequence = CallerIdTiming("bellcore", before_ring=True, alert_to_data_s=OHT_SETTLE_S,
                                      guard_before_ring_s=GUARD_AFTER_DATA_S)
        return sequence, SendCallerId("fsk-bell202", b"", True, 0.0)
    if timing.standard == "etsi-fsk":
        own = timing.before_ring and timing.alerting_signal != "none"
        if own and alert in (None, timing.alerting_signal):
            sequence = dataclasses.replace(timing, guard_before_ring_s=max(
                timing.guard_before_ring_s, GUARD_AFTER_DATA_S))
        else:
            sequence = ETSI_VMWI_RP_AS if alert == "rp-as" else ETSI_VMWI_DT_AS
        return sequence, SendCallerId("fsk-v23", b"", True, 0.0)
    return None


def vmwi_plan(timing: CallerIdTiming, on: bool, *, alert: AlertingSignal | None = None,
              fmt: VmwiFormat = "mdmf", ring_hz: float = 25.0,
              playout_delay_s: float = 0.04) -> tuple[list[RingStep], CallerIdTiming] | None:
    """The steps that send `on` to an idle phone and put the linefeed back afterwards, and the
    sequence timing they follow; None where the standard has no VMWI message."""
    chosen = vmwi_sequence(timing, alert)
    if chosen is None:
        return None
    sequence, template = chosen
    message = vmwi_message(on, fmt if timing.standard == "bellcore" else "mdmf")
    seizure, marks = callerid.ON_HOOK_SEIZURE_BITS, callerid.ON_HOOK_MARK_BITS
    burst = dataclasses.replace(template, payload=message, seizure_bits=seizure, mark_bits=marks,
                                duration_s=callerid.fsk_duration(message, seizure, marks))
    steps, end = callerid.data_without_ringing(sequence, burst, ring_hz, playout_delay_s)
    steps.append(RingStep(end, (SetLinefeed(Linefeed.FORWARD_ACTIVE),)))
    return steps, sequence


Planner = Callable[[bool], "tuple[list[RingStep], CallerIdTiming] | None"]


class VmwiSender:
    """Keeps the phone's lamp in step with the mailbox: what is wanted, what the phone last got,
    and the burst under way. The FXS line says when it is idle and feeds it time."""

    def __init__(self, planner: Planner, playout_delay_s: float = 0.04) -> None:
        self._planner = planner
        self._playout_delay_s = playout_delay_s
        self.wanted: bool | None = None
        self.sent: bool | None = None  # the state the phone last received in full
        self._sending: bool | None = None
        self._steps: list[tuple[float, tuple[LineCommand, ...]]] = []
        self._asked_at = -math.inf
        self._ready_at = -math.inf
        self.wetting_window: tuple[float, float] | None = None  # absolute, for the burst under way

    @property
    def sending(self) -> bool:
        return self._sending is not None

    def want(self, on: bool, now: float) -> None:
        self.wanted = on
        self._asked_at = now

    def _pending(self) -> bool:
        return self.wanted is not None and self.wanted != self.sent and self._sending is None

    def deadline(self, idle: bool) -> float | None:
        if self._steps:
            return self._steps[0][0]
        if idle and self._pending():
            return max(self._asked_at, self._ready_at)
        return None

    def due(self, now: float, idle: bool) -> list[LineCommand]:
        """Commands due by `now`: the start of a burst if one is owed and the line is idle."""
        if idle and self._pending() and now + 1e-9 >= self._ready_at:
            self._start(now)
        out: list[LineCommand] = []
        while self._steps and self._steps[0][0] <= now + 1e-9:
            at, commands = self._steps.pop(0)
            out.extend(commands)
            if not self._steps:
                self.sent, self._sending = self._sending, None
                self._ready_at = round(at + BURST_GAP_S, 9)
                self.wetting_window = None
        return out

    def _start(self, now: float) -> None:
        wanted = self.wanted
        assert wanted is not None
        planned = self._planner(wanted)
        if planned is None:
            self.sent = wanted  # the standard has no VMWI message: the stutter tone is all
            log.info("messages waiting %s: this line's caller ID has no VMWI message",
                     "on" if wanted else "off")
            return
        steps, sequence = planned
        self._sending = wanted
        self._steps = [(round(now + step.offset_s, 9), step.commands) for step in steps]
        window = callerid.wetting_window(sequence, self._playout_delay_s)
        self.wetting_window = (None if window is None
                               else (round(now + window[0], 9), round(now + window[1], 9)))

    def abort(self) -> list[LineCommand]:
        """The phone was lifted or a call must ring: end the burst (it is sent again later)."""
        if self._sending is None:
            return []
        self._steps = []
        self._sending = None
        self.wetting_window = None
        return [StopRing(), StopTone(), SetLinefeed(Linefeed.FORWARD_ACTIVE)]


__all__ = ["VmwiFormat", "VmwiSender", "vmwi_message", "vmwi_plan", "vmwi_sequence"]
