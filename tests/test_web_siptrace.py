"""SIP trace download and clear on the Maintenance page and in the API.

Written against the contract of `tipring.runtime.siptrace.SipTrace` (pcap() -> bytes, clear(),
enabled), reached as `device.telephony.sip.trace`. Until that module is merged, the device here
gets a minimal fake telephony exposing `.sip.trace`; the web code only uses those three names.
"""

from __future__ import annotations

import struct
from pathlib import Path
from types import SimpleNamespace

from aiohttp.test_utils import TestClient
from test_web_support import PASSWORD, csrf_for, run_client, setup_done

from tipring.runtime.app import Device


def _pcap(*payloads: bytes) -> bytes:
    """A classic pcap file (LINKTYPE_RAW, IPv4) holding `payloads` as packets."""
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101)
    for second, payload in enumerate(payloads):
        out += struct.pack("<IIII", 1_763_700_000 + second, 0, len(payload), len(payload))
        out += payload
    return out


class FakeTrace:
    def __init__(self) -> None:
        self.enabled = True
        self.messages = [b"REGISTER sip:pbx.example SIP/2.0\r\n\r\n",
                         b"SIP/2.0 200 OK\r\n\r\n"]
        self.cleared = 0

    def pcap(self) -> bytes:
        return _pcap(*self.messages)

    def clear(self) -> None:
        self.messages = []
        self.cleared += 1


def _with_trace(device: Device) -> FakeTrace:
    trace = FakeTrace()
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
            assert body == _pcap(*trace.messages) and b"REGISTER sip:pbx.example" in body
            forged = await client.post("/maintenance/sip-trace/clear", data={"csrf": "x"})
            assert forged.status == 403 and trace.cleared == 0
            cleared = await client.post("/maintenance/sip-trace/clear", data={
                "csrf": await csrf_for(client, "/maintenance")})
            assert cleared.status == 200 and "SIP trace cleared." in await cleared.text()
            assert trace.cleared == 1
            empty = await (await client.get("/maintenance/sip-trace.pcap")).read()
            assert empty == _pcap()  # just the file header
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
            assert await response.read() == _pcap(*trace.messages)
            assert (await client.delete("/api/v1/sip-trace", headers=auth)).status == 204
            assert trace.cleared == 1
        finally:
            device.telephony = None

    run_client(tmp_path / "config.toml", scenario)
