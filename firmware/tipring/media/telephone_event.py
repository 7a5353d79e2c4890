"""RFC 4733 telephone-events: DTMF digits and hook flash carried in RTP instead of audio.

Sending: `EventSender` is driven once per media period by the media thread. An event's packets
all carry the timestamp of its start; the first has the marker bit; each gives the duration so
far; the end is sent three times (RFC 4733 2.5.1.4) so one lost packet does not make a digit run
on. An event longer than the 16-bit duration field is cut into segments (2.5.1.3).
Receiving: `EventReceiver` turns packets into digit start/end events, ignoring retransmitted
ends, and ends an event whose end packets were all lost once `poll(now)` sees it silent.
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass

EVENT_CODES = "0123456789*#ABCD"
FLASH = 16  # RFC 4733 event 16: hook flash
MAX_DURATION = 0xFFFF
END_REPEATS = 3


class EventError(ValueError):
    """A telephone-event payload that is malformed."""


@dataclass(frozen=True)
class EventPayload:
    event: int
    end: bool
    volume: int  # 0..63: -dBm0 of the tone (0 = loudest)
    duration: int  # timestamp units

    def serialize(self) -> bytes:
        return struct.pack("!BBH", self.event, (0x80 if self.end else 0) | (self.volume & 0x3F),
                           self.duration & 0xFFFF)


def parse_event(payload: bytes) -> EventPayload:
    if len(payload) < 4:
        raise EventError(f"telephone-event payload of {len(payload)} bytes, expected 4")
    event, flags, duration = struct.unpack_from("!BBH", payload)
    return EventPayload(event, bool(flags & 0x80), flags & 0x3F, duration)


def event_code(key: str) -> int:
    """The event number of a keypad key ('0'-'9', '*', '#', 'A'-'D') or 'flash'."""
    if key == "flash":
        return FLASH
    if len(key) != 1 or key.upper() not in EVENT_CODES:
        raise EventError(f"{key!r} is not a DTMF key or 'flash'")
    return EVENT_CODES.index(key.upper())


def event_key(event: int) -> str:
    if event == FLASH:
        return "flash"
    if 0 <= event < len(EVENT_CODES):
        return EVENT_CODES[event]
    return f"event-{event}"


@dataclass(frozen=True)
class OutgoingEvent:
    """One RTP packet to send: the media thread adds sequence number, SSRC and payload type."""

    timestamp: int
    marker: bool
    payload: bytes


class EventSender:
    """Timing of outgoing events, in timestamp units; one `tick` per media period."""

    def __init__(self, period: int = 160, volume: int = 10) -> None:
        self.period = period
        self.volume = volume
        self._event: int | None = None
        self._start = 0  # timestamp of the current segment
        self._elapsed = 0  # duration of the current segment so far
        self._first = False
        self._ending = 0  # end packets still to send
        self._min_left = 0

    @property
    def active(self) -> bool:
        """True while packets are due: the caller mutes in-band audio meanwhile."""
        return self._event is not None

    def start(self, key: str, timestamp: int, min_duration: int = 320) -> None:
        """Begin an event at `timestamp` (the RTP time of the audio it replaces)."""
        self._event = event_code(key)
        self._start = timestamp & 0xFFFFFFFF
        self._elapsed = 0
        self._first = True
        self._ending = 0
        self._min_left = min_duration

    def stop(self) -> None:
        """End the event: after any minimum duration, the end packet goes out three times."""
        if self._event is not None and self._ending == 0:
            self._ending = END_REPEATS

    def tick(self) -> list[OutgoingEvent]:
        """Packets for this media period (empty when idle)."""
        if self._event is None:
            return []
        if self._ending and self._min_left <= 0:
            packet = self._packet(end=True)
            self._ending -= 1
            if self._ending == 0:
                self._event = None
            return [packet]
        out = []
        if self._elapsed + self.period > MAX_DURATION:
            # 2.5.1.3: a long event continues as a new segment starting where this one ends.
            out.append(self._packet(end=False))
            self._start = (self._start + self._elapsed) & 0xFFFFFFFF
            self._elapsed = 0
        self._elapsed += self.period
        self._min_left -= self.period
        out.append(self._packet(end=False))
        return out

    def _packet(self, end: bool) -> OutgoingEvent:
        assert self._event is not None
        marker, self._first = self._first, False
        payload = EventPayload(self._event, end, self.volume, self._elapsed).serialize()
        return OutgoingEvent(self._start, marker, payload)


@dataclass(frozen=True)
class DigitStarted:
    key: str
    timestamp: int


@dataclass(frozen=True)
class DigitEnded:
    key: str
    timestamp: int
    duration: int  # timestamp units; from the end packet, or the last seen if the end was lost


DigitEvent = DigitStarted | DigitEnded


class EventReceiver:
    """Incoming telephone-events, deduplicated by their timestamp."""

    def __init__(self, timeout: float = 0.25) -> None:
        self.timeout = timeout
        self._current: tuple[int, int] | None = None  # (timestamp, event)
        self._duration = 0
        self._last_seen = 0.0
        self._ended: deque[int] = deque(maxlen=32)  # timestamps already ended (retransmissions)

    def receive(self, timestamp: int, payload: bytes, now: float) -> list[DigitEvent]:
        event = parse_event(payload)
        if timestamp in self._ended:
            return []
        out: list[DigitEvent] = []
        if self._current is not None and self._current[0] != timestamp:
            out += self._finish()  # a new event before the old one's end arrived
        if self._current is None:
            self._current = (timestamp, event.event)
            out.append(DigitStarted(event_key(event.event), timestamp))
        self._duration = max(self._duration, event.duration)
        self._last_seen = now
        if event.end:
            out += self._finish()
        return out

    def poll(self, now: float) -> list[DigitEvent]:
        """End an event whose end packets never came."""
        if self._current is not None and now - self._last_seen > self.timeout:
            return self._finish()
        return []

    def _finish(self) -> list[DigitEvent]:
        if self._current is None:
            return []
        timestamp, event = self._current
        self._current = None
        self._ended.append(timestamp)
        duration, self._duration = self._duration, 0
        return [DigitEnded(event_key(event), timestamp, duration)]
