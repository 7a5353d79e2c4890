"""Regional profiles: complete for every supported region, and true to the published tone plans."""

from __future__ import annotations

import pytest

from tipring.config.schema import SUPPORTED_REGIONS
from tipring.hal.api import RingCadence
from tipring.line.digitmap import DigitMap, Outcome
from tipring.line.regions import (
    TONE_NAMES,
    CallerIdTiming,
    DistinctiveRing,
    PulseMapping,
    RegionError,
    RegionProfile,
    profile,
    region_codes,
)
from tipring.line.tonespec import (
    Tone,
    ToneSequence,
    ToneSpecError,
    cadence_plan,
    format_tonescript,
)


def test_every_supported_region_has_a_profile_and_nothing_else_does() -> None:
    assert region_codes() == SUPPORTED_REGIONS


@pytest.mark.parametrize("code", sorted(SUPPORTED_REGIONS))
def test_profile_is_complete_and_playable(code: str) -> None:
    region = profile(code)
    assert isinstance(region, RegionProfile)
    assert region.code == code and region.name and region.sources
    for name in TONE_NAMES:
        signal = region.tone(name)
        assert isinstance(signal, Tone | ToneSequence)
        sequence = signal.sequence()  # what the C generator plays
        assert sequence.frequencies, f"{code} {name} is silent"
        format_tonescript(signal)  # every tone fits the ToneScript limits (exportable)
        plan = cadence_plan(signal)  # and the C generator's plan: no empty segment
        assert all(s.on_s is None or s.on_s + s.off_s > 0 for s in plan.segments)
    assert isinstance(region.ring, RingCadence)
    assert region.ring.frequency_hz in (16.0, 20.0, 25.0, 50.0)
    assert isinstance(region.caller_id, CallerIdTiming)
    assert 20 <= region.flash_min_ms < region.flash_max_ms <= 2000  # config.schema FLASH_MS
    assert region.emergency_numbers
    DigitMap.compile("(xx.)", emergency=region.emergency_numbers)
    assert str(region.impedance)


def test_lookup_accepts_uk_and_any_case_and_refuses_unknown() -> None:
    assert profile("uk") is profile("GB")
    assert profile(" de ").code == "DE"
    with pytest.raises(RegionError, match="XX"):
        profile("XX")


# --- published figures --------------------------------------------------------------------------
# Each expected value below is transcribed from the source named in its comment; `_tone` only
# builds the Tone the source describes.


def _tone(*frequencies: float, level: float, cadence: tuple[tuple[float, float], ...] = ()
          ) -> Tone:
    return Tone(tuple((float(f), level) for f in frequencies), cadence)


def test_north_american_tones() -> None:
    # ANSI T1.401 / ITU-T E.180 Suppl. 2 (USA): dial 350+440 Hz continuous at -13 dBm0 per
    # frequency; audible ringing 440+480 Hz 2 s on 4 s off at -19; busy 480+620 Hz 0.5/0.5 and
    # reorder 480+620 Hz 0.25/0.25 at -24; call waiting 440 Hz 0.3 s.
    for code in ("US", "CA"):
        region = profile(code)
        assert region.dial == _tone(350, 440, level=-13.0)
        assert region.ringback == _tone(440, 480, level=-19.0, cadence=((2.0, 4.0),))
        assert region.busy == _tone(480, 620, level=-24.0, cadence=((0.5, 0.5),))
        assert region.congestion == _tone(480, 620, level=-24.0, cadence=((0.25, 0.25),))
        assert region.call_waiting.frequencies == (440.0,)
        assert region.call_waiting.cadence[0][0] == 0.3
        # Bellcore ringing: 20 Hz, 2 s on 4 s off.
        assert region.ring == RingCadence(((2.0, 4.0),), 20.0)


