"""Network settings applied to the system: systemd-networkd and timesyncd on the image, a
recorder on the sim board.

The image's root file system is read-only, so the files go where the image already keeps its
generated network configuration: /run/systemd/network (tmpfs, read by networkd before
/etc and /usr/lib) and /run/systemd/timesyncd.conf.d. At boot, before networkd starts, the
image's `network-apply` renders the same files from the saved configuration; the names and
contents here are the same as its, so a reboot brings back exactly what was applied live.

An apply either takes effect or changes nothing: the previous files are kept in memory,
and if a write or the reload fails they are put back (and networkd reloaded again) before
`NetworkApplyError` says why. The caller saves the configuration only after a good apply, so
the running network and the saved settings never disagree.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from tipring.config import NetworkConfig

log = logging.getLogger("tipring.runtime")

NETWORK_DIR = Path("/run/systemd/network")
TIMESYNCD_DIR = Path("/run/systemd/timesyncd.conf.d")
TIMESYNCD_FILE = "tipring.conf"
IMAGE_DEFAULT = Path("/usr/lib/systemd/network/90-tipring-dhcp.network")
PREFIX = "10-tipring-"  # lower than the image's 90-tipring-dhcp.network, so it wins
WIRED = "eth0 end0"  # end0: systemd's name for a device-tree Ethernet (Pi 4, Pi 5)
COMMAND_TIMEOUT_S = 20.0


class NetworkApplyError(OSError):
    """The settings were not applied; the previous ones are still running. An OSError, so the
    pages and the API report it like any save that did not happen: nothing was changed."""


class NetworkBackend(Protocol):
    def apply(self, network: NetworkConfig) -> None:
        """Make `network` the running configuration, or raise NetworkApplyError leaving the
        previous one running. Blocks (file writes, a reload): call it in an executor."""
        ...


@dataclass(frozen=True)
class NetworkFiles:
    """What an apply writes: networkd files by name, and the timesyncd drop-in ("" = none,
    so the NTP servers come from DHCP or the image's default)."""

    networkd: dict[str, str]
    timesyncd: str


def render(network: NetworkConfig) -> NetworkFiles:
    """The files for a validated `network`. Plain DHCP with no extra DNS servers needs no
    file: the image's catch-all DHCP file applies."""
    body = ["[Network]"]
    dns = [f"DNS={ipaddress.ip_address(d)}" for d in network.dns]
    if network.mode == "static":
        body.append(f"Address={ipaddress.ip_interface(network.address).with_prefixlen}")
        if network.gateway:
            body.append(f"Gateway={ipaddress.ip_address(network.gateway)}")
        body += dns
        body.append("LinkLocalAddressing=ipv6")
    else:
        body.append("DHCP=yes")
        body += dns
    section = "\n".join(body) + "\n"
    files: dict[str, str] = {}
    if network.vlan:
        name = f"vlan{network.vlan}"
        files[f"{PREFIX}wired.network"] = (
            f"[Match]\nName={WIRED}\n\n[Network]\nVLAN={name}\nLinkLocalAddressing=no\n")
        files[f"{PREFIX}{name}.netdev"] = (
            f"[NetDev]\nName={name}\nKind=vlan\n\n[VLAN]\nId={network.vlan}\n")
        files[f"{PREFIX}{name}.network"] = f"[Match]\nName={name}\n\n{section}"
    elif network.mode == "static" or network.dns:
        files[f"{PREFIX}wired.network"] = f"[Match]\nName={WIRED}\n\n{section}"
    ntp = [host.strip() for host in network.ntp_servers if host.strip()]
    return NetworkFiles(files, f"[Time]\nNTP={' '.join(ntp)}\n" if ntp else "")


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    tmp.replace(path)


@dataclass
class NetworkdBackend:
    """systemd-networkd and timesyncd on the image; the commands are parameters so tests can
    run the real file handling against stub programs."""

    network_dir: Path = NETWORK_DIR
    timesyncd_dir: Path = TIMESYNCD_DIR
    networkctl: Sequence[str] = ("networkctl",)
    systemctl: Sequence[str] = ("systemctl",)

    def _managed(self) -> dict[Path, str]:
        """The files this backend owns as they are now, by path."""
        found = {path: path.read_text(encoding="utf-8")
                 for path in sorted(self.network_dir.glob(PREFIX + "*"))
                 if not path.name.endswith(".tmp")}
        dropin = self.timesyncd_dir / TIMESYNCD_FILE
        if dropin.exists():
            found[dropin] = dropin.read_text(encoding="utf-8")
        return found

    def _wanted(self, files: NetworkFiles) -> dict[Path, str]:
        wanted = {self.network_dir / name: text for name, text in files.networkd.items()}
        if files.timesyncd:
            wanted[self.timesyncd_dir / TIMESYNCD_FILE] = files.timesyncd
        return wanted

    def _install(self, wanted: dict[Path, str]) -> None:
        self.network_dir.mkdir(parents=True, exist_ok=True)
        self.timesyncd_dir.mkdir(parents=True, exist_ok=True)
        for stale in set(self._managed()) - set(wanted):
            stale.unlink()
        for path, text in wanted.items():
            _write_atomically(path, text)

    def _reload(self, ntp_changed: bool) -> None:
        commands = [[*self.networkctl, "reload"]]
        if ntp_changed:
            commands.append([*self.systemctl, "try-restart", "systemd-timesyncd.service"])
        for command in commands:
            try:
                done = subprocess.run(command, capture_output=True, text=True, check=False,
                                      timeout=COMMAND_TIMEOUT_S)
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise NetworkApplyError(f"{' '.join(command)} could not run: {exc}") from exc
            if done.returncode != 0:
                said = (done.stderr or done.stdout).strip().splitlines()
                raise NetworkApplyError(f"{' '.join(command)} failed (exit {done.returncode})"
                                        + (f": {said[-1]}" if said else ""))

    def apply(self, network: NetworkConfig) -> None:
        wanted = self._wanted(render(network))
        try:
            previous = self._managed()
        except OSError as exc:
            raise NetworkApplyError(f"the current network files cannot be read: {exc}") from exc
        if wanted == previous:
            return  # nothing to change: no reload, no NTP restart
        dropin = self.timesyncd_dir / TIMESYNCD_FILE
        try:
            self._install(wanted)
            self._reload(previous.get(dropin) != wanted.get(dropin))
        except OSError as exc:
            self._restore(previous)
            reason = exc if isinstance(exc, NetworkApplyError) else f"writing the files: {exc}"
            raise NetworkApplyError(f"the network settings were not applied ({reason}); "
                                    "the previous ones are still in use") from exc
        log.info("network settings applied", extra={"files": len(wanted), "mode": network.mode})

    def _restore(self, previous: dict[Path, str]) -> None:
        try:
            self._install(previous)
            self._reload(ntp_changed=True)
        except OSError as exc:  # already failing: say so, the first reason is the one raised
            log.error("network rollback incomplete", extra={"reason": str(exc)})


@dataclass
class SimNetworkBackend:
    """The sim board's backend: renders what the image would write and records it, so the
    page and the tests see the same files without touching this computer's network.
    `fail_with` makes the next applies fail, to exercise the rollback path."""

    applied: list[NetworkFiles] = field(default_factory=list)
    fail_with: str = ""

    @property
    def running(self) -> NetworkFiles | None:
        return self.applied[-1] if self.applied else None

    def apply(self, network: NetworkConfig) -> None:
        files = render(network)
        if self.fail_with:
            raise NetworkApplyError(f"the network settings were not applied ({self.fail_with}); "
                                    "the previous ones are still in use")
        self.applied.append(files)
        log.info("network settings recorded (sim board: not applied to this computer)",
                 extra={"files": len(files.networkd), "mode": network.mode})


def backend_for(driver: str, image_default: Path = IMAGE_DEFAULT) -> NetworkBackend | None:
    """The sim board records; a real board applies through networkd only on the TipRing image
    (its default DHCP file is the sign). Elsewhere (a board on a general-purpose OS, which
    manages its own network) settings are validated and saved, not applied: None."""
    if driver == "sim":
        return SimNetworkBackend()
    return NetworkdBackend() if image_default.exists() else None
