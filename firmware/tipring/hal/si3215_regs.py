"""ProSLIC Si3210/Si3215 register facts: addresses, bits, reset values, coefficient formulas.

Facts from the Silicon Labs Si3210/Si3211 and Si3215/Si3216 datasheets (and what open drivers
that run these chips rely on). Shared by the driver (`si3215.py`) and the test emulator, so
both speak the same map; the emulator enforces the datasheet's *rules*, not this file's values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# -- direct registers (8 bit) -----------------------------------------------------------------
SPI_MODE = 0  # read: bits 5:4 part family, bits 3:0 revision (0 or 0xF: nothing answering)
PCM_MODE = 1  # PCME (bit 5), PCMF (bits 4:3), bit 7 reads 1 on an Si3215
PCM_TX_START_LO = 2  # transmit start count in PCLK bits after FSYNC (10 bits over 2 registers)
PCM_TX_START_HI = 3
PCM_RX_START_LO = 4
PCM_RX_START_HI = 5
AUDIO_LOOPBACK = 8  # reset value 0x02: a sanity check that the chip really reset
AUDIO_GAIN = 9  # analog gains: TX bits 3:2, RX bits 1:0
LINE_IMPEDANCE = 10  # two-wire impedance synthesis, bits 2:0
HYBRID = 11  # reset value 0x33
POWER_DOWN_1 = 14  # bit 4 PDDCDC: DC-DC converter powered down (set at reset)
IRQ_STATUS_1 = 18  # oscillator / ring timer events
IRQ_STATUS_2 = 19  # RTIP bit 0, LCIP bit 1, power alarms Q1..Q6 bits 2..7
IRQ_STATUS_3 = 20  # DTMF (Si3210), indirect access serviced, common-mode balance
IRQ_ENABLE_1 = 21
IRQ_ENABLE_2 = 22
IRQ_ENABLE_3 = 23
IND_DATA_LO = 28
IND_DATA_HI = 29
IND_ADDRESS = 30  # writing it starts the indirect read or write
IND_STATUS = 31  # bit 0 IAS: indirect access pending (read only)
RING_OSC_CTL = 34  # TSWS bit 4, RVO bit 3, RTAE bit 2, RTIE bit 1, ROE bit 0
RING_ON_LO = 48  # ring active timer (RAT), 125 us units
RING_ON_HI = 49
RING_OFF_LO = 50  # ring inactive timer (RIT), 125 us units
RING_OFF_HI = 51
LINEFEED = 64  # LF bits 2:0 (write), LFS bits 6:4 (read-only shadow of the state in force)
BIAS_SQUELCH = 65
BATTERY_FEED = 66
AUTO_CONTROL = 67  # automatic ring trip / loop closure / power-alarm actions
LOOP_STATUS = 68  # read only: LCR bit 0 (loop closed), RTP bit 1 (ring trip detected)
LOOP_DEBOUNCE = 69  # loop closure debounce, 1.25 ms units
RING_TRIP_DEBOUNCE = 70  # ring trip debounce, 1.25 ms units
LOOP_CURRENT_LIMIT = 71  # 20 mA + 3 mA * value
COMMON_MODE_V = 73
VBATH = 74  # high battery (ringing) voltage, 1.5 V units
VBAT_SENSE = 82  # read only: battery voltage, 376 mV units
DCDC_PWM_PERIOD = 92
DCDC_CONTROL = 93  # bit 7 DCCAL: DC-DC calibration in progress (self-clearing)
CALIBRATION_1 = 96  # bit 6 CAL: start/in progress; bits 4:0 which calibrations
CALIBRATION_2 = 97  # bits 4:0 further calibration enables

READ = 0x80  # SPI control byte: bit 7 = read, bits 6:0 = register address

# -- bits --------------------------------------------------------------------------------------
PCM_ENABLE = 0x20
PCM_FORMAT_SHIFT = 3
PCM_FORMATS = {"alaw": 0b00, "ulaw": 0b01, "linear": 0b11}
SI3215_FLAG = 0x80  # PCM_MODE bit 7
PDDCDC = 0x10
IAS = 0x01
RTIP = 0x01
LCIP = 0x02
POWER_ALARMS = 0xFC  # Q1..Q6 power alarm pending, IRQ_STATUS_2 bits 2..7
LCR = 0x01
RTP = 0x02
TSWS, RVO, RTAE, RTIE, ROE = 0x10, 0x08, 0x04, 0x02, 0x01
CAL_START = 0x40
CAL_ALL_1 = 0x1F  # CALR CALT CALD CALC CALIL
CAL_ALL_2 = 0x1F  # CALM1 CALM2 CALDAC CALADC CALCM
DCCAL = 0x80
DCDC_ENGAGE = 0x19
AUTO_DEFAULT = (
    0x07  # automatic ring-trip, loop-closure and power-alarm handling; no battery switching
)

RESET_VALUES = {AUDIO_LOOPBACK: 0x02, HYBRID: 0x33, POWER_DOWN_1: PDDCDC, LINEFEED: 0x00}

# Linefeed codes (LF / LFS).
LF_OPEN = 0
LF_FORWARD_ACTIVE = 1
LF_FORWARD_OHT = 2
LF_TIP_OPEN = 3
LF_RINGING = 4
LF_REVERSE_ACTIVE = 5
LF_REVERSE_OHT = 6
LF_RING_OPEN = 7

# -- indirect registers (16 bit), Si3210 numbering -----------------------------------------------
IR_RING_V_OFF = 19
IR_RING_OSC = 20  # RCO
IR_RING_X = 21  # RNGX
IR_RING_Y = 22  # RNGY
IR_RX_DIGITAL_GAIN = 26
IR_TX_DIGITAL_GAIN = 27
IR_LOOP_CLOSE_THRESH = 28
IR_RING_TRIP_THRESH = 29
IR_PWR_ALARM_Q1Q2 = 32
IR_PWR_ALARM_Q3Q4 = 33
IR_PWR_ALARM_Q5Q6 = 34
IR_FILTERS = (
    35,
    36,
    37,
    38,
    39,
)  # loop-closure, ring-trip and thermal filters: flushed at power-up
IR_CM_BIAS_RINGING = 40
IR_DCDC_MIN_V = 41
FILTER_FLUSH = 0x8000

# The Si3215 has no DTMF decoder or pulse metering, and a compacted indirect map.
SI3215_INDIRECT = {
    13: 0,
    14: 1,
    15: 2,
    16: 3,
    17: 4,
    18: 5,
    19: 6,
    20: 7,
    21: 8,
    22: 9,
    26: 13,
    27: 14,
    28: 15,
    29: 16,
    30: 17,
    31: 18,
    32: 19,
    33: 20,
    34: 21,
    35: 22,
    36: 23,
    37: 24,
    38: 25,
    39: 26,
    40: 27,
    41: 64,
    43: 66,
}

# Datasheet-recommended start-up values of the indirect registers the driver programs.
INDIRECT_DEFAULTS = {
    IR_RX_DIGITAL_GAIN: 0x4000,  # 0 dB
    IR_TX_DIGITAL_GAIN: 0x4000,
    IR_LOOP_CLOSE_THRESH: 0x1000,
    IR_RING_TRIP_THRESH: 0x3600,
    IR_PWR_ALARM_Q1Q2: 0x07C0,
    IR_PWR_ALARM_Q3Q4: 0x2600,
    IR_PWR_ALARM_Q5Q6: 0x1B80,
    35: 0x8000,
    36: 0x0320,
    37: 0x008C,
    38: 0x0100,
    39: 0x0010,
    IR_CM_BIAS_RINGING: 0x0C00,
    IR_DCDC_MIN_V: 0x0C00,
}

# Two-wire impedance synthesis codes (LINE_IMPEDANCE bits 2:0).
IMPEDANCES = {
    "600": 0,
    "900": 1,
    "600+2.16uF": 2,
    "900+2.16uF": 3,
    "270+750||150nF": 4,  # ETSI / TBR21 complex
    "220+820||120nF": 5,  # Australia
}

# Analog gain steps (AUDIO_GAIN): dB -> 2-bit code.
GAIN_CODES = {0.0: 0b00, -3.5: 0b01, 3.5: 0b10}

TIMER_TICK = 1 / 8000  # ring cadence timers count 8 kHz samples
TIMER_MAX = 0xFFFF * TIMER_TICK  # about 8.19 s
OSC_RATE = 1000.0  # the ring oscillator runs at 1 kHz
FULL_SCALE_V = 96.0


@dataclass(frozen=True)
class RingOscillator:
    rco: int
    rngx: int
    rngy: int = 0  # initial phase 0: sine ringing


def ring_oscillator(frequency_hz: float, peak_volts: float) -> RingOscillator:
    """RCO/RNGX for sine ringing: coeff = cos(2*pi*f/1 kHz), amplitude scaled to 96 V full scale."""
    if not 15.0 <= frequency_hz <= 100.0:
        raise ValueError(f"ring frequency {frequency_hz} Hz is outside the chip's 15..100 Hz")
    if not 0 < peak_volts <= 94.5:
        raise ValueError(f"ring amplitude {peak_volts} V peak is outside 0..94.5 V")
    coeff = math.cos(2 * math.pi * frequency_hz / OSC_RATE)
    rco = round(coeff * 32768)
    rngx = round(0.25 * math.sqrt((1 - coeff) / (1 + coeff)) * 32768 * peak_volts / FULL_SCALE_V)
    return RingOscillator(rco, rngx)


def ring_frequency(rco: int) -> float:
    """Inverse of `ring_oscillator` for RCO (what the emulator and status pages show)."""
    return OSC_RATE * math.acos(max(-1.0, min(1.0, rco / 32768))) / (2 * math.pi)


def ring_peak_volts(rco: int, rngx: int) -> float:
    coeff = rco / 32768
    return rngx / (0.25 * math.sqrt((1 - coeff) / (1 + coeff)) * 32768) * FULL_SCALE_V


def timer_ticks(seconds: float) -> int:
    ticks = round(seconds / TIMER_TICK)
    if not 0 <= ticks <= 0xFFFF:
        raise ValueError(f"{seconds} s does not fit a ring timer (0..{TIMER_MAX:.2f} s)")
    return ticks
