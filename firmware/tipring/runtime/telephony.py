"""The running ATA: the phone layer bound to the SIP runtime, the line runners and RTP sockets.

The phone decides (tipring.phone); this module carries its decisions out and feeds it: line
events from each `LineRunner`, SIP events from the `SipRuntime`, both on the loop. Each line
keeps one RTP/RTCP socket pair for the life of the device; a call's media attaches to the line's
audio thread and detaches when it ends. Registration state per account is kept for the status
page, in words.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import socket
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass

from tipring.config.schema import Config
from tipring.media.srtp import SrtpSession
from tipring.media.stream import RtpStream
from tipring.phone import AttachMedia, DetachMedia, DriveLine, LineSetup, Phone, PhoneAction
from tipring.phone.actions import SendDigit
from tipring.runtime.line import LineRunner
from tipring.runtime.rtp_ports import open_rtp_pair
from tipring.runtime.sip_runtime import SipRuntime
from tipring.sip.registration import RegistrationSettings

log = logging.getLogger("tipring.phone")


@dataclass
class AccountState:
    words: str = "registering"


class Telephony:
    def __init__(self, config: Config, runners: dict[int, LineRunner], *,
                 sip_host: str = "0.0.0.0", sip_port: int = 5060,
                 on_change: Callable[[], None] = lambda: None) -> None:
        self.config = config
        self.runners = runners
        self.on_change = on_change
        self.sip = SipRuntime(sip_host, sip_port, on_event=self._sip_event)
        self.sockets: dict[int, tuple[socket.socket, socket.socket]] = {}
        self.accounts: dict[str, AccountState] = {}
        self.phone: Phone | None = None

    async def start(self) -> None:
        agent = await self.sip.start()
        for account in self.config.accounts:
            if not account.enabled or not account.user:
                continue
            self.accounts[account.id] = AccountState()
            try:
                await self.sip.add_account(RegistrationSettings.from_account(account),
                                           allow_sip_from=account.allow_sip_from)
            except Exception as exc:  # e.g. the registrar's name does not resolve
                self.accounts[account.id].words = f"cannot start: {exc}"
                log.error("account not started", extra={"account": account.id,
                                                        "reason": str(exc)})
                continue
            self.sip.register(account.id)
        setups = {}
        for index, runner in self.runners.items():
            rtp, rtcp = open_rtp_pair(self.sip.host if self.sip.host not in ("0.0.0.0", "::")
                                      else "0.0.0.0")
            self.sockets[index] = (rtp, rtcp)
            line_cfg = (self.config.lines[index] if index < len(self.config.lines) else None)
            account = self.config.account(line_cfg.account) if line_cfg and line_cfg.account \
                else None
            if account is not None and account.id not in self.accounts:
                account = None  # disabled or unusable: no service on this line
            setups[index] = LineSetup.for_account(runner.line, account,
                                                  (self.sip.advertise, rtp.getsockname()[1]))
        self.phone = Phone(agent, setups, local_time=self._local_time)
        log.info("telephony started", extra={"sip": f"{self.sip.advertise}:{self.sip.port}",
                                             "accounts": len(self.accounts)})

    def _local_time(self) -> datetime.datetime:
        try:
            zone = zoneinfo.ZoneInfo(self.config.device.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            zone = datetime.UTC
        return datetime.datetime.now(zone)

    async def stop(self, deadline: float = 0.8) -> None:
        if self.sip.agent is not None:
            await self.sip.stop(deadline)
        for index, (rtp, rtcp) in self.sockets.items():
            runner = self.runners.get(index)
            if runner is not None:
                runner.audio.detach()
            rtp.close()
            rtcp.close()
        self.sockets.clear()

    # --- inputs -------------------------------------------------------------------------------

    def line_event(self, index: int, event: object) -> None:
        phone = self.phone
        if phone is None:
            return
        self.execute(self.sip.act(lambda _agent, now: phone.line_event(index, event, now)))

    def _sip_event(self, event: object) -> None:
        name = type(event).__name__
        account = getattr(event, "account", None)
        if account in self.accounts:
            state = self.accounts[account]
            if name == "Registered":
                state.words = f"registered ({getattr(event, 'expires', 0)} s)"
            elif name == "RegistrationFailed":
                state.words = (f"failed: {getattr(event, 'status', '')} "
                               f"{getattr(event, 'reason', '')}, retry in "
                               f"{getattr(event, 'retry_in', 0):.0f} s")
            elif name == "Unregistered":
                state.words = "not registered"
            self.on_change()
        if self.phone is not None:
            self.execute(self.phone.sip_event(event, self.sip.clock()))

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
                    rtp, rtcp = self.sockets[action.line]
                    srtp = SrtpSession(action.media.srtp) if action.media.srtp else None
                    runner.audio.attach(RtpStream(config), rtp, rtcp, srtp)
                runner.audio.set_direction(action.media.send and config is not None,
                                           action.media.receive)
            elif isinstance(action, DetachMedia):
                runner.audio.detach()
            elif isinstance(action, SendDigit):
                runner.audio.start_digit(action.digit)
                asyncio.get_running_loop().call_later(action.duration_ms / 1000,
                                                      runner.audio.stop_digit)
        self.on_change()

    def registration(self, account: str) -> str | None:
        state = self.accounts.get(account)
        return state.words if state else None
