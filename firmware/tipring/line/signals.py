"""What the FXS state machine says: commands for the line adapter and events for the phone layer.

The state machine never touches hardware; it returns these in the order they must happen. An
adapter executes `LineCommand`s against a `Slic` and the line's audio (tone generator, FSK
modulator); the phone layer reacts to `LineEvent`s (place a call, answer, send a digit).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tipring.hal.api import Linefeed, RingCadence

from .tonespec import CadencePlan

CallerIdKind = Literal["fsk-bell202", "fsk-v23", "dtmf"]


class LineCommand:
    """Something the adapter does to the line now."""


@dataclass(frozen=True)
class SetLinefeed(LineCommand):
    """Apply a linefeed state: battery, polarity, open loop, on-hook transmission."""

    state: Linefeed


@dataclass(frozen=True)
class StartRing(LineCommand):
    """Ring with `cadence` from now on (first burst now) until `StopRing` or ring trip."""

    cadence: RingCadence


@dataclass(frozen=True)
class StopRing(LineCommand):
    pass


@dataclass(frozen=True)
class PlayTone(LineCommand):
    """Play `plan` (the C generator's segments and loop point) to the phone, replacing any tone.

    `name` is the region tone name ("dial", "busy", ...) or "dt-as" / "cas" for the caller-ID
    alerting signals, so logs and tests can say what played.
    """

    name: str
    plan: CadencePlan


@dataclass(frozen=True)
class StopTone(LineCommand):
    """Silence whatever tone or caller-ID burst is playing."""


@dataclass(frozen=True)
class SendCallerId(LineCommand):
    """Send caller ID now: FSK message bytes (with checksum) or a DTMF digit string.

    FSK framing: `seizure_bits` of alternating 0/1 then `mark_bits` of marks before the data
    (on hook 300 + 180; off hook, after CAS and the ACK, none + 80). `duration_s` is how long the
    burst lasts, so the line can schedule what follows.
    """

    kind: CallerIdKind
    payload: bytes | str
    on_hook: bool
    duration_s: float
    seizure_bits: int = 0
    mark_bits: int = 0
    dtmf_on_s: float = 0.0
    dtmf_off_s: float = 0.0


@dataclass(frozen=True)
class MuteFarEnd(LineCommand):
    """Mute (True) or restore the far end's audio: during CAS, the ACK and off-hook caller ID
    the phone's receiver must hear only the signalling (GR-30 off-hook data transmission)."""

    muted: bool


class LineEvent:
    """Something the subscriber did that the phone layer acts on."""


@dataclass(frozen=True)
class OffHook(LineEvent):
    at: float


@dataclass(frozen=True)
class OnHook(LineEvent):
    """A hang-up (the loop stayed open longer than the flash window); `at` = when it opened."""

    at: float


@dataclass(frozen=True)
class Flash(LineEvent):
    at: float


@dataclass(frozen=True)
class Answered(LineEvent):
    """Off hook while ringing (ring trip): answer the incoming call."""

    at: float


@dataclass(frozen=True)
class DialedNumber(LineEvent):
    """The digit map says the number is complete: place a call to `number` (already rewritten)."""

    number: str
    dialled: str
    rule: str | None
    emergency: bool = False


@dataclass(frozen=True)
class DialInvalid(LineEvent):
    dialled: str


@dataclass(frozen=True)
class DialBarred(LineEvent):
    dialled: str
    rule: str | None


@dataclass(frozen=True)
class Digit(LineEvent):
    """A digit during a call (send as RFC 4733 or SIP INFO); `source` "dtmf" or "pulse"."""

    digit: str
    at: float
    source: Literal["dtmf", "pulse"]


LineOutput = LineCommand | LineEvent
