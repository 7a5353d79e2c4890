"""Hook-switch edges -> what the subscriber meant: lift, hang-up, hook flash or a rotary digit.

A SLIC reports only debounced off-hook/on-hook edges with their times; a rotary dial, a hook
flash and a hang-up all look the same on the wire (a loop break) and differ only in how long the
break lasts. So the decision waits: a break shorter than `pulse_break_max_s` is a dial pulse, one
between the flash limits is a flash, and one still open at `flash_max_s` is a hang-up. A train of
pulses ends when the loop stays closed longer than `digit_gap_s` (rotary dials leave at least
200 ms between digits, while the make between two pulses of one digit is under ~70 ms at 8-12 pps
with break ratios from 60/40 to 67/33). Pure: it takes edge times and `now`, never a clock.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from .regions import PulseMapping

log = logging.getLogger(__name__)

DEFAULT_DIGIT_GAP_S = 0.15  # longer than any make inside a digit, shorter than the 200 ms gap
DEFAULT_PULSE_BREAK_MAX_S = 0.1  # an 8 pps dial at 67/33 breaks for 83 ms


@dataclass(frozen=True)
class Lifted:
    """The handset went off hook from on hook (the start of a call or an answer)."""

    at: float


@dataclass(frozen=True)
class HungUp:
    """The loop stayed open longer than a flash: `at` is when the break began."""

    at: float


@dataclass(frozen=True)
class HookFlash:
    """A loop break inside the flash window; `at` is when the loop closed again."""

    at: float


@dataclass(frozen=True)
class PulseDigit:
    """A rotary digit, decoded with the region's pulse mapping; `at` is when its train ended."""

    digit: str
    at: float


HookSignal = Lifted | HungUp | HookFlash | PulseDigit


class HookDecoder:
    """Turns debounced hook edges into `HookSignal`s by timing the breaks and makes."""

    def __init__(self, mapping: PulseMapping = PulseMapping.STANDARD, *,
                 flash_min_s: float = 0.1, flash_max_s: float = 1.1,
                 digit_gap_s: float = DEFAULT_DIGIT_GAP_S,
                 pulse_break_max_s: float = DEFAULT_PULSE_BREAK_MAX_S) -> None:
        if not 0 < flash_min_s < flash_max_s:
            raise ValueError(f"flash window {flash_min_s}..{flash_max_s} s: need 0 < min < max")
        if not 0 < pulse_break_max_s <= flash_max_s:
            raise ValueError(f"pulse_break_max_s {pulse_break_max_s} must be in 0..flash_max_s")
        self.mapping = mapping
        self.flash_min_s = flash_min_s
        self.flash_max_s = flash_max_s
        self.digit_gap_s = digit_gap_s
        self.pulse_break_max_s = min(pulse_break_max_s, flash_min_s)
        self.off_hook = False
        self._break_at: float | None = None  # loop open since (while off hook in intent)
        self._pulses = 0
        self._last_make: float | None = None  # end of the last pulse break

    def reset(self, off_hook: bool) -> None:
        self.off_hook = off_hook
        self._break_at = None
        self._pulses = 0
        self._last_make = None

    def next_deadline(self) -> float | None:
        if self._break_at is not None:
            return self._break_at + self.flash_max_s
        if self._pulses and self._last_make is not None:
            return self._last_make + self.digit_gap_s
        return None

    def edge(self, off_hook: bool, at: float) -> list[HookSignal]:
        """A debounced edge from the SLIC (repeated states are ignored)."""
        out = self.expire(at)
        if not self.off_hook:
            if off_hook:
                self.off_hook = True
                out.append(Lifted(at))
            return out
        if not off_hook:
            if self._break_at is None:
                self._break_at = at
            return out
        if self._break_at is None:
            return out  # already closed: a repeated edge
        length = at - self._break_at
        self._break_at = None
        if length < self.pulse_break_max_s:
            self._pulses += 1
            self._last_make = at
        elif length >= self.flash_min_s:
            out.extend(self._end_train(at))
            out.append(HookFlash(at))
        else:
            log.info("loop break of %.0f ms is neither a dial pulse nor a flash: ignored",
                     length * 1000)
        return out

    def expire(self, now: float) -> list[HookSignal]:
        """Decisions due by `now`: a digit after its gap, a hang-up after the flash window."""
        out: list[HookSignal] = []
        if self._break_at is not None and now >= self._break_at + self.flash_max_s:
            at = self._break_at
            if self._pulses:
                log.info("hung up during a pulse train of %d breaks: digit dropped", self._pulses)
            self.reset(False)
            out.append(HungUp(at))
        elif (self._break_at is None and self._pulses and self._last_make is not None
              and now >= self._last_make + self.digit_gap_s):
            out.extend(self._end_train(self._last_make + self.digit_gap_s))
        return out

    def _end_train(self, at: float) -> list[HookSignal]:
        pulses, self._pulses, self._last_make = self._pulses, 0, None
        if not pulses:
            return []
        digit = self.mapping.digit(pulses)
        if digit is None:
            log.info("pulse train of %d breaks is no digit: ignored", pulses)
            return []
        return [PulseDigit(digit, at)]