def test_us_stutter_dial_tone_matches_the_cisco_mwi_example() -> None:
    # Cisco SPA ToneScript example "Stutter tone: 350@-19,440@-19;2(.1/.1/1+2);10(*/0/1+2)":
    # 0.1/0.1 for 2 s, then steady (our level is the US dial-tone level, -13).
    stutter = profile("US").stutter_dial
    assert format_tonescript(stutter) == "350@-13,440@-13;2(.1/.1/1+2);*(*/0/1+2)"


def test_bellcore_distinctive_ringing() -> None:
    # Telcordia GR-506 distinctive ringing as Alert-Info Bellcore-dr1..dr5 (and the Cisco SPA
    # Ring1..Ring5 cadences): dr1 2/4; dr2 long-long 0.8/0.4/0.8/4; dr3 short-short-long
    # 0.4/0.2/0.4/0.2/0.8/4; dr4 short-long-short 0.3/0.2/1/0.2/0.3/4; dr5 a 0.5 s ring splash.
    us = profile("US")
    expected = {
        "dr1": ((2.0, 4.0),),
        "dr2": ((0.8, 0.4), (0.8, 4.0)),
        "dr3": ((0.4, 0.2), (0.4, 0.2), (0.8, 4.0)),
        "dr4": ((0.3, 0.2), (1.0, 0.2), (0.3, 4.0)),
    }
    for name, segments in expected.items():
        pattern = us.ring_for(f"<http://127.0.0.1/Bellcore-{name}>")
        assert pattern == DistinctiveRing(RingCadence(segments, 20.0))
    # Cisco SPA "Ring2 Name" default spelling: "Bellcore-r2".
    assert us.ring_for("Bellcore-r2").cadence.segments == expected["dr2"]
    splash = us.ring_for("Bellcore-dr5")
    assert not splash.repeat and splash.cadence.segments[0][0] == 0.5
    assert us.ring_for(None) == DistinctiveRing(us.ring)
    assert us.ring_for("<urn:alert:service:unknown>") == DistinctiveRing(us.ring)


def test_united_kingdom() -> None:
    # BT SIN 350 / ITU-T E.180 Suppl. 2 (UK): dial tone 350+450 Hz continuous; ringing tone
    # 400+450 Hz 0.4 on 0.2 off 0.4 on 2.0 off; busy 400 Hz 0.375/0.375; congestion
    # 400 Hz 0.4/0.35/0.225/0.525. Ringing current 25 Hz with the same double-ring cadence.
    uk = profile("GB")
    assert uk.dial.frequencies == (350.0, 450.0) and uk.dial.continuous
    assert uk.ringback.frequencies == (400.0, 450.0)
    assert uk.ringback.cadence == ((0.4, 0.2), (0.4, 2.0))
    assert uk.busy.frequencies == (400.0,) and uk.busy.cadence == ((0.375, 0.375),)
    assert uk.congestion.cadence == ((0.4, 0.35), (0.225, 0.525))
    assert uk.ring == RingCadence(((0.4, 0.2), (0.4, 2.0)), 25.0)
    # BT SIN 227: caller ID before ringing, after a line reversal and the tone alert signal.
    assert uk.caller_id.standard == "etsi-fsk"
    assert uk.caller_id.before_ring and uk.caller_id.line_reversal
    assert uk.caller_id.alerting_signal == "dt-as"


def test_germany() -> None:
    # ITU-T E.180 Suppl. 2 (Germany) / 1 TR 110: 425 Hz; dial continuous; busy 0.48/0.48;
    # ringing tone 1 s on 4 s off; congestion 0.24/0.24. Ringing current 25 Hz, 1 s / 4 s.
    de = profile("DE")
    assert de.dial.frequencies == (425.0,) and de.dial.continuous
    assert de.busy.cadence == ((0.48, 0.48),)
    assert de.ringback.cadence == ((1.0, 4.0),)
    assert de.congestion.cadence == ((0.24, 0.24),)
    assert de.ring == RingCadence(((1.0, 4.0),), 25.0)
    assert str(de.impedance) == "220+820||115nF"


