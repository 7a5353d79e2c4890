"""ITU-T G.1050 (2007) Appendix II IP network model: per-packet delays and losses for jitter traces.

Why a model of our own: Debian's libspandsp-dev ships spandsp's g1050.h, but the code behind it
lives in spandsp-sim, which Debian does not build, so the bench cannot call g1050_init. This module
follows the algorithm the Recommendation states (Appendix II) with its parameter tables (severity
models A..H, a few link speed patterns), driven by a seeded random.Random so traces repeat.

The path is five segments: LAN A, access link A, core, access link B, LAN B. Each segment has a
delay and a loss flag per 1 ms time slice; a packet takes the values of the slice in which it
enters the segment. LAN and access links keep packets in order (a packet cannot leave before the
one ahead of it); the standard models allow no reordering in the core either (0 % out of sequence).
- LAN: serialisation delay + uniform jitter up to its peak; a Gilbert-Elliott two-state
  (low/high loss) chain; in the high state an impulse (uniform up to the MTU's bit time scaled by
  occupancy) with probability 0.5, unfiltered, and loss with probability 0.000025 x occupancy.
- Access link: as the LAN, but impulses come in both states (the low state's are smaller and rarer)
  and pass a one-pole filter (A = 0.25 per packet interval), so congestion builds and drains like
  a router queue; loss in the high state 0.0005 x occupancy.
- Core: base delay + uniform jitter, per-packet loss, route flaps (the base delay toggles by the
  flap delay every flap interval) and link failures (everything lost for the failure duration
  every failure interval); the first flap and failure fall at a random point of their interval.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

SLICE = 0.001  # seconds: the model's time step


@dataclass(frozen=True)
class Segment:
    occupancy: float  # percent
    mtu: int  # bytes
    peak_jitter: float  # seconds


@dataclass(frozen=True)
class Core:
    delay: float  # regional base delay, seconds
    loss: float  # percent
    jitter: float  # peak, seconds
    flap_interval: float  # seconds (0: no flaps)
    flap_delay: float  # seconds
    failure_interval: float  # seconds (0: no failures)
    failure_duration: float  # seconds


@dataclass(frozen=True)
class Model:
    lan: Segment  # both LANs share the severity's figures
    access: Segment
    core: Core


# G.1050 severity levels A (lightest) .. G, both sides alike (H, the heaviest, also reorders 1 % of
# packets in the core, which this model does not do, so it is left out).
MODELS: dict[str, Model] = {
    "A": Model(Segment(1, 1508, 0.0015), Segment(0, 512, 0), Core(0.004, 0, 0.005, 0, 0, 0, 0)),
    "B": Model(Segment(2, 1508, 0.0015), Segment(1, 512, 0),
               Core(0.008, 0.01, 0.010, 3600, 0.002, 3600, 0.064)),
    "C": Model(Segment(3, 1508, 0.0015), Segment(2, 1508, 0),
               Core(0.016, 0.02, 0.016, 1800, 0.004, 1800, 0.128)),
    "D": Model(Segment(5, 1508, 0.0015), Segment(4, 1508, 0),
               Core(0.032, 0.04, 0.040, 900, 0.008, 900, 0.256)),
    "E": Model(Segment(8, 1508, 0.0015), Segment(8, 1508, 0),
               Core(0.064, 0.1, 0.070, 480, 0.016, 480, 0.4)),
    "F": Model(Segment(12, 1508, 0.0015), Segment(15, 1508, 0),
               Core(0.128, 0.2, 0.100, 240, 0.032, 240, 0.8)),
    "G": Model(Segment(16, 1508, 0.0015), Segment(30, 1508, 0),
               Core(0.256, 0.5, 0.150, 120, 0.064, 120, 1.6)),
}

# Link speed patterns (G.1050 Table 14), bit/s, in the direction A -> B:
# (LAN A, access A upstream, access B downstream, LAN B).
SPEEDS: dict[int, tuple[int, int, int, int]] = {
    1: (4_000_000, 128_000, 768_000, 4_000_000),  # 10BASE-ish LANs over ADSL
    5: (20_000_000, 7_000_000, 13_000_000, 100_000_000),
    9: (100_000_000, 13_000_000, 13_000_000, 100_000_000),
}


def _per_slice(p: float, interval: float) -> float:
    """A per-packet probability as the probability per 1 ms slice."""
    return 1.0 - (1.0 - min(max(p, 0.0), 1.0)) ** (SLICE / interval)


class _Link:
    """A LAN or access link segment: delay and loss per slice, generated on demand."""

    def __init__(self, seg: Segment, bit_rate: int, packet_bytes: int, interval: float,
                 access: bool, rng: random.Random) -> None:
        occ = seg.occupancy
        self.rng = rng
        self.access = access
        self.serial = packet_bytes * 8 / bit_rate
        self.peak_jitter = seg.peak_jitter
        self.height = seg.mtu * 8 / bit_rate * (1 + occ / 40)
        if access:
            self.to_high = _per_slice(0.0002 * occ, interval)
            self.to_low = _per_slice(0.2 / (1 + occ), interval)
            self.impulse = (_per_slice(0.001 + occ / 2000, interval),
                            _per_slice(0.3 + 0.4 * occ / 100, interval))
            self.decay = 0.75 ** (SLICE / interval)  # the per-interval filter, per slice
            self.loss = 0.0005 * occ
        else:
            self.to_high = _per_slice(0.0001 * occ, interval)
            self.to_low = _per_slice(0.1, interval)
            self.impulse = (0.0, _per_slice(0.5, interval))
            self.decay = 0.0
            self.loss = 0.000025 * occ
        self.high = False
        self.congestion = 0.0
        self.slices: list[float | None] = []

    def _step(self) -> float | None:
        rng = self.rng
        high = self.high
        if rng.random() < (self.to_low if high else self.to_high):
            self.high = not high
        kick = 0.0
        if rng.random() < self.impulse[high]:
            kick = self.height if (high and self.access) else self.height * rng.random()
        if self.access:
            self.congestion = self.congestion * self.decay + 0.25 * kick
        else:
            self.congestion = kick
        lost = high and rng.random() < self.loss
        return None if lost else self.serial + self.peak_jitter * rng.random() + self.congestion

    def at(self, t: float) -> float | None:
        n = int(t / SLICE + 0.5)
        while len(self.slices) <= n:
            self.slices.append(self._step())
        return self.slices[n]


class _Backbone:
    def __init__(self, core: Core, rng: random.Random) -> None:
        self.core = core
        self.rng = rng
        self.flap_phase = rng.random() * core.flap_interval
        self.failure_phase = rng.random() * core.failure_interval

    def at(self, t: float) -> float | None:
        c = self.core
        if c.failure_interval:
            into = (t + self.failure_phase) % c.failure_interval
            if into >= c.failure_interval - c.failure_duration:
                return None
        if self.rng.random() < c.loss / 100:
            return None
        flaps = math.floor((t + self.flap_phase) / c.flap_interval) if c.flap_interval else 0
        return c.delay + c.jitter * self.rng.random() + (c.flap_delay if flaps % 2 else 0.0)


def path_delays(model: str, speeds: int, count: int, *, seed: int = 1, interval: float = 0.020,
                packet_bytes: int = 200) -> list[float | None]:
    """One-way delays (seconds) of `count` packets sent every `interval` seconds over the G.1050
    path of severity `model` ("A".."G") and speed pattern `speeds`; None for a lost packet.
    200 bytes is a 20 ms G.711 packet with its RTP, UDP and IPv4 headers."""
    if model not in MODELS:
        raise ValueError(f"G.1050 model must be one of {', '.join(MODELS)}, not {model!r}")
    if speeds not in SPEEDS:
        raise ValueError(f"G.1050 speed pattern must be one of {sorted(SPEEDS)}, not {speeds!r}")
    rng = random.Random(seed)
    m = MODELS[model]
    lan_a, up, down, lan_b = SPEEDS[speeds]
    first = [_Link(m.lan, lan_a, packet_bytes, interval, False, rng),
             _Link(m.access, up, packet_bytes, interval, True, rng)]
    core = _Backbone(m.core, rng)
    last = [_Link(m.access, down, packet_bytes, interval, True, rng),
            _Link(m.lan, lan_b, packet_bytes, interval, False, rng)]
    segments: list[_Link | _Backbone] = [*first, core, *last]
    left = [0.0] * len(segments)  # when the previous packet left each segment (FIFO order)
    out: list[float | None] = []
    for i in range(count):
        sent = i * interval
        t: float | None = sent
        for k, seg in enumerate(segments):
            d = seg.at(t)
            if d is None:
                t = None
                break
            t = max(t + d, left[k])
            left[k] = t
        out.append(None if t is None else t - sent)
    return out
