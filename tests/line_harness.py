"""Test adapter: runs an `FxsLine` against the sim board on a virtual clock.

It does what the runtime adapter will do on the device: executes the line's commands on the
`SimSlic` (linefeed, ringing), plays tones and caller ID into the `SimAudioPort` one 20 ms period
at a time (tone generator, FSK modulator, DTMF), feeds captured audio through the DSP's DTMF
detector into `FxsLine.dtmf`, hands hook edges to `FxsLine.hook` and calls `FxsLine.timer` at the
line's deadlines. Audio is rendered with sample accuracy inside each period and written one
period late, so the phone hears everything exactly 20 ms after the line asked for it (a playout
buffer's worth, which `LineSettings.playout_delay_s` allows for).
"""

from __future__ import annotations

import math
from array import array
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

from tipring.hal.api import PERIOD_SAMPLES, PERIOD_SECONDS, SAMPLE_RATE, HookEvent
from tipring.hal.sim import SimBoard, create_sim_board
from tipring.hal.simclock import TimerHandle, VirtualClock
from tipring.line.digitmap import DigitMap
from tipring.line.fxs import FxsLine, LineSettings
from tipring.line.regions import profile
from tipring.line.signals import (
    LineCommand,
    LineEvent,
    LineOutput,
    MuteFarEnd,
    PlayTone,
    SendCallerId,
    SetLinefeed,
    StartRing,
    StopRing,
    StopTone,
)
from tipring.media.dsp import (
    DtmfDetector,
    FskModulator,
    FskStandard,
    ToneEventKind,
    ToneGenerator,
    ToneSegment,
    dtmf_segments,
)

T0 = 1000.0


@dataclass
class _Span:
    """A source sounding from `start` until `end` (None: until it is stopped)."""

    start: float
    source: ToneGenerator | FskModulator
    end: float | None = None


@dataclass
class LineHarness:
    region: str = "US"
    digit_map: str = "(xx.)"
    settings: LineSettings | None = None
    clock: VirtualClock = field(default_factory=lambda: VirtualClock(T0))

    def __post_init__(self) -> None:
        self.profile = profile(self.region)
        self.board: SimBoard = create_sim_board(1, self.clock)
        port = self.board.lines[0]
        self.slic, self.audio, self.handset = port.slic, port.audio, self.board.handsets[0]
        self.line = FxsLine(self.profile,
                            DigitMap.compile(self.digit_map, self.profile.emergency_numbers),
                            self.settings)
        self.events: list[tuple[float, LineEvent]] = []
        self.commands: list[tuple[float, LineCommand]] = []
        self.muted = False
        self._pending: deque[LineOutput] = deque()
        self._draining = False
        self._timer: TimerHandle | None = None
        self._spans: list[_Span] = []
        self._detector = DtmfDetector()
        self.slic.on_hook_event = lambda ev: self.apply(self.line.hook(ev.off_hook, ev.at))
        self.audio.start()
        self.audio_t0 = self.clock.now()

    def close(self) -> None:
        self.board.close()

    def record_hook_events(self) -> list[HookEvent]:
        """From now on, keep every hook edge the SLIC reports (and still hand it to the line)."""
        seen: list[HookEvent] = []

        def on_hook_event(event: HookEvent) -> None:
            seen.append(event)
            self.apply(self.line.hook(event.off_hook, event.at))

        self.slic.on_hook_event = on_hook_event
        return seen

    # -- driving --------------------------------------------------------------------------------

    def apply(self, outputs: list[LineOutput]) -> None:
        """Execute commands, record events, re-arm the line's timer (re-entrant safe)."""
        self._pending.extend(outputs)
        if self._draining:
            return
        self._draining = True
        try:
            while self._pending:
                output = self._pending.popleft()
                now = self.clock.now()
                if isinstance(output, LineEvent):
                    self.events.append((now, output))
                else:
                    self.commands.append((now, output))
                    self._execute(output, now)
        finally:
            self._draining = False
        self._arm()

    def _arm(self) -> None:
        if self._timer is not None:
            self.clock.cancel(self._timer)
            self._timer = None
        deadline = self.line.next_deadline()
        if deadline is not None:
            self._timer = self.clock.call_at(max(deadline, self.clock.now()), self._fire)

    def _fire(self) -> None:
        self._timer = None
        self.apply(self.line.timer(self.clock.now()))

    def run(self, seconds: float) -> None:
        self.run_until(self.clock.now() + seconds)

    def run_until(self, t: float) -> None:
        """Advance the clock period by period to `t` (rounded up to a period boundary)."""
        while self.clock.now() < t - 1e-9:
            self._period()

    def _period(self) -> None:
        start = self.clock.now()
        captured = self.audio.read()  # moves the clock to the end of this period
        for event in self._detector.feed(captured):
            if event.kind is ToneEventKind.DIGIT_START:
                at = self.audio_t0 + event.at / SAMPLE_RATE
                self.apply(self.line.dtmf(event.digit, at))
        self.audio.write(self._render(start))

    # -- the line's audio -------------------------------------------------------------------------

    def _execute(self, command: LineCommand, now: float) -> None:
        if isinstance(command, SetLinefeed):
            self.slic.set_linefeed(command.state)
        elif isinstance(command, StartRing):
            self.slic.ring(command.cadence)
        elif isinstance(command, StopRing):
            self.slic.stop_ring()
        elif isinstance(command, StopTone):
            self._stop_sources(now)
        elif isinstance(command, PlayTone):
            generator = ToneGenerator()
            segments = [ToneSegment(s.components, s.on_s, s.off_s) for s in command.plan.segments]
            generator.start(segments, command.plan.repeat_from)
            self._play(generator, now)
        elif isinstance(command, SendCallerId):
            self._play(_caller_id_source(command), now)
        elif isinstance(command, MuteFarEnd):
            self.muted = command.muted

    def _stop_sources(self, now: float) -> None:
        for span in self._spans:
            if span.end is None or span.end > now:
                span.end = now

    def _play(self, source: ToneGenerator | FskModulator, now: float) -> None:
        self._stop_sources(now)
        self._spans.append(_Span(now, source))

    def _render(self, start: float) -> bytes:
        out = array("h", bytes(2 * PERIOD_SAMPLES))
        end = start + PERIOD_SECONDS
        for span in self._spans:
            first = max(0, round((span.start - start) * SAMPLE_RATE))
            last = PERIOD_SAMPLES if span.end is None else min(
                PERIOD_SAMPLES, round((span.end - start) * SAMPLE_RATE))
            if first >= PERIOD_SAMPLES or last <= first:
                continue
            chunk = array("h", bytes(2 * (last - first)))
            span.source.generate(chunk)
            for i, value in enumerate(chunk):
                out[first + i] = max(-32768, min(32767, out[first + i] + value))
        self._spans = [s for s in self._spans if s.end is None or s.end > end]
        return out.tobytes()

    # -- what tests look at -----------------------------------------------------------------------

    def period_at_or_after(self, t: float) -> float:
        """Start of the first played period that begins at or after `t`: pass it as `since` to
        `heard`/`caller_id_audio` and sample i of the result is at that time + i / 8000 s.
        (Playout runs the port's playout lead behind its capture periods.)"""
        first = self.audio_t0 + self.audio.playout_lead
        k = max(0, math.ceil((t - first) / PERIOD_SECONDS - 1e-6))
        return first + k * PERIOD_SECONDS

    def of(self, kind: type) -> list[tuple[float, object]]:
        """Recorded (time, event or command) of one type, in order."""
        return [(t, o) for t, o in self.events + self.commands if isinstance(o, kind)]


