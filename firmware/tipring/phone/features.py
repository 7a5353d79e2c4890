"""Star codes: what a dialled `*78` or `*72 5551234` asks the phone to do.

The codes themselves are configuration (`config.schema.FeatureCodes`, the usual North American
defaults); this module only knows which features take a number after the code and turns a
dialled string into a `FeatureRequest`. The line's digit map gets the same codes as rules
(`digit_rules`), so a code completes the moment its last key is pressed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# Features whose code is followed by a number: forward-to target, or the call to place.
TAKES_NUMBER = frozenset({
    "forward_all_on", "forward_busy_on", "forward_no_answer_on",
    "hide_caller_id_once", "show_caller_id_once", "call_waiting_off_once",
})

# Feature -> (line setting it switches, value): these are saved in the configuration.
SWITCHES: dict[str, tuple[str, object]] = {
    "do_not_disturb_on": ("do_not_disturb", True),
    "do_not_disturb_off": ("do_not_disturb", False),
    "anonymous_rejection_on": ("anonymous_rejection", True),
    "anonymous_rejection_off": ("anonymous_rejection", False),
    "forward_all_off": ("forward_all", ""),
    "forward_busy_off": ("forward_busy", ""),
    "forward_no_answer_off": ("forward_no_answer", ""),
}
FORWARDS = {"forward_all_on": "forward_all", "forward_busy_on": "forward_busy",
            "forward_no_answer_on": "forward_no_answer"}


@dataclass(frozen=True)
class FeatureRequest:
    name: str  # a FeatureCodes field name, e.g. "do_not_disturb_on"
    number: str = ""  # what followed a code in TAKES_NUMBER


def recognise(dialled: str, codes: Mapping[str, str]) -> FeatureRequest | None:
    """The feature `dialled` asks for, or None (an ordinary number). Codes never start one
    another (the configuration refuses that), so at most one can match."""
    for name, code in codes.items():
        if name in TAKES_NUMBER:
            if dialled.startswith(code) and len(dialled) > len(code):
                return FeatureRequest(name, dialled[len(code):])
        elif dialled == code:
            return FeatureRequest(name)
    return None


def digit_rules(codes: Mapping[str, str]) -> tuple[str, ...]:
    """The codes as Cisco digit-map rules for `DigitMap.compile(features=...)`."""
    return tuple(f"{code}x." if name in TAKES_NUMBER else code for name, code in codes.items())
