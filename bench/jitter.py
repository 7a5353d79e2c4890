"""Jitter buffer: TipRing's against speexdsp's and spandsp's, on the same speech and traces.

For each trace, real speech (Debian's asterisk-core-sounds-en-wav, 8 kHz) is cut into 20 ms mu-law
packets, sent through a network model and played out by each buffer with a 20 ms device clock.
The network models are tests/jitter_traces.py's (Gaussian, Pareto stalls, clock drift, loss) and
ITU-T G.1050's IP path model (tests/g1050.py) at a few severity/speed-pattern pairs, all seeded.
Gaps a buffer reports are filled by the same concealment (TipRing's G.711 PLC), so the comparison
is about buffering decisions. Printed per trace and buffer: mean and 95th-percentile buffering
delay (playout time - arrival time of each played packet, ms), late loss (packets that arrived but
were not played, %), concealed (concealment played while the stream was running, % of its
duration: lost and late packets, and holds that grow the delay), PESQ-NB (ITU-T P.862 via the
`pesq` package) of the whole output against the loss-free decoded speech followed by silence
(the output runs behind the speech by the network's and the buffer's delay), and R, ITU-T G.107's
transmission rating for the call's mean one-way delay and its loss (see emodel_r): a second,
standard view of how the buffer traded delay against late loss.

Baselines: speexdsp's jitter buffer (libspeexdsp) and spandsp's playout buffer in adaptive mode
(libspandsp playout.h), both through their C ABI, both driven one frame per 20 ms tick. Rows:
"tipring" and "speexdsp" with no minimum delay (like for like: speexdsp has none); "tipring/20"
with the firmware's default 20 ms minimum and "speex/20" with speexdsp's nearest knob, a 20 ms
margin (which it adds to its delay, where ours is a floor). Each trace also prints its floor: the
mean delay if every packet played at the first tick after it arrived, which no buffer can beat.
Target (issue 3): lower mean delay than speexdsp (or both at the floor) at equal or lower late
loss, and PESQ no worse, on every trace.

PESQ moves by a few hundredths from one seed of the same network to the next, so with --runs N
each trace also prints the seed spread: the mean of the per-seed differences (ours minus
speexdsp's, same trace and speech) with its 95 % interval (Student's t), for delay, late loss
and PESQ. The verdict is given two ways: "strict" reads every figure as printed (PESQ to 0.01);
"within noise" keeps delay and late loss strict but takes PESQ as no worse unless the whole 95 %
interval of its difference is below zero.

Run: .venv/bin/pip install -e '.[bench]' && .venv/bin/python bench/jitter.py [--seconds 40] [--runs 5]
Needs: libspeexdsp (Debian libspeexdsp1), libspandsp (libspandsp2), asterisk-core-sounds-en-wav.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import math
import random
import statistics
import sys
import wave
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cffi
import numpy as np
import pesq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import g1050  # test support modules shared with the unit tests
import jitter_traces as jt

from tipring.media.dsp import Law, decode, encode, ffi, lib

SOUNDS = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
FRAME = 160


def speech(seconds: float) -> np.ndarray:
    """Real speech, the package's prompts back to back, cut to a whole number of frames."""
    chunks, total = [], 0
    for path in sorted(SOUNDS.glob("*.wav")):
        with wave.open(str(path)) as w:
            if (w.getframerate(), w.getnchannels(), w.getsampwidth()) != (8000, 1, 2):
                continue
            data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        chunks.append(data)
        total += len(data)
        if total >= seconds * 8000:
            break
    if not chunks:
        sys.exit(f"no speech found in {SOUNDS} (apt-get install asterisk-core-sounds-en-wav)")
    pcm = np.concatenate(chunks)[: int(seconds * 8000) // FRAME * FRAME]
    return pcm.astype(np.int16)


@dataclass
class Result:
    delays_ms: list[float]
    late_pct: float
    output: np.ndarray
    concealed_pct: float


def concealed_share(concealed: list[float]) -> float:
    """Concealment (per frame, the share of it) between the first and the last frame with real
    audio, in percent of that time."""
    real = [n for n, c in enumerate(concealed) if c < 1]
    if not real:
        return float("nan")
    span = concealed[real[0] : real[-1] + 1]
    return 100 * sum(span) / len(span)


class SpeexJitter:
    """speexdsp's jitter buffer through ctypes (JitterBufferPacket as in speex_jitter.h)."""

    class Packet(ctypes.Structure):
        _fields_ = [("data", ctypes.c_char_p), ("len", ctypes.c_uint32),
                    ("timestamp", ctypes.c_uint32), ("span", ctypes.c_uint32),
                    ("sequence", ctypes.c_uint16), ("user_data", ctypes.c_uint32)]

    SET_MARGIN = 0  # JITTER_BUFFER_SET_MARGIN

    def __init__(self, margin_ms: int = 0) -> None:
        name = ctypes.util.find_library("speexdsp") or "libspeexdsp.so.1"
        self.lib = ctypes.CDLL(name)
        self.lib.jitter_buffer_init.restype = ctypes.c_void_p
        self.lib.jitter_buffer_init.argtypes = [ctypes.c_int]
        for fn in ("jitter_buffer_put", "jitter_buffer_get", "jitter_buffer_tick",
                   "jitter_buffer_destroy"):
            getattr(self.lib, fn).argtypes = [ctypes.c_void_p] + (
                [ctypes.POINTER(self.Packet)] if fn in ("jitter_buffer_put", "jitter_buffer_get")
                else [])
        self.lib.jitter_buffer_get.argtypes += [ctypes.c_int32, ctypes.c_void_p]
        self.lib.jitter_buffer_ctl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
        self.jb = self.lib.jitter_buffer_init(FRAME)
        if margin_ms:  # the minimum extra buffering, in timestamp units
            margin = ctypes.c_int32(margin_ms * 8)
            self.lib.jitter_buffer_ctl(self.jb, self.SET_MARGIN, ctypes.byref(margin))

    def close(self) -> None:
        self.lib.jitter_buffer_destroy(self.jb)

    def put(self, p: jt.Packet) -> None:
        pkt = self.Packet(p.payload, len(p.payload), p.timestamp, FRAME, p.seq, 0)
        self.lib.jitter_buffer_put(self.jb, ctypes.byref(pkt))

    def get(self) -> tuple[bytes, int] | None:
        buf = ctypes.create_string_buffer(2048)
        pkt = self.Packet(ctypes.cast(buf, ctypes.c_char_p), 2048, 0, 0, 0, 0)
        ok = self.lib.jitter_buffer_get(self.jb, ctypes.byref(pkt), FRAME, None) == 0
        self.lib.jitter_buffer_tick(self.jb)
        return (buf.raw[: pkt.len], pkt.timestamp) if ok else None


def play_speex(trace: jt.Trace, start: float, end: float, margin_ms: int = 0) -> Result:
    speex = SpeexJitter(margin_ms)
    plc = ffi.new("tr_plc_t *")
    lib.tr_plc_init(plc)
    arrivals = trace.arrivals()
    arrived_at = {p.timestamp: p.arrival for p in arrivals}
    out = np.zeros(int((end - start) / 0.02 + 1) * FRAME, dtype=np.int16)
    frame_pcm = ffi.new("int16_t[160]")
    delays, played, concealed, k, f = [], set(), [], 0, 0
    while start + f * 0.02 <= end:
        now = start + f * 0.02
        while k < len(arrivals) and arrivals[k].arrival <= now:
            speex.put(arrivals[k])
            k += 1
        got = speex.get()
        if got is not None and got[1] in arrived_at and got[1] not in played:
            payload, ts = got
            lib.tr_ulaw_decode(payload, frame_pcm, FRAME)
            lib.tr_plc_good(plc, frame_pcm, frame_pcm, FRAME)
            delays.append((now - arrived_at[ts]) * 1000)
            played.add(ts)
            concealed.append(0.0)
        else:
            lib.tr_plc_conceal(plc, frame_pcm, FRAME, 1)
            concealed.append(1.0)
        out[f * FRAME : (f + 1) * FRAME] = np.frombuffer(ffi.buffer(frame_pcm), dtype=np.int16)
        f += 1
    speex.close()
    late = 100 * (len(arrivals) - len(played)) / len(arrivals)
    return Result(delays, late, out[: f * FRAME], concealed_share(concealed))


class SpandspPlayout:
    """spandsp's playout buffer (playout.h) through cffi in ABI mode. It schedules by counting:
    each get() asks for the frame after the last one, and it grows or shrinks by whole frames
    from leaky-integrated late and just-in-time rates, so it is driven once per 20 ms tick."""

    CDEF = """
        typedef int timestamp_t;
        typedef struct playout_frame_s {
            void *data; int type; timestamp_t sender_stamp; timestamp_t sender_len;
            timestamp_t receiver_stamp;
            struct playout_frame_s *earlier; struct playout_frame_s *later;
        } playout_frame_t;
        typedef struct playout_state_s playout_state_t;
        playout_state_t *playout_init(int min_length, int max_length);
        int playout_put(playout_state_t *s, void *data, int type, timestamp_t sender_len,
                        timestamp_t sender_stamp, timestamp_t receiver_stamp);
        int playout_get(playout_state_t *s, playout_frame_t *frame, timestamp_t sender_stamp);
        int playout_free(playout_state_t *s);
    """
    OK, DROP, SPEECH = 0, 5, 2  # PLAYOUT_OK, PLAYOUT_DROP, PLAYOUT_TYPE_SPEECH

    def __init__(self, min_ms: int, max_ms: int) -> None:
        self.ffi = cffi.FFI()
        self.ffi.cdef(self.CDEF)
        self.lib = self.ffi.dlopen(ctypes.util.find_library("spandsp") or "libspandsp.so.2")
        self.state = self.lib.playout_init(min_ms * 8, max_ms * 8)  # adaptive: min < max
        self.frame = self.ffi.new("playout_frame_t *")

    def close(self) -> None:
        self.lib.playout_free(self.state)

    def put(self, index: int, timestamp: int, arrival: int) -> None:
        self.lib.playout_put(self.state, self.ffi.cast("void *", index + 1), self.SPEECH, FRAME,
                             timestamp, arrival)

    def get(self, now: int) -> int | None:
        """The index of the packet to play this tick, or None to conceal."""
        while True:
            status = self.lib.playout_get(self.state, self.frame, now)
            if status != self.DROP:  # a late frame is dropped; ask again for this tick
                break
        return int(self.ffi.cast("intptr_t", self.frame.data)) - 1 if status == self.OK else None


def play_spandsp(trace: jt.Trace, start: float, end: float) -> Result:
    buffer = SpandspPlayout(20, 300)
    plc = ffi.new("tr_plc_t *")
    lib.tr_plc_init(plc)
    arrivals = trace.arrivals()
    first_ts = trace.packets[0].timestamp
    out = np.zeros(int((end - start) / 0.02 + 1) * FRAME, dtype=np.int16)
    frame_pcm = ffi.new("int16_t[160]")
    delays, played, concealed, k, f = [], set(), [], 0, 0
    while start + f * 0.02 <= end:
        now = start + f * 0.02
        while k < len(arrivals) and arrivals[k].arrival <= now:
            p = arrivals[k]
            buffer.put(k, (p.timestamp - first_ts) & 0x7FFFFFFF, round((p.arrival - start) * 8000))
            k += 1
        got = buffer.get(round((now - start) * 8000)) if k else None
        if got is not None and got not in played:
            p = arrivals[got]
            lib.tr_ulaw_decode(p.payload, frame_pcm, FRAME)
            lib.tr_plc_good(plc, frame_pcm, frame_pcm, FRAME)
            delays.append((now - p.arrival) * 1000)
            played.add(got)
            concealed.append(0.0)
        else:
            lib.tr_plc_conceal(plc, frame_pcm, FRAME, 1)
            concealed.append(1.0)
        out[f * FRAME : (f + 1) * FRAME] = np.frombuffer(ffi.buffer(frame_pcm), dtype=np.int16)
        f += 1
    buffer.close()
    late = 100 * (len(arrivals) - len(played)) / len(arrivals)
    return Result(delays, late, out[: f * FRAME], concealed_share(concealed))


def play_tipring(trace: jt.Trace, start: float, end: float, min_ms: int = 0) -> Result:
    """A packet counts as played in the frame whose playout took its middle sample from the
    buffer: stored before the get(), consumed by it, and at or after where the frame began (so
    audio skipped on the way, as after a stall, is not)."""
    jb = ffi.new("tr_jbuf_t *")
    lib.tr_jb_init(jb, min_ms, 300, 0)
    arrivals = trace.arrivals()
    by_time = sorted(arrivals, key=lambda p: p.timestamp)
    offset = 1 << 32  # the buffer's extended timeline starts one wrap up
    mids = [p.timestamp + offset + FRAME // 2 for p in by_time]
    ring = lib.TR_JB_RING - 1
    out = np.zeros(int((end - start) / 0.02 + 1) * FRAME, dtype=np.int16)
    frame_pcm = ffi.new("int16_t[160]")
    concealed: list[float] = []
    delays: list[float] = []
    k, f, first = 0, 0, 0
    while start + f * 0.02 <= end:
        now = start + f * 0.02
        while k < len(arrivals) and arrivals[k].arrival <= now:
            p = arrivals[k]
            lib.tr_jb_put(jb, trace.ssrc, p.seq, p.timestamp, int(p.marker), 0, p.payload, FRAME,
                          int(p.arrival * 1e6))
            k += 1
        while first < len(mids) and mids[first] < jb.play_ts:
            first += 1
        stored = []
        for n in range(first, len(mids)):
            if mids[n] >= jb.newest_end:
                break
            if jb.valid[mids[n] & ring]:
                stored.append(n)
        concealed_before = jb.stats.concealed_samples
        lib.tr_jb_get(jb, int(now * 1e6), frame_pcm)
        concealed.append((jb.stats.concealed_samples - concealed_before) / FRAME)
        if not jb.silent:  # then current_delay says where this frame began
            began = int(now * 1e6) * 8 // 1000 - jb.base - jb.stats.current_delay
            for n in stored:
                if began <= mids[n] < jb.play_ts and not jb.valid[mids[n] & ring]:
                    when = now + (mids[n] - FRAME // 2 - began) / 8000
                    delays.append((when - by_time[n].arrival) * 1000)
        out[f * FRAME : (f + 1) * FRAME] = np.frombuffer(ffi.buffer(frame_pcm), dtype=np.int16)
        f += 1
    late = 100 * (len(arrivals) - len(delays)) / len(arrivals)
    return Result(delays, late, out[: f * FRAME], concealed_share(concealed))


def pesq_nb(reference: np.ndarray, degraded: np.ndarray) -> float:
    """PESQ-NB of the whole output against the speech followed by silence. The output runs
    behind the speech by the network's and the buffer's delay, so cutting it to the speech's
    length (as this did up to round 4) cut off the last word: 30 ms of that alone cost 0.3, and
    the score rewarded whichever buffer happened to hold less delay in the last second."""
    n = max(len(reference), len(degraded))
    padded = np.zeros(n, dtype=np.float32)
    padded[: len(reference)] = reference
    played = np.zeros(n, dtype=np.float32)
    played[: len(degraded)] = degraded
    try:
        return float(pesq.pesq(8000, padded, played, "nb"))
    except Exception as exc:  # pesq raises on e.g. no utterances found
        print(f"  pesq failed: {exc}", file=sys.stderr)
        return float("nan")


def g1050_trace(seconds: float, payloads: list[bytes], model: str, speeds: int,
                seed: int) -> jt.Trace:
    delays = g1050.path_delays(model, speeds, int(seconds / jt.PTIME), seed=seed)
    return jt.make_trace(f"G.1050 {model}/{speeds}", seconds,
                         lambda rng, i: delays[i] or 0.0, loss=lambda rng, i: delays[i] is None,
                         payloads=payloads, seed=seed)


def traces(seconds: float, payloads: list[bytes], run: int = 0) -> list[jt.Trace]:
    """The traces, each seeded; `run` k > 0 gives each a different seed (the same networks)."""
    def loss2(rng: random.Random, i: int) -> bool:
        return rng.random() < 0.02

    make: list[tuple[str, Callable[..., jt.Trace]]] = [
        ("gaussian 10 ms", lambda: jt.make_trace("g10", seconds, jt.gaussian(30, 10),
                                                payloads=payloads, seed=11 + 100 * run)),
        ("gaussian 30 ms", lambda: jt.make_trace("g30", seconds, jt.gaussian(30, 30),
                                                payloads=payloads, seed=12 + 100 * run)),
        ("pareto bursts", lambda: jt.make_trace("pb", seconds, jt.pareto_bursts(30, 150, 60),
                                               payloads=payloads, seed=13 + 100 * run)),
        ("drift +100 ppm", lambda: jt.make_trace("d+", seconds, jt.gaussian(30, 8),
                                                sender_ppm=100, payloads=payloads, seed=14 + 100 * run)),
        ("drift -100 ppm", lambda: jt.make_trace("d-", seconds, jt.gaussian(30, 8),
                                                sender_ppm=-100, payloads=payloads, seed=15 + 100 * run)),
        ("2 % loss, 10 ms", lambda: jt.make_trace("l2", seconds, jt.gaussian(30, 10),
                                                 loss=loss2, payloads=payloads, seed=16 + 100 * run)),
    ]
    # G.1050 severity/speed pattern pairs: ADSL-class access at moderate to heavy congestion,
    # then faster access behind a congested core.
    for model, speeds, seed in (("B", 1, 21), ("D", 1, 22), ("E", 1, 23), ("F", 5, 24)):
        make.append((f"G.1050 {model}/{speeds}",
                     lambda model=model, speeds=speeds, seed=seed: g1050_trace(
                         seconds, payloads, model, speeds, seed + 100 * run)))
    out = []
    for name, build in make:
        trace = build()
        trace.name = name
        out.append(trace)
    return out


def step_earlier(result: Result, arrived: int) -> tuple[float, float]:
    """Mean delay and late loss had every played packet been played one 20 ms frame earlier
    (playout being whole frames on a 20 ms clock, that is the next delay down): those that waited
    under 20 ms would have been late. Where both buffers play every packet on the same grid point
    (the drift traces), this is the rate at which any lower mean delay costs late loss."""
    kept = [d - 20.0 for d in result.delays_ms if d >= 20.0]
    late = 100 * (arrived - len(kept)) / arrived
    return (statistics.mean(kept) if kept else float("nan")), late


def floor_delay(trace: jt.Trace, start: float) -> float:
    """The least mean delay any buffer can have here: each packet played at the first 20 ms tick
    after it arrives (a frame is played whole, so nothing plays sooner)."""
    ticks = [math.ceil((p.arrival - start) / 0.02 - 1e-9) * 0.02 + start - p.arrival
             for p in trace.arrivals()]
    return 1000 * statistics.mean(ticks)


BUFFERS: dict[str, Callable[[jt.Trace, float, float], Result]] = {
    "tipring": play_tipring,
    "speexdsp": play_speex,
    "tipring/20": lambda trace, start, end: play_tipring(trace, start, end, min_ms=20),
    "speex/20": lambda trace, start, end: play_speex(trace, start, end, margin_ms=20),
    "spandsp": play_spandsp,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=40.0, help="speech per trace")
    ap.add_argument("--runs", type=int, default=1,
                    help="seeds per trace; figures are their means (one seed is noisy on "
                         "heavy-tailed networks)")
    args = ap.parse_args()

    pcm = speech(args.seconds)
    codes = bytearray(len(pcm))
    encode(Law.ULAW, pcm, codes)
    payloads = [bytes(codes[i : i + FRAME]) for i in range(0, len(codes), FRAME)]
    reference = np.zeros(len(pcm), dtype=np.int16)
    decode(Law.ULAW, bytes(codes), reference)

    runs = f", mean of {args.runs} seeds each" if args.runs > 1 else ""
    print(f"{len(pcm) / 8000:.0f} s of speech per trace{runs}; delays in ms (playout - arrival)")
    header = (f"{'trace':<16} {'buffer':<10} {'mean':>6} {'p95':>6} {'late %':>7} "
              f"{'concealed %':>11} {'PESQ':>5} {'R':>5}")
    print(header)
    print("-" * len(header))
    names = [t.name for t in traces(args.seconds, payloads)]
    met = {"tipring": 0, "tipring/20": 0}
    rating_no_lower = 0
    met_noise = {"tipring": 0, "tipring/20": 0}
    for n, trace_name in enumerate(names):
        figures: dict[str, list[tuple[float, ...]]] = {name: [] for name in BUFFERS}
        floors, lower = [], []
        for run in range(args.runs):
            trace = traces(args.seconds, payloads, run)[n]
            arrivals = trace.arrivals()
            start = trace.packets[0].sent
            end = max(p.arrival for p in arrivals) + 0.5
            floors.append(floor_delay(trace, start))
            network_ms = 1000 * statistics.mean(p.arrival - p.sent for p in arrivals)
            for name, play in BUFFERS.items():
                result = play(trace, start, end)
                r = emodel_r(network_ms, result, len(trace.packets))
                figures[name].append((*measure(result, reference), r))
                if name == "speexdsp":
                    lower.append(step_earlier(result, len(arrivals)))
        rows = {name: tuple(statistics.mean(f) for f in zip(*runs, strict=True))
                for name, runs in figures.items()}
        for name, (mean, p95, late, concealed, score, r) in rows.items():
            print(f"{trace_name:<16} {name:<10} {mean:>6.1f} {p95:>6.1f} {late:>7.2f} "
                  f"{concealed:>11.2f} {score:>5.2f} {r:>5.1f}")
        floor = statistics.mean(floors)
        verdicts = []
        for ours, theirs in (("tipring", "speexdsp"), ("tipring/20", "speex/20")):
            missed = target_missed(rows[ours], rows[theirs], floor)
            pesq_gap = paired_interval(figures[ours], figures[theirs], 4)
            noise = [m for m in missed if not (m.startswith("PESQ") and pesq_gap[0] + pesq_gap[1] >= 0)]
            met[ours] += not missed
            met_noise[ours] += not noise
            verdict = "met" if not missed else "NOT met (" + ", ".join(missed) + ")"
            if missed and not noise:
                verdict += ", met within noise"
            verdicts.append(f"{ours} vs {theirs}: {verdict}")
        print(f"{'':<16} floor {floor:.1f} ms; " + "; ".join(verdicts))
        down = [statistics.mean(f) for f in zip(*lower, strict=True)]
        print(f"{'':<16} speexdsp's played packets one frame earlier (the next delay down): "
              f"mean {down[0]:.1f} ms, {down[1]:.2f} % late")
        rating_no_lower += round(rows["tipring"][5], 1) >= round(rows["speexdsp"][5], 1)
        if args.runs > 1:
            spread = ", ".join(
                f"{label} {mean:+.{digits}f} +- {half:.{digits}f}"
                for label, k, digits in (("delay", 0, 1), ("late", 2, 2), ("PESQ", 4, 3),
                                         ("R", 5, 2))
                for mean, half in [paired_interval(figures["tipring"], figures["speexdsp"], k)])
            print(f"{'':<16} seed spread, tipring - speexdsp (95 %): {spread}")
    print(f"target met on {met['tipring']}/{len(names)} traces (no minimum delay, both), "
          f"{met['tipring/20']}/{len(names)} (20 ms minimum: ours, speexdsp's margin)")
    print(f"G.107 rating R no lower than speexdsp's on {rating_no_lower}/{len(names)} traces "
          f"(no minimum delay)")
    if args.runs > 1:
        print(f"within noise (PESQ no worse beyond its 95 % interval): {met_noise['tipring']}/"
              f"{len(names)} and {met_noise['tipring/20']}/{len(names)}")


# Student's t, two-sided 95 %, by degrees of freedom (1..10); 1.96 beyond.
T95 = (12.71, 4.30, 3.18, 2.78, 2.57, 2.45, 2.36, 2.31, 2.26, 2.23)


def paired_interval(ours: list[tuple[float, ...]], theirs: list[tuple[float, ...]],
                    k: int) -> tuple[float, float]:
    """Mean of the per-seed differences of figure k (ours - theirs) and the half-width of its
    95 % interval; with one seed, no interval (0)."""
    diffs = [a[k] - b[k] for a, b in zip(ours, theirs, strict=True)
             if not (math.isnan(a[k]) or math.isnan(b[k]))]
    if len(diffs) < 2:
        return (diffs[0] if diffs else float("nan")), 0.0
    t = T95[len(diffs) - 2] if len(diffs) - 1 <= len(T95) else 1.96
    return statistics.mean(diffs), t * statistics.stdev(diffs) / math.sqrt(len(diffs))


# ITU-T G.107's E-model, for a second view of the same trade-off: what a late packet and a
# millisecond of delay each cost in transmission rating R. Delay impairment Id in the usual
# simplification (Cole and Rosenbluth): 0.024 R per ms of one-way delay, plus 0.11 per ms beyond
# 177.3 ms. Loss: Ie-eff = Ie + (95 - Ie) Ppl / (Ppl / BurstR + Bpl) (G.107 (7-29)) with G.711's
# Ie = 0 and, with concealment, Bpl = 25.1 (G.113 Appendix I), random loss (BurstR = 1). So below
# 177 ms, 1 % more loss costs 3.6 R, as much as 150 ms of delay; above it, as much as 27 ms.
R0 = 93.2           # G.107's default basic signal-to-noise ratio, less its default impairments
BPL_G711_PLC = 25.1
PACKETIZATION_MS = 20.0


def emodel_r(network_ms: float, result: Result, sent: int) -> float:
    """R for a call whose one-way delay is the network's mean, the buffer's mean and the 20 ms
    packet, and whose loss is every packet sent but not played (network loss and late loss)."""
    delay = network_ms + statistics.mean(result.delays_ms) + PACKETIZATION_MS
    idd = 0.024 * delay + (0.11 * (delay - 177.3) if delay > 177.3 else 0.0)
    played = len(result.delays_ms)
    loss = 100 * (sent - played) / sent
    ie_eff = 95 * loss / (loss + BPL_G711_PLC)
    return R0 - idd - ie_eff


def measure(result: Result, reference: np.ndarray) -> tuple[float, float, float, float, float]:
    """Mean and 95th-percentile delay, late %, concealed %, PESQ."""
    delays = result.delays_ms
    mean = statistics.mean(delays) if delays else float("nan")
    p95 = float(np.percentile(delays, 95)) if delays else float("nan")
    return mean, p95, result.late_pct, result.concealed_pct, pesq_nb(reference, result.output)


def target_missed(ours: tuple[float, ...], theirs: tuple[float, ...], floor: float) -> list[str]:
    """The issue's target, what of it is missed: a lower mean delay than speexdsp's (or both at
    the floor, within 0.1 ms, where nothing can be lower), at equal or lower late loss (to the
    0.01 % printed), and PESQ no worse (to the 0.01 printed)."""
    (delay, _, late, _, score, *_), (their_delay, _, their_late, _, their_score, *_) = ours, theirs
    missed = []
    if not (delay < their_delay or max(delay, their_delay) <= floor + 0.1):
        missed.append(f"delay {delay:.1f} vs {their_delay:.1f}")
    if round(late, 2) > round(their_late, 2):
        missed.append(f"late {late:.2f} vs {their_late:.2f} %")
    if round(score, 2) < round(their_score, 2):
        missed.append(f"PESQ {score:.2f} vs {their_score:.2f}")
    return missed


if __name__ == "__main__":
    main()
