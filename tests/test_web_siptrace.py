"""SIP trace download and clear on the Maintenance page and in the API, with the running
telephony's real `SipTrace` (`device.telephony.sip.trace`): the download is its pcap, and the
digest response recorded with a REGISTER never leaves the box."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from aiohttp.test_utils import TestClient
from test_web_support import PASSWORD, csrf_for, run_client, setup_done

from tipring.runtime.app import Device
from tipring.runtime.siptrace import SipTrace

REGISTER = (b"REGISTER sip:pbx.example SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK1\r\n"
            b"Authorization: Digest username=\"1001\", realm=\"pbx.example\", nonce=\"n1\", "
            b"uri=\"sip:pbx.example\", response=\"0123456789abcdef0123456789abcdef\"\r\n"
            b"Content-Length: 0\r\n\r\n")
OK = b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n"


def _with_trace(device: Device) -> SipTrace:
    trace = SipTrace()
    trace.record("out", "udp", ("192.0.2.10", 5060), ("192.0.2.1", 5060), REGISTER)
    trace.record("in", "udp", ("192.0.2.10", 5060), ("192.0.2.1", 5060), OK)
    device.telephony = SimpleNamespace(sip=SimpleNamespace(trace=trace))  # type: ignore[assignment]
    return trace


def test_page_download_and_clear(tmp_path: Path) -> None:
    async def scenario(client: TestClient, device: Device) -> None:
        await setup_done(client)
        page = await (await client.get("/maintenance")).text()
        assert "SIP is not running" in page and "sip-trace-download" not in page
        assert (await client.get("/maintenance/sip-trace.pcap")).status == 409
        trace = _with_trace(device)
        try:
            page = await (await client.get("/maintenance")).text()
            assert "Download SIP trace (pcap)" in page
            response = await client.get("/maintenance/sip-trace.pcap")
            assert response.status == 200
            assert response.content_type == "application/vnd.tcpdump.pcap"
            disposition = response.headers["Content-Disposition"]
            assert disposition.startswith('attachment; filename="tipring-sip-')
            assert disposition.endswith('.pcap"')
            body = await response.read()
            assert body == trace.pcap() and b"REGISTER sip:pbx.example" in body
            assert b"0123456789abcdef" not in body  # the digest response is masked
            forged = await client.post("/maintenance/sip-trace/clear", data={"csrf": "x"})
            assert forged.status == 403 and len(trace) == 2
            cleared = await client.post("/maintenance/sip-trace/clear", data={
                "csrf": await csrf_for(client, "/maintenance")})
            assert cleared.status == 200 and "SIP trace cleared." in await cleared.text()
            assert len(trace) == 0
            empty = await (await client.get("/maintenance/sip-trace.pcap")).read()
            assert empty == SipTrace().pcap() and len(empty) == 24  # just the file header
        finally:
            device.telephony = None

    run_client(tmp_path / "config.toml", scenario)


def test_api_download_and_clear(tmp_path: Path) -> None:
    async def scenario(client: TestClient, device: Device) -> None:
        await setup_done(client)
        token = (await (await client.post("/api/v1/token",
                                          json={"password": PASSWORD})).json())["token"]
        auth = {"Authorization": f"Bearer {token}"}
        assert (await client.get("/api/v1/sip-trace")).status == 401
        missing = await client.get("/api/v1/sip-trace", headers=auth)
        assert missing.status == 409 and "not running" in (await missing.json())["error"]
        trace = _with_trace(device)
        try:
            response = await client.get("/api/v1/sip-trace", headers=auth)
            assert response.status == 200
            assert response.content_type == "application/vnd.tcpdump.pcap"
            assert "filename=" in response.headers["Content-Disposition"]
            assert await response.read() == trace.pcap()
            assert (await client.delete("/api/v1/sip-trace", headers=auth)).status == 204
            assert len(trace) == 0
        finally:
            device.telephony = None

    run_client(tmp_path / "config.toml", scenario)
