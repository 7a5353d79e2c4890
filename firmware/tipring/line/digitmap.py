"""Digit maps: when the number a user is dialling is complete, and what to send for it.

An ATA has no "call" button: it decides from the digits so far and two inter-digit timers
whether to wait (PARTIAL), place the call now (COMPLETE, with the number rewritten by the map),
or play reorder (INVALID, or BARRED by a `!` rule). The syntax is the Cisco SPA dial plan
(SPA112/SPA2102 admin guides), which most ATA users and providers already have written down; the
Grandstream HT80x form (`{ x+ | <=1617>xxxxxxx }`) is read by a second front end into the same
rules. Emergency numbers are checked before the map and are never barred or delayed.

Cisco syntax, as implemented:
  keys `0-9 * # A-D`, `x` any of 0-9, `[...]` a set with ranges (`[2-9]`, `[^1]` = 0-9 but 1),
  `.` the previous element zero or more times, `<dialled:sent>` substitution (either side may be
  empty), `,` outside-line dial tone, `!` at the end bars the rule, `S<n>`/`L<n>` short/long
  inter-digit timer from that point of the rule, `P<n>` at the start of a rule: off-hook (warm
  line) timer, `L:<n>,` / `S:<n>,` before the plan: map-wide timers. Spaces are ignored.
The FXS state machine calls `match(digits)` after each digit, arms the returned timer, and calls
`expire(digits)` when it fires; `#` (the send key) ends dialling like a timer expiry.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

DEFAULT_LONG_TIMER_S = 10.0  # Cisco SPA Interdigit_Long_Timer default
DEFAULT_SHORT_TIMER_S = 3.0  # Cisco SPA Interdigit_Short_Timer default
DEFAULT_OVERRIDE_S = 5.0  # "S", "L:" or "P" written without a number (Cisco admin guides)
DIGITS = frozenset("0123456789")
KEYS = frozenset("0123456789*#ABCD")
SENT_CHARACTERS = frozenset("0123456789*#+ABCDabcd")


class DigitMapError(ValueError):
    """A dial plan was refused: `position` is the 0-based index of the offending character."""

    def __init__(self, text: str, position: int, expected: str) -> None:
        self.text = text
        self.position = position
        self.expected = expected
        found = repr(text[position]) if position < len(text) else "end of text"
        super().__init__(f"dial plan {text!r}: at position {position} expected {expected}, "
                         f"found {found}")


class Outcome(enum.Enum):
    COMPLETE = "complete"  # place the call to `Match.number` now
    PARTIAL = "partial"  # wait for another digit, at most `Match.timeout_s`
    INVALID = "invalid"  # no rule can match: reorder tone
    BARRED = "barred"  # a `!` rule matched: reorder tone


class InterDigitTimer(enum.Enum):
    LONG = "long"  # no rule is complete yet: the user is still dialling
    SHORT = "short"  # a rule is complete but a longer one may still match


@dataclass(frozen=True)
class Match:
    """What the digits dialled so far mean."""

    outcome: Outcome
    number: str | None = None  # COMPLETE: what to send
    rule: str | None = None  # the rule (its text) that decided COMPLETE or BARRED
    timer: InterDigitTimer | None = None  # PARTIAL: which timer to arm
    timeout_s: float | None = None  # PARTIAL: its length
    dial_tone: bool = False  # PARTIAL: a rule asks for outside-line dial tone here (`,`)
    emergency: bool = False

    def deadline(self, now: float) -> float | None:
        """When to call `DigitMap.expire` if no digit arrives (None: nothing to wait for)."""
        return None if self.timeout_s is None else now + self.timeout_s


@dataclass(frozen=True)
class WarmLine:
    """Dial `number` when the phone is off hook for `delay_s` with no digit (a hot line at 0)."""

    delay_s: float
    number: str | None  # None: just the off-hook timer (reorder when it fires)


# --- compiled form ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Keys:
    keys: frozenset[str]
    repeat: bool = False  # followed by `.`
    sent: bool = True  # False inside the dialled side of `<dialled:sent>`


@dataclass(frozen=True)
class _Insert:
    text: str


@dataclass(frozen=True)
class _Timer:
    timer: InterDigitTimer
    seconds: float


@dataclass(frozen=True)
class _Comma:
    pass


_Element = _Keys | _Insert | _Timer | _Comma


@dataclass(frozen=True)
class _Rule:
    text: str
    elements: tuple[_Element, ...]
    barred: bool
    pause_s: float | None = None  # leading `P<n>`


@dataclass(frozen=True)
class _End:
    """One way a rule can have consumed all the digits."""

    index: int
    sent: str
    short_s: float | None
    long_s: float | None
    comma: bool


def _ends(rule: _Rule, dialled: str) -> list[_End]:
    """Every state a rule can be in after consuming all of `dialled` (depth first, first found
    first, so the output of the most literal path wins)."""
    elements = rule.elements
    found: list[_End] = []
    stack = [(0, 0, "", None, None, False)]
    seen: set[tuple[int, int, str, float | None, float | None, bool]] = set()
    while stack:
        state = stack.pop()
        if state in seen:
            continue
        seen.add(state)
        index, at, sent, short_s, long_s, comma = state
        if at == len(dialled):
            found.append(_End(index, sent, short_s, long_s, comma))
        if index == len(elements):
            continue
        element = elements[index]
        moves: list[tuple[int, int, str, float | None, float | None, bool]] = []
        if isinstance(element, _Insert):
            moves.append((index + 1, at, sent + element.text, short_s, long_s, comma))
        elif isinstance(element, _Timer):
            if element.timer is InterDigitTimer.SHORT:
                moves.append((index + 1, at, sent, element.seconds, long_s, comma))
            else:
                moves.append((index + 1, at, sent, short_s, element.seconds, comma))
        elif isinstance(element, _Comma):
            moves.append((index + 1, at, sent, short_s, long_s, True))
        else:
            if element.repeat:
                moves.append((index + 1, at, sent, short_s, long_s, comma))
            if at < len(dialled) and dialled[at] in element.keys:
                key = dialled[at] if element.sent else ""
                moves.append((index if element.repeat else index + 1, at + 1, sent + key,
                              short_s, long_s, False))
        stack.extend(reversed(moves))
    return found


class DigitMap:
    """A compiled dial plan. Build with `DigitMap.compile`."""

    def __init__(self, text: str, rules: tuple[_Rule, ...], emergency: tuple[str, ...],
                 long_timer_s: float, short_timer_s: float, send_key: str | None,
                 features: tuple[_Rule, ...] = ()) -> None:
        self.text = text
        self.rules = rules
        self.features = features
        self.emergency = emergency
        self.long_timer_s = long_timer_s
        self.short_timer_s = short_timer_s
        self.send_key = send_key

    @classmethod
    def compile(cls, text: str, emergency: tuple[str, ...] = ("911",), *,
                long_timer_s: float = DEFAULT_LONG_TIMER_S,
                short_timer_s: float = DEFAULT_SHORT_TIMER_S,
                send_key: str | None = "#", features: tuple[str, ...] = ()) -> DigitMap:
        """Compile a Cisco plan, or a Grandstream one (text starting with `{`).

        `emergency` numbers always COMPLETE as dialled; `send_key` ends dialling (None: it is an
        ordinary key). Map-wide `L:`/`S:` settings in the text override the timer arguments.
        `features` are the device's star codes as Cisco rules (`*78`, `*72x.`): they apply
        whatever the plan says, and one dialled in full completes at once even where the plan
        could still take more digits (`*x.`), so `*78` does not wait for a timer.
        """
        for number in emergency:
            if not number or any(key not in KEYS for key in number):
                raise ValueError(f"emergency number {number!r} must be dialable keys")
        if send_key is not None and send_key not in KEYS:
            raise ValueError(f"send key {send_key!r} is not a telephone key")
        if text.strip().startswith("{"):
            rules = _GrandstreamParser(text).plan()
            long_s, short_s = long_timer_s, short_timer_s
        else:
            rules, long_set, short_set = _CiscoParser(text).plan()
            long_s = long_timer_s if long_set is None else long_set
            short_s = short_timer_s if short_set is None else short_set
        feature_rules = _CiscoParser(f"({'|'.join(features)})").plan()[0] if features else ()
        return cls(text, rules, tuple(emergency), long_s, short_s, send_key, feature_rules)

    # -- properties the FXS state machine reads at off-hook --

    @property
    def warm_line(self) -> WarmLine | None:
        """The first `P<n>` rule: what to do after n seconds off hook without a digit."""
        for rule in self.rules:
            if rule.pause_s is not None:
                ends = [end for end in _ends(rule, "") if end.index == len(rule.elements)]
                number = ends[0].sent if ends else None
                return WarmLine(rule.pause_s, number or None)
        return None

    @property
    def hot_line(self) -> str | None:
        """The number to dial the moment the phone goes off hook (`( S0 <:1234> )`), if any."""
        warm = self.warm_line
        if warm is not None and warm.delay_s == 0:
            return warm.number
        result = self.match("")
        return result.number if result.outcome is Outcome.COMPLETE else None

    # -- matching --

    def match(self, dialled: str) -> Match:
        """Classify the digits so far (a trailing send key ends dialling)."""
        if dialled in self.emergency:
            return Match(Outcome.COMPLETE, number=dialled, rule=dialled, emergency=True)
        feature = self._classify(dialled, final=False, rules=self.features)
        if feature.outcome is Outcome.COMPLETE:
            return feature
        result = self._classify(dialled, final=False)
        if feature.outcome is Outcome.PARTIAL and result.outcome is Outcome.INVALID:
            result = feature
        if (self.send_key is not None and dialled.endswith(self.send_key)
                and result.outcome is Outcome.INVALID):
            return self.expire(dialled[:-1])
        if result.timeout_s == 0 and not self._emergency_prefix(dialled):
            return self.expire(dialled)  # S0: no reason to wait
        if (result.outcome is not Outcome.PARTIAL or result.timeout_s == 0) and \
                self._emergency_prefix(dialled):
            # Never stop (or reject) someone half way through an emergency number: wait as for
            # any other rule that could still grow (short if the map had a complete number).
            if result.outcome is Outcome.COMPLETE or result.timer is InterDigitTimer.SHORT:
                return Match(Outcome.PARTIAL, timer=InterDigitTimer.SHORT,
                             timeout_s=self.short_timer_s or self.long_timer_s)
            return Match(Outcome.PARTIAL, timer=InterDigitTimer.LONG, timeout_s=self.long_timer_s)
        return result

    def expire(self, dialled: str) -> Match:
        """The inter-digit timer fired (or the send key was pressed): decide with what we have."""
        if dialled in self.emergency:
            return Match(Outcome.COMPLETE, number=dialled, rule=dialled, emergency=True)
        feature = self._classify(dialled, final=True, rules=self.features)
        if feature.outcome is Outcome.COMPLETE:
            return feature
        return self._classify(dialled, final=True)

    def _emergency_prefix(self, dialled: str) -> bool:
        return dialled != "" and any(
            len(dialled) < len(n) and n.startswith(dialled) for n in self.emergency)

    def _classify(self, dialled: str, final: bool,
                  rules: tuple[_Rule, ...] | None = None) -> Match:
        complete: tuple[_Rule, _End] | None = None
        short_s: float | None = None
        long_s: float | None = None
        dial_tone = False
        more = False
        for rule in self.rules if rules is None else rules:
            if rule.pause_s is not None and not (final and dialled == ""):
                continue  # a P rule only fires from the off-hook timer
            for end in _ends(rule, dialled):
                if end.index == len(rule.elements):
                    if complete is None:
                        complete = (rule, end)
                    rule_short = self.short_timer_s if end.short_s is None else end.short_s
                    short_s = rule_short if short_s is None else min(short_s, rule_short)
                elif _can_take_key(rule.elements, end.index):
                    more = True
                    rule_long = self.long_timer_s if end.long_s is None else end.long_s
                    long_s = rule_long if long_s is None else max(long_s, rule_long)
                    dial_tone = dial_tone or end.comma
        if more and not final:
            if complete is not None:
                return Match(Outcome.PARTIAL, timer=InterDigitTimer.SHORT, timeout_s=short_s,
                             dial_tone=dial_tone)
            return Match(Outcome.PARTIAL, timer=InterDigitTimer.LONG, timeout_s=long_s,
                         dial_tone=dial_tone)
        if complete is None:
            return Match(Outcome.INVALID)
        rule, end = complete
        if rule.barred:
            return Match(Outcome.BARRED, rule=rule.text)
        return Match(Outcome.COMPLETE, number=end.sent, rule=rule.text)


def _can_take_key(elements: tuple[_Element, ...], index: int) -> bool:
    """Whether some key element is reachable from `index` through zero-width elements."""
    return any(isinstance(element, _Keys) for element in elements[index:])


# --- Cisco front end ----------------------------------------------------------------------------


class _CiscoParser:
    """Recursive descent over the Cisco SPA dial plan syntax."""

    element_hint = ("a key (0-9 * # A-D), x, [set], <substitution>, '.', ',', '!', "
                    "S/L/P timer, '|' or ')'")

    def __init__(self, text: str) -> None:
        self.text = text
        self.at = 0

    def fail(self, expected: str, at: int | None = None) -> DigitMapError:
        return DigitMapError(self.text, self.at if at is None else at, expected)

    def peek(self) -> str:
        self.skip_spaces()
        return self.text[self.at] if self.at < len(self.text) else ""

    def skip_spaces(self) -> None:
        while self.at < len(self.text) and self.text[self.at] in " \t\r\n":
            self.at += 1

    def seconds(self, what: str) -> float:
        """A timer value; none at all means the documented default of 5 s ("S", "L:", "P")."""
        start = self.at
        while self.at < len(self.text) and (self.text[self.at].isdigit()
                                            or self.text[self.at] == "."):
            self.at += 1
        if self.at == start:
            return DEFAULT_OVERRIDE_S
        try:
            return float(self.text[start:self.at])
        except ValueError:
            raise self.fail(f"the {what} in seconds", start) from None

    def plan(self) -> tuple[tuple[_Rule, ...], float | None, float | None]:
        long_s: float | None = None
        short_s: float | None = None
        while self.peek() in ("L", "S", "l", "s") and self.text[self.at + 1:self.at + 2] == ":":
            letter = self.text[self.at].upper()
            self.at += 2
            self.skip_spaces()
            value = self.seconds("long timer" if letter == "L" else "short timer")
            if letter == "L":
                long_s = value
            else:
                short_s = value
            if self.peek() != ",":
                raise self.fail("',' after the timer setting")
            self.at += 1
        bracketed = self.peek() == "("
        if bracketed:
            self.at += 1
        rules = [self.rule()]
        while self.peek() == "|":
            self.at += 1
            rules.append(self.rule())
        if bracketed:
            if self.peek() != ")":
                raise self.fail("'|' and another rule, or ')'")
            self.at += 1
        if self.peek():
            raise self.fail("'|' and another rule, or the end" if not bracketed else "the end")
        return tuple(rules), long_s, short_s

    def rule(self) -> _Rule:
        self.skip_spaces()
        start = self.at
        elements: list[_Element] = []
        pause_s: float | None = None
        barred = False
        while True:
            char = self.peek()
            here = self.at
            if char in ("", "|", ")"):
                break
            if barred:
                raise self.fail("'!' only at the end of a rule", here - 1)
            if char == "!":
                barred = True
                self.at += 1
            elif char in ("P", "p"):
                if elements or pause_s is not None:
                    raise self.fail("P (the off-hook timer) only at the start of a rule")
                self.at += 1
                pause_s = self.seconds("pause")
            elif char in ("S", "s", "L", "l"):
                self.at += 1
                timer = InterDigitTimer.SHORT if char in "Ss" else InterDigitTimer.LONG
                elements.append(_Timer(timer, self.seconds("timer value")))
            elif char == ",":
                self.at += 1
                elements.append(_Comma())
            elif char == ".":
                self.repeat_previous(elements, here)
            elif char == "<":
                self.at += 1
                elements.extend(self.substitution())
            else:
                elements.append(_Keys(self.key_set()))
        text = self.text[start:self.at].strip()
        if not elements and pause_s is None and not barred:
            raise self.fail("a rule (keys, x, [set], <:number>...)", start)
        return _Rule(text, tuple(elements), barred, pause_s)

    def repeat_previous(self, elements: list[_Element], here: int) -> None:
        previous = elements[-1] if elements else None
        if not isinstance(previous, _Keys) or previous.repeat:
            raise self.fail("a key, x or [set] before '.'", here)
        elements[-1] = _Keys(previous.keys, True, previous.sent)
        self.at += 1

    def key_set(self) -> frozenset[str]:
        char = self.peek()
        if char in ("x", "X"):
            self.at += 1
            return DIGITS
        if char == "[":
            return self.bracket()
        if char.upper() in KEYS:
            self.at += 1
            return frozenset(char.upper())
        raise self.fail(self.element_hint)

    def bracket(self) -> frozenset[str]:
        open_at = self.at
        self.at += 1
        negate = self.text[self.at:self.at + 1] == "^"
        if negate:
            self.at += 1
        keys: set[str] = set()
        while True:
            char = self.peek()
            if char == "]":
                self.at += 1
                break
            if not char:
                raise self.fail("']' closing the set opened", open_at)
            if char.upper() not in KEYS:
                raise self.fail("a key (0-9 * # A-D), a range like 2-9, or ']'")
            self.at += 1
            if self.text[self.at:self.at + 1] == "-":
                self.at += 1
                end = self.peek()
                if not (char.isdigit() and end.isdigit() and end >= char):
                    raise self.fail(f"a digit from {char} to 9 ending the range")
                self.at += 1
                keys.update(str(d) for d in range(int(char), int(end) + 1))
            else:
                keys.add(char.upper())
        if negate:
            keys = set(DIGITS) - keys
        if not keys:
            raise self.fail("a set that matches some key", open_at)
        return frozenset(keys)

    def substitution(self) -> list[_Element]:
        """`<dialled:sent>`: the dialled part is matched but not sent; `sent` is sent instead."""
        elements: list[_Element] = []
        while self.peek() != ":":
            here = self.at
            char = self.peek()
            if char == "." and elements:
                self.repeat_previous(elements, here)
                continue
            if char in ("", ">", "|", ")"):
                raise self.fail("':' between the dialled and the sent part")
            keys = self.key_set()
            elements.append(_Keys(keys, sent=False))
        self.at += 1
        return self.sent_part(elements, "substitution")

    def sent_part(self, elements: list[_Element], closing: str) -> list[_Element]:
        """After ':' (Cisco) or '=' (Grandstream): the characters sent instead, up to '>'."""
        start = self.at
        while self.peek() != ">":
            char = self.peek()
            if not char:
                raise self.fail(f"'>' closing the {closing}")
            if char not in SENT_CHARACTERS:
                raise self.fail("a digit, * # + or A-D to send, or '>'")
            self.at += 1
        sent = "".join(self.text[start:self.at].split())
        self.at += 1
        if sent:
            elements.append(_Insert(sent))
        return elements


# --- Grandstream front end ----------------------------------------------------------------------


class _GrandstreamParser(_CiscoParser):
    """`{ rule | rule }` with `x+` (one or more), `.` (zero or more), `^` (bar the rule),
    `<dialled=sent>` and `\\+` (a literal +), per the HT80x admin guide."""

    element_hint = "a key (0-9 * # A-D), x, [set], <replacement>, '+', '.', '|' or '}'"

    def plan(self) -> tuple[_Rule, ...]:  # type: ignore[override]
        if self.peek() != "{":
            raise self.fail("'{' opening the dial plan")
        self.at += 1
        rules = [self.rule()]
        while self.peek() == "|":
            self.at += 1
            rules.append(self.rule())
        if self.peek() != "}":
            raise self.fail("'|' and another rule, or '}'")
        self.at += 1
        if self.peek():
            raise self.fail("the end after '}'")
        return tuple(rules)

    def rule(self) -> _Rule:
        self.skip_spaces()
        start = self.at
        barred = self.peek() == "^"
        if barred:
            self.at += 1
        elements: list[_Element] = []
        while True:
            char = self.peek()
            here = self.at
            if char in ("", "|", "}"):
                break
            if char == "+":
                previous = elements[-1] if elements else None
                if not isinstance(previous, _Keys) or previous.repeat:
                    raise self.fail("a key, x or [set] before '+'", here)
                elements.append(_Keys(previous.keys, True, previous.sent))
                self.at += 1
            elif char == ".":
                self.repeat_previous(elements, here)
            elif char == "\\":
                if self.text[self.at + 1:self.at + 2] != "+":
                    raise self.fail("'+' after '\\'", here + 1)
                self.at += 2
                elements.append(_Keys(frozenset("+")))
            elif char == "<":
                self.at += 1
                elements.extend(self.replacement())
            else:
                elements.append(_Keys(self.key_set()))
        if not elements:
            raise self.fail("a rule (keys, x, [set], <=prefix>...)", start)
        return _Rule(self.text[start:self.at].strip(), tuple(elements), barred)

    def replacement(self) -> list[_Element]:
        """`<2=011>`: dialled keys (literal) replaced by the sent ones; either side may be empty."""
        elements: list[_Element] = []
        while self.peek() != "=":
            char = self.peek()
            if char in ("", ">"):
                raise self.fail("'=' between the dialled and the sent part")
            elements.append(_Keys(self.key_set(), sent=False))
        self.at += 1
        return self.sent_part(elements, "replacement")
