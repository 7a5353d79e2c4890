"""Digits keyed on the phone during a call reach the far end (baresip), per the account's dtmf.

The whole ATA on the sim board, set up as in test_ata_calls.py (its helpers are imported): the
device registers with Kamailio, the virtual phone lifts and dials 1002#, baresip answers.
Then the handset keys DTMF tones into the mouthpiece and the device's detector finds them.

- dtmf = "info": each digit goes as an INFO (application/dtmf-relay) in the dialog. baresip
  1.0 answers it 200, logs "received DTMF" and reports the digit on its control socket as a
  CALL_DTMF_START event (param = the digit). The offer carries no telephone-event, so the
  digits cannot have come as RFC 4733 events.
- dtmf = "inband": the tones stay in the audio. baresip has no in-band detector (its DTMF
  events are for INFO and RFC 4733 only), so spandsp's receiver (an independent oracle)
  listens to what baresip recorded of the call.
"""

from __future__ import annotations

import array
import asyncio
import re
import wave
from collections.abc import Callable
from pathlib import Path

import pytest

from peers.baresip import Baresip
from peers.kamailio import Kamailio
from peers.ports import free_port
from spandsp_oracle import dtmf_rx
from test_ata_calls import call_out, running_device
from tipring.config import ConfigStore, config_from_dict, config_to_dict, default_config
from tipring.hal.sim import VirtualHandset

pytest_plugins = ["peers.fixtures"]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]


def config_file(tmp_path: Path, proxy: Kamailio, dtmf: str) -> Path:
    raw = config_to_dict(default_config(), reveal_secrets=True)
    raw["accounts"] = [{"id": "main", "user": "1001", "password": "secret1001",
                        "domain": "tipring.test", "registrar": proxy.hostport, "expires": 300,
                        "keepalive_s": 0, "dtmf": dtmf}]
    raw["lines"][0]["account"] = "main"
    raw["web"]["port"] = free_port("127.0.0.1")
    path = tmp_path / "config.toml"
    ConfigStore(path).save(config_from_dict(raw))
    return path


async def key_digits_in_a_call(path: Path, far: Baresip, digits: str,
                               after: Callable[[], bool] | None = None) -> None:
    """Call baresip, key `digits` on the handset, wait for `after()` (or 2 s), hang up."""
    device = await running_device(path)
    phone: VirtualHandset = device.board.handsets[0]  # type: ignore[union-attr]
    try:
        await call_out(device, phone, far)
        await asyncio.sleep(0.5)  # past the connect: the media path is running
        await asyncio.to_thread(phone.dial_dtmf, digits, 0.12, 0.12)
        for _ in range(100):
            if after is not None and after():
                break
            await asyncio.sleep(0.05)
        phone.hang_up()
        await asyncio.to_thread(far.wait_event, "CALL_CLOSED", 5)
    finally:
        await device.stop_telephony()
        device.close()


def received_digits(far: Baresip) -> str:
    return "".join(str(e.get("param", "")) for e in far.events
                   if e.get("type") == "CALL_DTMF_START")


def test_digits_go_as_sip_info(tmp_path: Path, kamailio: Kamailio,
                               baresip_factory: Callable[..., Baresip]) -> None:
    far = baresip_factory(kamailio.aor("1002"), password="secret1002", answer_mode="auto")
    digits = "159*#0"
    path = config_file(tmp_path, kamailio, "info")
    asyncio.run(asyncio.wait_for(key_digits_in_a_call(
        path, far, digits, lambda: len(received_digits(far)) >= len(digits)), 60))
    assert received_digits(far) == digits
    log = far.log_text()
    # baresip's SIP trace (-s): each digit came as one INFO, which it answered 200.
    infos = re.findall(r"INFO sip:\S+ SIP/2\.0\r?\n(?:.+\r?\n)*?Content-Type: "
                       r"application/dtmf-relay\r?\n(?:.+\r?\n)*?\r?\nSignal=(\S)", log)
    assert "".join(infos) == digits, infos
    assert [f"received DTMF: '{d}'" in log for d in digits] == [True] * len(digits)
    invite = log[log.index("INVITE sip:1002"):]
    assert "telephone-event" not in invite[:invite.index("m=audio") + 200]


def test_inband_digits_stay_in_the_audio(tmp_path: Path, kamailio: Kamailio,
                                         baresip_factory: Callable[..., Baresip]) -> None:
    far = baresip_factory(kamailio.aor("1002"), password="secret1002", answer_mode="auto")
    digits = "2580"
    path = config_file(tmp_path, kamailio, "inband")
    asyncio.run(asyncio.wait_for(key_digits_in_a_call(path, far, digits), 60))
    assert received_digits(far) == ""  # nothing out of band, and no INFO
    assert "application/dtmf-relay" not in far.log_text()
    [recording] = far.recordings()["dec"]
    with wave.open(str(recording)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        audio = array.array("h", w.readframes(w.getnframes()))
    # baresip answers at once on loopback, so the tail of the dialled '#' (80 ms of tone
    # still playing when the call connects) opens the recording: skip the first 0.3 s.
    assert dtmf_rx(audio[2400:]) == digits
