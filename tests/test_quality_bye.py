"""The X-RTP-Stat summary on our BYE, against real peers: the sim-board device calls baresip
through Kamailio, audio flows both ways for a few seconds, the handset hangs up, and the BYE the
device sent (its own SIP trace) carries figures that agree with the call: packets each way at
50 a second, no loss, PCMU, the duration, and the MOS the call log keeps. baresip answering the
BYE (CALL_CLOSED) shows the proxy relayed it with the extra header."""

from __future__ import annotations

import array
import asyncio
import math
from collections.abc import Callable
from pathlib import Path

import pytest
from test_ata_calls import call_out, call_rtp, config_file, running_device, until

from peers.baresip import Baresip
from peers.kamailio import Kamailio
from tipring.hal.sim import VirtualHandset
from tipring.media.quality import FRAMING_MS, X_RTP_STAT, parse_rtp_stat, rating, rating_to_mos

pytest_plugins = ["peers.fixtures"]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]


def sent_bye_header(records: list, name: str) -> str | None:
    """The value of `name` in the BYE the device sent, from its SIP trace."""
    for record in records:
        text = record.data.decode("utf-8", "replace")
        if record.direction == "out" and text.startswith("BYE "):
            for line in text.split("\r\n")[1:]:
                field, _, value = line.partition(":")
                if field.strip().lower() == name.lower():
                    return value.strip()
    return None


def test_our_bye_carries_the_call_quality_summary(
        tmp_path: Path, kamailio: Kamailio, baresip_factory: Callable[..., Baresip]) -> None:
    far = baresip_factory(kamailio.aor("1002"), password="secret1002", answer_mode="auto")
    path = config_file(tmp_path, kamailio)
    seen: dict[str, object] = {}

    async def main() -> None:
        device = await running_device(path)
        phone: VirtualHandset = device.board.handsets[0]  # type: ignore[union-attr]
        try:
            seen["dialled"] = device.telephony.sip.clock()  # type: ignore[union-attr]
            await call_out(device, phone, far)
            phone.speak(array.array("h", (int(6000 * math.sin(2 * math.pi * 1000 * n / 8000))
                                          for n in range(8000 * 5))))
            telephony = device.telephony
            assert telephony is not None

            def figures() -> dict | None:
                return call_rtp(device, 150)

            seen["live"] = await until(figures, 15, "three seconds of RTP from baresip")
            connected = telephony.call_on(0).connected_at  # type: ignore[union-attr]
            phone.hang_up()  # the line sees it once the on-hook outlasts a hook flash
            hung_up = telephony.sip.clock()
            await asyncio.to_thread(far.wait_event, "CALL_CLOSED", 5)
            closed = telephony.sip.clock()
            seen["duration"] = (hung_up - connected, closed - connected)
            seen["since_dialling"] = closed - seen["dialled"]  # type: ignore[operator]
            seen["header"] = sent_bye_header(telephony.sip.trace.records(), X_RTP_STAT)
            [logged] = await until(lambda: list(device.call_log.entries), 5, "call logged")
            seen["logged"] = logged.rtp
        finally:
            await device.stop_telephony()
            device.close()

    asyncio.run(asyncio.wait_for(main(), 60))
    header = seen["header"]
    assert isinstance(header, str), "the BYE had no X-RTP-Stat header"
    fields = parse_rtp_stat(header)
    (duration, longest), since_dialling = seen["duration"], seen["since_dialling"]
    assert isinstance(since_dialling, float)
    # The summary holds the figures of the last statistics event, at most a second old; media
    # may start before the answer is seen (early media), never before dialling.
    for sent, octets in (("PS", "OS"), ("PR", "OR")):
        packets = int(fields[sent])
        assert 50 * (duration - 1.5) <= packets <= 50 * since_dialling + 2, (sent, header)
        assert int(fields[octets]) == 160 * packets
    assert int(duration) <= int(fields["DU"]) <= longest
    assert fields["PL"] == "0" and fields["DUP"] == "0"
    assert fields["EN"] == fields["DE"] == "PCMU"
    assert int(fields["JI"]) <= 20
    # Framing plus the jitter buffer on loopback (which grows on a loaded machine).
    latency = int(fields["LA"])
    assert FRAMING_MS <= latency <= 500
    # No loss: the MOS is the E-model's for that delay alone.
    assert float(fields["MOS"]) == pytest.approx(rating_to_mos(rating(latency, 0.0)), abs=0.02)
    logged = seen["logged"]
    assert isinstance(logged, dict)
    assert logged["mos"] is not None and logged["mos"] >= float(fields["MOS"]) - 0.3
    assert logged["received_packets"] >= int(fields["PR"])
    # baresip's SIP trace shows the BYE as Kamailio relayed it, header and all.
    assert f"{X_RTP_STAT}: {header}" in far.log_text()
