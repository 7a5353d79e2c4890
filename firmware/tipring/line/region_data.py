"""The national line profiles, transcribed from published tone plans.

Sources (named per profile in `sources`): ITU-T E.180 Supplement 2 "Various tones used in
national networks" (frequencies and cadences); ANSI T1.401 / Telcordia GR-506-CORE (North American
tones, levels and distinctive ringing) and GR-30-CORE (Bellcore caller ID); BT SIN 350 (UK tones)
and SIN 227 (UK caller ID); ETSI EN 300 659-1 (European on-hook data transmission); TBR 21 (the
harmonised European line impedance). Where a national document was not at hand, the figure agrees
with the E.180 supplement and with what open PBXs ship for that country; the howler, where the
country publishes none, is the North American receiver-off-hook tone.
"""

from __future__ import annotations

import dataclasses

from tipring.hal.api import RingCadence

from .regions import (
    CallerIdTiming,
    DistinctiveRing,
    LineImpedance,
    NumberDisplay,
    PulseMapping,
    RegionProfile,
)
from .tonespec import (
    Component,
    Tone,
    ToneSection,
    ToneSequence,
    ToneStep,
    amplitude_modulated,
)


def _c(*frequencies: float, level: float) -> tuple[Component, ...]:
    return tuple((float(f), level) for f in frequencies)


def _stutter(components: tuple[Component, ...]) -> ToneSequence:
    """Message-waiting dial tone: 0.1 s on / 0.1 s off for 2 s, then steady dial tone."""
    return ToneSequence((
        ToneSection((ToneStep(components, 0.1), ToneStep((), 0.1)), 2.0),
        ToneSection((ToneStep(components, None),)),
    ))


def _sit(frequencies: tuple[float, float, float], segment_s: float, silence_s: float,
         level: float) -> ToneSequence:
    """Special information tone: three rising single frequencies, then silence, repeated."""
    steps = tuple(ToneStep(((f, level),), segment_s) for f in frequencies)
    return ToneSequence((ToneSection((*steps, ToneStep((), silence_s))),))


# ITU-T E.180 (and Q.35) SIT: 950/1400/1800 Hz, 330 ms each, 1 s silence.
ITU_SIT = _sit((950.0, 1400.0, 1800.0), 0.33, 1.0, -13.0)
# North American SIT as the Cisco SPA112 admin guide's SIT1 ToneScript gives it.
NA_SIT = _sit((985.0, 1428.0, 1777.0), 0.38, 4.0, -16.0)
# Telcordia receiver-off-hook tone: 1400+2060+2450+2600 Hz, 0.1 s on / 0.1 s off. -10 dBm0 per
# component keeps the four-tone sum below G.711 full scale.
HOWLER = Tone(_c(1400, 2060, 2450, 2600, level=-10.0), ((0.1, 0.1),))

TBR21 = LineImpedance(270, 750, 150)  # harmonised European complex impedance (TBR 21 / CTR 21)
Z600 = LineImpedance(600)

BELLCORE = CallerIdTiming("bellcore", after_first_ring_s=0.5, guard_before_ring_s=0.5)
# ETSI EN 300 659-1 prior to ringing: line reversal, DT-AS (2130+2750 Hz), then V.23 FSK.
ETSI_FSK_PRIOR = CallerIdTiming("etsi-fsk", before_ring=True, line_reversal=True,
                                alerting_signal="dt-as", reversal_to_alert_s=0.1,
                                alert_duration_s=0.1, alert_to_data_s=0.06,
                                guard_before_ring_s=0.2)
# ETSI EN 300 659-1 data between the first and second ring (no alerting signal).
ETSI_FSK_AFTER_RING = CallerIdTiming("etsi-fsk", after_first_ring_s=0.5, guard_before_ring_s=0.2)

_NA_DIAL = _c(350, 440, level=-13.0)

