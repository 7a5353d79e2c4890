"""Call-progress tones as data, and the two vendor string syntaxes users paste into ATAs.

One representation serves the region tables, the user's overrides and the C tone generator:

- `Tone`: one set of up to four sine components (Hz, dBm0) switched by an on/off cadence, repeated
  or played once. Dial, busy, ringback and most national tones are this shape.
- `ToneSequence`: what the C generator actually plays. A list of `ToneSection`s played in order;
  each section loops its `ToneStep`s (components, duration) until the section's own duration is
  up (`None` = until stopped). A step with no components is silence. SIT (three single-frequency
  steps, then silence) and stutter dial tone (fast cadence for 2 s, then steady) need this form;
  `Tone.sequence()` turns any `Tone` into it, so the C side needs to know only this one.

Playback contract for the C generator: play the sections in order. Within a section, play its
steps in order and start again from the first step until the section's `duration_s` has passed
(cutting the step then running short), or for ever when it is None; then go to the next section.
After the last timed section the tone is over (silence). A step sums its components, each a sine
of `frequency_hz` at `level_dbm0` (dBm0 per component, not for the sum), for `duration_s` (None:
until stopped; only a section's last step). No component = silence.

Amplitude-modulated tones (e.g. 400 Hz modulated by 16 Hz, written 400*16 in tone plans) are
expressed as their spectrum: the carrier plus the two sidebands (see `amplitude_modulated`), which
a sum-of-sines generator reproduces exactly, so the C side needs no modulator.

Parsers take the Grandstream HT80x syntax (`f1=350@-13,f2=440@-13,c=0/0;`, cadence in units of
10 ms as the HT80x admin guide defines) and the Cisco SPA ToneScript
(`350@-19,440@-19;10(*/0/1+2)`); errors give the 0-based character position and what was expected.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

MAX_COMPONENTS = 4  # sines summed by the C tone generator
LEVEL_RANGE_DBM0 = (-60.0, 3.0)  # +3.14 dBm0 is the G.711 full-scale sine; below -60 is silence
FREQUENCY_RANGE_HZ = (0.0, 4000.0)  # exclusive: 8 kHz sampling
GRANDSTREAM_UNITS_PER_S = 100  # HT80x: "cadence on and off are in 10ms"
GRANDSTREAM_DEFAULT_LEVEL_DBM0 = -13.0  # level when `f1=350` gives none (the HT80x dial-tone level)
TONESCRIPT_MAX_FREQUENCIES = 6
TONESCRIPT_MAX_SECTIONS = 2
TONESCRIPT_MAX_SEGMENTS = 6

Component = tuple[float, float]  # (frequency_hz, level_dbm0)
_T = TypeVar("_T")


class ToneSpecError(ValueError):
    """A tone string was refused: `position` is the 0-based index of the offending character."""

    def __init__(self, text: str, position: int, expected: str) -> None:
        self.text = text
        self.position = position
        self.expected = expected
        found = repr(text[position]) if position < len(text) else "end of text"
        super().__init__(f"tone {text!r}: at position {position} expected {expected}, "
                         f"found {found}")


def _check_components(components: tuple[Component, ...], allow_silence: bool) -> None:
    if not components and not allow_silence:
        raise ValueError("a tone needs at least one frequency component")
    if len(components) > MAX_COMPONENTS:
        raise ValueError(f"at most {MAX_COMPONENTS} frequency components, got {len(components)}")
    low_f, high_f = FREQUENCY_RANGE_HZ
    low_l, high_l = LEVEL_RANGE_DBM0
    for frequency, level in components:
        if not low_f < frequency < high_f:
            raise ValueError(f"frequency {frequency} Hz is outside {low_f:g}..{high_f:g} Hz")
        if not low_l <= level <= high_l:
            raise ValueError(f"level {level} dBm0 is outside {low_l:g}..{high_l:g} dBm0")


@dataclass(frozen=True)
class ToneStep:
    """Play `components` (empty = silence) for `duration_s` seconds (None = until stopped)."""

    components: tuple[Component, ...]
    duration_s: float | None

    def __post_init__(self) -> None:
        _check_components(self.components, allow_silence=True)
        if self.duration_s is not None and not self.duration_s > 0:
            raise ValueError(f"a step lasts more than 0 s, got {self.duration_s}")


@dataclass(frozen=True)
class ToneSection:
    """Loop `steps` until `duration_s` has passed (None = until stopped), cutting the last short."""

    steps: tuple[ToneStep, ...]
    duration_s: float | None = None

    def __post_init__(self) -> None:
        if not self.steps:
            raise ValueError("a tone section needs at least one step")
        if self.duration_s is not None and not self.duration_s > 0:
            raise ValueError(f"a section lasts more than 0 s, got {self.duration_s}")
        for step in self.steps[:-1]:
            if step.duration_s is None:
                raise ValueError("only the last step of a section may last until stopped")


@dataclass(frozen=True)
class ToneSequence:
    """Sections played in order, then silence (unless the last one lasts until stopped)."""

    sections: tuple[ToneSection, ...]

    def __post_init__(self) -> None:
        if not self.sections:
            raise ValueError("a tone sequence needs at least one section")
        for section in self.sections[:-1]:
            if section.duration_s is None:
                raise ValueError("only the last section may last until stopped")

    def sequence(self) -> ToneSequence:
        return self

    @property
    def frequencies(self) -> tuple[float, ...]:
        """Every frequency used, in order of first use (what a tone detector must listen for)."""
        seen: dict[float, None] = {}
        for section in self.sections:
            for step in section.steps:
                for frequency, _ in step.components:
                    seen.setdefault(frequency)
        return tuple(seen)


@dataclass(frozen=True)
class Tone:
    """Components switched on and off by `cadence` ((on_s, off_s), ...); () = continuous."""

    components: tuple[Component, ...]
    cadence: tuple[tuple[float, float], ...] = ()
    repeat: bool = True  # False: play the cadence once, then silence

    def __post_init__(self) -> None:
        _check_components(self.components, allow_silence=False)
        for on, off in self.cadence:
            if not on > 0 or off < 0:
                raise ValueError(f"bad cadence pair ({on}, {off}): on > 0 and off >= 0")

    @property
    def continuous(self) -> bool:
        return not self.cadence

    @property
    def frequencies(self) -> tuple[float, ...]:
        return tuple(frequency for frequency, _ in self.components)

    @property
    def period_s(self) -> float:
        return sum(on + off for on, off in self.cadence)

    def sequence(self) -> ToneSequence:
        """The same tone in the form the C generator plays."""
        if not self.cadence:
            return ToneSequence((ToneSection((ToneStep(self.components, None),)),))
        steps: list[ToneStep] = []
        for on, off in self.cadence:
            steps.append(ToneStep(self.components, on))
            if off > 0:
                steps.append(ToneStep((), off))
        duration = None if self.repeat else self.period_s
        return ToneSequence((ToneSection(tuple(steps), duration),))


Signal = Tone | ToneSequence
MAX_PLAN_SEGMENTS = 32  # segments in one C tone plan (tr_tone_plan_t)


@dataclass(frozen=True)
class CadenceSegment:
    """`components` for `on_s` (None = for ever), then `off_s` of silence: one C plan segment."""

    components: tuple[Component, ...]
    on_s: float | None
    off_s: float


@dataclass(frozen=True)
class CadencePlan:
    """A flat list of segments and where to restart after the last (None: the tone ends).

    This is the shape of the C tone generator's plan (`media.dsp.ToneGenerator.start(segments,
    repeat_from)`): timed sections are unrolled into it, the last untimed section becomes the loop.
    """

    segments: tuple[CadenceSegment, ...]
    repeat_from: int | None


def cadence_plan(signal: Signal) -> CadencePlan:
    """Unroll a tone into the C generator's segment list; ValueError past MAX_PLAN_SEGMENTS."""
    segments: list[CadenceSegment] = []
    repeat_from: int | None = None
    for section in signal.sequence().sections:
        first = len(segments)
        if section.duration_s is None:
            steps: list[ToneStep] = list(section.steps)
            repeat_from = first
        else:
            steps = _unrolled(section)
        _pair(steps, segments)
        if len(segments) > MAX_PLAN_SEGMENTS:
            raise ValueError(f"the tone needs more than {MAX_PLAN_SEGMENTS} cadence segments")
        if any(segment.on_s is None for segment in segments[first:]):
            repeat_from = None  # nothing after a segment that sounds for ever
    return CadencePlan(tuple(segments), repeat_from)


def _unrolled(section: ToneSection) -> list[ToneStep]:
    """The steps of a timed section repeated until its duration, the last one cut short."""
    assert section.duration_s is not None
    left = section.duration_s
    steps: list[ToneStep] = []
    while left > 1e-9:
        for step in section.steps:
            length = left if step.duration_s is None else min(step.duration_s, left)
            steps.append(ToneStep(step.components, round(length, 9)))
            left -= length
            if left <= 1e-9:
                break
        if len(steps) > 2 * MAX_PLAN_SEGMENTS:
            break  # already too long for a plan; cadence_plan reports it
    return steps


def _pair(steps: list[ToneStep], segments: list[CadenceSegment]) -> None:
    """Sounding step + the silence after it -> one segment; a lone silence -> an empty segment."""
    index = 0
    while index < len(steps):
        step = steps[index]
        following = steps[index + 1] if index + 1 < len(steps) else None
        if not step.components:  # silence: for ever, or as the off part of an empty segment
            segments.append(CadenceSegment((), None, 0.0) if step.duration_s is None
                            else CadenceSegment((), 0.0, step.duration_s))
            index += 1
        elif (following is not None and not following.components
              and step.duration_s is not None and following.duration_s is not None):
            segments.append(CadenceSegment(step.components, step.duration_s,
                                           following.duration_s))
            index += 2
        else:
            segments.append(CadenceSegment(step.components, step.duration_s, 0.0))
            index += 1


def amplitude_modulated(carrier_hz: float, modulation_hz: float, level_dbm0: float,
                        depth: float = 1.0) -> tuple[Component, ...]:
    """An AM tone (carrier*modulation in tone plans) as carrier + two sidebands.

    A carrier of amplitude A modulated to depth m is A*cos(wc t) + (mA/2)*cos((wc +- wm) t), so
    each sideband sits 20*log10(m/2) dB below the carrier (-6.02 dB at full depth). `level_dbm0` is
    the carrier's level.
    """
    if not 0 < depth <= 1:
        raise ValueError(f"modulation depth {depth} is outside (0, 1]")
    sideband = round(level_dbm0 + 20 * math.log10(depth / 2), 2)
    return ((carrier_hz, level_dbm0), (carrier_hz - modulation_hz, sideband),
            (carrier_hz + modulation_hz, sideband))


class _Scanner:
    """Character cursor with the error reporting both syntaxes share."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.at = 0

    def fail(self, expected: str, at: int | None = None) -> ToneSpecError:
        return ToneSpecError(self.text, self.at if at is None else at, expected)

    def peek(self) -> str:
        return self.text[self.at] if self.at < len(self.text) else ""

    def skip_spaces(self) -> None:
        while self.peek() in (" ", "\t"):
            self.at += 1

    def accept(self, char: str) -> bool:
        if self.peek() and self.peek() in char:
            self.at += 1
            return True
        return False

    def expect(self, char: str, expected: str | None = None) -> None:
        if not self.accept(char):
            raise self.fail(expected or repr(char))

    def number(self, expected: str, signed: bool = False, fraction: bool = True) -> float:
        start = self.at
        if signed:
            self.accept("+-")
        digits = self.at
        while self.peek().isdigit():
            self.at += 1
        whole = self.at > digits
        decimals = False
        if fraction and self.peek() == ".":
            self.at += 1
            mark = self.at
            while self.peek().isdigit():
                self.at += 1
            decimals = self.at > mark
            if not decimals:
                raise self.fail("a digit after the decimal point")
        if not (whole or decimals):
            raise self.fail(expected, start if self.at == start else self.at)
        return float(self.text[start:self.at])

    def at_end(self) -> bool:
        return self.at >= len(self.text)


def _checked(scanner: _Scanner, at: int, expected: str, build: Callable[[], _T]) -> _T:
    """Run a constructor; its ValueError becomes a ToneSpecError pointing at `at`."""
    try:
        return build()
    except ToneSpecError:
        raise
    except ValueError as error:
        raise scanner.fail(f"{expected} ({error})", at) from None


def _component(scanner: _Scanner, frequency: float, level: float, at: int) -> Component:
    def build() -> Component:
        _check_components(((frequency, level),), allow_silence=False)
        return (frequency, level)
    return _checked(scanner, at, "a frequency and level in range", build)


# --- Grandstream -----------------------------------------------------------------------------


def parse_grandstream(text: str) -> Tone:
    """`f1=350@-13,f2=440@-13,c=0/0;`: f1..f4 as Hz[@dBm0], c= up to 3 on/off pairs in 10 ms."""
    scanner = _Scanner(text)
    components: dict[int, Component] = {}
    cadence: tuple[tuple[float, float], ...] | None = None
    scanner.skip_spaces()
    while True:
        item_at = scanner.at
        if scanner.accept("fF"):
            index_at = scanner.at
            if not scanner.accept("1234"):
                raise scanner.fail("a component number 1..4 after 'f'")
            index = int(text[index_at])
            if index in components:
                raise scanner.fail(f"each of f1..f4 once (f{index} is repeated)", item_at)
            scanner.expect("=")
            at = scanner.at
            frequency = scanner.number("a frequency in Hz")
            level = GRANDSTREAM_DEFAULT_LEVEL_DBM0
            if scanner.accept("@"):
                level = scanner.number("a level in dBm0", signed=True)
            components[index] = _component(scanner, frequency, level, at)
        elif scanner.accept("cC"):
            if cadence is not None:
                raise scanner.fail("one cadence (c= is repeated)", item_at)
            scanner.expect("=")
            cadence = _grandstream_cadence(scanner)
        else:
            raise scanner.fail("'f1=' .. 'f4=' or 'c='")
        scanner.skip_spaces()
        if scanner.accept(","):
            scanner.skip_spaces()
            continue
        if scanner.accept(";"):
            scanner.skip_spaces()
        if not scanner.at_end():
            raise scanner.fail("',' or ';' or the end")
        break
    if not components:
        raise scanner.fail("at least one frequency (f1=)", 0)
    if sorted(components) != list(range(1, len(components) + 1)):
        raise scanner.fail("frequencies numbered f1, f2, ... without gaps", 0)
    ordered = tuple(components[index] for index in sorted(components))
    return Tone(ordered, cadence or ())


def _grandstream_cadence(scanner: _Scanner) -> tuple[tuple[float, float], ...]:
    pairs: list[tuple[float, float]] = []
    start = scanner.at
    while True:
        on_at = scanner.at
        on = scanner.number("an on time (in 10 ms units)", fraction=False)
        scanner.expect("/", "'/' between on and off times")
        off = scanner.number("an off time (in 10 ms units)", fraction=False)
        pairs.append((on, off))
        if on == 0 and off != 0:
            raise scanner.fail("an on time above 0 (0/0 alone means continuous)", on_at)
        if not scanner.accept("-"):
            break
        if len(pairs) == 3:
            raise scanner.fail("at most 3 on/off pairs", scanner.at - 1)
    if pairs == [(0, 0)]:
        return ()
    if any(on == 0 for on, _ in pairs):
        raise scanner.fail("0/0 only as the whole cadence (continuous)", start)
    return tuple((on / GRANDSTREAM_UNITS_PER_S, off / GRANDSTREAM_UNITS_PER_S)
                 for on, off in pairs)


def format_grandstream(tone: Tone) -> str:
    """The Grandstream string for a repeating `Tone` whose cadence fits 3 pairs on a 10 ms grid."""
    if not tone.repeat:
        raise ValueError("the Grandstream syntax has no play-once tones")
    if len(tone.cadence) > 3:
        raise ValueError("the Grandstream syntax holds at most 3 on/off pairs")
    parts = [f"f{index}={_number(frequency)}@{_number(level)}"
             for index, (frequency, level) in enumerate(tone.components, 1)]
    if tone.cadence:
        pairs = "-".join(f"{_tens_of_ms(on)}/{_tens_of_ms(off)}" for on, off in tone.cadence)
    else:
        pairs = "0/0"
    parts.append(f"c={pairs}")
    return ",".join(parts) + ";"


def _tens_of_ms(seconds: float) -> str:
    units = round(seconds * GRANDSTREAM_UNITS_PER_S)
    if not math.isclose(units / GRANDSTREAM_UNITS_PER_S, seconds, abs_tol=1e-9):
        raise ValueError(f"{seconds} s is not a multiple of 10 ms")
    return str(units)


def _number(value: float) -> str:
    """Shortest decimal that reads back as the same float (350, -13, -6.02)."""
    return str(int(value)) if value == int(value) else repr(value)


# --- Cisco ToneScript --------------------------------------------------------------------------


def parse_tonescript(text: str) -> ToneSequence:
    """`F1@L1[,F2@L2..F6@L6];D1(on/off/f[,..6])[;D2(..)]`: seconds, `*` = forever, f = 1+2 or 0."""
    scanner = _Scanner(text)
    frequencies: list[Component] = []
    scanner.skip_spaces()
    while True:
        at = scanner.at
        frequency = scanner.number("a frequency in Hz", fraction=False)
        scanner.expect("@", "'@' and a level after the frequency")
        level = scanner.number("a level in dBm", signed=True)
        frequencies.append(_component(scanner, frequency, level, at))
        scanner.skip_spaces()
        if not scanner.accept(","):
            break
        if len(frequencies) == TONESCRIPT_MAX_FREQUENCIES:
            raise scanner.fail(f"at most {TONESCRIPT_MAX_FREQUENCIES} frequencies", scanner.at - 1)
        scanner.skip_spaces()
    scanner.expect(";", "';' and a cadence section after the frequencies")
    sections: list[ToneSection] = []
    while True:
        sections.append(_tonescript_section(scanner, frequencies))
        if not scanner.accept(";"):
            break
        if len(sections) == TONESCRIPT_MAX_SECTIONS:
            raise scanner.fail(f"at most {TONESCRIPT_MAX_SECTIONS} cadence sections",
                               scanner.at - 1)
        if scanner.at_end():
            break  # a trailing ';' is harmless
    if not scanner.at_end():
        raise scanner.fail("';' and another cadence section, or the end")
    return _checked(scanner, 0, "a playable sequence",
                    lambda: ToneSequence(tuple(sections)))


def _duration(scanner: _Scanner, expected: str) -> float | None:
    if scanner.accept("*"):
        return None
    return scanner.number(expected)


def _tonescript_section(scanner: _Scanner, frequencies: list[Component]) -> ToneSection:
    at = scanner.at
    duration = _duration(scanner, "a section duration in seconds or '*'")
    if duration == 0:
        raise scanner.fail("a section duration above 0", at)
    scanner.expect("(", "'(' opening the cadence segments")
    steps: list[ToneStep] = []
    segments = 0
    while True:
        segment_at = scanner.at
        on = _duration(scanner, "an on time in seconds or '*'")
        scanner.expect("/", "'/' after the on time")
        off_at = scanner.at
        off = _duration(scanner, "an off time in seconds or '*'")
        scanner.expect("/", "'/' after the off time")
        used = _tonescript_components(scanner, frequencies)
        segments += 1
        if on is None and off not in (0, None):
            raise scanner.fail("an off time of 0 after an endless on time", off_at)
        if used and on != 0:
            steps.append(ToneStep(used, on))
        elif on not in (0, None) or (on is None and not used):
            steps.append(ToneStep((), on))  # an "on" part with no frequencies is silence
        if off is None or off > 0:
            steps.append(ToneStep((), off))
        if any(step.duration_s is None for step in steps[:-1]):
            raise scanner.fail("nothing after an endless ('*') segment", segment_at)
        if not scanner.accept(","):
            break
        if segments == TONESCRIPT_MAX_SEGMENTS:
            raise scanner.fail(f"at most {TONESCRIPT_MAX_SEGMENTS} segments in a section",
                               scanner.at - 1)
    scanner.expect(")", "',' and another segment, or ')'")
    if not steps:
        raise scanner.fail("a section that lasts longer than 0 s", at)
    return _checked(scanner, at, "a valid section", lambda: ToneSection(tuple(steps), duration))


def _tonescript_components(scanner: _Scanner, frequencies: list[Component]
                           ) -> tuple[Component, ...]:
    if scanner.accept("0"):
        return ()
    used: list[Component] = []
    indexes: set[int] = set()
    while True:
        index_at = scanner.at
        index = scanner.number(f"a frequency number 1..{len(frequencies)} or 0", fraction=False)
        if not 1 <= index <= len(frequencies) or index in indexes:
            raise scanner.fail(f"an unused frequency number 1..{len(frequencies)}", index_at)
        if len(used) == MAX_COMPONENTS:
            raise scanner.fail(f"at most {MAX_COMPONENTS} frequencies sounding together",
                               index_at)
        indexes.add(int(index))
        used.append(frequencies[int(index) - 1])
        if not scanner.accept("+"):
            break
    return tuple(used)


def format_tonescript(signal: Signal) -> str:
    """The ToneScript for any tone; raises ValueError when it needs more than the syntax holds."""
    sequence = signal.sequence()
    if len(sequence.sections) > TONESCRIPT_MAX_SECTIONS:
        raise ValueError(f"ToneScript holds at most {TONESCRIPT_MAX_SECTIONS} sections")
    frequencies: list[Component] = []
    for section in sequence.sections:
        for step in section.steps:
            for component in step.components:
                if component not in frequencies:
                    frequencies.append(component)
    if not frequencies:
        raise ValueError("ToneScript cannot write a tone that is only silence")
    if len(frequencies) > TONESCRIPT_MAX_FREQUENCIES:
        raise ValueError(f"ToneScript holds at most {TONESCRIPT_MAX_FREQUENCIES} frequencies")
    head = ",".join(f"{_number(f)}@{_number(level)}" for f, level in frequencies)
    sections = []
    for section in sequence.sections:
        segments = _segments(section.steps)
        if len(segments) > TONESCRIPT_MAX_SEGMENTS:
            raise ValueError(f"ToneScript holds at most {TONESCRIPT_MAX_SEGMENTS} segments")
        body = ",".join(
            f"{_seconds(on)}/{_seconds(off)}/"
            + ("+".join(str(frequencies.index(c) + 1) for c in used) or "0")
            for on, off, used in segments)
        sections.append(f"{_seconds(section.duration_s)}({body})")
    return ";".join([head, *sections])


def _segments(steps: tuple[ToneStep, ...]
              ) -> list[tuple[float | None, float | None, tuple[Component, ...]]]:
    """Pair each sounding step with the silence after it (the on/off/f shape of ToneScript)."""
    segments: list[tuple[float | None, float | None, tuple[Component, ...]]] = []
    index = 0
    while index < len(steps):
        step = steps[index]
        if not step.components:
            segments.append((0, step.duration_s, ()))
            index += 1
            continue
        following = steps[index + 1] if index + 1 < len(steps) else None
        if following is not None and not following.components and step.duration_s is not None:
            segments.append((step.duration_s, following.duration_s, step.components))
            index += 2
        else:
            segments.append((step.duration_s, 0, step.components))
            index += 1
    return segments


def _seconds(value: float | None) -> str:
    if value is None:
        return "*"
    text = _number(value)
    return text[1:] if text.startswith("0.") else text
