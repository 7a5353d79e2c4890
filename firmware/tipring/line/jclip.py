"""NTT caller ID ("number display", JCLIP): the phone fetches the number off hook before it rings.

Unlike every other standard the data is not pushed at an on-hook phone. The sequence (NTT's
"telephone service interface" for number display, as NTT and spandsp's adsi documentation
summarise it):
1. The exchange sends the call-arrival signal (CAR): ring voltage 0.5 s on / 0.5 s off instead
   of the normal 1 s / 2 s, which a number-display phone does not sound its bell for.
2. The phone makes its primary response: it closes the loop (goes off hook electrically).
   No response within 6 s means a phone without number display: plain ringing, no data.
3. With the loop closed, the exchange sends the data as V.23 FSK (1300/2100 Hz, 1200 baud):
   marks, then a frame DLE SOH, header 0x07, DLE STX, message type 0x40, length, parameters
   (number 0x02 or reason for absence 0x04 ...), DLE ETX, CRC-16. Every character is 7 bits
   with even parity in the eighth; a DLE inside the frame is sent twice; the CRC (ITU, as in
   X.25/HDLC without the final inversion, least significant byte first) covers everything from
   the header to ETX.
4. Having the data, the phone opens the loop again (its "reception complete" signal), and only
   then does the normal ringing (IR, 1 s / 2 s) start; lifting the handset answers as usual.
A phone that stays off hook after the data is a person who picked up an ordinary phone during
the CAR: the call is answered. The line never rings over a closed loop.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass

from tipring.hal.api import Linefeed, RingCadence
from tipring.media.dsp import Absence, CallerId

from .signals import LineCommand, SendCallerId, SetLinefeed, StartRing, StopRing, StopTone

log = logging.getLogger(__name__)

DLE, SOH, STX, ETX = 0x10, 0x01, 0x02, 0x03
HEADER = 0x07  # the frame header NTT's terminals expect after DLE SOH
MESSAGE_CALLER_ID = 0x40  # JCLIP caller-ID message type
PARAM_NUMBER = 0x02
PARAM_ABSENCE = 0x04  # reason for absence: "P" private, "O" unavailable, "C" payphone, "S" service
MAX_NUMBER_DIGITS = 20

CAR_ON_S, CAR_OFF_S = 0.5, 0.5  # call-arrival signal cadence
CAR_TIMEOUT_S = 6.0  # no primary response by then: the phone has no number display
RESPONSE_TO_DATA_S = 0.1  # the closed loop settles before the first mark
MARK_BITS = 84  # 70 ms of marks before the frame (no channel seizure in JCLIP)
RELEASE_TIMEOUT_S = 3.0  # data heard -> the loop must open by then, or the call is answered


def _with_parity(byte: int) -> int:
    """7-bit character with even parity in bit 7."""
    low = byte & 0x7F
    return low | (0x80 if bin(low).count("1") % 2 else 0)


def _stuffed(data: bytes) -> bytes:
    """A DLE inside the frame is sent twice, so it never reads as a control sequence."""
    return data.replace(bytes([DLE]), bytes([DLE, DLE]))


def crc_itu16(data: bytes, crc: int = 0) -> int:
    """CRC-16 with the ITU polynomial, bit-reversed (0x8408), initial 0, no final inversion."""
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc


def jclip_message(cid: CallerId) -> bytes:
    """The framed JCLIP caller-ID message for `cid` (number or reason for absence)."""
    if cid.number:
        number = cid.number.encode("ascii", "replace")
        if len(number) > MAX_NUMBER_DIGITS or not number.isdigit():
            raise ValueError(f"NTT caller ID carries 1-{MAX_NUMBER_DIGITS} digits, "
                             f"not {cid.number!r}")
        params = bytes([PARAM_NUMBER, len(number)]) + number
    else:
        reason = (cid.number_absence or Absence.UNAVAILABLE).value.encode()
        params = bytes([PARAM_ABSENCE, 1]) + reason
    body = _stuffed(params)
    length = _stuffed(bytes([len(body)]))
    frame = bytes([DLE, SOH, HEADER, DLE, STX, MESSAGE_CALLER_ID]) + length + body
    frame += bytes([DLE, ETX])
    framed = bytes(_with_parity(b) for b in frame)
    crc = crc_itu16(framed[2:])
    return framed + bytes([crc & 0xFF, crc >> 8])


class Phase(enum.Enum):
    CAR = "car"  # call-arrival signal, waiting for the primary response
    RESPONDED = "responded"  # loop closed, data about to start
    DATA = "data"  # data sent, waiting for the loop to open
    DONE = "done"  # normal ringing (or the call was answered): the line takes over


@dataclass
class Outcome:
    commands: list[LineCommand]
    answered_at: float | None = None  # the phone stayed off hook: answer the call


class NttCallerId:
    """One incoming call's number-display exchange; the FXS line feeds it hook edges and time."""

    def __init__(self, number: CallerId, cadence: RingCadence, playout_delay_s: float) -> None:
        self.message = jclip_message(number)
        self.cadence = cadence
        self.playout_delay_s = playout_delay_s
        self.phase = Phase.CAR
        self.deadline: float | None = None
        self._responded_at = 0.0

    def start(self, now: float) -> list[LineCommand]:
        self.deadline = round(now + CAR_TIMEOUT_S, 9)
        car = RingCadence(((CAR_ON_S, CAR_OFF_S),), self.cadence.frequency_hz)
        return [StartRing(car)]

    def burst(self) -> SendCallerId:
        duration = (MARK_BITS + 10 * len(self.message) + 10) / 1200
        return SendCallerId("fsk-v23", self.message, False, duration, seizure_bits=0,
                            mark_bits=MARK_BITS)

    def edge(self, off_hook: bool, at: float) -> Outcome | None:
        """A hook edge while the exchange runs; None once it is the line's ordinary business."""
        if self.phase is Phase.CAR and off_hook:
            self.phase = Phase.RESPONDED
            self._responded_at = at
            self.deadline = round(at + RESPONSE_TO_DATA_S, 9)
            return Outcome([StopRing(), SetLinefeed(Linefeed.FORWARD_ACTIVE)])
        if self.phase in (Phase.RESPONDED, Phase.DATA) and not off_hook:
            if self.phase is Phase.RESPONDED:
                log.info("number display: the loop opened before the data; ringing without it")
            return Outcome([StopTone(), *self._ring()])
        if self.phase is Phase.DONE:
            return None
        return Outcome([])  # a repeated edge: nothing new

    def expire(self, now: float) -> Outcome:
        if self.phase is Phase.CAR:
            log.info("number display: no primary response in %.0f s; ringing without caller ID",
                     CAR_TIMEOUT_S)
            return Outcome(self._ring())
        if self.phase is Phase.RESPONDED:
            burst = self.burst()
            self.phase = Phase.DATA
            self.deadline = round(now + burst.duration_s + self.playout_delay_s
                                  + RELEASE_TIMEOUT_S, 9)
            return Outcome([burst])
        self.phase, self.deadline = Phase.DONE, None
        log.info("number display: the loop stayed closed after the data: answered")
        return Outcome([StopTone()], answered_at=self._responded_at)

    def _ring(self) -> list[LineCommand]:
        self.phase, self.deadline = Phase.DONE, None
        return [StartRing(self.cadence)]


__all__ = ["NttCallerId", "Outcome", "Phase", "crc_itu16", "jclip_message"]
