"""The running ATA: the phone layer bound to the SIP runtime, the line runners and RTP sockets.

The phone decides (tipring.phone); this module carries its decisions out and feeds it: line
events from each `LineRunner`, SIP events from the `SipRuntime`, both on the loop. Each line
keeps one RTP/RTCP socket pair for the life of the device; a call's media attaches to the line's
audio thread and detaches when it ends. Registration state per account is kept for the status
page, in words.
"""

from __future__ import annotations

import asyncio
import collections
import datetime
import functools
import logging
import socket
import ssl
import time
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tipring.config.schema import Config, LineConfig
from tipring.media.quality import X_RTP_STAT, rtp_stat_header
from tipring.media.srtp import SrtpSession
from tipring.media.stream import RtpStream, StreamConfig
from tipring.phone import AttachMedia, DetachMedia, DriveLine, LineSetup, Phone, PhoneAction
from tipring.phone.actions import (
    ClearWebPassword,
    PlayPrompt,
    SaveLineSetting,
    SendDigit,
    StopPrompt,
)
from tipring.phone.setup import line_features
from tipring.phone.voicemenu import DeviceFacts
from tipring.runtime.calllog import CallLogEntry
from tipring.runtime.line import LineRunner
from tipring.runtime.media import MediaStats, PromptFinished
from tipring.runtime.prompts import PromptError, PromptLibrary
from tipring.runtime.rtp_ports import open_rtp_pair
from tipring.runtime.sip_runtime import SipRuntime
from tipring.runtime.sip_transport import tls_client_from_pem
from tipring.sip.registration import RegistrationSettings

log = logging.getLogger("tipring.phone")


@dataclass
class AccountState:
    words: str = "registering"
    retry_at: float | None = None  # monotonic time of the next attempt after a failure


@dataclass
class CallRecord:
    """What the status page and call log know of one call, kept beside the phone's own."""

    call: str
    line: int | None
    direction: str
    number: str
    started_wall: float  # wall clock, for the log
    started: float  # monotonic, for durations
    name: str = ""
    state: str = "calling"
    emergency: bool = False
    codec: str = ""
    connected_at: float | None = None
    held: bool = False  # on hold, or waiting (call waiting): its media is off the line
    stats: MediaStats | None = None
    ended: tuple[int, str, str] | None = None  # (status, reason, by) from CallEnded

    def snapshot(self, now: float) -> dict[str, Any]:
        stats = self.stats
        return {
            "direction": self.direction, "number": self.number, "name": self.name,
            "state": self.state, "held": self.held, "emergency": self.emergency,
            "codec": self.codec or None,
            "duration_s": (round(now - self.connected_at, 1)
                           if self.connected_at is not None else 0.0),
            "elapsed_s": round(now - self.started, 1),
            "rtp": rtp_figures(stats) if stats is not None else None,
        }


def rtp_figures(stats: MediaStats) -> dict[str, Any]:
    """The figures a person reads off a call, rounded for display and JSON."""
    expected = stats.received_packets + max(stats.cumulative_lost, 0)
    return {
        "received_packets": stats.received_packets,
        "sent_packets": stats.sent_packets,
        "lost_packets": stats.cumulative_lost,
        "loss_percent": round(100 * max(stats.cumulative_lost, 0) / expected, 1)
        if expected else 0.0,
        "jitter_ms": round(stats.jitter_ms, 1),
        "buffer_delay_ms": round(stats.buffer_delay_ms, 1),
        "buffer_target_ms": round(stats.buffer_target_ms, 1),
        "buffer_nominal_ms": round(stats.buffer_nominal_ms, 1),
        "late_packets": stats.late,
        "concealed_ms": round(stats.concealed_ms, 1),
        "round_trip_ms": None if stats.round_trip_ms is None else round(stats.round_trip_ms, 1),
        "overruns": stats.overruns,
        "underruns": stats.underruns,
        "sent_octets": stats.sent_octets,
        "received_octets": stats.received_octets,
        "duplicate_packets": stats.duplicates,
        "missing_packets": stats.quality_lost,
        "burst_ratio": stats.burst_ratio,
        "mos": stats.mos,
    }


