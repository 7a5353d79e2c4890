"""Issue 8 on the web: the current call with live RTP figures on the status page, API and
server-sent events; the call log page and /api/v1/calls; registration in words."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path

from aiohttp.test_utils import TestClient
from test_web_support import PASSWORD, run_client, setup_done

from tipring.config import config_from_dict, config_to_dict
from tipring.runtime.app import Device
from tipring.runtime.calllog import CallLogEntry
from tipring.runtime.media import MediaStats
from tipring.runtime.telephony import CallRecord, Telephony


async def bearer(client: TestClient) -> dict[str, str]:
    token = (await (await client.post("/api/v1/token", json={"password": PASSWORD})).json())
    return {"Authorization": f"Bearer {token['token']}"}


def figures(received: int) -> MediaStats:
    return MediaStats(sent_packets=150, received_packets=received, dropped={}, jitter_ms=3.26,
                      cumulative_lost=3, buffer_delay_ms=41.9, buffer_target_ms=40.0, late=1,
                      concealed_ms=60.0, round_trip_ms=12.4, overruns=0, underruns=0, leg="c1")


def from_audio_thread(device: Device, stats: MediaStats) -> None:
    """Hand `stats` to line 0 the way its media thread does: from another thread."""
    hop = threading.Thread(target=device.lines[0]._from_audio_thread, args=(stats,))
    hop.start()
    hop.join()


def test_current_call_and_its_rtp_figures_show_live(tmp_path: Path) -> None:
    async def scenario(client: TestClient, device: Device) -> None:
        await setup_done(client)
        auth = await bearer(client)
        line = (await (await client.get("/api/v1/status", headers=auth)).json())["lines"][0]
        assert line["call"] is None
        page = await (await client.get("/")).text()
        assert 'data-key="line0.call">no call<' in page
        assert 'data-key="line0.rtp.received">-<' in page  # no figures made up without a call

        telephony = Telephony(device.config, device.lines, on_change=device.notify_changed,
                              on_call_ended=device.log_call)
        device.telephony = telephony
        try:
            now = time.monotonic()
            telephony.calls["c1"] = CallRecord(
                "c1", 0, "incoming", "5551234", time.time(), now - 65, name="Ada <Lovelace>",
                state="connected", codec="PCMU", connected_at=now - 62)
            events = await client.get("/events")
            async with asyncio.timeout(5):
                first = json.loads((await events.content.readuntil(b"\n\n")).decode()
                                   .split("data: ", 1)[1])
            assert first["line0.party"] == "from Ada <Lovelace> (5551234)"
            assert first["line0.rtp.received"] == "-"  # connected, but no figures yet
            from_audio_thread(device, figures(147))
            async with asyncio.timeout(2):  # pushed when the figures arrive
                while True:
                    view = json.loads((await events.content.readuntil(b"\n\n")).decode()
                                      .split("data: ", 1)[1])
                    if view["line0.rtp.received"] != "-":
                        break
            events.close()
            assert view["line0.rtp.received"] == "147 packets"
            assert view["line0.rtp.sent"] == "150 packets"
            assert view["line0.rtp.loss"] == "3 lost (2.0 %)"
            assert view["line0.rtp.jitter"] == "3.3 ms"
            assert view["line0.rtp.buffer"] == "42 ms (target 40 ms)"
            assert view["line0.rtp.rtt"] == "12 ms"
            assert view["line0.codec"] == "PCMU" and view["line0.call"] == "incoming, connected"
            assert view["line0.duration"].startswith("0:01:0")

            status = await (await client.get("/api/v1/status", headers=auth)).json()
            call = status["lines"][0]["call"]
            assert call["direction"] == "incoming" and call["number"] == "5551234"
            assert call["name"] == "Ada <Lovelace>" and call["codec"] == "PCMU"
            assert call["duration_s"] >= 62
            assert call["rtp"]["received_packets"] == 147
            assert call["rtp"]["lost_packets"] == 3 and call["rtp"]["round_trip_ms"] == 12.4
            page = await (await client.get("/")).text()
            assert "147 packets" in page and "Ada &lt;Lovelace&gt;" in page
            assert "<Lovelace>" not in page  # escaped

            await telephony.stop(deadline=0.0)  # the call is cut: it still reaches the log
        finally:
            device.telephony = None
        assert (await (await client.get("/api/v1/status", headers=auth)).json())[
            "lines"][0]["call"] is None
        calls = (await (await client.get("/api/v1/calls", headers=auth)).json())["calls"]
        assert len(calls) == 1 and calls[0]["outcome"] == "answered"
        assert calls[0]["rtp"]["received_packets"] == 147 and calls[0]["duration_s"] >= 62

    run_client(tmp_path / "config.toml", scenario)


def test_call_log_page_and_api(tmp_path: Path) -> None:
    async def scenario(client: TestClient, device: Device) -> None:
        await setup_done(client)
        assert (await client.get("/api/v1/calls")).status == 401  # auth like every route
        auth = await bearer(client)
        empty = await (await client.get("/api/v1/calls", headers=auth)).json()
        assert empty == {"calls": [], "capacity": 200}
        assert "No calls yet." in await (await client.get("/calls")).text()
        device.log_call(CallLogEntry(time=1_763_700_000.0, line=0, direction="outgoing",
                                     number="1002", duration_s=75.0, outcome="answered",
                                     status=200, reason="hung up by this phone", codec="PCMA"))
        device.log_call(CallLogEntry(time=1_763_700_100.0, line=0, direction="outgoing",
                                     number="1003", outcome="busy", status=486,
                                     reason="Busy Here"))
        device.log_call(CallLogEntry(time=1_763_700_200.0, line=None, direction="incoming",
                                     number="", name="Withheld", outcome="missed",
                                     reason="line busy or do-not-disturb"))
        calls = (await (await client.get("/api/v1/calls", headers=auth)).json())["calls"]
        assert [c["outcome"] for c in calls] == ["missed", "busy", "answered"]
        assert calls[1] == {"time": 1_763_700_100.0, "line": 0, "direction": "outgoing",
                            "number": "1003", "name": "", "duration_s": 0.0,
                            "outcome": "busy", "status": 486, "reason": "Busy Here",
                            "codec": "", "rtp": {}, "started": "2025-11-21T04:41:40+00:00"}
        one = await (await client.get("/api/v1/calls?limit=1", headers=auth)).json()
        assert [c["number"] for c in one["calls"]] == [""]
        assert (await client.get("/api/v1/calls?limit=x", headers=auth)).status == 400
        html = await (await client.get("/calls")).text()
        assert 'aria-current="page">Call log<' in html
        rows = html.split('class="logged-call"')[1:]
        assert len(rows) == 3
        assert "2025-11-21 04:40 UTC" in rows[2] and "0:01:15" in rows[2]
        assert "answered" in rows[2] and "PCMA" in rows[2]
        assert "busy (486 Busy Here)" in rows[1]
        assert "Withheld (number withheld)" in rows[0] and "missed" in rows[0]
        # and it is on disk beside the configuration, for the next boot
        assert len((tmp_path / "calls.jsonl").read_text().splitlines()) == 3

    run_client(tmp_path / "config.toml", scenario)


def test_registration_words_for_lines_without_service(tmp_path: Path) -> None:
    async def scenario(client: TestClient, device: Device) -> None:
        await setup_done(client)
        auth = await bearer(client)
        lines = (await (await client.get("/api/v1/status", headers=auth)).json())["lines"]
        assert lines[0]["registration"] == "no account on this line"
        raw = config_to_dict(device.config, reveal_secrets=True)
        raw["accounts"] = [{"id": "off", "user": "1001", "domain": "sip.example.org",
                            "enabled": False}]
        raw["lines"][0]["account"] = "off"
        await device.apply_config(config_from_dict(raw))
        assert device.telephony is None  # nothing enabled: no SIP at all
        lines = (await (await client.get("/api/v1/status", headers=auth)).json())["lines"]
        assert lines[0]["registration"] == "account disabled"
        assert "account disabled" in await (await client.get("/")).text()

    run_client(tmp_path / "config.toml", scenario)


def test_call_log_in_the_device_time_zone(tmp_path: Path) -> None:
    """Stored in Unix seconds; shown (page) and given (API, ISO 8601 with the offset of that
    moment: EST in November, EDT in July) in config.device.timezone, also after it changes."""
    async def scenario(client: TestClient, device: Device) -> None:
        await setup_done(client)
        auth = await bearer(client)
        device.log_call(CallLogEntry(time=1_763_700_000.0, line=0, direction="outgoing",
                                     number="1002", outcome="answered", duration_s=5.0))
        device.log_call(CallLogEntry(time=1_751_371_200.0, line=0, direction="incoming",
                                     number="1003", outcome="missed"))
        raw = config_to_dict(device.config, reveal_secrets=True)
        raw["device"]["timezone"] = "America/New_York"
        await device.apply_config(config_from_dict(raw))
        html = await (await client.get("/calls")).text()
        rows = html.split('class="logged-call"')[1:]
        assert "2025-07-01 08:00 EDT" in rows[0]
        assert "2025-11-20 23:40 EST" in rows[1]  # the day before, in New York
        assert "Times are in America/New_York" in html
        calls = (await (await client.get("/api/v1/calls", headers=auth)).json())["calls"]
        assert [c["started"] for c in calls] == ["2025-07-01T08:00:00-04:00",
                                                 "2025-11-20T23:40:00-05:00"]
        assert calls[1]["time"] == 1_763_700_000.0  # the stored instant is unchanged
        raw["device"]["timezone"] = "Asia/Kathmandu"  # +05:45, no whole-hour offset
        await device.apply_config(config_from_dict(raw))
        calls = (await (await client.get("/api/v1/calls", headers=auth)).json())["calls"]
        assert calls[1]["started"] == "2025-11-21T10:25:00+05:45"
        raw["device"]["timezone"] = "Mars/Olympus_Mons"  # valid syntax, no such zone here
        await device.apply_config(config_from_dict(raw))
        calls = (await (await client.get("/api/v1/calls", headers=auth)).json())["calls"]
        assert calls[1]["started"] == "2025-11-21T04:40:00+00:00"  # UTC, not an error
        assert "2025-11-21 04:40 UTC" in await (await client.get("/calls")).text()

    run_client(tmp_path / "config.toml", scenario)
