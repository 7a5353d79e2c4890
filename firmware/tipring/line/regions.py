"""Regional line profiles: what a telephone line sounds and behaves like in each country.

A profile gathers what differs between national networks (tones, ringing, caller ID, hook flash,
pulse dialling, line impedance, how a calling number is shown) so the FXS state machine and the
tone generator read one object. The values live in `region_data`, each with its source; this
module holds the types and the lookup. Users override single tones with Grandstream or ToneScript
strings (`with_tone_override`), which are checked here so a bad string never reaches the line.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from typing import Literal

from tipring.hal.api import RingCadence

from .tonespec import Signal, parse_grandstream, parse_tonescript

CallerIdStandard = Literal["bellcore", "etsi-fsk", "etsi-dtmf", "ntt", "none"]
AlertingSignal = Literal["none", "dt-as", "rp-as"]  # dual-tone 2130+2750 Hz / short ring pulse
TONE_NAMES = ("dial", "stutter_dial", "ringback", "busy", "congestion", "call_waiting",
              "sit", "howler")


class RegionError(ValueError):
    """An unknown region code or a refused override."""


class PulseMapping(enum.Enum):
    """How many loop breaks a rotary dial sends for a digit."""

    STANDARD = "standard"  # n breaks, 0 = 10 (ITU-T Q.23 countries, most of the world)
    NEW_ZEALAND = "new-zealand"  # 10 - n breaks, 0 = 10 (NZ dials are numbered backwards)
    SWEDEN = "sweden"  # n + 1 breaks, 0 = 1

    def pulses(self, digit: str) -> int:
        """Breaks sent for `digit` ("0".."9")."""
        if len(digit) != 1 or digit not in "0123456789":
            raise ValueError(f"a rotary dial sends only 0..9, not {digit!r}")
        n = int(digit)
        if self is PulseMapping.NEW_ZEALAND:
            return 10 if n == 0 else 10 - n
        if self is PulseMapping.SWEDEN:
            return n + 1
        return 10 if n == 0 else n

    def digit(self, pulses: int) -> str | None:
        """The digit for a counted train of `pulses` breaks, or None if no digit has that many."""
        for candidate in "0123456789":
            if self.pulses(candidate) == pulses:
                return candidate
        return None


@dataclass(frozen=True)
class LineImpedance:
    """R1 + (R2 || C): a plain resistance when `parallel_ohm` is None (600 ohm)."""

    series_ohm: float
    parallel_ohm: float | None = None
    parallel_nf: float | None = None

    def __post_init__(self) -> None:
        if (self.parallel_ohm is None) != (self.parallel_nf is None):
            raise ValueError("a complex impedance needs both the parallel R and C")

    def __str__(self) -> str:
        if self.parallel_ohm is None:
            return f"{self.series_ohm:g} ohm"
        return f"{self.series_ohm:g}+{self.parallel_ohm:g}||{self.parallel_nf:g}nF"


@dataclass(frozen=True)
class CallerIdTiming:
    """When and how on-hook caller ID is sent, relative to ringing.

    `before_ring`: sent before the first ring (ETSI/BT "prior to ringing") after an optional line
    reversal and alerting signal; otherwise in the silence after the first ring (Bellcore, and
    ETSI "during ringing"), starting `after_first_ring_s` after the first ring ends and finishing
    at least `guard_before_ring_s` before the next ring starts.
    """

    standard: CallerIdStandard
    before_ring: bool = False
    line_reversal: bool = False
    alerting_signal: AlertingSignal = "none"
    reversal_to_alert_s: float = 0.0  # line reversal -> alerting signal
    alert_duration_s: float = 0.0
    alert_to_data_s: float = 0.0  # end of alerting signal (or the reversal) -> first data
    after_first_ring_s: float = 0.0  # end of first ring -> data (after-ring methods)
    guard_before_ring_s: float = 0.0  # end of data -> (next) ring
    te_wetting_pulse: bool = False  # BT SIN 227: the phone draws a DC pulse after the alert


@dataclass(frozen=True)
class DistinctiveRing:
    """A ring pattern selected by Alert-Info; `repeat` False = one burst (a "ring splash")."""

    cadence: RingCadence
    repeat: bool = True


@dataclass(frozen=True)
class NumberDisplay:
    """How an E.164 calling number (+CC...) is shown on the phone's caller-ID display.

    Numbers from the home country lose "+CC" and gain the trunk prefix (+44 20... -> 020...);
    others get the international prefix instead of "+" (+33 1... -> 00331... in GB). That is how
    the PSTN presented them, and what a user can dial back.
    """

    country_code: str
    trunk_prefix: str
    international_prefix: str

    def present(self, number: str) -> str:
        if not number.startswith("+"):
            return number
        digits = number[1:]
        if digits.startswith(self.country_code):
            return self.trunk_prefix + digits[len(self.country_code):]
        return self.international_prefix + digits


@dataclass(frozen=True)
class RegionProfile:
    """Everything country-specific about an analog line (ISO 3166-1 alpha-2 `code`)."""

    code: str
    name: str
    dial: Signal
    stutter_dial: Signal  # dial tone with message waiting
    ringback: Signal
    busy: Signal
    congestion: Signal
    call_waiting: Signal
    sit: Signal  # special information tone (intercept / number unobtainable)
    howler: Signal  # receiver off-hook warning
    ring: RingCadence
    caller_id: CallerIdTiming
    impedance: LineImpedance
    number_display: NumberDisplay
    emergency_numbers: tuple[str, ...]  # for DigitMap.compile(emergency=...): never barred
    # Alert-Info names (matched case-insensitively inside the header value) -> ring pattern
    distinctive_rings: tuple[tuple[str, DistinctiveRing], ...] = ()
    pulse_mapping: PulseMapping = PulseMapping.STANDARD
    flash_min_ms: int = 100
    flash_max_ms: int = 1100
    sources: tuple[str, ...] = ()

    def tone(self, name: str) -> Signal:
        if name not in TONE_NAMES:
            raise RegionError(f"no tone {name!r}; tones are {', '.join(TONE_NAMES)}")
        return getattr(self, name)

    def ring_for(self, alert_info: str | None) -> DistinctiveRing:
        """The ring pattern an Alert-Info value names (`<http://x/Bellcore-dr2>`; Cisco's own
        spelling `Bellcore-r2` too), or the normal ring when the region has no such pattern."""
        if alert_info:
            key = alert_info.strip().lower()
            for name, pattern in self.distinctive_rings:
                spellings = {name.lower(), name.lower().replace("-dr", "-r")}
                if any(spelling in key for spelling in spellings):
                    return pattern
        return DistinctiveRing(self.ring)

    def with_tone_override(self, name: str, text: str) -> RegionProfile:
        """A copy with tone `name` replaced by a Grandstream (`f1=...`) or ToneScript string.

        Raises `tonespec.ToneSpecError` (with the position) for a bad string.
        """
        self.tone(name)
        stripped = text.lstrip()
        signal = (parse_grandstream(text) if stripped[:1] in ("f", "F")
                  else parse_tonescript(text))
        return dataclasses.replace(self, **{name: signal})


def profile(code: str) -> RegionProfile:
    """The profile for an ISO 3166-1 alpha-2 region code ("UK" is accepted for GB)."""
    from .region_data import PROFILES

    key = code.strip().upper()
    key = {"UK": "GB"}.get(key, key)
    try:
        return PROFILES[key]
    except KeyError:
        raise RegionError(f"no line profile for region {code!r}; known: "
                          f"{', '.join(sorted(PROFILES))}") from None


def region_codes() -> frozenset[str]:
    from .region_data import PROFILES

    return frozenset(PROFILES)
