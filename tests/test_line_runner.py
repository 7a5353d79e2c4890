"""The FXS line running for real: sim board on the real clock, the line's audio thread, the
state machine's timers on the asyncio loop."""

from __future__ import annotations

import array
import asyncio
import math
import time
from collections.abc import Callable

import pytest

import spandsp_oracle as sp
from tipring.config.schema import LineConfig
from tipring.hal.api import RingCadence
from tipring.hal.sim import VirtualHandset, create_sim_board
from tipring.line.regions import profile
from tipring.line.signals import DialedNumber, OffHook, OnHook
from tipring.media.dsp import CallerId
from tipring.runtime.line import LineRunner

pytestmark = pytest.mark.slow


def goertzel_power(samples: array.array, freq: float) -> float:
    k = 2 * math.cos(2 * math.pi * freq / 8000)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + k * s1 - s2, s1
    return (s1 * s1 + s2 * s2 - k * s1 * s2) / len(samples) ** 2


async def until(check: Callable[[], bool], deadline_s: float) -> None:
    end = time.monotonic() + deadline_s
    while not check():
        if time.monotonic() > end:
            raise AssertionError(f"not within {deadline_s} s")
        await asyncio.sleep(0.02)


def run(scenario: Callable[..., object], region: str = "US",
        config: LineConfig | None = None) -> list:
    board = create_sim_board(1)
    events: list = []

    async def main() -> None:
        runner = LineRunner(board.lines[0], profile(region), config or LineConfig(),
                            events.append)
        runner.start()
        try:
            await scenario(runner, events, board.handsets[0])
        finally:
            runner.stop()

    try:
        asyncio.run(main())
    finally:
        board.close()
    return events


def test_lift_gives_dial_tone_and_digits_dial_a_number() -> None:
    async def scenario(runner: LineRunner, events: list, phone: VirtualHandset) -> None:
        phone.lift()
        await until(lambda: any(isinstance(e, OffHook) for e in events), 1.0)
        await asyncio.sleep(0.4)
        heard = array.array("h")
        heard.frombytes(phone.heard())
        window = heard[-800:]
        assert goertzel_power(window, 350) > 100 * goertzel_power(window, 1000)
        assert goertzel_power(window, 440) > 100 * goertzel_power(window, 1000)
        phone.dial_dtmf("911")
        await until(lambda: any(isinstance(e, DialedNumber) for e in events), 3.0)
        phone.hang_up()
        await until(lambda: any(isinstance(e, OnHook) for e in events), 3.0)

    events = run(scenario)
    (dialed,) = [e for e in events if isinstance(e, DialedNumber)]
    assert dialed.number == "911" and dialed.emergency


def test_incoming_ring_carries_caller_id_that_decodes() -> None:
    cid = CallerId(number="6095551212", name="TIPRING")
    captured: dict[str, object] = {}

    async def scenario(runner: LineRunner, events: list, phone: VirtualHandset) -> None:
        # A short cadence that still leaves Bellcore's 0.5 s + burst + 0.2 s between rings.
        short = RingCadence(((0.4, 2.0),))
        runner.apply(runner.line.ring(cid, short, runner.clock()))
        await until(lambda: len(phone.ring_bursts) >= 2, 5.0)
        captured["audio"] = phone.caller_id_audio()
        captured["bursts"] = list(phone.ring_bursts)

    events = run(scenario)
    assert not any(isinstance(e, OffHook) for e in events)
    bursts = captured["bursts"]
    assert bursts[1][0] - bursts[0][0] == pytest.approx(2.4, abs=0.05)  # the cadence held
    audio = array.array("h")
    audio.frombytes(captured["audio"])  # type: ignore[arg-type]
    messages = sp.adsi_rx(audio, sp.ADSI_STANDARD_CLASS)
    assert len(messages) == 1
    fields = dict(sp.adsi_fields(messages[0], sp.ADSI_STANDARD_CLASS))
    assert b"6095551212" in fields.values() and b"TIPRING" in fields.values()


@pytest.mark.parametrize("lamp", ["sdmf", "off"])
def test_message_lamp_settings_reach_the_phone(lamp: str) -> None:
    """`message_lamp` / `message_lamp_alert` as the phone sees them: SDMF after one ring pulse
    (spandsp decodes message 0x06 "BBB"), or no data at all and the stutter dial tone only."""
    captured: dict[str, object] = {}

    async def scenario(runner: LineRunner, events: list, phone: VirtualHandset) -> None:
        runner.apply(runner.line.message_waiting(True, runner.clock()))
        await asyncio.sleep(2.5)
        captured["audio"], captured["rings"] = phone.caller_id_audio(), len(phone.ring_bursts)
        phone.lift()
        await asyncio.sleep(0.5)
        heard = array.array("h")
        heard.frombytes(phone.heard())
        captured["tone"] = goertzel_power(heard[-1600:], 350.0)

    run(scenario, config=LineConfig(message_lamp=lamp, message_lamp_alert="rp-as"))  # type: ignore[arg-type]
    audio = array.array("h")
    audio.frombytes(captured["audio"])  # type: ignore[arg-type]
    messages = sp.adsi_rx(audio, sp.ADSI_STANDARD_CLASS)
    if lamp == "sdmf":
        assert [(m[0], m[2:5]) for m in messages] == [(0x06, b"BBB")]
        assert captured["rings"] == 1  # the ring-pulse alert asked for
    else:
        assert messages == [] and captured["rings"] == 0
    assert captured["tone"] > 1e3  # dial tone (stuttering) once lifted, either way


def test_line_settings_reach_the_ring_the_tones_and_the_audio_path() -> None:
    """Ring frequency, ring cadence, a tone override and the gains of `LineConfig` are what
    the SLIC and the handset get (they used to stop at the configuration)."""
    config = LineConfig(ring_frequency_hz=25, ring_cadence="400/200,400/2000",
                        dial_tone="f1=425@-10,c=0/0;", tx_gain_db=-6.0, rx_gain_db=3.0)

    async def scenario(runner: LineRunner, events: list, handset: VirtualHandset) -> None:
        slic = runner.port.slic
        assert runner.line.profile.ring == RingCadence(((0.4, 0.2), (0.4, 2.0)), 20.0)
        runner.apply(runner.line.ring(None, None, runner.clock()))
        await until(lambda: slic.ringing, 2)
        cadence = slic.ring_cadence  # type: ignore[attr-defined]
        assert cadence is not None and cadence.frequency_hz == 25.0
        assert cadence.segments == ((0.4, 0.2), (0.4, 2.0))
        runner.apply(runner.line.stop_ring(runner.clock()))
        handset.lift()
        await asyncio.sleep(0.6)
        heard = array.array("h")
        heard.frombytes(handset.heard())
        window = heard[-2000:]
        assert goertzel_power(window, 425.0) > 100 * goertzel_power(window, 350.0)
        state = runner.audio.path.state
        assert (round(state.tx_gain, 3), round(state.rx_gain, 3)) == (
            round(10 ** (-6 / 20), 3), round(10 ** (3 / 20), 3))

    run(scenario, config=config)
