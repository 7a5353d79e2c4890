"""A call through an impairing relay: the device calls baresip through Kamailio, and baresip's
RTP reaches the device through a UDP relay (tests/peers/relay.py) that drops, duplicates,
reorders and delays packets by a fixed pattern. The call keeps working (the handset still hears
baresip's tone, baresip still gets our RTP) and the device's figures agree with what the relay
did, within the tolerances stated at each assertion."""

from __future__ import annotations

import array
import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from test_ata_calls import call_out, call_rtp, config_file, hears, running_device, until

from peers.baresip import Baresip
from peers.kamailio import Kamailio
from peers.relay import Impairment, RelayCounts, interpose
from tipring.hal.sim import VirtualHandset
from tipring.media.quality import mos_estimate

pytest_plugins = ["peers.fixtures"]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

# 2 % dropped, 2.5 % duplicated, 4 % swapped with the next, and a 0/30/20/10 ms delay cycle
# whose consecutive differences average 15 ms (what RFC 3550's jitter estimate converges to).
# The phases are chosen so no packet gets two of them.
IMPAIRMENT = Impairment(drop_every=50, drop_phase=10, duplicate_every=40, duplicate_phase=25,
                        reorder_every=25, reorder_phase=3, delays_ms=(0.0, 30.0, 20.0, 10.0))
NOMINAL_JITTER_MS = 15.0


def test_statistics_match_the_injected_impairments(
        tmp_path: Path, kamailio: Kamailio, baresip_factory: Callable[..., Baresip]) -> None:
    far = baresip_factory(kamailio.aor("1002"), password="secret1002", answer_mode="auto")
    path = config_file(tmp_path, kamailio)
    seen: dict[str, object] = {}

    async def main() -> None:
        device = await running_device(path)
        phone: VirtualHandset = device.board.handsets[0]  # type: ignore[union-attr]
        relay = interpose(device, IMPAIRMENT)
        try:
            await call_out(device, phone, far)

            def figures() -> dict | None:
                return call_rtp(device, 500)

            await until(figures, 25, "ten seconds of impaired RTP")
            relay.paused = True  # nothing more arrives: the next report is final for what did
            await asyncio.sleep(0.3)  # the delayed ones land
            counts = relay.snapshot()
            before = time.monotonic()
            await until(lambda: (rtp := figures()) and rtp["received_packets"] == counts.forwarded
                        and time.monotonic() - before > 1.2, 5, "a report after the pause")
            seen["rtp"], seen["counts"] = figures(), counts
            relay.paused = False
            await asyncio.sleep(2.0)
            heard = array.array("h")
            heard.frombytes(phone.heard())
            seen["tone"] = hears(heard, 440.0)
            seen["returned"] = relay.snapshot().returned
            phone.hang_up()
            await asyncio.to_thread(far.wait_event, "CALL_CLOSED", 5)
        finally:
            await device.stop_telephony()
            device.close()
            relay.stop()

    asyncio.run(asyncio.wait_for(main(), 100))
    rtp, counts = seen["rtp"], seen["counts"]
    assert isinstance(rtp, dict) and isinstance(counts, RelayCounts)
    print("injected", counts, "measured", rtp)
    assert counts.dropped >= 10 and counts.duplicated >= 10 and counts.reordered >= 20
    # Every datagram the relay forwarded was received (duplicates count, as RFC 3550 A.3 has it).
    assert rtp["received_packets"] == counts.forwarded
    # RFC 3550 cumulative loss is expected - received, so each duplicate offsets one drop;
    # +-2 for the first packet (on probation) and a drop among the last before the pause.
    assert abs(rtp["lost_packets"] - (counts.dropped - counts.duplicated)) <= 2
    # The jitter buffer recognises every duplicate (it arrives with its original).
    assert abs(rtp["duplicate_packets"] - counts.duplicated) <= 1
    # The relay really delayed packets by the cycle (its own departures, measured).
    assert counts.jitter_ms >= NOMINAL_JITTER_MS * 0.8
    if not rtp["overruns"] and not rtp["underruns"]:
        # Timing figures, when the machine ran the device's audio thread in time (a loaded CI
        # runner may not, and its own xrun counters say so). A packet held behind its
        # successor arrives 20 ms late at most: the adaptive buffer may have to drop some of
        # those, never more than were reordered.
        assert 0 <= rtp["late_packets"] <= counts.reordered
        # The device's interarrival jitter is the relay's departures' (loopback adds little;
        # the device times arrivals to its 20 ms frame clock where the kernel's receive
        # timestamps are not available).
        assert counts.jitter_ms * 0.6 <= rtp["jitter_ms"] <= counts.jitter_ms * 1.5 + 5
    # For quality a duplicate does not undo a drop: the packets still missing are the drops
    # (+-1 for the last before the pause), and the MOS is the E-model's for that loss
    # (random: burst ratio 1) and the measured delay.
    assert abs(rtp["missing_packets"] - counts.dropped) <= 1
    assert rtp["burst_ratio"] == 1.0
    expected = counts.seen  # every number the far end sent reached the relay
    assert rtp["mos"] == pytest.approx(mos_estimate(
        round_trip_ms=rtp["round_trip_ms"], buffer_delay_ms=rtp["buffer_delay_ms"],
        loss_percent=100 * rtp["missing_packets"] / expected), abs=0.02)
    assert rtp["mos"] < 4.3  # about 2 % loss costs some 7 points of R
    # The call kept working both ways after the impairments.
    assert seen["tone"], "the handset no longer hears baresip's tone"
    assert isinstance(seen["returned"], int) and seen["returned"] > 500