@pytest.mark.parametrize(("code", "frequency", "busy", "ringback"), [
    # ITU-T E.180 Suppl. 2 entries for each country.
    ("FR", 440.0, ((0.5, 0.5),), ((1.5, 3.5),)),
    ("IT", 425.0, ((0.5, 0.5),), ((1.0, 4.0),)),
    ("ES", 425.0, ((0.2, 0.2),), ((1.5, 3.0),)),
    ("NL", 425.0, ((0.5, 0.5),), ((1.0, 4.0),)),
    ("SE", 425.0, ((0.25, 0.25),), ((1.0, 5.0),)),
    ("NZ", 400.0, ((0.5, 0.5),), None),
    ("JP", 400.0, ((0.5, 0.5),), ((1.0, 2.0),)),
])
def test_single_frequency_tone_plans(code: str, frequency: float, busy: tuple,
                                     ringback: tuple | None) -> None:
    region = profile(code)
    assert region.dial.frequencies[0] == frequency
    assert region.busy.frequencies == (frequency,)
    assert region.busy.cadence == busy
    if ringback is not None:
        assert region.ringback.cadence == ringback


def test_italian_dial_tone_is_cadenced() -> None:
    # ITU-T E.180 Suppl. 2 (Italy): dial tone 425 Hz 0.2 on 0.2 off 0.6 on 1.0 off.
    assert profile("IT").dial.cadence == ((0.2, 0.2), (0.6, 1.0))


def test_australia_and_new_zealand_double_ring() -> None:
    # ACIF S002 / Telecom NZ: ringing 0.4 on 0.2 off 0.4 on 2.0 off at 25 Hz; NZ ringing tone
    # 400+450 Hz, dial tone 400 Hz; AU busy 425 Hz 0.375/0.375.
    for code in ("AU", "NZ"):
        assert profile(code).ring == RingCadence(((0.4, 0.2), (0.4, 2.0)), 25.0)
    assert profile("NZ").ringback.frequencies == (400.0, 450.0)
    assert profile("NZ").dial.frequencies == (400.0,)
    assert profile("AU").busy == _tone(425, level=-10.0, cadence=((0.375, 0.375),))


def test_japan() -> None:
    # NTT: dial tone 400 Hz continuous; ringback 400 Hz modulated by 16 Hz, 1 s on 2 s off;
    # ringing signal 16 Hz, 1 s on 2 s off.
    jp = profile("JP")
    assert jp.dial == _tone(400, level=-10.0)
    assert jp.ring == RingCadence(((1.0, 2.0),), 16.0)
    assert sorted(jp.ringback.frequencies) == [384.0, 400.0, 416.0]  # AM sidebands at +-16 Hz


@pytest.mark.parametrize(("code", "impedance"), [
    # TBR 21 harmonised impedance for the CEPT countries; BT and NZ use 370+620||310nF;
    # Australia 220+820||120nF; Germany 220+820||115nF; North America and Japan 600 ohm.
    ("FR", "270+750||150nF"), ("IT", "270+750||150nF"), ("ES", "270+750||150nF"),
    ("NL", "270+750||150nF"), ("SE", "270+750||150nF"), ("GB", "370+620||310nF"),
    ("NZ", "370+620||310nF"), ("AU", "220+820||120nF"), ("DE", "220+820||115nF"),
    ("US", "600 ohm"), ("CA", "600 ohm"), ("JP", "600 ohm"),
])
def test_line_impedance(code: str, impedance: str) -> None:
    assert str(profile(code).impedance) == impedance


def test_caller_id_standards_and_timing() -> None:
    # Telcordia GR-30-CORE: FSK in the silent interval after the first ring, starting 0.5 s
    # after it ends.
    us = profile("US").caller_id
    assert (us.standard, us.before_ring, us.after_first_ring_s) == ("bellcore", False, 0.5)
    # DTMF caller ID before ringing in Sweden and the Netherlands (ETSI EN 300 659-1 DTMF).
    for code in ("SE", "NL"):
        assert profile(code).caller_id.standard == "etsi-dtmf"
        assert profile(code).caller_id.before_ring
    for code in ("DE", "FR", "IT", "ES", "AU", "NZ"):
        assert profile(code).caller_id.standard == "etsi-fsk"


