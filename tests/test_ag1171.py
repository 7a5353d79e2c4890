"""Ag1171 driver against gpiozero's MockFactory pins, on a virtual clock.

The test plays the hook switch like a real one (contact bounce on every edge) and watches the RM,
F/R and PD pins over virtual time, sampling them every millisecond.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tipring.hal.ag1171 import (
    Ag1171Pins,
    Ag1171Slic,
    Ag1171Timing,
    RingGuardedAudio,
    open_ag1171_board,
    ring_bursts,
)
from tipring.hal.api import PERIOD_BYTES, HardwareError, HookEvent, Linefeed, RingCadence
from tipring.hal.profile import load_profile
from tipring.hal.simclock import VirtualClock

mock = pytest.importorskip("gpiozero.pins.mock")
MockFactory = mock.MockFactory


class TracingPin(mock.MockPin):
    """A mock output pin that logs each level change with the *virtual* time it happened."""

    trace: list[tuple[float, str, bool]]
    clock: VirtualClock
    label: str

    def _change_state(self, value: bool) -> bool:
        before = self._state
        changed = super()._change_state(value)
        if hasattr(self, "trace") and bool(value) != bool(before):
            self.trace.append((self.clock.now(), self.label, bool(value)))
        return changed


T0 = 1000.0
PINS = Ag1171Pins(shk="GPIO17", rm="GPIO27", fr="GPIO22", pd="GPIO23")
BOUNCE = (0.0008, 0.0015, 0.0011, 0.002)  # gaps between contact bounces after an edge, seconds
BOARDS = Path(__file__).resolve().parent.parent / "hw" / "boards"


class Line:
    """A driver on mock pins, with a hook switch the test moves and the pins it watches."""

    def __init__(self, timing: Ag1171Timing | None = None, pins: Ag1171Pins = PINS) -> None:
        self.clock = VirtualClock(T0)
        self.factory = MockFactory()
        self.shk = self.factory.pin(17)
        self.trace: list[tuple[float, str, bool]] = []
        self.rm, self.fr, self.pd = (
            self._traced(n, label) for n, label in ((27, "rm"), (22, "fr"), (23, "pd"))
        )
        self.slic = Ag1171Slic(0, pins, self.clock, timing=timing, pin_factory=self.factory)
        self.events: list[HookEvent] = []
        self.slic.on_hook_event = self.events.append

    def _traced(self, number: int, label: str) -> TracingPin:
        pin = self.factory.pin(number, pin_class=TracingPin)
        pin.trace, pin.clock, pin.label = self.trace, self.clock, label
        return pin

    def run(self, seconds: float, step: float | None = None) -> None:
        self.clock.advance(seconds)

    def hook(self, off_hook: bool, bounce: tuple[float, ...] = BOUNCE) -> float:
        """Move the hook switch now, with contact bounce; returns the time of the first edge."""
        at = self.clock.now()
        level = off_hook
        self.shk.drive_high() if level else self.shk.drive_low()
        for gap in bounce:
            self.run(gap, step=gap)
            level = not level
            self.shk.drive_high() if level else self.shk.drive_low()
        if level != off_hook:
            self.shk.drive_high() if off_hook else self.shk.drive_low()
        return at

    def edges(self, pin: str, since: float = 0.0) -> list[tuple[float, bool]]:
        return [(t, v) for t, name, v in self.trace if name == pin and t >= since - 1e-9]

    def close(self) -> None:
        self.slic.close()


@pytest.fixture
def line() -> Iterator[Line]:
    fixture = Line()
    yield fixture
    fixture.close()


def test_idle_pins_forward_battery_no_ring(line: Line) -> None:
    assert (line.rm.state, line.fr.state, line.pd.state) == (False, True, False)
    assert line.slic.linefeed is Linefeed.FORWARD_ACTIVE
    assert not line.slic.off_hook


def test_bounced_lift_and_hang_up_are_one_edge_each_timed_at_the_first_contact(line: Line) -> None:
    line.run(0.1)
    lifted = line.hook(True)
    line.run(0.2)
    hung = line.hook(False)
    line.run(0.2)
    assert line.events == [HookEvent(0, True, lifted), HookEvent(0, False, hung)]
    assert line.slic.off_hook is False


def test_glitch_shorter_than_debounce_is_not_an_edge(line: Line) -> None:
    line.hook(True, bounce=(0.004,))  # 4 ms touch then back: noise, not a hook change
    line.shk.drive_low()
    line.run(0.1)
    assert line.events == []
    assert not line.slic.off_hook


def test_pulse_dialling_edges_keep_their_times(line: Line) -> None:
    line.hook(True)
    line.run(0.5)
    expected = [True]
    breaks = []
    for _ in range(3):  # digit 3 at 10 pps: 60 ms break, 40 ms make, each edge bouncing
        breaks.append(line.hook(False))
        line.run(0.060 - sum(BOUNCE))
        breaks.append(line.hook(True))
        line.run(0.040 - sum(BOUNCE))
        expected += [False, True]
    line.run(0.3)
    assert [e.off_hook for e in line.events] == expected
    assert [e.at for e in line.events[1:]] == pytest.approx(breaks, abs=1e-9)
    gaps = [b - a for a, b in itertools.pairwise(breaks)]
    assert gaps[0::2] == pytest.approx([0.060] * 3, abs=1e-6)  # break lengths survive debounce


@pytest.mark.parametrize("frequency", [20.0, 25.0])
def test_ringing_toggles_fr_at_the_ring_frequency_with_rm_high(
    line: Line, frequency: float
) -> None:
    line.slic.ring(RingCadence(((0.4, 0.2), (0.4, 2.0)), frequency))
    assert line.slic.ringing and line.slic.linefeed is Linefeed.RINGING
    line.run(5.9)
    rm = line.edges("rm")
    # Bursts at 0-0.4, 0.6-1.0, then the next cycle at 3.0-3.4, 3.6-4.0; the first one at once.
    assert [(round(t - T0, 6), v) for t, v in rm] == [
        (0.0, True),
        (0.4, False),
        (0.6, True),
        (1.0, False),
        (3.0, True),
        (3.4, False),
        (3.6, True),
        (4.0, False),
    ]
    assert line.rm.state is False
    fr = [t for t, _ in line.edges("fr") if T0 + 0.6 <= t < T0 + 1.0]
    half = 0.5 / frequency
    spacing = [b - a for a, b in itertools.pairwise(fr)]
    assert spacing == pytest.approx([half] * len(spacing), abs=1e-9)
    assert len(fr) == pytest.approx(0.4 / half, abs=1)
    # F/R never toggles while RM is low (no ringing outside bursts).
    quiet = [t for t, _ in line.edges("fr") if T0 + 1.0 + 1e-6 < t < T0 + 3.0 - 1e-6]
    assert quiet == []
    assert line.fr.state is True  # forward battery in the silent part
    line.slic.stop_ring()
    assert not line.slic.ringing and line.slic.linefeed is Linefeed.FORWARD_ACTIVE


def test_pick_up_during_a_burst_trips_the_ring_within_200_ms(line: Line) -> None:
    line.slic.ring(RingCadence(((2.0, 4.0),)))
    line.run(0.5)
    lifted = line.hook(True)
    line.run(0.5)
    rm_off = [t for t, v in line.edges("rm", since=lifted) if not v]
    assert rm_off and rm_off[0] - lifted < 0.200
    assert line.edges("fr", since=rm_off[0] + 1e-6) == []  # F/R stopped toggling
    assert line.rm.state is False and line.fr.state is True
    assert line.events == [HookEvent(0, True, lifted)]
    assert not line.slic.ringing and line.slic.linefeed is Linefeed.FORWARD_ACTIVE
    line.run(5.0)
    assert line.rm.state is False  # no next burst


def test_ring_transient_on_shk_during_a_burst_does_not_trip(line: Line) -> None:
    line.slic.ring(RingCadence(((2.0, 4.0),)))
    line.run(0.3)
    for _ in range(5):  # ringer capacitor current: 20 ms SHK pulses
        line.shk.drive_high()
        line.run(0.020)
        line.shk.drive_low()
        line.run(0.030)
    assert line.slic.ringing and line.events == []


def test_pick_up_in_the_silent_part_trips_too(line: Line) -> None:
    line.slic.ring(RingCadence(((1.0, 3.0),)))
    line.run(2.0)
    lifted = line.hook(True)
    line.run(0.1)
    assert line.events == [HookEvent(0, True, lifted)]
    line.run(3.0)
    assert line.edges("rm", since=lifted) == []


def test_ring_while_off_hook_does_not_ring(line: Line) -> None:
    line.hook(True)
    line.run(0.1)
    line.slic.ring(RingCadence(((1.0, 3.0),)))
    line.run(1.0)
    assert not line.slic.ringing and line.edges("rm") == []


def test_ring_after_reverse_restores_reverse(line: Line) -> None:
    line.slic.set_linefeed(Linefeed.REVERSE_ACTIVE)
    assert line.fr.state is False
    line.slic.ring(RingCadence(((1.0, 1.0),), 25.0))
    line.run(1.5)
    assert line.fr.state is False  # silent part keeps the polarity from before ringing
    line.slic.stop_ring()
    assert line.slic.linefeed is Linefeed.REVERSE_ACTIVE and line.fr.state is False


def test_open_powers_down_and_resenses_the_hook_when_battery_returns(line: Line) -> None:
    line.slic.set_linefeed(Linefeed.OPEN)
    assert line.pd.state is True and line.rm.state is False
    line.hook(True)
    line.run(0.1)
    assert line.events == []  # no battery, no loop current: nothing to sense
    with pytest.raises(HardwareError, match="OPEN"):
        line.slic.ring(RingCadence(((1.0, 1.0),)))
    line.slic.set_linefeed(Linefeed.FORWARD_ACTIVE)
    assert line.pd.state is False
    assert [e.off_hook for e in line.events] == [True]
    assert line.slic.off_hook


def test_set_linefeed_rejects_ringing(line: Line) -> None:
    with pytest.raises(ValueError, match="ring"):
        line.slic.set_linefeed(Linefeed.RINGING)


def test_close_leaves_the_line_open() -> None:
    fixture = Line()
    fixture.slic.ring(RingCadence(((1.0, 1.0),)))
    fixture.run(0.1)
    fixture.slic.close()
    assert (fixture.rm.state, fixture.pd.state) == (False, True)


class FakeAudio:
    line = 0
    overruns = 2
    underruns = 3

    def __init__(self) -> None:
        self.written: list[bytes] = []

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def close(self) -> None: ...

    def read(self) -> bytes:
        return b"\x11" * PERIOD_BYTES

    def write(self, period: bytes) -> None:
        self.written.append(period)


def test_capture_is_silenced_while_ringing_and_100_ms_after_ring_trip(line: Line) -> None:
    audio = RingGuardedAudio(FakeAudio(), line.slic)  # type: ignore[arg-type]
    silence, talk = bytes(PERIOD_BYTES), b"\x11" * PERIOD_BYTES
    assert audio.read() == talk
    line.slic.ring(RingCadence(((2.0, 4.0),)))
    line.run(0.5)
    assert audio.read() == silence
    line.hook(True)
    line.run(0.06)  # tripped by now
    assert not line.slic.ringing
    trip = max(t for t, v in line.edges("rm") if not v)
    assert audio.read() == silence
    line.run(trip + 0.095 - line.clock.now())
    assert audio.read() == silence
    line.run(0.010)
    assert audio.read() == talk
    assert (audio.overruns, audio.underruns) == (2, 3)
    audio.write(talk)
    assert audio.inner.written == [talk]  # type: ignore[attr-defined]


def test_ring_bursts_merge_and_do_not_drift() -> None:
    bursts = ring_bursts(0.0, RingCadence(((0.4, 0.0), (0.4, 2.2))))
    first = [next(bursts) for _ in range(3)]
    assert first == [pytest.approx(b) for b in [(0.0, 0.8), (3.0, 3.8), (6.0, 6.8)]]
    continuous = ring_bursts(5.0, RingCadence(((1.0, 0.0),)))
    assert next(continuous) == (5.0, float("inf"))
    many = ring_bursts(0.0, RingCadence(((0.1, 0.2),)))
    for _ in range(10000):
        next(many)
    assert next(many)[0] == pytest.approx(3000.0, abs=1e-9)


# -- board profiles -------------------------------------------------------------------------------


class FakePcm:
    def __init__(self, name: str) -> None:
        self.name = name

    def info(self) -> dict[str, Any]:
        return {"rate": 8000, "channels": 1, "format_name": "S16_LE", "period_size": 160}

    def drop(self) -> None: ...
    def close(self) -> None: ...


@pytest.mark.parametrize("profile_name, lines", [("ag1171-usb", 1), ("ag1171-i2s", 2)])
def test_shipped_profiles_open_on_mock_pins(profile_name: str, lines: int) -> None:
    profile = load_profile(BOARDS / f"{profile_name}.toml")
    opened: list[str] = []

    def opener(name: str, capture: bool, periods: int) -> FakePcm:
        opened.append(name)
        return FakePcm(name)

    board = open_ag1171_board(
        profile, clock=VirtualClock(T0), pin_factory=MockFactory(), audio_opener=opener
    )
    try:
        assert board.driver == "ag1171" and len(board.lines) == lines
        assert len(opened) == 2 * lines  # every ALSA device probed at start
        for port in board.lines:
            assert port.slic.linefeed is Linefeed.FORWARD_ACTIVE
    finally:
        board.close()


def test_missing_gpio_chip_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GPIOZERO_PIN_FACTORY", raising=False)
    profile = load_profile(BOARDS / "ag1171-usb.toml")
    if list(Path("/dev").glob("gpiochip*")):
        pytest.skip("this machine has a GPIO chip")
    with pytest.raises(HardwareError, match=r"no GPIO chip: /dev/gpiochip\* does not exist"):
        open_ag1171_board(profile, clock=VirtualClock(T0))


def test_missing_sound_card_is_named(tmp_path: Path) -> None:
    pytest.importorskip("alsaaudio")
    profile = load_profile(BOARDS / "ag1171-usb.toml")
    factory = MockFactory()
    with pytest.raises(HardwareError, match=r"'plughw:CARD=Device,DEV=0' cannot be opened"):
        open_ag1171_board(profile, clock=VirtualClock(T0), pin_factory=factory)
    # the board released what it claimed before failing: the pins can be claimed again
    Ag1171Slic(0, PINS, VirtualClock(T0), pin_factory=factory).close()


def test_profile_errors_say_what_to_fix(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'driver = "ag1171"\nlines = 2\n[[line]]\nshk = "GPIO17"\nrm = "GPIO27"\nfr = "GPIO22"\n'
    )
    with pytest.raises(HardwareError, match=r"one \[\[line\]\] table per line \(2\), got 1"):
        open_ag1171_board(load_profile(bad), clock=VirtualClock(T0), pin_factory=MockFactory())
    bad.write_text(
        'driver = "ag1171"\n[[line]]\nshk = true\nrm = "GPIO27"\nfr = "GPIO22"\nplayback="a"\ncapture="b"\n'
    )
    with pytest.raises(HardwareError, match=r"line\[0\].shk must be a GPIO pin"):
        open_ag1171_board(
            load_profile(bad),
            clock=VirtualClock(T0),
            pin_factory=MockFactory(),
            audio_opener=lambda n, c, p: FakePcm(n),
        )
    bad.write_text('driver = "ag1171"\n[ag1171]\nring_trip_ms = 400\n[[line]]\n')
    with pytest.raises(HardwareError, match=r"ring_trip_s must be in \(0, 0.150\]"):
        open_ag1171_board(load_profile(bad), clock=VirtualClock(T0), pin_factory=MockFactory())


def test_board_opens_through_the_driver_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """`tipring run --board ag1171-usb` path: profile -> DRIVERS -> factory -> named failure."""
    from tipring.hal.profile import DRIVERS, find_profile, open_board

    assert DRIVERS["ag1171"] == ("tipring.hal.ag1171", "open_ag1171_board")
    if list(Path("/dev").glob("gpiochip*")):
        pytest.skip("this machine has a GPIO chip")
    monkeypatch.delenv("GPIOZERO_PIN_FACTORY", raising=False)
    profile = load_profile(find_profile("ag1171-i2s", [BOARDS]))
    with pytest.raises(HardwareError, match="no GPIO chip"):
        open_board(profile)