US = RegionProfile(
    code="US",
    emergency_numbers=("911",),
    name="United States",
    dial=Tone(_NA_DIAL),
    stutter_dial=_stutter(_NA_DIAL),
    ringback=Tone(_c(440, 480, level=-19.0), ((2.0, 4.0),)),
    busy=Tone(_c(480, 620, level=-24.0), ((0.5, 0.5),)),
    congestion=Tone(_c(480, 620, level=-24.0), ((0.25, 0.25),)),
    call_waiting=Tone(_c(440, level=-13.0), ((0.3, 9.7),)),
    sit=NA_SIT,
    howler=HOWLER,
    ring=RingCadence(((2.0, 4.0),), 20.0),
    distinctive_rings=(
        ("Bellcore-dr1", DistinctiveRing(RingCadence(((2.0, 4.0),), 20.0))),
        ("Bellcore-dr2", DistinctiveRing(RingCadence(((0.8, 0.4), (0.8, 4.0)), 20.0))),
        ("Bellcore-dr3", DistinctiveRing(RingCadence(((0.4, 0.2), (0.4, 0.2), (0.8, 4.0)),
                                                     20.0))),
        ("Bellcore-dr4", DistinctiveRing(RingCadence(((0.3, 0.2), (1.0, 0.2), (0.3, 4.0)),
                                                     20.0))),
        ("Bellcore-dr5", DistinctiveRing(RingCadence(((0.5, 0.0),), 20.0), repeat=False)),
    ),
    caller_id=BELLCORE,
    impedance=Z600,
    number_display=NumberDisplay("1", "", "011"),
    sources=("ANSI T1.401", "Telcordia GR-506-CORE", "Telcordia GR-30-CORE",
             "Cisco SPA112 admin guide (SIT1, Ring1..5)"),
)

CA = dataclasses.replace(
    US, code="CA", name="Canada",
    sources=("North American tone plan: the same tones and ringing as the US", *US.sources),
)

# BT SIN 227 Caller Display, idle-state signalling before the first ring. SIN 227 builds on the
# EN 300 659-1 prior-to-ringing sequence and adds the terminal's DC wetting pulse:
# - line polarity reversal, then the idle-state tone alert (TAS: 2130 + 2750 Hz, the ETSI DT-AS)
#   no sooner than 100 ms later (EN 300 659-1 prior to ringing: >= 100 ms);
# - TAS 100 ms (EN 300 659-1 DT-AS: 100 +/- 10 ms);
# - the terminal answers the end of the TAS with a ~15 ms DC wetting pulse (a brief loop
#   closure; Silicon Labs AN93, UK caller ID) and then listens for the data, so the line must
#   not take that pulse for an answer (`te_wetting_pulse`, `callerid.WettingPulseFilter`);
# - the V.23 data 60 ms after the end of the TAS (EN 300 659-1: 45-500 ms; after the pulse);
# - the first ring >= 200 ms after the end of the data (EN 300 659-1 prior to ringing).
# SIN 227's own tables were not reachable from here; each figure above is the EN 300 659-1 one
# that SIN 227 follows, and no figure here is tighter than that standard allows.
BT_SIN227 = CallerIdTiming("etsi-fsk", before_ring=True, line_reversal=True,
                           alerting_signal="dt-as", reversal_to_alert_s=0.1,
                           alert_duration_s=0.1, alert_to_data_s=0.06,
                           guard_before_ring_s=0.2, te_wetting_pulse=True)

_UK_DIAL = _c(350, 450, level=-13.0)
GB = RegionProfile(
    code="GB",
    emergency_numbers=("999", "112"),
    name="United Kingdom",
    dial=Tone(_UK_DIAL),
    stutter_dial=_stutter(_UK_DIAL),
    ringback=Tone(_c(400, 450, level=-19.0), ((0.4, 0.2), (0.4, 2.0))),
    busy=Tone(_c(400, level=-13.0), ((0.375, 0.375),)),
    congestion=Tone(_c(400, level=-13.0), ((0.4, 0.35), (0.225, 0.525))),
    call_waiting=Tone(_c(400, level=-13.0), ((0.1, 4.0),)),
    sit=ITU_SIT,
    howler=HOWLER,
    ring=RingCadence(((0.4, 0.2), (0.4, 2.0)), 25.0),
    caller_id=BT_SIN227,
    impedance=LineImpedance(370, 620, 310),
    number_display=NumberDisplay("44", "0", "00"),
    sources=("BT SIN 350", "BT SIN 227 (caller ID: reversal + TAS before ringing)",
             "ITU-T E.180 Suppl. 2"),
)


