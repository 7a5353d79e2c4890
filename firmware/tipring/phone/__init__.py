"""The ATA itself: calls between the analog lines and SIP (issue 7, first slice).

Design, sans-IO like the layers it binds (h11 / aioquic style):
- `Phone` holds one `LineSetup` per FXS port (its `FxsLine`, account, RTP address, features)
  and the device's `UserAgent`. Both are pure, so the phone calls the agent directly
  (invite, ring, answer, reject, hangup, send_dtmf) instead of returning SIP actions; the
  runtime's only SIP duty is to pump the agent: feed received datagrams and timers, then send
  `agent.datagrams_to_send()` and re-arm `agent.get_timer()` after every call into the agent
  or the phone.
- Inputs, each with `now`: `sip_event(event, now)` for every event the runtime drains from the
  agent; line input either as `hook`/`dtmf`/`timer` (the phone drives the `FxsLine`) or as
  `line_event(line, event, now)` when a `LineRunner` drives it and forwards its `LineEvent`s.
- Outputs: `PhoneAction`s in order - `DriveLine` (line commands to execute: ring, caller ID,
  tones, linefeed), `AttachMedia` / `DetachMedia` (a call's RTP on the line's socket pair),
  `SendDigit` (RFC 4733). Nothing here opens sockets, starts threads, sleeps or reads a clock;
  the local time for caller ID comes from an injected `local_time`.
- Call waiting (`LineSetup.call_waiting`): a second call during a talking call gets 180 and the
  line's call-waiting signal (`FxsLine.call_waiting`: tone, CAS, ACK, off-hook FSK); a hook
  flash holds the talking call (re-INVITE a=sendonly) and answers the waiting one, further
  flashes swap (hold one, resume the other). The talking party leaving keeps the other call;
  the subscriber hanging up with a call held or waiting rings the phone back with that caller's
  ID, and lifting resumes or answers it.
- Three-way calling (`threeway`): a flash alone in a call holds it and gives recall dial tone;
  the number dialled then is a second call on the line's other RTP pair. Hanging up while it
  rings is a blind transfer (REFER to it), after it answered an attended one (REFER with
  Replaces naming our call to it); a flash after it answered joins all three (both streams on
  the line, mixed by the audio path), a flash in the three-way call drops the party added last.
  A REFER from the far end is followed on the same line (NOTIFY reports how it goes), and an
  INVITE with Replaces for one of our calls takes its place without ringing.
- Features (`features`, star codes from the configuration): do-not-disturb, forwarding
  (unconditional, busy, no answer: a 302 with Diversion), anonymous-call rejection (433),
  caller-ID hiding (RFC 3323), call return, redial, voicemail, no call waiting for one call,
  a fallback account; settings a code switches come back as `SaveLineSetting`.
- Spoken services (`announcements`): the `***` voice menu (`voicemenu`) and the recorded
  intercept after SIT, as `PlayPrompt` actions; the menu's physical-presence password reset
  as `ClearWebPassword`.

Modules: `controller` (the Phone: lines, calls in and out, call waiting, SIP events), with
`threeway`, `subscriber` (star codes, forwarding) and `announcements` holding its methods by
subject (what they use of it declared once in `part`); `features` (star-code recognition),
`voicemenu` (the pure menu), `calls` (call records, dial targets), `callerid` (SIP identity ->
CallerId), `causes` (SIP status -> tone and intercept), `setup` (per-line provisioning),
`actions` (what the runtime executes).
"""

from .actions import AttachMedia, DetachMedia, DriveLine, PhoneAction, SendDigit
from .callerid import caller_id
from .calls import Call, dial_target
from .causes import tone_for_status
from .controller import Phone
from .setup import LineSetup

__all__ = [
    "AttachMedia",
    "Call",
    "DetachMedia",
    "DriveLine",
    "LineSetup",
    "Phone",
    "PhoneAction",
    "SendDigit",
    "caller_id",
    "dial_target",
    "tone_for_status",
]
