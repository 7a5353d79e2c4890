"""The whole ATA on the sim board against real peers: the device registers with Kamailio, the
virtual phone lifts and dials, baresip (the far end, sending a 440 Hz tone) answers, audio
flows both ways, and hanging up ends the call; and the other way round, baresip calls, the
phone rings, lifts, and talks.

Everything runs in one process: `Device` as `tipring run` builds it, on the real clock."""

from __future__ import annotations

import array
import asyncio
import json
import math
import time
import wave
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from peers.baresip import Baresip
from peers.kamailio import Kamailio
from peers.ports import free_port
from tipring.config import ConfigStore, config_from_dict, config_to_dict, default_config
from tipring.hal.sim import VirtualHandset
from tipring.runtime.app import Device, Options
from tipring.runtime.calllog import CallLog

pytest_plugins = ["peers.fixtures"]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]


def goertzel_power(samples: array.array, freq: float) -> float:
    k = 2 * math.cos(2 * math.pi * freq / 8000)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + k * s1 - s2, s1
    return (s1 * s1 + s2 * s2 - k * s1 * s2) / max(len(samples), 1) ** 2


def hears(samples: array.array, freq: float) -> bool:
    """Whether `freq` dominates the louder part of the audio."""
    window = samples[-4000:]
    return len(window) > 800 and goertzel_power(window, freq) > 20 * goertzel_power(window, 1700)


def config_file(tmp_path: Path, proxy: Kamailio) -> Path:
    raw = config_to_dict(default_config(), reveal_secrets=True)
    raw["accounts"] = [{"id": "main", "user": "1001", "password": "secret1001",
                        "domain": "tipring.test", "registrar": proxy.hostport, "expires": 300,
                        "keepalive_s": 0}]
    raw["lines"][0]["account"] = "main"
    raw["web"]["port"] = free_port("127.0.0.1")
    path = tmp_path / "config.toml"
    ConfigStore(path).save(config_from_dict(raw))
    return path


async def until(check: Callable[[], Any], deadline_s: float, what: str) -> Any:
    end = time.monotonic() + deadline_s
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > end:
            raise AssertionError(f"{what}: not within {deadline_s} s")
        await asyncio.sleep(0.05)


async def running_device(path: Path) -> Device:
    device = Device(Options(path, "sim", sip_host="127.0.0.1", sip_port=free_port("127.0.0.1")))
    device.start()
    await device.start_telephony()
    await until(lambda: device.status()["lines"][0]["registration"].startswith("registered"),
                5, "registered")
    return device


def call_rtp(device: Device, at_least: int = 0) -> dict[str, Any] | None:
    """Line 1's call's RTP figures from the device's status, once `at_least` packets came in
    (None before: for `until`)."""
    call = device.status()["lines"][0]["call"]
    rtp = call and call["rtp"]
    return rtp if rtp and rtp["received_packets"] >= at_least else None


async def call_out(device: Device, phone: VirtualHandset, far: Baresip) -> None:
    """Lift, hear dial tone, dial 1002#: baresip answers and the line is connected."""
    phone.lift()
    await until(lambda: device.status()["lines"][0]["state"] == "dial-tone", 2, "dial tone")
    phone.dial_dtmf("1002#")
    await asyncio.to_thread(far.wait_event, "CALL_ESTABLISHED", 10)
    await until(lambda: device.status()["lines"][0]["state"] == "connected", 5, "connected")