def _cept(code: str, name: str, *, frequency: float = 425.0, level: float = -10.0,
          dial_cadence: tuple[tuple[float, float], ...] = (),
          busy: tuple[tuple[float, float], ...], ringback: tuple[tuple[float, float], ...],
          congestion: tuple[tuple[float, float], ...],
          call_waiting: tuple[tuple[float, float], ...], ring: RingCadence,
          caller_id: CallerIdTiming, impedance: LineImpedance, display: NumberDisplay,
          emergency: tuple[str, ...],
          pulse_mapping: PulseMapping = PulseMapping.STANDARD,
          sources: tuple[str, ...]) -> RegionProfile:
    """A profile in the CEPT style: every tone on one frequency, told apart by cadence."""
    single = _c(frequency, level=level)
    return RegionProfile(
        code=code, name=name,
        dial=Tone(single, dial_cadence),
        stutter_dial=_stutter(single),
        ringback=Tone(single, ringback),
        busy=Tone(single, busy),
        congestion=Tone(single, congestion),
        call_waiting=Tone(single, call_waiting),
        sit=ITU_SIT, howler=HOWLER, ring=ring, caller_id=caller_id, impedance=impedance,
        number_display=display, emergency_numbers=emergency, pulse_mapping=pulse_mapping,
        sources=("ITU-T E.180 Suppl. 2", *sources),
    )


DE = _cept(
    "DE", "Germany",
    busy=((0.48, 0.48),), ringback=((1.0, 4.0),), congestion=((0.24, 0.24),),
    call_waiting=((0.2, 0.2), (0.2, 5.0)),
    ring=RingCadence(((1.0, 4.0),), 25.0),
    caller_id=ETSI_FSK_AFTER_RING,
    impedance=LineImpedance(220, 820, 115),
    display=NumberDisplay("49", "0", "00"),
    emergency=("110", "112"),
    sources=("Deutsche Telekom 1 TR 110", "ETSI EN 300 659-1"),
)

FR = _cept(
    "FR", "France", frequency=440.0,
    busy=((0.5, 0.5),), ringback=((1.5, 3.5),), congestion=((0.25, 0.25),),
    call_waiting=((0.3, 10.0),),
    ring=RingCadence(((1.5, 3.5),), 50.0),  # France rings at 50 Hz
    caller_id=ETSI_FSK_PRIOR,
    impedance=TBR21,
    display=NumberDisplay("33", "0", "00"),
    emergency=("112", "15", "17", "18", "114"),
    sources=("ETSI EN 300 659-1", "TBR 21"),
)

IT = _cept(
    "IT", "Italy",
    dial_cadence=((0.2, 0.2), (0.6, 1.0)),
    busy=((0.5, 0.5),), ringback=((1.0, 4.0),), congestion=((0.2, 0.2),),
    call_waiting=((0.4, 0.1), (0.25, 0.1), (0.15, 14.0)),
    ring=RingCadence(((1.0, 4.0),), 25.0),
    caller_id=ETSI_FSK_PRIOR,
    impedance=TBR21,
    display=NumberDisplay("39", "", "00"),  # Italian numbers keep their leading 0 after +39
    emergency=("112", "113", "115", "118"),
    sources=("ETSI EN 300 659-1", "TBR 21"),
)

ES = _cept(
    "ES", "Spain",
    busy=((0.2, 0.2),), ringback=((1.5, 3.0),),
    congestion=((0.2, 0.2), (0.2, 0.2), (0.2, 0.6)),
    call_waiting=((0.175, 0.175), (0.175, 3.5)),
    ring=RingCadence(((1.5, 3.0),), 25.0),
    caller_id=ETSI_FSK_PRIOR,
    impedance=TBR21,
    display=NumberDisplay("34", "", "00"),  # no trunk prefix in Spain
    emergency=("112", "091", "092", "061", "062", "080"),
    sources=("ETSI EN 300 659-1", "TBR 21"),
)

NL = _cept(
    "NL", "Netherlands",
    busy=((0.5, 0.5),), ringback=((1.0, 4.0),), congestion=((0.25, 0.25),),
    call_waiting=((0.5, 9.5),),
    ring=RingCadence(((1.0, 4.0),), 25.0),
    caller_id=CallerIdTiming("etsi-dtmf", before_ring=True, line_reversal=True,
                             alert_to_data_s=0.1, guard_before_ring_s=0.25),
    impedance=TBR21,
    display=NumberDisplay("31", "0", "00"),
    emergency=("112",),
    sources=("ETSI EN 300 659-1 (DTMF variant)", "TBR 21"),
)

