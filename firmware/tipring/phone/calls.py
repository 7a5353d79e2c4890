"""The calls the phone is handling: which line, which way, how far along."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal

from tipring.media.dsp import CallerId
from tipring.sdp import NegotiatedMedia

Direction = Literal["outgoing", "incoming"]
# outgoing: calling -> early (18x seen) -> connected; incoming: ringing -> answering -> connected,
# or, arriving during a call with call waiting on: waiting -> answering (flash) -> connected,
# or waiting -> ringing (the subscriber hung up on the other call).
CallState = Literal["calling", "early", "ringing", "waiting", "answering", "connected"]
DIRECT_IP_PREFIX = "*47"  # Grandstream HT80x direct IP dialling: *47 192*168*1*20


@dataclass
class Call:
    call: str  # the agent's call handle (Call-ID)
    line: int
    direction: Direction
    state: CallState
    number: str = ""  # what was dialled, or the caller's number
    emergency: bool = False
    media: NegotiatedMedia | None = None  # what the line's RTP runs with now
    caller: CallerId | None = None  # what the line showed for an incoming call
    alert_info: str | None = None  # the incoming call's Alert-Info (distinctive ring)
    held: bool = False  # on hold (we sent a=sendonly); its media is off the line
    recalling: bool = False  # held, and the line rings to give it back to the subscriber
    account: str = ""  # the account the call is on (a transfer we are asked for uses it too)
    slot: int = 0  # which of the line's two RTP socket pairs the call's SDP advertised
    consult_for: str | None = None  # placed from recall dial tone while this call was held
    transfer: str | None = None  # "blind" / "attended": our REFER for this call is under way
    transferred_from: str | None = None  # placed because the far end of that call sent REFER
    no_waiting: bool = False  # *70: no call waiting during this call
    parked: bool = False  # the subscriber left (transfer under way): never back on the line


def dial_target(number: str, direct_ip: bool) -> str:
    """The INVITE target for a dialled number: the number itself (the agent makes it
    sip:number@domain) or, with direct IP dialling on, `sip:a.b.c.d` for `*47a*b*c*d`."""
    if direct_ip and number.startswith(DIRECT_IP_PREFIX):
        octets = number[len(DIRECT_IP_PREFIX):].split("*")
        try:
            address = ipaddress.IPv4Address(".".join(octets))
        except ValueError:
            return number
        return f"sip:{address}"
    return number
