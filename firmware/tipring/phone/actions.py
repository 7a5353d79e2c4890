"""What the phone asks the runtime to do. SIP requests are not here: the phone calls the pure
`UserAgent` itself, so the runtime only sends `agent.datagrams_to_send()` after each call into
the phone and re-arms `agent.get_timer()`."""

from __future__ import annotations

from dataclasses import dataclass

from tipring.line.signals import LineCommand
from tipring.media.stream import Latch, StreamConfig
from tipring.sdp import NegotiatedMedia


@dataclass(frozen=True)
class DriveLine:
    """Carry out these line commands on port `line`, in order (`LineRunner.apply`)."""

    line: int
    commands: tuple[LineCommand, ...]


@dataclass(frozen=True)
class AttachMedia:
    """Run call `call`'s RTP on the line: build an `RtpStream` from `media` (remote address,
    payload type, telephone-event type, SRTP keys) and attach it with the RTP/RTCP socket pair
    bound at `local` (the address and port our SDP advertised). Replaces any stream the line
    has; an answer whose media equals the early media's brings no new `AttachMedia`. `early`
    = the far end's ringback or announcement before answer (RFC 3960). Hold and resume come as
    a new `AttachMedia` whose `media.send` / `media.receive` say the direction."""

    line: int
    call: str
    media: NegotiatedMedia
    local: tuple[str, int]
    early: bool = False

    def stream_config(self, *, cname: str = "tipring",
                      latch: Latch = "sdp-address") -> StreamConfig | None:
        """The `RtpStream` configuration, or None while the far end gave no address
        (c=0.0.0.0 hold: keep the line's stream, stop sending)."""
        media = self.media
        if media.remote_address is None:
            return None
        return StreamConfig(payload_type=media.payload_type,
                            remote=(media.remote_address, media.remote_port),
                            event_payload_type=media.telephone_event_pt, cname=cname,
                            latch=latch)


@dataclass(frozen=True)
class DetachMedia:
    """The call's RTP ends (RTCP BYE); the line's tones go on."""

    line: int
    call: str


@dataclass(frozen=True)
class SendDigit:
    """Send a digit the phone dialled during the call as RFC 4733 events for `duration_ms`
    (`MediaThread.start_digit`, then `stop_digit`). INFO digits go out through the agent."""

    line: int
    call: str
    digit: str
    duration_ms: int


@dataclass(frozen=True)
class SaveLineSetting:
    """A star code changed one of the line's settings (`LineConfig` field `name`): the runtime
    saves it in the configuration, so the web page shows it and a restart keeps it."""

    line: int
    name: str
    value: object


@dataclass(frozen=True)
class PlayPrompt:
    """Speak these recorded clips to the handset (`PromptLibrary` names: "digits/1"), in place
    of tones and far-end audio while they play; `Phone.prompt_finished` follows."""

    line: int
    clips: tuple[str, ...]


@dataclass(frozen=True)
class StopPrompt:
    line: int


@dataclass(frozen=True)
class ClearWebPassword:
    """Someone at the handset of `line` proved physical presence (voice menu): clear the web
    admin password so the next visit sets a new one."""

    line: int


PhoneAction = (DriveLine | AttachMedia | DetachMedia | SendDigit | SaveLineSetting | PlayPrompt
               | StopPrompt | ClearWebPassword)
