"""A call for the call benchmarks: the sim-board `Device` (as `tipring run --board sim` builds
it, in this process) registered with a Kamailio on loopback, the handset dialling a baresip that
answers at once, and CPU readings from /proc for this process's threads and for baresip.

Shared by bench/call_cpu.py and bench/media_rt.py; the peers are the tests' (tests/peers).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from peers.baresip import Baresip  # noqa: E402  (the tests' peers)
from peers.kamailio import Kamailio  # noqa: E402
from peers.ports import free_port  # noqa: E402

from tipring.config import ConfigStore, config_from_dict, config_to_dict, default_config  # noqa: E402
from tipring.hal.sim import VirtualHandset  # noqa: E402
from tipring.runtime.app import Device, Options  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


class QuietBaresip(Baresip):
    """baresip whose player is aubridge with no source on the other side (it never runs), in
    place of ALSA's null PCM: that one has no clock, so baresip's playback thread spins on it
    at a core's worth of CPU, which a real sound card would never let it do. Decoding and the
    recording are unchanged (they happen as RTP arrives)."""

    def write_config(self) -> None:
        super().write_config()
        config = self.workdir / "config"
        text = config.read_text().replace("audio_player alsa,null", "audio_player aubridge,bench")
        config.write_text(text + "module aubridge.so\n")


@dataclass
class CallRig:
    kamailio: Kamailio
    far: Baresip
    device: Device
    phone: VirtualHandset


async def until(check: Callable[[], Any], seconds: float, what: str) -> Any:
    end = time.monotonic() + seconds
    while not (result := check()):
        if time.monotonic() > end:
            raise RuntimeError(f"{what}: not within {seconds} s")
        await asyncio.sleep(0.05)
    return result


def write_config(workdir: Path, proxy: Kamailio) -> Path:
    raw = config_to_dict(default_config(), reveal_secrets=True)
    raw["accounts"] = [{"id": "main", "user": "1001", "password": "secret1001",
                        "domain": "tipring.test", "registrar": proxy.hostport, "expires": 300,
                        "keepalive_s": 0}]
    raw["lines"][0]["account"] = "main"
    raw["web"]["listen"] = "127.0.0.1"
    raw["web"]["port"] = free_port("127.0.0.1")
    path = workdir / "config.toml"
    ConfigStore(path).save(config_from_dict(raw))
    return path


@contextlib.asynccontextmanager
async def call_rig(workdir: Path, *, call_seconds: float,
                   far_audio: Path | None = None) -> AsyncIterator[CallRig]:
    """Kamailio, baresip and a registered device; everything stopped on the way out."""
    # Kamailio quits by itself after max_lifetime (600 s by default): longer than the call.
    kamailio = Kamailio(workdir / "kamailio", max_lifetime=int(call_seconds + 300)).start()
    far: Baresip | None = None
    device: Device | None = None
    try:
        far = QuietBaresip(workdir / "baresip", kamailio.aor("1002"), password="secret1002",
                      answer_mode="auto", audio=far_audio, max_call_seconds=call_seconds + 60,
                      max_lifetime=int(call_seconds + 300)).start()
        device = Device(Options(write_config(workdir, kamailio), "sim", sip_host="127.0.0.1",
                                sip_port=free_port("127.0.0.1")))
        device.start()
        await device.start_telephony()
        await until(lambda: device.status()["lines"][0]["registration"].startswith("registered"),
                    10, "registered")
        phone = device.board.handsets[0]  # type: ignore[union-attr]
        yield CallRig(kamailio, far, device, phone)
    finally:
        if device is not None:
            await device.stop_telephony()
            device.close()
        if far is not None:
            far.stop()
        kamailio.stop()


async def dial(rig: CallRig) -> None:
    """Lift, wait for dial tone, dial 1002#: connected once baresip has answered."""
    rig.phone.lift()
    await until(lambda: rig.device.status()["lines"][0]["state"] == "dial-tone", 5, "dial tone")
    rig.phone.dial_dtmf("1002#")
    await asyncio.to_thread(rig.far.wait_event, "CALL_ESTABLISHED", 15)
    await until(lambda: rig.device.status()["lines"][0]["state"] == "connected", 5, "connected")


async def hang_up(rig: CallRig) -> None:
    rig.phone.hang_up()
    await asyncio.to_thread(rig.far.wait_event, "CALL_CLOSED", 10)


def _stat_cpu(path: str) -> float:
    """utime + stime of a /proc stat file, seconds (fields 14 and 15, after the comm)."""
    with open(path) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def process_cpu(pid: int | str = "self") -> float:
    return _stat_cpu(f"/proc/{pid}/stat")


def thread_cpu(native_id: int) -> float:
    return _stat_cpu(f"/proc/self/task/{native_id}/stat")


def media_thread(line: int = 0) -> threading.Thread:
    """The line's audio thread (runtime/media.py names it audio-lineN)."""
    for thread in threading.enumerate():
        if thread.name == f"audio-line{line}":
            return thread
    raise RuntimeError(f"no audio thread for line {line}")
