"""The running device: load the configuration, open the board, start services, stop on a signal.

`Device` owns what lives as long as the process (configuration, board, hook state) and hands
hardware callbacks to the asyncio loop. Services that sit above the runtime (the web server) are
passed in as `Service` callables, so nothing here imports `web`.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import functools
import ipaddress
import itertools
import logging
import os
import platform
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tipring
from tipring.config import Config, ConfigStore, LineConfig, LoadResult, Secret, canonical_config
from tipring.hal.api import Board, HardwareError
from tipring.hal.profile import find_profile, load_profile, open_board
from tipring.line.regions import profile as region_profile
from tipring.line.signals import DialedNumber, OffHook, OnHook
from tipring.phone.features import digit_rules
from tipring.runtime import logs
from tipring.runtime.calllog import CallLog, CallLogEntry
from tipring.runtime.identity import instance_urn
from tipring.runtime.firmware_update import FirmwareUpdate
from tipring.runtime.line import LineRunner
from tipring.runtime.network import NetworkBackend
from tipring.runtime.network import backend_for as network_backend_for
from tipring.runtime.ssh import SshBackend, SshStatus
from tipring.runtime.ssh import backend_for as ssh_backend_for
from tipring.runtime.telephony import Telephony

log = logging.getLogger("tipring.runtime")

STOP_BUDGET_S = 1.5  # SIGTERM to exit must stay under 2 s (init systems escalate to SIGKILL)
RECENT_LOG_LINES = 500  # what the log viewer can show: bounded, the device has little RAM

Stopper = Callable[[], Awaitable[None]]
Service = Callable[["Device"], Awaitable[Stopper]]


@dataclass(frozen=True)
class Options:
    config_path: Path
    board: str = "sim"
    listen: str | None = None  # overrides web.listen from the configuration
    port: int | None = None  # overrides web.port
    sip_host: str = "0.0.0.0"  # where SIP and RTP bind (a wildcard advertises a real address)
    sip_port: int = 5060
    rauc: str = "rauc"  # the RAUC client that installs firmware bundles (tests use a stub)


class Device:
    """Configuration, board and line state of the running firmware."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.store = ConfigStore(options.config_path)
        self.loaded: LoadResult | None = None
        self.board: Board | None = None
        self.started_at = time.monotonic()
        self.started_wall = time.time()
        self.off_hook: dict[int, bool] = {}
        self.lines: dict[int, LineRunner] = {}
        self.telephony: Telephony | None = None
        self.network: NetworkBackend | None = None  # set with the board: sim or networkd
        self.ssh: SshBackend | None = None  # likewise: sim or the image's dropbear
        self.ssh_seen = SshStatus(False, "not known yet")  # the last status asked or applied
        self.recent_logs = RecentLogs(RECENT_LOG_LINES)
        self.call_log = CallLog.beside(options.config_path)
        self.firmware = FirmwareUpdate(options.config_path.parent, rauc=options.rauc)
        self._save_lock = asyncio.Lock()
        self._background: set[asyncio.Task[Any]] = set()
        self._restart_when_idle = False  # settings saved during a call wait for its end
        self._changes = 0  # bumped on anything a live status view should redraw for
        self._changed: asyncio.Future[None] | None = None  # resolved at the next change

    @property
    def web_address(self) -> tuple[str, int]:
        assert self.loaded is not None
        web = self.loaded.config.web
        return (self.options.listen or web.listen, self.options.port or web.port)

    def start(self) -> None:
        """Load the configuration (never fails: falls back) and open the board (may raise)."""
        logging.getLogger("tipring").addHandler(self.recent_logs)
        self.loaded = self.store.load()
        self.call_log.load()
        logging.getLogger("tipring").setLevel(self.loaded.config.device.log_level.upper())
        log.info(
            "configuration loaded",
            extra={"path": str(self.options.config_path), "source": self.loaded.source,
                   "problems": len(self.loaded.problems)},
        )
        profile = load_profile(find_profile(self.options.board))
        self.board = open_board(profile)
        self.network = network_backend_for(profile.driver)
        self.ssh = ssh_backend_for(profile.driver)
        loop = asyncio.get_running_loop()
        region = region_profile(self.loaded.config.device.region)
        for port in self.board.lines:
            self.off_hook[port.index] = port.slic.off_hook
            lines = self.loaded.config.lines
            line_cfg = lines[port.index] if port.index < len(lines) else LineConfig()
            runner = LineRunner(port, region, line_cfg,
                                functools.partial(self._line_event, port.index),
                                features=digit_rules(self.loaded.config.features.codes()))
            runner.start()
            self.lines[port.index] = runner
        for handset in getattr(self.board, "handsets", ()):
            # Sim board: the ringer turning on and off is worth a redraw of the virtual phone.
            handset.on_ring = handset.on_ring_stop = (
                lambda _at: loop.call_soon_threadsafe(self.notify_changed))
        log.info(
            "board opened",
            extra={"board": profile.name, "driver": profile.driver, "lines": profile.lines},
        )

    def _line_event(self, index: int, event: object) -> None:
        if isinstance(event, OffHook | OnHook):
            self.off_hook[index] = isinstance(event, OffHook)
            log.info("hook", extra={"line": index, "state": "off" if self.off_hook[index] else "on"})
        if isinstance(event, DialedNumber):
            log.info("dialled", extra={"line": index, "number": event.number,
                                       "emergency": event.emergency})
        if self.telephony is not None:
            self.telephony.line_event(index, event)
        elif isinstance(event, DialedNumber):
            # No account anywhere, so no SIP: what an ATA with no service gives, reorder tone.
            runner = self.lines[index]
            runner.apply(runner.line.play("congestion", runner.clock()))
        self.notify_changed()

    async def start_telephony(self) -> None:
        """Register the accounts and let the lines place and take calls (needs an account)."""
        config = self.config
        # The lines take their settings (dial plan, tones, gains, region) with or without SIP.
        region = region_profile(config.device.region)
        for index, runner in self.lines.items():
            line_cfg = config.lines[index] if index < len(config.lines) else LineConfig()
            runner.configure(region, line_cfg, digit_rules(config.features.codes()))
        if not any(a.enabled and a.user for a in config.accounts):
            return
        telephony = Telephony(config, self.lines, sip_host=self.options.sip_host,
                              sip_port=self.options.sip_port, on_change=self.notify_changed,
                              on_call_ended=self.log_call, on_setting=self._save_line_setting,
                              on_password_reset=self._reset_password,
                              addresses=interface_addresses,
                              instance_id=instance_urn(self.options.config_path.parent)
                              if any(a.outbound for a in config.accounts) else "",
                              data_folder=str(self.options.config_path.parent))
        try:
            await telephony.start()
        except OSError as exc:
            log.error("SIP cannot start: %s", exc, extra={"reason": str(exc)})
            await telephony.stop(deadline=0.0)
            return
        self.telephony = telephony

    async def stop_telephony(self, deadline: float = 0.8) -> None:
        telephony, self.telephony = self.telephony, None
        if telephony is not None:
            await telephony.stop(deadline=deadline)

    def _save_line_setting(self, index: int, name: str, value: object) -> None:
        """A star code changed a line setting: save it as if the web page had."""
        config = self.config
        lines = list(config.lines)
        if index >= len(lines) or name not in LIVE_LINE_SETTINGS:
            return
        lines[index] = dataclasses.replace(lines[index], **{name: value})
        task = asyncio.get_running_loop().create_task(
            self.apply_config(dataclasses.replace(config, lines=tuple(lines))))
        self._background.add(task)
        task.add_done_callback(self._saved)

    def _reset_password(self) -> None:
        """The voice menu's password reset (someone at the handset proved presence): the web
        goes back to first-boot setup, which also revokes every API token."""
        config = self.config
        cleared = dataclasses.replace(config, web=dataclasses.replace(
            config.web, admin_password_hash=Secret()))
        log.warning("web admin password cleared by the voice menu")
        task = asyncio.get_running_loop().create_task(self.apply_config(cleared))
        self._background.add(task)
        task.add_done_callback(self._saved)

    def _saved(self, task: asyncio.Task[Config]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("star code setting not saved", extra={"reason": str(task.exception())})

    def log_call(self, entry: CallLogEntry) -> None:
        """A call is over: into the call log (a write error is logged, never raised); and if
        saved settings were waiting for the lines to be idle, now is the moment."""
        log.info("call logged", extra={"line": entry.line, "direction": entry.direction,
                                       "outcome": entry.outcome, "status": entry.status,
                                       "duration_s": entry.duration_s})
        self.call_log.add(entry)
        self.notify_changed()
        telephony = self.telephony
        if self._restart_when_idle and telephony is not None and not telephony.calls \
                and not telephony.stopping:
            task = asyncio.get_running_loop().create_task(self._restart_telephony())
            self._background.add(task)
            task.add_done_callback(self._restarted)

    def _restarted(self, task: asyncio.Task[None]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("telephony did not restart with the new settings",
                      extra={"reason": str(task.exception())})

    async def _restart_telephony(self) -> None:
        self._restart_when_idle = False
        await self.stop_telephony()
        await self.start_telephony()

    def notify_changed(self) -> None:
        """Wake live views (server-sent events); call on the loop thread."""
        self._changes += 1
        if self._changed is not None and not self._changed.done():
            self._changed.set_result(None)
        self._changed = None

    async def wait_changed(self, seen: int, timeout: float) -> int:
        """Wait until something changed after change number `seen` (or `timeout` s pass);
        returns the current change number."""
        if self._changes == seen:
            if self._changed is None:
                self._changed = asyncio.get_running_loop().create_future()
            try:
                await asyncio.wait_for(asyncio.shield(self._changed), timeout)
            except TimeoutError:
                pass
        return self._changes

    @property
    def changes(self) -> int:
        return self._changes

    async def apply_config(self, config: Config) -> Config:
        """Validate, save and start using `config`; returns it in canonical form.

        Raises ConfigError (nothing written, the running configuration unchanged) or OSError.
        The save blocks on fsync, so it runs in an executor; saves are serialised so two
        browser tabs cannot interleave their writes.
        """
        canonical = canonical_config(config)
        async with self._save_lock:
            previous = self.loaded.config if self.loaded is not None else None
            await self._apply_system(previous, canonical)
            try:
                await asyncio.get_running_loop().run_in_executor(None, self.store.save, canonical)
            except OSError:
                await self._put_back(canonical, previous)  # to what is saved
                raise
            self.loaded = LoadResult(canonical, "file", [])
        logging.getLogger("tipring").setLevel(canonical.device.log_level.upper())
        log.info("configuration applied", extra={"path": str(self.options.config_path)})
        if self.board is not None and (self.telephony is None or previous is None or
                                       _telephony_changed(previous, canonical)):
            # Not running yet (e.g. the first account), or new accounts or line settings:
            # (re)register and rebuild the lines, at once when no call is up, else when the
            # last one ends (`log_call`). Other changes (web, logging, network, the
            # subscriber's features) never wait and never cut a call.
            if self.telephony is not None and self.telephony.calls:
                self._restart_when_idle = True
                self.telephony.update_features(canonical)
                log.info("account or line settings apply when the calls in progress end")
            else:
                await self._restart_telephony()
        elif self.telephony is not None:
            self.telephony.update_features(canonical)
        self.notify_changed()
        return canonical

    async def _apply_system(self, running: Config | None, wanted: Config | None) -> None:
        """Network and SSH settings go to the system before they are saved: a failed apply
        raises an OSError with the system as it was (the other half put back) and the saved
        file unchanged."""
        await self._apply_network(running, wanted)
        try:
            await self._apply_ssh(running, wanted)
        except OSError:
            try:
                await self._apply_network(wanted, running)
            except OSError as exc:
                log.error("network not put back after a failed SSH apply",
                          extra={"reason": str(exc)})
            raise

    async def _put_back(self, applied: Config, saved: Config | None) -> None:
        for apply, what in ((self._apply_network, "network"), (self._apply_ssh, "SSH")):
            try:
                await apply(applied, saved)
            except OSError as exc:
                log.error("%s not put back after a failed save", what,
                          extra={"reason": str(exc)})

    async def _apply_ssh(self, running: Config | None, wanted: Config | None) -> None:
        if (self.ssh is None or running is None or wanted is None
                or running.ssh == wanted.ssh):
            return
        await asyncio.get_running_loop().run_in_executor(None, self.ssh.apply, wanted.ssh)
        await self.ssh_status()

    async def apply_ssh_at_start(self) -> None:
        """Make the system's SSH follow the loaded configuration (after an update or a
        restored file the flag and keys on /data may not); a failure is logged, never fatal."""
        if self.ssh is None:
            return
        try:
            await asyncio.get_running_loop().run_in_executor(None, self.ssh.apply,
                                                             self.config.ssh)
        except OSError as exc:
            log.error("SSH settings not applied at start", extra={"reason": str(exc)})
        await self.ssh_status()

    async def ssh_status(self) -> SshStatus:
        """Ask the backend whether SSH is on (kept in `ssh_seen` for pages drawn without
        asking again)."""
        if self.ssh is None:
            self.ssh_seen = SshStatus(False, "not managed by TipRing on this system (its own "
                                             "SSH settings apply)")
        else:
            self.ssh_seen = await asyncio.get_running_loop().run_in_executor(None,
                                                                             self.ssh.status)
        return self.ssh_seen

    async def _apply_network(self, running: Config | None, wanted: Config | None) -> None:
        """Network settings go to the system before they are saved: a failed apply raises
        NetworkApplyError (an OSError) with the running network and the saved file unchanged."""
        if (self.network is None or running is None or wanted is None
                or running.network == wanted.network):
            return
        await asyncio.get_running_loop().run_in_executor(None, self.network.apply,
                                                         wanted.network)

    @property
    def config(self) -> Config:
        assert self.loaded is not None, "Device.start() not called"
        return self.loaded.config

    def _registration(self, account: str) -> str:
        if not account:
            return "no account on this line"
        if self.telephony is not None:
            words = self.telephony.registration(account)
            if words is not None:
                return words
        found = self.config.account(account) if self.loaded is not None else None
        if found is None:
            return f"account {account!r} does not exist"
        if not found.enabled:
            return "account disabled"
        if not found.user:
            return "account incomplete (no user name)"
        return "not registered (SIP could not start)"

    def close(self) -> None:
        logging.getLogger("tipring").removeHandler(self.recent_logs)
        for runner in self.lines.values():
            runner.stop()
        self.lines.clear()
        if self.board is not None:
            self.board.close()
            self.board = None

    def status(self) -> dict[str, Any]:
        """A JSON-ready snapshot for the status page and API; never contains secrets."""
        loaded = self.loaded
        lines = []
        if self.board is not None:
            for port in self.board.lines:
                line_cfg = None
                if loaded is not None and port.index < len(loaded.config.lines):
                    line_cfg = loaded.config.lines[port.index]
                lines.append({
                    "index": port.index,
                    "hook": "off-hook" if self.off_hook.get(port.index) else "on-hook",
                    "linefeed": port.slic.linefeed.value,
                    "ringing": port.slic.ringing,
                    "state": (self.lines[port.index].line.state.value
                              if port.index in self.lines else None),
                    "account": (line_cfg.account or None) if line_cfg else None,
                    "registration": self._registration(line_cfg.account if line_cfg else ""),
                    "call": (self.telephony.call_status(port.index)
                             if self.telephony is not None else None),
                    "other_calls": (self.telephony.other_calls(port.index)
                                    if self.telephony is not None else []),
                    "features": self._features_in_words(line_cfg),
                })
        return {
            "firmware": {"name": "TipRing", "version": tipring.__version__},
            "board": {"name": self.board.name, "driver": self.board.driver} if self.board else None,
            "uptime_s": round(time.monotonic() - self.started_at, 1),
            "config": {
                "path": str(self.options.config_path),
                "source": loaded.source if loaded else None,
                "problems": list(loaded.problems) if loaded else [],
            },
            "lines": lines,
            "system": system_facts(),
        }


    def _features_in_words(self, line: LineConfig | None) -> str:
        """What the subscriber switched on (often from the phone, by star code), and the
        message lamp, so the status page explains a phone that does not ring."""
        if line is None:
            return ""
        words = []
        if line.do_not_disturb:
            words.append("do not disturb")
        for target, when in ((line.forward_all, "all calls"), (line.forward_busy, "when busy"),
                             (line.forward_no_answer, f"after {line.no_answer_s} s")):
            if target:
                words.append(f"forwarded {when} to {target}")
        if line.anonymous_rejection:
            words.append("refusing anonymous callers")
        if line.hide_caller_id:
            words.append("number withheld")
        if not line.call_waiting:
            words.append("call waiting off")
        waiting = self.telephony.messages_waiting if self.telephony is not None else {}
        if waiting.get(line.account) or waiting.get(line.fallback_account):
            words.append("messages waiting")
        return ", ".join(words)


class RecentLogs(logging.Handler):
    """The last few hundred log lines in memory, for the web log viewer (the device may have no
    persistent syslog). Lines are formatted like stderr's, so secrets never appear: the config
    layer's `Secret` renders itself masked."""

    def __init__(self, capacity: int) -> None:
        super().__init__()
        self.lines: collections.deque[str] = collections.deque(maxlen=capacity)
        self.setFormatter(logs.LogfmtFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:  # a log viewer must never break logging
            self.handleError(record)


# Line settings the running phone takes as they are saved (star codes change them too).
LIVE_LINE_SETTINGS = ("do_not_disturb", "anonymous_rejection", "hide_caller_id", "forward_all",
                      "forward_busy", "forward_no_answer", "no_answer_s", "call_waiting",
                      "direct_ip")


def _telephony_changed(old: Config, new: Config) -> bool:
    def fixed(config: Config) -> tuple[object, ...]:
        lines = tuple(dataclasses.replace(line, **{name: getattr(LineConfig(), name)
                                                   for name in LIVE_LINE_SETTINGS})
                      for line in config.lines)
        return (config.accounts, lines, config.features, config.sip, config.device.region,
                config.device.timezone)
    return fixed(old) != fixed(new)


def system_facts() -> dict[str, Any]:
    facts: dict[str, Any] = {
        "hostname": socket.gethostname(),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    addresses = interface_addresses()
    if addresses:
        facts["addresses"] = addresses
    try:
        facts["load_1m"] = round(os.getloadavg()[0], 2)
    except OSError:
        pass
    try:
        meminfo = Path("/proc/meminfo").read_text().split("\n")
        fields = {ln.split(":")[0]: int(ln.split()[1]) for ln in meminfo if ln.endswith("kB")}
        facts["memory_available_kib"] = fields.get("MemAvailable")
        facts["memory_total_kib"] = fields.get("MemTotal")
    except (OSError, ValueError, IndexError):
        pass
    try:
        milli = int(Path("/sys/class/thermal/thermal_zone0/temp").read_text())
        facts["temperature_c"] = milli / 1000
    except (OSError, ValueError):
        pass
    return facts


def interface_addresses() -> list[str]:
    """This host's IP addresses other than loopback, from /proc (Linux; [] elsewhere).

    Read from the kernel's tables rather than by running `ip`, so the status page never starts a
    process: IPv4 from the local-address entries of fib_trie, IPv6 from if_inet6.
    """
    found: list[str] = []
    try:
        lines = Path("/proc/net/fib_trie").read_text().splitlines()
    except OSError:
        lines = []
    for previous, line in itertools.pairwise(lines):
        if line.strip() == "/32 host LOCAL":
            address = previous.strip().removeprefix("|-- ")
            if not address.startswith("127.") and address not in found:
                found.append(address)
    try:
        rows = Path("/proc/net/if_inet6").read_text().splitlines()
    except OSError:
        rows = []
    for row in rows:
        fields = row.split()
        if len(fields) == 6 and fields[5] != "lo" and len(fields[0]) == 32:
            try:
                address = str(ipaddress.IPv6Address(bytes.fromhex(fields[0])))
            except ValueError:
                continue
            shown = f"{address}%{fields[5]}" if address.startswith("fe80:") else address
            if shown not in found:
                found.append(shown)
    return found


async def serve(options: Options, services: Sequence[Service] = ()) -> int:
    """Run the device until SIGTERM or SIGINT; returns the process exit code."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    device = Device(options)
    stoppers: list[Stopper] = []
    try:
        device.start()
        await device.apply_ssh_at_start()
        await device.start_telephony()
        for service in services:
            stoppers.append(await service(device))
    except (HardwareError, OSError) as exc:
        log.error("cannot start", extra={"reason": str(exc)})
        await _shutdown(device, stoppers)
        return 2
    log.info("running", extra={"version": tipring.__version__, "pid": os.getpid()})
    await stop.wait()
    log.info("stopping")
    await _shutdown(device, stoppers)
    log.info("stopped")
    return 0


async def _shutdown(device: Device, stoppers: list[Stopper]) -> None:
    try:
        async with asyncio.timeout(STOP_BUDGET_S):
            await device.stop_telephony()  # un-REGISTER, within the budget
            for stopper in reversed(stoppers):
                await stopper()
    except TimeoutError:
        log.warning("services did not stop in time", extra={"budget_s": STOP_BUDGET_S})
    device.close()


def run(options: Options, services: Sequence[Service] = ()) -> int:
    logs.configure()
    return asyncio.run(serve(options, services))
