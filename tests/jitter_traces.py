"""Deterministic network traces for jitter buffer tests and benchmarks.

A trace is the sender's packets (sequence, timestamp, marker, payload) with the receiver's
arrival time for each, or None when the network lost it. The payloads are random G.711 codes, so
every packet's decoded audio is unique and the tests can find which packets were played, and how
often, by searching the output for their samples.
"""

from __future__ import annotations

import math

import random
from collections.abc import Callable
from dataclasses import dataclass, field

PTIME = 0.020
SAMPLES = 160


@dataclass(frozen=True)
class Packet:
    seq: int
    timestamp: int
    marker: bool
    payload: bytes
    sent: float  # sender clock, seconds
    arrival: float | None  # receiver monotonic seconds; None = lost in the network


@dataclass
class Trace:
    name: str
    packets: list[Packet] = field(default_factory=list)
    ssrc: int = 0x5EED5EED

    def arrivals(self) -> list[Packet]:
        """Packets in arrival order (what the socket delivers)."""
        return sorted((p for p in self.packets if p.arrival is not None), key=lambda p: p.arrival)


def make_trace(
    name: str,
    seconds: float,
    delay: Callable[[random.Random, int], float],
    *,
    seed: int = 1,
    loss: Callable[[random.Random, int], bool] = lambda rng, i: False,
    sender_ppm: float = 0.0,
    talkspurts: tuple[float, float] | None = None,
    first_seq: int = 1000,
    first_ts: int = 123456,
    payloads: list[bytes] | None = None,
) -> Trace:
    """Packets every 20 ms of the sender's clock (which runs `sender_ppm` fast), each arriving
    `delay(rng, index)` seconds after it was sent unless `loss(rng, index)`. With `talkspurts`
    = (talk, silence) seconds, the sender is silent (sends nothing, as with DTX) between spurts
    and marks the first packet of each spurt. `payloads` (one per 20 ms, e.g. encoded speech)
    replace the random codes."""
    rng = random.Random(seed)
    trace = Trace(name)
    n = int(seconds / PTIME)
    tick = PTIME / (1 + sender_ppm * 1e-6)  # a fast sender clock sends more often in real time
    speaking_before = False
    for i in range(n):
        sent = 10.0 + i * tick
        if talkspurts is not None:
            talk, silence = talkspurts
            speaking = (i * PTIME) % (talk + silence) < talk
        else:
            speaking = True
        if not speaking:
            speaking_before = False
            continue
        random_payload = bytes(rng.getrandbits(8) for _ in range(SAMPLES))
        payload = payloads[i % len(payloads)] if payloads else random_payload
        lost = loss(rng, i)
        d = delay(rng, i)
        trace.packets.append(Packet(
            seq=(first_seq + i) & 0xFFFF,
            timestamp=(first_ts + i * SAMPLES) & 0xFFFFFFFF,
            marker=talkspurts is not None and not speaking_before,
            payload=payload,
            sent=sent,
            arrival=None if lost else sent + d,
        ))
        speaking_before = True
    return trace


def constant(ms: float) -> Callable[[random.Random, int], float]:
    return lambda rng, i: ms / 1000


def gaussian(base_ms: float, sigma_ms: float) -> Callable[[random.Random, int], float]:
    """Queueing jitter is never negative: delays below the base are folded up."""
    return lambda rng, i: (base_ms + abs(rng.gauss(0, sigma_ms))) / 1000


def pareto_bursts(base_ms: float, every: int, scale_ms: float) -> Callable[[random.Random, int], float]:
    """Mostly steady, but about every `every` packets a heavy-tailed stall that also delays the
    packets queued behind it (they drain 1 ms apart)."""
    state = {"until": -1, "release": 0.0}

    def delay(rng: random.Random, i: int) -> float:
        sent = i * PTIME
        if i > state["until"] and rng.random() < 1 / every:
            stall = scale_ms * (rng.paretovariate(1.5)) / 1000
            state["release"] = sent + stall
            state["until"] = i + int(stall / PTIME) + 1
        if sent < state["release"]:
            queued = i - (state["until"] - int((state["release"] - sent) / PTIME) - 1)
            return base_ms / 1000 + (state["release"] - sent) + max(queued, 0) * 0.001
        return base_ms / 1000

    return delay


def burst_loss(start: int, length: int) -> Callable[[random.Random, int], bool]:
    return lambda rng, i: start <= i < start + length


def play(ffi, lib, jb, trace: Trace, *, frames: int | None = None, until: float = math.inf,
         start: float = 10.0, period: float = PTIME, law: int = 0, markers: bool = True):
    """Feed the trace's arrivals into `jb` and play it with a device clock of `period` from
    `start`, for `frames` frames or until `until` (seconds): yields (frame number, now, the
    frame played) after each get, the buffer's statistics then being that frame's."""
    arrivals = trace.arrivals()
    out = ffi.new("int16_t[160]")
    k = 0
    frame = 0
    while (frames is None or frame < frames) and (now := start + frame * period) <= until:
        while k < len(arrivals) and arrivals[k].arrival <= now:
            p = arrivals[k]
            lib.tr_jb_put(jb, trace.ssrc, p.seq, p.timestamp, int(p.marker) if markers else 0,
                          law, p.payload, len(p.payload), int(p.arrival * 1e6))
            k += 1
        lib.tr_jb_get(jb, int(now * 1e6), out)
        yield frame, now, out
        frame += 1


def run(ffi, lib, trace: Trace, *, min_ms: int = 20, max_ms: int = 300, fixed: bool = False,
        receiver_ppm: float = 0.0, start: float = 10.0, law: int = 0):
    """Feed the trace's arrivals into a jitter buffer and play it with a 20 ms device clock.

    Returns (jb, output samples as a list, per-frame current delays in samples)."""
    jb = ffi.new("tr_jbuf_t *")
    lib.tr_jb_init(jb, min_ms, max_ms, 1 if fixed else 0)
    played: list[int] = []
    delays: list[int] = []
    end = max(p.arrival for p in trace.arrivals()) + 1.0
    for _, _, out in play(ffi, lib, jb, trace, until=end, start=start,
                          period=PTIME / (1 + receiver_ppm * 1e-6), law=law):
        played.extend(out)
        delays.append(jb.stats.current_delay)
    return jb, played, delays


def find_played(ffi, lib, trace: Trace, played: list[int], law: int = 0,
                probe: tuple[int, int] = (48, 112)) -> dict[int, int]:
    """How many times each packet's audio appears in the output (by its samples probe[0]:probe[1],
    away from the edges that overlap-add merges and pitch edits touch)."""
    lo, hi = probe
    index: dict[tuple[int, ...], int] = {}
    pcm = ffi.new("int16_t[160]")
    for n, p in enumerate(trace.packets):
        (lib.tr_alaw_decode if law == 8 else lib.tr_ulaw_decode)(p.payload, pcm, 160)
        index[tuple(pcm[lo:hi])] = n
    counts: dict[int, int] = {}
    width = hi - lo
    for i in range(len(played) - width + 1):
        hit = index.get(tuple(played[i:i + width]))
        if hit is not None:
            counts[hit] = counts.get(hit, 0) + 1
    return counts