def test_pulse_mappings() -> None:
    # ITU-T Q.23-era standard: digit n = n breaks, 0 = 10. New Zealand: 10 - n breaks (0 = 10).
    # Sweden: n + 1 breaks (0 = 1).
    standard = {"1": 1, "5": 5, "9": 9, "0": 10}
    new_zealand = {"1": 9, "2": 8, "5": 5, "9": 1, "0": 10}
    sweden = {"0": 1, "1": 2, "5": 6, "9": 10}
    for mapping, table in ((PulseMapping.STANDARD, standard),
                           (PulseMapping.NEW_ZEALAND, new_zealand),
                           (PulseMapping.SWEDEN, sweden)):
        for digit, pulses in table.items():
            assert mapping.pulses(digit) == pulses
            assert mapping.digit(pulses) == digit
        assert mapping.digit(11) is None
        assert sorted(mapping.pulses(d) for d in "0123456789") == list(range(1, 11))
    assert profile("NZ").pulse_mapping is PulseMapping.NEW_ZEALAND
    assert profile("SE").pulse_mapping is PulseMapping.SWEDEN
    assert profile("GB").pulse_mapping is PulseMapping.STANDARD
    with pytest.raises(ValueError, match=r"0\.\.9"):
        PulseMapping.STANDARD.pulses("*")


def test_flash_window_default() -> None:
    # The line issue: 100-1100 ms unless the country says otherwise.
    assert (profile("US").flash_min_ms, profile("US").flash_max_ms) == (100, 1100)


@pytest.mark.parametrize(("code", "number", "shown"), [
    ("GB", "+442079460000", "02079460000"),  # national: trunk prefix 0
    ("GB", "+12125551234", "0012125551234"),  # foreign: international prefix 00
    ("US", "+12125551234", "2125551234"),  # NANP: 10 digits
    ("US", "+442079460000", "011442079460000"),
    ("IT", "+390612345678", "0612345678"),  # Italian numbers keep their 0
    ("AU", "+61212345678", "0212345678"),
    ("AU", "+6421234567", "00116421234567"),
    ("JP", "+81312345678", "0312345678"),
    ("DE", "2079460000", "2079460000"),  # not E.164: shown as received
])
def test_on_hook_caller_id_number_presentation(code: str, number: str, shown: str) -> None:
    assert profile(code).number_display.present(number) == shown


def test_emergency_numbers_go_through_any_digit_map() -> None:
    # Everything barred: the region's emergency numbers still complete.
    for code in sorted(SUPPORTED_REGIONS):
        region = profile(code)
        digit_map = DigitMap.compile("(x.!)", emergency=region.emergency_numbers)
        for number in region.emergency_numbers:
            assert digit_map.match(number).outcome is Outcome.COMPLETE
    assert "112" in profile("DE").emergency_numbers and "999" in profile("GB").emergency_numbers


def test_tone_overrides() -> None:
    us = profile("US")
    custom = us.with_tone_override("busy", "f1=480@-20,f2=620@-20,c=50/50;")
    assert custom.busy == _tone(480, 620, level=-20.0, cadence=((0.5, 0.5),))
    assert custom.dial == us.dial and us.busy.components[0][1] == -24.0  # a copy
    sit = us.with_tone_override("sit", "950@-13,1400@-13,1800@-13;*(.33/0/1,.33/0/2,.33/1/3)")
    assert sit.sit.frequencies == (950.0, 1400.0, 1800.0)
    with pytest.raises(ToneSpecError) as caught:
        us.with_tone_override("dial", "350@-13,440@-13;*(*/0/1+3)")
    assert caught.value.position == 24
    with pytest.raises(RegionError, match="no tone"):
        us.with_tone_override("ringing", "f1=440")