BUSY_STATUSES = frozenset({486, 600, 603})  # busy here, busy everywhere, decline (as causes.py)


class Telephony:
    def __init__(self, config: Config, runners: dict[int, LineRunner], *,
                 sip_host: str = "0.0.0.0", sip_port: int = 5060,
                 on_change: Callable[[], None] = lambda: None,
                 on_call_ended: Callable[[CallLogEntry], None] = lambda _entry: None,
                 on_setting: Callable[[int, str, object], None] = lambda *_args: None,
                 on_password_reset: Callable[[], None] = lambda: None,
                 addresses: Callable[[], list[str]] = list,
                 prompts: PromptLibrary | None = None,
                 instance_id: str = "",
                 data_folder: str | None = None,
                 wall: Callable[[], float] = time.time) -> None:
        self.config = config
        self.runners = runners
        self.on_change = on_change
        self.on_call_ended = on_call_ended
        self.on_setting = on_setting  # a star code changed a line setting: save it
        self.on_password_reset = on_password_reset  # the voice menu's physical-presence reset
        self.addresses = addresses  # this device's IP addresses, for the voice menu
        self.prompts = prompts if prompts is not None else PromptLibrary()
        self.instance_id = instance_id  # RFC 5626 +sip.instance, for accounts with outbound on
        self.wall = wall
        self.calls: dict[str, CallRecord] = {}  # by the agent's call handle
        self.tls_problem = ""  # the configured TLS certificate or key does not load
        try:
            tls_client = tls_client_from_pem(config.sip.tls_ca, config.sip.tls_certificate,
                                             config.sip.tls_key.reveal(), folder=data_folder)
        except (ssl.SSLError, ValueError, OSError) as exc:
            tls_client = None
            self.tls_problem = f"SIP TLS settings do not load: {exc}"
            log.error("SIP TLS settings not used", extra={"reason": str(exc)})
        self.sip = SipRuntime(sip_host, sip_port, on_event=self._sip_event,
                              tls_client=tls_client)
        # Two RTP/RTCP socket pairs per line: a line holds at most two calls at once.
        self.sockets: dict[int, list[tuple[socket.socket, socket.socket]]] = {}
        self.accounts: dict[str, AccountState] = {}
        self.messages_waiting: dict[str, bool] = {}  # by account, from message-summary
        self.phone: Phone | None = None
        self._phone_timer: asyncio.TimerHandle | None = None
        self._mailboxes: set[str] = set()  # accounts whose message-summary we subscribed
        # Agent events raised while the phone is deciding (its own requests answer at once,
        # e.g. CallAnswered for the 200 it sends) wait until its actions are carried out, so a
        # call's media is detached before the next one's is attached, never the other way.
        self._stopping = False
        self._deciding = 0
        self._deferred: collections.deque[object] = collections.deque()
        self._streams: dict[str, RtpStream] = {}  # each call's outgoing RTP, kept across holds
        self._paused: dict[str, float] = {}  # when a call's stream last left the line

    async def start(self) -> None:
        agent = await self.sip.start()
        agent.bye_headers = self._quality_summary
        for account in self.config.accounts:
            if not account.enabled or not account.user:
                continue
            self.accounts[account.id] = AccountState()
            if account.transport == "tls" and self.tls_problem:
                self.accounts[account.id].words = f"cannot start: {self.tls_problem}"
                continue
            try:
                settings = RegistrationSettings.from_account(
                    account, instance_id=self.instance_id if account.outbound else "")
                await self.sip.add_account(settings,
                                           allow_sip_from=account.allow_sip_from)
            except Exception as exc:  # e.g. the registrar's name does not resolve
                self.accounts[account.id].words = f"cannot start: {exc}"
                log.error("account not started", extra={"account": account.id,
                                                        "reason": str(exc)})
                continue
            self.sip.register(account.id)
        setups = {}
        bind = self.sip.host if self.sip.host not in ("0.0.0.0", "::") else "0.0.0.0"
        for index, runner in self.runners.items():
            pairs = [open_rtp_pair(bind), open_rtp_pair(bind)]
            self.sockets[index] = pairs
            ports = [(self.sip.advertise, rtp.getsockname()[1]) for rtp, _ in pairs]
            line_cfg = self.line_config(index)
            account = self.config.account(line_cfg.account) if line_cfg.account else None
            if account is not None and account.id not in self.accounts:
                account = None  # disabled or unusable: no service on this line
            setups[index] = LineSetup.for_account(runner.line, account, ports[0], rtp2=ports[1],
                                                  **line_features(line_cfg, account))
            if setups[index].fallback_account not in self.accounts:
                setups[index].fallback_account = ""
        menu = self.prompts.available
        if not menu:
            log.warning("no recorded prompts: the voice menu and spoken intercepts are off")
        self.phone = Phone(agent, setups, local_time=self._local_time,
                           codes=self.config.features.codes(),
                           facts=self._facts if menu else None)
        log.info("telephony started", extra={"sip": f"{self.sip.advertise}:{self.sip.port}",
                                             "accounts": len(self.accounts)})

    def line_config(self, index: int) -> LineConfig:
        lines = self.config.lines
        return lines[index] if index < len(lines) else LineConfig()

    def update_features(self, config: Config) -> None:
        """Saved settings that need no restart (do-not-disturb, forwarding, call waiting...):
        the phone uses them from its next decision on, calls in progress go on."""
        self.config = config
        if self.phone is None:
            return
        for index, setup in self.phone.lines.items():
            line_cfg = self.line_config(index)
            account = self.config.account(setup.account) if setup.account else None
            for name, value in line_features(line_cfg, account).items():
                setattr(setup, name, value)
            if setup.fallback_account not in self.accounts:
                setup.fallback_account = ""

    def _facts(self) -> DeviceFacts:
        import tipring

        return DeviceFacts(
            addresses=tuple(self.addresses()),
            registrations=tuple((account, state.words.startswith("registered"))
                                for account, state in self.accounts.items()),
            version=tipring.__version__)

    def _local_time(self) -> datetime.datetime:
        try:
            zone = zoneinfo.ZoneInfo(self.config.device.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            zone = datetime.UTC
        return datetime.datetime.now(zone)

    @property
    def stopping(self) -> bool:
        return self._stopping

    async def stop(self, deadline: float = 0.8) -> None:
        self._stopping = True
        for record in list(self.calls.values()):  # calls cut by a restart still get logged
            self._finish(record, self.sip.clock(), cut="cut off: telephony stopped")
        if self.sip.agent is not None:
            await self.sip.stop(deadline)
        if self._phone_timer is not None:
            self._phone_timer.cancel()
            self._phone_timer = None
        for index, pairs in self.sockets.items():
            runner = self.runners.get(index)
            if runner is not None:
                runner.audio.detach()
            for rtp, rtcp in pairs:
                rtp.close()
                rtcp.close()
        self.sockets.clear()

    # --- inputs -------------------------------------------------------------------------------

    def line_event(self, index: int, event: object) -> None:
        if isinstance(event, MediaStats):
            self._track(self.sip.clock())
            record = self.calls.get(event.leg)  # the media thread's leg is the call handle
            if record is not None:
                record.stats = event
                self.on_change()  # live figures: the status view redraws each second
        if self.phone is None:
            return
        if isinstance(event, PromptFinished):
            self._call_phone(lambda phone, now: phone.prompt_finished(index, now))
            return
        self._call_phone(lambda phone, now: phone.line_event(index, event, now))
        self._track(self.sip.clock())

    def _call_phone(self, decide: Callable[[Phone, float], list[PhoneAction]]) -> None:
        """Ask the phone, carry out its actions, then hand it the events that came meanwhile."""
        phone = self.phone
        if phone is None:
            return
        self._deciding += 1
        try:
            actions = self.sip.act(lambda _agent, now: decide(phone, now))
        finally:
            self._deciding -= 1
        self.execute(actions)
        while not self._deciding and self._deferred:
            self._to_phone(self._deferred.popleft())

    def _to_phone(self, event: object) -> None:
        name = type(event).__name__
        ended = getattr(event, "call", None) if name == "CallEnded" else None
        if ended is not None and ended in self.calls:
            self.calls[ended].ended = (getattr(event, "status", 0),
                                       getattr(event, "reason", ""), getattr(event, "by", ""))
        self._call_phone(lambda phone, now: phone.sip_event(event, now))
        now = self.sip.clock()
        if name == "IncomingCall":
            self._incoming(event, now)
        self._track(now)

    def _sip_event(self, event: object) -> None:
        name = type(event).__name__
        account = getattr(event, "account", None)
        if account in self.accounts and name in ("Registered", "RegistrationFailed",
                                                  "Unregistered"):
            state = self.accounts[account]
            state.retry_at = None
            if name == "Registered":
                state.words = f"registered ({getattr(event, 'expires', 0)} s)"
            elif name == "RegistrationFailed":
                status = getattr(event, "status", 0)
                reason = getattr(event, "reason", "") or ""
                cause = f"{status} {reason}".strip() if status else (reason or "no answer")
                state.words = f"failed: {cause}"
                retry_in = getattr(event, "retry_in", None)
                if retry_in is not None:
                    state.retry_at = self.sip.clock() + retry_in
            elif name == "Unregistered":
                state.words = "not registered"
            if name == "Registered" and account not in self._mailboxes and \
                    self._mailbox_mode(account) == "subscribe":
                self._mailboxes.add(account)
                self.sip.act(lambda agent, now: agent.subscribe_mailbox(account, now))
            self.on_change()
        if name == "MessageWaiting":
            if self._mailbox_mode(account) == "off":
                return  # the user does not want the lamp or the stutter
            waiting = getattr(event, "waiting", None)
            if waiting is not None and account is not None:
                self.messages_waiting[account] = bool(waiting)
                self.on_change()
        if self.phone is not None:
            if self._deciding:
                self._deferred.append(event)
            else:
                self._to_phone(event)

    def _mailbox_mode(self, account: str | None) -> str:
        configured = self.config.account(account) if account else None
        return configured.message_waiting if configured is not None else "off"

    def _phone_tick(self) -> None:
        self._phone_timer = None
        if self.phone is not None:
            self._call_phone(lambda phone, now: phone.call_timer(now))
            self._track(self.sip.clock())

    def _arm_phone_timer(self) -> None:
        """The phone's own timers (no-answer forwarding, transfer supervision): one call_at."""
        if self._phone_timer is not None:
            self._phone_timer.cancel()
            self._phone_timer = None
        deadline = self.phone.call_deadline() if self.phone is not None else None
        if deadline is not None:
            loop = asyncio.get_running_loop()
            # The SIP clock is monotonic seconds, as the loop's is.
            self._phone_timer = loop.call_at(deadline, self._phone_tick)

    def _quality_summary(self, call: str) -> list[tuple[str, str]]:
        """The X-RTP-Stat header for the BYE of a call we hang up: the call's latest figures
        (the media thread reports each second) and its duration until now."""
        record = self.calls.get(call)
        if record is None or record.stats is None:
            return []
        now = self.sip.clock()
        duration = now - record.connected_at if record.connected_at is not None else 0.0
        return [(X_RTP_STAT, rtp_stat_header(rtp_figures(record.stats), duration_s=duration,
                                             codec=record.codec))]

    # --- the calls, for the status page and the call log --------------------------------------

    def calls_on(self, line: int) -> list[CallRecord]:
        return [r for r in self.calls.values() if r.line == line]

    def call_on(self, line: int) -> CallRecord | None:
        """The call whose audio is on the line (not held, not waiting), else any call."""
        calls = self.calls_on(line)
        return next((r for r in calls if not r.held), calls[0] if calls else None)

    def call_status(self, line: int) -> dict[str, Any] | None:
        record = self.call_on(line)
        return record.snapshot(self.sip.clock()) if record is not None else None

    def other_calls(self, line: int) -> list[dict[str, Any]]:
        """Calls on the line besides `call_status`'s: held or waiting (call waiting)."""
        active, now = self.call_on(line), self.sip.clock()
        return [r.snapshot(now) for r in self.calls_on(line) if r is not active]

    def _incoming(self, event: Any, now: float) -> None:
        caller = getattr(event, "caller", None)
        name = (getattr(caller, "display_name", None) or "") if caller is not None else ""
        phone_call = self.phone.calls.get(event.call) if self.phone is not None else None
        if phone_call is not None:
            shown = getattr(phone_call, "caller", None)  # what the line's caller ID showed
            self.calls[event.call] = CallRecord(
                event.call, phone_call.line, "incoming", phone_call.number, self.wall(), now,
                name=getattr(shown, "name", None) or name, state=phone_call.state)
            return
        # Refused at once (no line for the account, lines busy, do-not-disturb): a missed call.
        lines = [i for i, s in (self.phone.lines.items() if self.phone else ())
                 if s.account == getattr(event, "account", None)]
        uri = getattr(caller, "uri", None)
        number = str(getattr(uri, "user", "") or "") if uri is not None else ""
        reason = self.phone.not_put_through.pop(event.call, "") if self.phone else ""
        self.on_call_ended(CallLogEntry(
            time=self.wall(), line=lines[0] if lines else None, direction="incoming",
            number=number, name=name, outcome="missed",
            reason=reason or ("no line uses the account" if not lines else "line busy")))

    def _track(self, now: float) -> None:
        """Bring the records in line with the phone's calls: new ones, state changes, ends."""
        phone = self.phone
        if phone is None:
            return
        changed = False
        for handle, call in phone.calls.items():
            record = self.calls.get(handle)
            if record is None:
                record = self.calls[handle] = CallRecord(
                    handle, call.line, call.direction, call.number, self.wall(), now,
                    state=call.state, emergency=call.emergency)
                changed = True
            held = bool(getattr(call, "held", False)) or call.state == "waiting"
            if record.state != call.state or record.held != held:
                record.state, record.held = call.state, held
                changed = True
            if call.state == "connected" and record.connected_at is None:
                record.connected_at = now
            if call.media is not None:
                record.codec = call.media.codec
        for handle in [h for h in self.calls if h not in phone.calls]:
            self._finish(self.calls[handle], now)
            changed = True
        if changed:
            self.on_change()

    def _finish(self, record: CallRecord, now: float, cut: str = "") -> None:
        self.calls.pop(record.call, None)
        self._streams.pop(record.call, None)
        self._paused.pop(record.call, None)
        status, reason, by = record.ended or (None, cut, "local")
        if self.phone is not None and record.call in self.phone.not_put_through:
            reason = self.phone.not_put_through.pop(record.call)  # e.g. forwarded on no answer
        if record.connected_at is not None:
            outcome = "answered"
        elif record.direction == "incoming":
            outcome = "missed"
        elif status is None or status == 487 or by == "local":
            outcome = "cancelled"  # the caller hung up before an answer
        elif status in BUSY_STATUSES:
            outcome = "busy"
        else:
            outcome = "failed"
        if record.connected_at is not None:
            if by == "remote":
                reason = "hung up by the far end"
            elif not cut and (by == "local" or status is None):
                reason = "hung up by this phone"
        self.on_call_ended(CallLogEntry(
            time=record.started_wall, line=record.line, direction=record.direction,
            number=record.number, name=record.name,
            duration_s=round(now - record.connected_at, 1) if record.connected_at else 0.0,
            outcome=outcome, status=status, reason=reason, codec=record.codec,
            rtp=rtp_figures(record.stats) if record.stats is not None else {}))

    # --- outputs ------------------------------------------------------------------------------

    def execute(self, actions: list[PhoneAction]) -> None:
        for action in actions:
            runner = self.runners.get(getattr(action, "line", -1))
            if runner is None:
                continue
            if isinstance(action, DriveLine):
                runner.apply(list(action.commands))
            elif isinstance(action, AttachMedia):
                config = action.stream_config()
                if config is not None:
                    rtp, rtcp = self._pair_for(action)
                    srtp = SrtpSession(action.media.srtp) if action.media.srtp else None
                    runner.audio.attach(self._stream_for(action.call, config), rtp, rtcp, srtp,
                                        leg=action.call)
                runner.audio.set_direction(action.media.send and config is not None,
                                           action.media.receive, leg=action.call)
            elif isinstance(action, DetachMedia):
                runner.audio.detach(action.call)
                self._paused[action.call] = self.sip.clock()
            elif isinstance(action, SendDigit):
                runner.audio.start_digit(action.digit, leg=action.call)
                asyncio.get_running_loop().call_later(
                    action.duration_ms / 1000, functools.partial(runner.audio.stop_digit,
                                                                 leg=action.call))
            elif isinstance(action, SaveLineSetting):
                self.on_setting(action.line, action.name, action.value)
            elif isinstance(action, PlayPrompt):
                try:
                    runner.audio.play_prompt(self.prompts.pcm(action.clips))
                except PromptError as exc:
                    log.error("prompt not played", extra={"line": action.line,
                                                          "reason": str(exc)})
            elif isinstance(action, StopPrompt):
                runner.audio.stop_prompt()
            elif isinstance(action, ClearWebPassword):
                self.on_password_reset()
        self._arm_phone_timer()
        self.on_change()

    def _stream_for(self, call: str, config: StreamConfig) -> RtpStream:
        """A call's RTP stream each time its media is (re)attached (resume after hold, new
        address): the same SSRC, sequence going on and the timestamp moved on by the time the
        stream was off the line, as RFC 3550 5.1 has them. A fresh SSRC and a timestamp jump
        would look like a new source to the far end, which some drop (baresip 1.0 discards
        it as a timestamp going backwards)."""
        stream = RtpStream(config)
        previous = self._streams.get(call)
        if previous is not None:
            paused = self._paused.pop(call, None)
            elapsed = 0.0 if paused is None else max(0.0, self.sip.clock() - paused)
            stream.ssrc, stream.sequence = previous.ssrc, previous.sequence
            stream.timestamp = (previous.timestamp + round(elapsed * config.clock_rate)) \
                & 0xFFFFFFFF
        self._streams[call] = stream
        return stream

    def _pair_for(self, action: AttachMedia) -> tuple[socket.socket, socket.socket]:
        """The socket pair whose port the call's SDP advertised."""
        pairs = self.sockets[action.line]
        return next((pair for pair in pairs if pair[0].getsockname()[1] == action.local[1]),
                    pairs[0])

    def registration(self, account: str) -> str | None:
        """In words; a failure says the status, the reason and when the next try is."""
        state = self.accounts.get(account)
        if state is None:
            return None
        if state.retry_at is not None:
            wait = state.retry_at - self.sip.clock()
            return (f"{state.words}; retrying in {wait:.0f} s" if wait >= 0.5
                    else f"{state.words}; retrying now")
        return state.words