def harness_list() -> Iterator[list[LineHarness]]:
    """Body of a `harnesses` fixture: tests append harnesses, which are closed afterwards
    (`harnesses = pytest.fixture(harness_list, name="harnesses")` in a test module)."""
    made: list[LineHarness] = []
    yield made
    for h in made:
        h.close()


def _caller_id_source(command: SendCallerId) -> ToneGenerator | FskModulator:
    if command.kind == "dtmf":
        generator = ToneGenerator()
        generator.start(dtmf_segments(str(command.payload), command.dtmf_on_s, command.dtmf_off_s),
                        repeat_from=None)
        return generator
    modulator = FskModulator()
    standard = FskStandard.BELL202 if command.kind == "fsk-bell202" else FskStandard.V23
    payload = command.payload if isinstance(command.payload, bytes) else command.payload.encode()
    modulator.start(payload, standard, seizure_bits=command.seizure_bits,
                    mark_bits=command.mark_bits)
    return modulator


def samples(data: bytes) -> array:
    out = array("h")
    out.frombytes(data)
    return out


def goertzel_dbm0(pcm: array, frequency: float) -> float:
    """Level (dBm0) of `frequency` in `pcm`: an independent check of what the phone heard."""
    n = len(pcm)
    if n == 0:
        return -100.0
    w = 2 * math.pi * frequency / SAMPLE_RATE
    coeff = 2 * math.cos(w)
    s1 = s2 = 0.0
    for x in pcm:
        s0 = x + coeff * s1 - s2
        s2, s1 = s1, s0
    power = s1 * s1 + s2 * s2 - coeff * s1 * s2
    amplitude = 2 * math.sqrt(max(power, 0.0)) / n
    full_scale = 32768 * 10 ** (-3.14 / 20)
    return 20 * math.log10(max(amplitude, 1e-9) / full_scale)


def first_loud_sample(pcm: array, threshold: int = 500) -> int | None:
    for i, x in enumerate(pcm):
        if abs(x) > threshold:
            return i
    return None


def last_loud_sample(pcm: array, threshold: int = 500) -> int | None:
    for i in range(len(pcm) - 1, -1, -1):
        if abs(pcm[i]) > threshold:
            return i
    return None
