"""Reboot and factory reset, through a backend the system image provides.

The web page only asks; what a reboot or a reset means is the image's business (a real board
calls the image's reboot and wipes the data partition). Until the image provides its backend,
only the sim board has one: there a reboot is logged and not done (the host is not ours to
reboot), and a factory reset writes the default configuration, which has no admin password, so
the next visit is first boot again.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol

from tipring.config import default_config

if TYPE_CHECKING:
    from tipring.runtime.app import Device

log = logging.getLogger("tipring.web")


class SystemBackend(Protocol):
    async def reboot(self) -> str:
        """Start a reboot; returns what happens, in words for the user."""
        ...

    async def factory_reset(self) -> str:
        """Erase the configuration (and any other user data); returns what happened."""
        ...


class SimSystem:
    """The sim board's backend: nothing outside the configuration file is touched."""

    def __init__(self, device: Device) -> None:
        self.device = device

    async def reboot(self) -> str:
        log.warning("reboot requested (sim board: not rebooting the host)")
        return "Reboot requested. This is the sim board, so nothing was rebooted."

    async def factory_reset(self) -> str:
        await self.device.apply_config(default_config())
        log.warning("factory reset: default configuration written")
        return "Factory reset done: the default configuration is in place."


def backend_for(device: Device) -> SystemBackend | None:
    board = device.board
    if board is not None and board.driver == "sim":
        return SimSystem(device)
    return None  # a real board's backend comes with the system image
