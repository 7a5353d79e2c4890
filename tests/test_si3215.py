"""Si3215 driver against the register-level emulator (tests/si3215_emulator.py) on a virtual clock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from si3215_emulator import DatasheetViolation, Si3215Emulator
from tipring.hal import si3215_regs as r
from tipring.hal.api import HardwareError, HookEvent, Linefeed, RingCadence
from tipring.hal.profile import load_profile
from tipring.hal.si3215 import ProSlicRegisters, Si3215Settings, Si3215Slic, open_si3215_board
from tipring.hal.simclock import VirtualClock

mock = pytest.importorskip("gpiozero.pins.mock")
gpiozero = pytest.importorskip("gpiozero")

T0 = 1000.0
BOARDS = Path(__file__).resolve().parent.parent / "hw" / "boards"


class ResetPin(mock.MockPin):
    """The RESET line: every level change reaches the emulated chips behind it."""

    chips: list[Si3215Emulator]

    def _change_state(self, value: bool) -> bool:
        changed = super()._change_state(value)
        if changed:
            for chip in getattr(self, "chips", []):
                chip.reset_level(bool(value))
        return changed


class FakePcm:
    def info(self) -> dict[str, Any]:
        return {"rate": 8000, "channels": 1, "format_name": "S16_LE", "period_size": 160}

    def drop(self) -> None: ...
    def close(self) -> None: ...


class Rig:
    """Emulated chips on mock pins, opened through the real board factory and a profile."""

    def __init__(self, profile: str = "si3215-hat", lines: int = 1, **chip: Any) -> None:
        self.clock = VirtualClock(T0)
        self.factory = mock.MockFactory()
        self.chips = [Si3215Emulator(self.clock, **chip) for _ in range(lines)]
        reset = self.factory.pin(24, pin_class=ResetPin)
        reset.chips = self.chips
        for chip, int_gpio in zip(self.chips, (25, 23), strict=False):
            chip.int_pin = self.factory.pin(int_gpio)
        self.profile = (
            load_profile(BOARDS / f"{profile}.toml")
            if "/" not in profile
            else load_profile(Path(profile))
        )
        self.board = open_si3215_board(
            self.profile,
            clock=self.clock,
            pin_factory=self.factory,
            spi_factory=lambda bus, cs: self.chips[cs],
            audio_opener=lambda n, c, p: FakePcm(),
        )
        self.slic: Si3215Slic = self.board.lines[0].slic  # type: ignore[assignment]
        self.chip = self.chips[0]
        self.events: list[HookEvent] = []
        self.slic.on_hook_event = self.events.append

    def close(self) -> None:
        self.board.close()


@pytest.fixture
def rig() -> Iterator[Rig]:
    fixture = Rig()
    yield fixture
    fixture.close()


def writes(chip: Si3215Emulator, reg: int) -> list[int]:
    return [v for op, g, v in chip.log if op == "w" and g == reg]


def test_bring_up_follows_the_datasheet_order(rig: Rig) -> None:
    chip, log = rig.chip, rig.chip.log
    order = [(op, g) for op, g, _ in log]
    first = order.index
    # identification before anything is written
    assert order[0] == ("r", r.SPI_MODE) and first(("r", r.PCM_MODE)) < first(
        ("w", r.DCDC_PWM_PERIOD)
    )
    # PWM period, then DC-DC on, then VBAT polled until up, then calibration, then DC-DC cal
    pwm, power = first(("w", r.DCDC_PWM_PERIOD)), writes(chip, r.POWER_DOWN_1)
    assert power == [r.PDDCDC, 0x00]
    assert pwm < [i for i, (op, g) in enumerate(order) if (op, g) == ("w", r.POWER_DOWN_1)][1]
    assert first(("w", r.CALIBRATION_2)) < first(("w", r.CALIBRATION_1))
    assert writes(chip, r.CALIBRATION_1) == [r.CAL_START | r.CAL_ALL_1]
    assert chip.calibrated and chip.linefeed == r.LF_FORWARD_ACTIVE
    assert rig.slic.part == "Si3215" and rig.slic.revision == 5
    assert rig.slic.linefeed is Linefeed.FORWARD_ACTIVE and not rig.slic.off_hook
    # the filters were flushed during power-up and restored after
    filters = [chip.indirect_value(ir) for ir in r.IR_FILTERS]
    assert filters == [r.INDIRECT_DEFAULTS[ir] for ir in r.IR_FILTERS]
    # bring-up took the emulated battery rise + calibration time, on virtual time
    assert rig.clock.now() - T0 >= chip.vbat_rise_s + chip.calibration_s


def test_pcm_gain_and_impedance_registers(tmp_path: Path) -> None:
    text = (BOARDS / "si3215-hat.toml").read_text()
    text = text.replace('pcm_format = "linear"', 'pcm_format = "ulaw"').replace(
        "timeslot = 0", "timeslot = 3"
    )
    text = text.replace("tx_gain_db = 0.0", "tx_gain_db = 3.5").replace(
        "rx_gain_db = 0.0", "rx_gain_db = -3.5"
    )
    text = text.replace('impedance = "600"', 'impedance = "270+750||150nF"')
    path = tmp_path / "hat.toml"
    path.write_text(text)
    rig = Rig(str(path))
    try:
        regs = rig.chip.regs
        assert regs[r.PCM_MODE] & 0x7F == r.PCM_ENABLE | 0b01 << 3  # mu-law
        assert (regs[2] | regs[3] << 8, regs[4] | regs[5] << 8) == (24, 24)  # slot 3 x 8 bits
        assert regs[r.AUDIO_GAIN] == 0b10 << 2 | 0b01
        assert regs[r.LINE_IMPEDANCE] == 4
        assert writes(rig.chip, r.PCM_MODE)[0] == 0  # PCM disabled while its timing changed
    finally:
        rig.close()


def test_hook_events_come_from_loop_closure_interrupts(rig: Rig) -> None:
    rig.clock.advance(1.0)
    lifted = rig.clock.now()
    rig.chip.set_hook(True)
    rig.clock.advance(0.1)
    hung = rig.clock.now()
    rig.chip.set_hook(False)
    rig.clock.advance(0.1)
    assert [(e.off_hook, round(e.at, 6)) for e in rig.events] == [
        (True, round(lifted, 6)),
        (False, round(hung, 6)),
    ]
    assert rig.chip.int_pin.state is True  # every interrupt was cleared (INT released)


def test_single_segment_cadence_runs_on_the_chip_timers(rig: Rig) -> None:
    start = rig.clock.now()
    rig.slic.ring(RingCadence(((2.0, 4.0),), 25.0))
    assert rig.slic.ringing and rig.slic.linefeed is Linefeed.RINGING
    assert rig.chip.regs[r.RING_OSC_CTL] == r.RTAE | r.RTIE
    rig.clock.advance(12.5)
    edges = [(round(e.at - start, 4), e.on) for e in rig.chip.ring_edges]
    assert edges == [(0.0, True), (2.0, False), (6.0, True), (8.0, False), (12.0, True)]
    assert rig.chip.ring_frequency == pytest.approx(25.0, abs=0.05)
    assert rig.chip.ring_peak_volts == pytest.approx(65.0, abs=0.5)
    assert writes(rig.chip, r.LINEFEED).count(r.LF_RINGING) == 1  # the chip did the cadence
    rig.slic.stop_ring()
    assert rig.chip.linefeed == r.LF_FORWARD_ACTIVE and not rig.slic.ringing


def test_multi_segment_cadence_is_timed_by_the_driver(rig: Rig) -> None:
    start = rig.clock.now()
    rig.slic.ring(RingCadence(((0.4, 0.2), (0.4, 2.0)), 20.0))
    rig.clock.advance(5.0)
    edges = [(round(e.at - start, 4), e.on) for e in rig.chip.ring_edges]
    assert edges == [
        (0.0, True),
        (0.4, False),
        (0.6, True),
        (1.0, False),
        (3.0, True),
        (3.4, False),
        (3.6, True),
        (4.0, False),
    ]
    assert rig.chip.ring_frequency == pytest.approx(20.0, abs=0.05)


def test_ring_trip_stops_ringing_and_reports_one_off_hook(rig: Rig) -> None:
    rig.slic.ring(RingCadence(((2.0, 4.0),)))
    rig.clock.advance(0.5)
    lifted = rig.clock.now()
    rig.chip.set_hook(True)
    rig.clock.advance(0.5)
    stop = [e.at for e in rig.chip.ring_edges if not e.on]
    assert stop and stop[0] - lifted < 0.2
    assert not rig.slic.ringing and rig.slic.linefeed is Linefeed.FORWARD_ACTIVE
    assert rig.chip.linefeed == r.LF_FORWARD_ACTIVE
    assert rig.events == [HookEvent(0, True, pytest.approx(lifted, abs=1e-6))]  # type: ignore[arg-type]
    rig.clock.advance(10.0)
    assert len(rig.chip.ring_edges) == 2  # never rang again


def test_power_alarm_shuts_the_line_down_and_reports(rig: Rig) -> None:
    faults: list[str] = []
    rig.slic.on_fault = faults.append
    rig.slic.ring(RingCadence(((2.0, 4.0),)))
    rig.clock.advance(0.3)
    rig.chip.power_alarm(3)
    assert faults and "Q3" in faults[0]
    assert rig.slic.fault == faults[0]
    assert rig.chip.linefeed == r.LF_OPEN and not rig.slic.ringing
    assert rig.slic.linefeed is Linefeed.OPEN
    with pytest.raises(HardwareError, match="power alarm"):
        rig.slic.set_linefeed(Linefeed.FORWARD_ACTIVE)
    with pytest.raises(HardwareError, match="power alarm"):
        rig.slic.ring(RingCadence(((1.0, 1.0),)))
    rig.slic.clear_fault()
    rig.slic.set_linefeed(Linefeed.FORWARD_ACTIVE)
    assert rig.chip.linefeed == r.LF_FORWARD_ACTIVE
    rig.chip.power_alarm(6)  # alarms are reported again once the fault is cleared
    assert len(faults) == 2 and "Q6" in faults[1] and rig.chip.linefeed == r.LF_OPEN


def test_pick_up_in_a_driver_timed_silence_trips_the_ring(rig: Rig) -> None:
    rig.slic.ring(RingCadence(((0.4, 0.2), (0.4, 2.0))))
    rig.clock.advance(1.5)  # in the 2 s silence
    lifted = rig.clock.now()
    rig.chip.set_hook(True)
    rig.clock.advance(0.1)
    assert rig.events == [HookEvent(0, True, pytest.approx(lifted, abs=1e-6))]  # type: ignore[arg-type]
    assert not rig.slic.ringing and rig.chip.linefeed == r.LF_FORWARD_ACTIVE
    rig.clock.advance(5.0)
    assert [e.on for e in rig.chip.ring_edges] == [True, False, True, False]


def test_reverse_and_on_hook_transmission(rig: Rig) -> None:
    rig.slic.set_linefeed(Linefeed.REVERSE_ACTIVE)
    assert rig.chip.linefeed == r.LF_REVERSE_ACTIVE
    rig.slic.ring(RingCadence(((1.0, 1.0),)))
    rig.slic.stop_ring()
    assert rig.chip.linefeed == r.LF_REVERSE_ACTIVE and rig.slic.linefeed is Linefeed.REVERSE_ACTIVE
    rig.slic.set_linefeed(Linefeed.ON_HOOK_TRANSMISSION)
    assert rig.chip.linefeed == r.LF_FORWARD_OHT


def test_battery_back_resenses_a_phone_lifted_while_open(rig: Rig) -> None:
    rig.slic.set_linefeed(Linefeed.OPEN)
    rig.chip.set_hook(True)
    rig.clock.advance(0.2)
    assert rig.events == []
    rig.slic.set_linefeed(Linefeed.FORWARD_ACTIVE)
    rig.clock.advance(0.1)
    assert [e.off_hook for e in rig.events] == [True]


def test_close_opens_the_line(rig: Rig) -> None:
    rig.board.close()
    assert rig.chip.linefeed == r.LF_OPEN


def test_si3210_uses_direct_indirect_addresses() -> None:
    rig = Rig(si3215=False)
    try:
        assert rig.slic.part == "Si3210"
        assert rig.chip.indirect[r.IR_RING_TRIP_THRESH] == 0x3600  # Si3210 numbering
    finally:
        rig.close()


def test_two_line_board(tmp_path: Path) -> None:
    text = (BOARDS / "si3215-hat.toml").read_text().replace("lines = 1", "lines = 2")
    text += '\n[[line]]\nspi_bus = 0\nspi_cs = 1\ninterrupt = "GPIO23"\nplayback = "p1"\ncapture = "c1"\ntimeslot = 1\n'
    path = tmp_path / "two.toml"
    path.write_text(text)
    rig = Rig(str(path), lines=2)
    try:
        second = rig.board.lines[1].slic
        events: list[HookEvent] = []
        second.on_hook_event = events.append
        assert all(c.calibrated for c in rig.chips)
        assert rig.chips[1].regs[2] == 16  # linear: slot 1 starts 16 PCLKs in
        rig.chips[1].set_hook(True)
        rig.clock.advance(0.1)
        assert [e.line for e in events] == [1] and rig.events == []
    finally:
        rig.close()


# -- failures the driver must name ----------------------------------------------------------------


def test_no_chip_answering_is_named() -> None:
    with pytest.raises(HardwareError, match=r"no ProSLIC answers \(DR0 reads 0xff\)"):
        Rig(present=False)


def test_battery_that_never_rises_blames_the_supply_or_pclk() -> None:
    with pytest.raises(HardwareError, match=r"battery voltage did not rise.*PCLK/FSYNC"):
        Rig(pclk_running=False)


def test_slow_calibration_times_out() -> None:
    with pytest.raises(HardwareError, match="calibration did not finish"):
        Rig(calibration_s=5.0)


def test_missing_spi_device_and_gpio_chip_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    profile = load_profile(BOARDS / "si3215-hat.toml")
    if list(Path("/dev").glob("spidev*")) or list(Path("/dev").glob("gpiochip*")):
        pytest.skip("this machine has SPI or GPIO hardware")
    monkeypatch.delenv("GPIOZERO_PIN_FACTORY", raising=False)
    with pytest.raises(HardwareError, match=r"no GPIO chip"):
        open_si3215_board(profile, clock=VirtualClock(T0))
    with pytest.raises(HardwareError, match=r"no SPI device /dev/spidev0.0: enable SPI"):
        open_si3215_board(profile, clock=VirtualClock(T0), pin_factory=mock.MockFactory())


def test_missing_sound_card_is_named() -> None:
    pytest.importorskip("alsaaudio")
    clock = VirtualClock(T0)
    with pytest.raises(HardwareError, match=r"'plughw:CARD=ProSLIC,DEV=0' cannot be opened"):
        open_si3215_board(
            load_profile(BOARDS / "si3215-hat.toml"),
            clock=clock,
            pin_factory=mock.MockFactory(),
            spi_factory=lambda bus, cs: Si3215Emulator(clock),
        )


# -- the emulator catches driver mistakes (so the tests above mean something) ---------------------


def _regs(chip: Si3215Emulator) -> ProSlicRegisters:
    regs = ProSlicRegisters(chip, "test")
    regs.si3215 = chip.si3215
    return regs


class TwoByteSpi:
    def __init__(self, chip: Si3215Emulator) -> None:
        self.chip = chip

    def xfer2(self, data: list[int]) -> list[int]:
        return self.chip.xfer2(data)


def test_emulator_rejects_two_byte_frames() -> None:
    chip = Si3215Emulator(VirtualClock(T0))
    with pytest.raises(DatasheetViolation, match="chip select released between bytes"):
        chip.xfer2([r.READ | r.SPI_MODE, 0])


def test_emulator_rejects_indirect_access_without_waiting_for_ias() -> None:
    chip = Si3215Emulator(VirtualClock(T0))
    regs = _regs(chip)
    regs.write_indirect(r.IR_RING_OSC, 0x1234)  # waits properly
    with pytest.raises(DatasheetViolation, match="IAS set"):
        regs.write(r.IND_DATA_LO, 0x00)  # straight after: the chip is still busy
    chip2 = Si3215Emulator(VirtualClock(T0))
    regs2 = _regs(chip2)
    regs2.write(r.IND_ADDRESS, 7)
    with pytest.raises(DatasheetViolation, match="IAS set"):
        regs2.read(r.IND_DATA_LO)


def test_emulator_rejects_power_up_and_calibration_out_of_order() -> None:
    clock = VirtualClock(T0)
    regs = _regs(Si3215Emulator(clock))
    with pytest.raises(DatasheetViolation, match="PWM period"):
        regs.write(r.POWER_DOWN_1, 0x00)
    regs = _regs(Si3215Emulator(clock))
    with pytest.raises(DatasheetViolation, match="before the DC-DC converter is up"):
        regs.write(r.CALIBRATION_1, r.CAL_START | r.CAL_ALL_1)
    chip = Si3215Emulator(clock)
    regs = _regs(chip)
    regs.write(r.DCDC_PWM_PERIOD, 0xFF)
    regs.write(r.POWER_DOWN_1, 0)
    clock.advance(0.2)
    with pytest.raises(DatasheetViolation, match="DR97"):
        regs.write(r.CALIBRATION_1, r.CAL_START | r.CAL_ALL_1)
    regs.write(r.CALIBRATION_2, r.CAL_ALL_2)
    with pytest.raises(DatasheetViolation, match="no calibration selected"):
        regs.write(r.CALIBRATION_1, r.CAL_START)
    with pytest.raises(DatasheetViolation, match="before calibration"):
        regs.write(r.LINEFEED, r.LF_FORWARD_ACTIVE)
    regs.write(r.CALIBRATION_1, r.CAL_START | r.CAL_ALL_1)
    with pytest.raises(DatasheetViolation, match="while calibration is running"):
        regs.write(r.LINEFEED, r.LF_OPEN)


def test_emulator_rejects_read_only_reserved_and_missing_indirect() -> None:
    regs = _regs(Si3215Emulator(VirtualClock(T0)))
    with pytest.raises(DatasheetViolation, match="read-only register DR68"):
        regs.write(r.LOOP_STATUS, 1)
    with pytest.raises(DatasheetViolation, match="reserved register DR60"):
        regs.write(60, 1)
    with pytest.raises(DatasheetViolation, match="does not exist on the Si3215"):
        regs.write(r.IND_ADDRESS, 40)  # a DTMF register: Si3210 only
    with pytest.raises(HardwareError, match="does not exist on an Si3215"):
        regs.write_indirect(0, 1)  # the driver refuses Si3210-only registers itself


def test_emulator_rejects_ringing_without_oscillator(rig: Rig) -> None:
    regs = rig.slic.regs
    regs.write_indirect(r.IR_RING_X, 0)
    with pytest.raises(DatasheetViolation, match="ring oscillator"):
        regs.write(r.LINEFEED, r.LF_RINGING)


def test_emulator_rejects_short_reset_pulse() -> None:
    clock = VirtualClock(T0)
    chip = Si3215Emulator(clock)
    chip.reset_level(False)
    clock.advance(0.0001)
    with pytest.raises(DatasheetViolation, match="RESET pulse"):
        chip.reset_level(True)
    with pytest.raises(DatasheetViolation, match="while RESET is held low"):
        chip.xfer2([0])


def test_settings_validation() -> None:
    with pytest.raises(ValueError, match="tx_gain_db"):
        Si3215Settings(tx_gain_db=6.0)
    with pytest.raises(ValueError, match="impedance"):
        Si3215Settings(impedance="1200")
    assert Si3215Settings(pcm_format="alaw", timeslot=2).start_counts() == (16, 16)


def test_ring_coefficients_round_trip() -> None:
    for f in (16.0, 20.0, 25.0, 50.0):
        osc = r.ring_oscillator(f, 70.0)
        assert r.ring_frequency(osc.rco) == pytest.approx(f, abs=0.05)
        assert r.ring_peak_volts(osc.rco, osc.rngx) == pytest.approx(70.0, abs=0.5)
    with pytest.raises(ValueError):
        r.ring_oscillator(10.0, 50.0)


def test_board_opens_through_the_driver_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    from tipring.hal.profile import DRIVERS, find_profile, open_board

    assert DRIVERS["si3215"] == ("tipring.hal.si3215", "open_si3215_board")
    if list(Path("/dev").glob("gpiochip*")):
        pytest.skip("this machine has a GPIO chip")
    monkeypatch.delenv("GPIOZERO_PIN_FACTORY", raising=False)
    with pytest.raises(HardwareError, match="no GPIO chip"):
        open_board(load_profile(find_profile("si3215-hat", [BOARDS])))