def test_the_phone_calls_out_and_talks(tmp_path: Path, kamailio: Kamailio,
                                       baresip_factory: Callable[..., Baresip]) -> None:
    far = baresip_factory(kamailio.aor("1002"), password="secret1002", answer_mode="auto")
    path = config_file(tmp_path, kamailio)

    async def main() -> None:
        device = await running_device(path)
        phone: VirtualHandset = device.board.handsets[0]  # type: ignore[union-attr]
        try:
            await call_out(device, phone, far)
            phone.speak(array.array("h", (int(6000 * math.sin(2 * math.pi * 1000 * n / 8000))
                                          for n in range(8000 * 3))))
            heard = array.array("h")

            def far_end_heard() -> bool:
                heard[:] = array.array("h")
                heard.frombytes(phone.heard())
                return hears(heard, 440.0)

            await until(far_end_heard, 5, "the far end's 440 Hz tone on our handset")
            await asyncio.sleep(1.5)
            phone.hang_up()
            await asyncio.to_thread(far.wait_event, "CALL_CLOSED", 5)
        finally:
            await device.stop_telephony()
            device.close()

    asyncio.run(asyncio.wait_for(main(), 45))
    received = far.recordings()["dec"]
    assert received, "baresip recorded nothing it received"
    with wave.open(str(received[-1])) as w:
        rate, channels = w.getframerate(), w.getnchannels()
        data = array.array("h", w.readframes(w.getnframes()))
    mono = data[::channels]
    step = max(1, rate // 8000)
    audio = array.array("h", mono[::step])  # near enough to 8 kHz to find a 1 kHz tone
    assert hears(audio[: len(audio) - 8000], 1000.0) or any(
        goertzel_power(audio[i : i + 800], 1000.0) > 20 * goertzel_power(audio[i : i + 800], 1700)
        and goertzel_power(audio[i : i + 800], 1000.0) > 1e5
        for i in range(0, len(audio) - 800, 800)), "the far end never heard our 1 kHz tone"


def test_a_call_in_rings_the_phone_and_is_answered(
        tmp_path: Path, kamailio: Kamailio, baresip_factory: Callable[..., Baresip]) -> None:
    far = baresip_factory(kamailio.aor("1002"), password="secret1002")
    path = config_file(tmp_path, kamailio)

    async def main() -> None:
        device = await running_device(path)
        phone: VirtualHandset = device.board.handsets[0]  # type: ignore[union-attr]
        try:
            await asyncio.to_thread(far.dial, kamailio.aor("1001"))
            await until(lambda: phone.ring_bursts, 10, "the phone ringing")
            assert device.status()["lines"][0]["state"] == "ringing"
            phone.lift()
            await asyncio.to_thread(far.wait_event, "CALL_ESTABLISHED", 5)
            await until(lambda: device.status()["lines"][0]["state"] == "connected", 5,
                        "connected")
            heard = array.array("h")

            def tone() -> bool:
                heard[:] = array.array("h")
                heard.frombytes(phone.heard())
                return hears(heard, 440.0)

            await until(tone, 5, "the caller's 440 Hz tone")
            call = device.status()["lines"][0]["call"]
            assert call["direction"] == "incoming" and call["number"] == "1002"
            await asyncio.to_thread(far.hangup)
            await until(lambda: device.status()["lines"][0]["state"] != "connected", 5,
                        "the line told of the hang-up")
            [logged] = await until(lambda: list(device.call_log.entries), 5, "call logged")
            assert (logged.direction, logged.number, logged.outcome) == (
                "incoming", "1002", "answered")
            assert logged.reason == "hung up by the far end"
        finally:
            await device.stop_telephony()
            device.close()

    asyncio.run(asyncio.wait_for(main(), 45))


def test_a_call_shows_live_rtp_statistics_and_lands_in_the_call_log(
        tmp_path: Path, kamailio: Kamailio, baresip_factory: Callable[..., Baresip]) -> None:
    """Issue 8 through the web API: while the call is up /api/v1/status carries its RTP
    figures (packets really received from baresip); after it, /api/v1/calls has one entry."""
    from aiohttp.test_utils import TestClient, TestServer
    from test_web_support import PASSWORD, setup_done

    from tipring.web.server import make_app

    far = baresip_factory(kamailio.aor("1002"), password="secret1002", answer_mode="auto")
    path = config_file(tmp_path, kamailio)

    async def main() -> None:
        device = Device(Options(path, "sim", sip_host="127.0.0.1",
                                sip_port=free_port("127.0.0.1")))
        device.start()
        phone: VirtualHandset = device.board.handsets[0]  # type: ignore[union-attr]
        try:
            async with TestClient(TestServer(make_app(device))) as client:
                await setup_done(client)  # first boot: saves and (re)starts telephony
                await until(lambda: device.telephony is not None and device.status()["lines"][0][
                    "registration"].startswith("registered"), 5, "registered")
                token = (await (await client.post("/api/v1/token", json={
                    "password": PASSWORD})).json())["token"]
                auth = {"Authorization": f"Bearer {token}"}

                async def api_line() -> dict[str, Any]:
                    response = await client.get("/api/v1/status", headers=auth)
                    assert response.status == 200
                    return (await response.json())["lines"][0]

                assert (await api_line())["call"] is None  # no call, no figures
                await call_out(device, phone, far)
                end = time.monotonic() + 5
                while True:
                    line = await api_line()
                    call = line["call"]
                    if (call and call["state"] == "connected" and call["rtp"]
                            and call["rtp"]["received_packets"] > 0):
                        break
                    assert time.monotonic() < end, f"no RTP figures on the API: {line}"
                    await asyncio.sleep(0.2)
                assert call["direction"] == "outgoing" and call["number"] == "1002"
                assert call["codec"] in ("PCMU", "PCMA")
                assert call["rtp"]["sent_packets"] > 0
                assert call["rtp"]["jitter_ms"] >= 0 and call["rtp"]["buffer_delay_ms"] >= 0
                page = await (await client.get("/")).text()
                assert "1002" in page and "packets" in page
                await asyncio.sleep(1.0)
                phone.hang_up()
                await asyncio.to_thread(far.wait_event, "CALL_CLOSED", 5)

                async def logged() -> list[dict[str, Any]]:
                    response = await client.get("/api/v1/calls", headers=auth)
                    return (await response.json())["calls"]

                end = time.monotonic() + 5
                while not (calls := await logged()):
                    assert time.monotonic() < end, "the call never reached the call log"
                    await asyncio.sleep(0.1)
                assert len(calls) == 1
                entry = calls[0]
                assert entry["line"] == 0 and entry["direction"] == "outgoing"
                assert entry["number"] == "1002" and entry["outcome"] == "answered"
                assert entry["duration_s"] >= 1.0
                assert entry["rtp"]["received_packets"] > 0
                assert abs(entry["time"] - time.time()) < 60
                assert (await api_line())["call"] is None
                assert "secret" not in json.dumps(calls)
                log_page = await (await client.get("/calls")).text()
                assert "1002" in log_page and "answered" in log_page
        finally:
            await device.stop_telephony()
            device.close()
        assert len(device.call_log.entries) == 1
        reread = CallLog.beside(path)
        reread.load()
        assert [e.number for e in reread.entries] == ["1002"]

    asyncio.run(asyncio.wait_for(main(), 45))


def during_a_call(tmp_path: Path, kamailio: Kamailio, baresip_factory: Callable[..., Baresip],
                  then: Callable[[Device, VirtualHandset, Baresip], Awaitable[None]]) -> None:
    """The device calls baresip (auto-answer) and `then` runs while the call is up."""
    far = baresip_factory(kamailio.aor("1002"), password="secret1002", answer_mode="auto")
    path = config_file(tmp_path, kamailio)

    async def main() -> None:
        device = await running_device(path)
        phone: VirtualHandset = device.board.handsets[0]  # type: ignore[union-attr]
        try:
            await call_out(device, phone, far)
            await then(device, phone, far)
        finally:
            await device.stop_telephony()
            device.close()

    asyncio.run(asyncio.wait_for(main(), 45))


def test_saving_an_unrelated_setting_does_not_cut_the_call(
        tmp_path: Path, kamailio: Kamailio, baresip_factory: Callable[..., Baresip]) -> None:
    import dataclasses

    async def then(device: Device, phone: VirtualHandset, far: Baresip) -> None:
        telephony = device.telephony
        config = device.config
        await device.apply_config(dataclasses.replace(
            config, device=dataclasses.replace(config.device, log_level="debug")))
        await asyncio.sleep(1.0)
        assert device.telephony is telephony  # not restarted
        assert device.status()["lines"][0]["state"] == "connected"
        assert "CALL_CLOSED" not in far.event_types()

    during_a_call(tmp_path, kamailio, baresip_factory, then)


def test_line_settings_saved_during_a_call_apply_when_it_ends(
        tmp_path: Path, kamailio: Kamailio, baresip_factory: Callable[..., Baresip]) -> None:
    """Issue 8's live apply: a line setting (here the gains) saved while a call is up waits for
    the call to end, then telephony restarts with it; the call itself is not cut."""
    import dataclasses

    async def then(device: Device, phone: VirtualHandset, far: Baresip) -> None:
        telephony = device.telephony
        config = device.config
        line = dataclasses.replace(config.lines[0], rx_gain_db=-6.0)
        await device.apply_config(dataclasses.replace(config, lines=(line,)))
        await asyncio.sleep(1.0)
        assert device.telephony is telephony  # still the same: the call goes on
        assert device.status()["lines"][0]["state"] == "connected"
        assert "CALL_CLOSED" not in far.event_types()
        assert round(device.lines[0].audio.path.state.rx_gain, 3) == 1.0  # not yet
        phone.hang_up()
        await asyncio.to_thread(far.wait_event, "CALL_CLOSED", 5)
        await until(lambda: device.telephony is not None and device.telephony is not telephony,
                    5, "telephony restarted after the call")
        await until(lambda: round(device.lines[0].audio.path.state.rx_gain, 3) ==
                    round(10 ** (-6 / 20), 3), 3, "the new gain in the audio path")
        await until(lambda: device.status()["lines"][0]["registration"].startswith(
            "registered"), 5, "registered again")

    during_a_call(tmp_path, kamailio, baresip_factory, then)