SE = _cept(
    "SE", "Sweden",
    busy=((0.25, 0.25),), ringback=((1.0, 5.0),), congestion=((0.25, 0.75),),
    call_waiting=((0.2, 0.5), (0.2, 9.1)),
    ring=RingCadence(((1.0, 5.0),), 25.0),
    caller_id=CallerIdTiming("etsi-dtmf", before_ring=True, alert_to_data_s=0.1,
                             guard_before_ring_s=0.25),
    impedance=TBR21,
    display=NumberDisplay("46", "0", "00"),
    emergency=("112",),
    pulse_mapping=PulseMapping.SWEDEN,
    sources=("ETSI EN 300 659-1 (DTMF variant)", "TBR 21", "Swedish rotary dials: n+1 breaks"),
)

_AU_DIAL = _c(413, 438, level=-10.0)  # 425 Hz modulated by 25 Hz, as a beating pair
AU = RegionProfile(
    code="AU",
    emergency_numbers=("000", "112", "106"),
    name="Australia",
    dial=Tone(_AU_DIAL),
    stutter_dial=_stutter(_AU_DIAL),
    ringback=Tone(_AU_DIAL, ((0.4, 0.2), (0.4, 2.0))),
    busy=Tone(_c(425, level=-10.0), ((0.375, 0.375),)),
    congestion=Tone(_c(425, level=-10.0), ((0.375, 0.375),)),
    call_waiting=Tone(_c(425, level=-10.0), ((0.2, 0.2), (0.2, 4.4))),
    sit=ITU_SIT,
    howler=HOWLER,
    ring=RingCadence(((0.4, 0.2), (0.4, 2.0)), 25.0),
    caller_id=ETSI_FSK_AFTER_RING,
    impedance=LineImpedance(220, 820, 120),
    number_display=NumberDisplay("61", "0", "0011"),
    sources=("ACIF S002", "ITU-T E.180 Suppl. 2"),
)

NZ = RegionProfile(
    code="NZ",
    emergency_numbers=("111",),
    name="New Zealand",
    dial=Tone(_c(400, level=-10.0)),
    stutter_dial=_stutter(_c(400, level=-10.0)),
    ringback=Tone(_c(400, 450, level=-13.0), ((0.4, 0.2), (0.4, 2.0))),
    busy=Tone(_c(400, level=-10.0), ((0.5, 0.5),)),
    congestion=Tone(_c(400, level=-10.0), ((0.25, 0.25),)),
    call_waiting=Tone(_c(400, level=-10.0), ((0.2, 3.0),)),
    sit=ITU_SIT,
    howler=HOWLER,
    ring=RingCadence(((0.4, 0.2), (0.4, 2.0)), 25.0),
    caller_id=ETSI_FSK_AFTER_RING,
    impedance=LineImpedance(370, 620, 310),
    number_display=NumberDisplay("64", "0", "00"),
    pulse_mapping=PulseMapping.NEW_ZEALAND,
    sources=("Telecom NZ PTC 200", "ITU-T E.180 Suppl. 2", "NZ rotary dials: 10-n breaks"),
)

_JP_RINGBACK = amplitude_modulated(400.0, 16.0, -13.0)  # 400 Hz modulated by 16 Hz
JP = RegionProfile(
    code="JP",
    emergency_numbers=("110", "118", "119"),
    name="Japan",
    dial=Tone(_c(400, level=-10.0)),
    stutter_dial=_stutter(_c(400, level=-10.0)),
    ringback=Tone(_JP_RINGBACK, ((1.0, 2.0),)),
    busy=Tone(_c(400, level=-10.0), ((0.5, 0.5),)),
    congestion=Tone(_c(400, level=-10.0), ((0.5, 0.5),)),
    call_waiting=Tone(_JP_RINGBACK, ((0.5, 8.0),)),
    sit=ITU_SIT,
    howler=HOWLER,
    ring=RingCadence(((1.0, 2.0),), 16.0),  # NTT rings at 16 Hz
    caller_id=CallerIdTiming("ntt", before_ring=True),  # number display: line/jclip.py
    impedance=Z600,
    number_display=NumberDisplay("81", "0", "010"),
    sources=("NTT telephone network interface (ringing 16 Hz, 1 s on / 2 s off)",
             "NTT number display: CAR 0.5 s on / 0.5 s off, primary response, V.23 JCLIP",
             "ITU-T E.180 Suppl. 2"),
)

PROFILES: dict[str, RegionProfile] = {
    profile.code: profile for profile in (US, CA, GB, DE, FR, IT, ES, NL, SE, AU, NZ, JP)
}
