"""The adaptive jitter buffer and G.711 packet loss concealment in the C core, on deterministic
network traces (tests/jitter_traces.py): delay, losses, and that every packet that arrived in time
is played exactly once."""

from __future__ import annotations

import itertools
import math
import random
import statistics
from collections.abc import Callable

import pytest

import jitter_traces as jt
from tipring.media.dsp import ffi, lib

ULAW = 0


def in_time(trace: jt.Trace) -> list[int]:
    return [n for n, p in enumerate(trace.packets) if p.arrival is not None]


def speech_delays(delays: list[int], trace: jt.Trace) -> list[int]:
    """Per-frame delays (samples) after the first second, before the trailing silence."""
    return delays[50 : len(delays) - 60]


def test_steady_stream_plays_every_packet_once_at_the_minimum_delay() -> None:
    trace = jt.make_trace("steady", 10, jt.constant(40))
    jb, played, delays = jt.run(ffi, lib, trace, min_ms=20)
    counts = jt.find_played(ffi, lib, trace, played)
    assert all(counts.get(n) == 1 for n in range(len(trace.packets)))
    assert (jb.stats.late, jb.stats.duplicate, jb.stats.shrinks, jb.stats.stretches) == (0, 0, 0, 0)
    # Only the end of the stream is concealed (the buffer cannot know the sender stopped).
    assert jb.stats.lost_samples <= 3 * 160
    assert set(speech_delays(delays, trace)) <= {160, 161}  # 20 ms (+ rounding of arrival times)
    assert jb.stats.target_delay == 160


def test_output_is_the_decoded_input_sample_for_sample() -> None:
    trace = jt.make_trace("steady", 3, jt.constant(25))
    _, played, _ = jt.run(ffi, lib, trace, min_ms=40)
    expected: list[int] = []
    pcm = ffi.new("int16_t[160]")
    for p in trace.packets:
        lib.tr_ulaw_decode(p.payload, pcm, 160)
        expected.extend(pcm)
    start = next(i for i, s in enumerate(played) if s != 0)
    assert played[start : start + len(expected)] == expected


def test_reordered_packets_are_put_back_in_order() -> None:
    # Every third packet overtakes the one before it by 8 ms.
    def delay(rng: random.Random, i: int) -> float:
        return 0.030 - (0.028 if i % 3 == 2 else 0.0)

    trace = jt.make_trace("reorder", 10, delay)
    arrivals = trace.arrivals()
    assert any(a.seq > b.seq for a, b in itertools.pairwise(arrivals))
    jb, played, _ = jt.run(ffi, lib, trace, min_ms=20)
    counts = jt.find_played(ffi, lib, trace, played)
    assert not any(c > 1 for c in counts.values())
    # Once the overtaking packets show a path 28 ms faster than the first ones, playout sheds the
    # frame it no longer needs by a pitch-period drop, which cuts into one or two packets' probes.
    missed = [n for n in range(len(trace.packets)) if counts.get(n) != 1]
    assert len(missed) <= 2 * jb.stats.shrinks, (missed, jb.stats.shrinks)
    assert jb.stats.late == 0


def test_duplicates_are_counted_and_played_once() -> None:
    trace = jt.make_trace("dup", 5, jt.constant(30))
    doubled = jt.Trace("dup", [*trace.packets, *(
        jt.Packet(p.seq, p.timestamp, p.marker, p.payload, p.sent, p.arrival + 0.004)
        for p in trace.packets)])
    jb, played, _ = jt.run(ffi, lib, doubled, min_ms=20)
    assert jb.stats.duplicate == len(trace.packets)
    counts = jt.find_played(ffi, lib, trace, played)
    assert all(counts.get(n) == 1 for n in range(len(trace.packets)))


def test_sequence_and_timestamp_wrap_are_seamless() -> None:
    trace = jt.make_trace("wrap", 6, jt.gaussian(30, 3), first_seq=65500,
                          first_ts=(1 << 32) - 160 * 100)
    assert trace.packets[-1].timestamp < trace.packets[0].timestamp  # it did wrap
    jb, played, _ = jt.run(ffi, lib, trace, min_ms=20)
    assert jb.stats.resets == 0
    counts = jt.find_played(ffi, lib, trace, played)
    assert sum(counts.get(n) == 1 for n in range(len(trace.packets))) >= 0.98 * len(trace.packets)


def test_new_ssrc_resets_and_the_new_stream_plays() -> None:
    first = jt.make_trace("a", 4, jt.constant(30), seed=1)
    second = jt.make_trace("b", 4, jt.constant(30), seed=2, first_ts=900_000_000)
    shifted = [jt.Packet(p.seq, p.timestamp, p.marker, p.payload, p.sent + 4, p.arrival + 4)
               for p in second.packets]
    jb = ffi.new("tr_jbuf_t *")
    lib.tr_jb_init(jb, 20, 300, 0)
    out = ffi.new("int16_t[160]")
    played: list[int] = []
    results = []
    feed = [(first.ssrc, p) for p in first.packets] + [(0xABCDEF01, p) for p in shifted]
    k = 0
    for frame in range(int(9.5 / 0.02)):
        now = 10.0 + frame * 0.02
        while k < len(feed) and feed[k][1].arrival <= now:
            ssrc, p = feed[k]
            results.append(lib.tr_jb_put(jb, ssrc, p.seq, p.timestamp, 0, ULAW, p.payload, 160,
                                         int(p.arrival * 1e6)))
            k += 1
        lib.tr_jb_get(jb, int(now * 1e6), out)
        played.extend(out)
    assert jb.stats.resets == 1
    assert results.count(lib.TR_JB_RESET) == 1
    counts = jt.find_played(ffi, lib, jt.Trace("b", shifted), played)
    assert sum(counts.get(n) == 1 for n in range(len(shifted))) >= len(shifted) - 2


def test_huge_timestamp_jump_resets_instead_of_waiting() -> None:
    trace = jt.make_trace("jump", 6, jt.constant(30))
    jumped = [p if n < 150 else jt.Packet(p.seq, (p.timestamp + 5_000_000) & 0xFFFFFFFF, p.marker,
                                          p.payload, p.sent, p.arrival)
              for n, p in enumerate(trace.packets)]
    jb, played, _ = jt.run(ffi, lib, jt.Trace("jump", jumped), min_ms=20)
    assert jb.stats.resets == 1
    counts = jt.find_played(ffi, lib, jt.Trace("jump", jumped), played)
    assert sum(counts.get(n) == 1 for n in range(150, 300)) >= 148


def test_a_very_late_packet_is_dropped_counted_and_concealed() -> None:
    trace = jt.make_trace("late", 5, lambda rng, i: 0.5 if i == 100 else 0.03)
    jb, played, _ = jt.run(ffi, lib, trace, min_ms=20, max_ms=60)
    assert jb.stats.late == 1
    counts = jt.find_played(ffi, lib, trace, played)
    assert 100 not in counts
    # 101 starts with the cross-fade out of the concealment, which the probe window overlaps.
    assert all(counts.get(n) == 1 for n in range(len(trace.packets)) if n not in (100, 101))
    assert jb.stats.lost_samples - 3 * 160 in range(150, 170)  # that packet, plus the stream's end


def test_gaussian_jitter_is_absorbed_with_a_measured_target() -> None:
    trace = jt.make_trace("gauss", 60, jt.gaussian(30, 15))
    jb, played, delays = jt.run(ffi, lib, trace, min_ms=20, max_ms=300)
    counts = jt.find_played(ffi, lib, trace, played)
    arrived = in_time(trace)
    assert sum(counts.get(n) == 1 for n in arrived) >= 0.94 * len(arrived)
    assert not any(c > 2 for c in counts.values())
    lost_fraction = (jb.stats.lost_samples - 3 * 160) / (160 * len(arrived))
    assert lost_fraction < 0.03
    # The 98th percentile of half-normal jitter with sigma 15 ms is about 35 ms.
    assert 30 * 8 <= jb.stats.target_delay <= 42 * 8
    # Continuous audio gives no silence to re-align in, and a pitch-period edit is only made when
    # it leaves the next packet on time, so the delay may sit up to one frame above the target.
    mean = statistics.mean(speech_delays(delays, trace))
    assert jb.stats.target_delay - 10 * 8 <= mean <= jb.stats.target_delay + 20 * 8


def test_playout_takes_the_frame_grid_point_below_the_target_when_it_is_cheap() -> None:
    # A 20 ms frame plays whole packets, so the delays playout can have without wasting any come
    # 20 ms apart (here 10, 30, 50 ms above the fastest path). Jitter up to 9.9 ms with a rare
    # 15 ms outlier puts the target near 12 ms; the grid point below it makes 0.5 % of packets
    # late, the one above adds 20 ms to every packet: the buffer takes the one below (it used to
    # settle on the first grid point at or above the target, 30 ms).
    def delay(rng: random.Random, i: int) -> float:
        return 0.045 if i % 200 == 100 else 0.030 + rng.uniform(0, 0.0099)

    trace = jt.make_trace("grid", 30, delay)
    jb, played, delays = jt.run(ffi, lib, trace, min_ms=0, max_ms=300)
    assert 10 * 8 < jb.stats.target_delay < 20 * 8
    assert jb.cover in range(10 * 8 - 2, 10 * 8 + 3)
    assert statistics.mean(speech_delays(delays, trace)) <= 11 * 8
    counts = jt.find_played(ffi, lib, trace, played)
    # The outliers are late; the packet after each starts with the concealment's cross-fade,
    # which the probe window overlaps (and the concealment may repeat the one before).
    spared = {n + k for n in range(100, len(trace.packets), 200) for k in (0, 1)}
    assert all(counts.get(n, 0) >= 1 for n in range(len(trace.packets)) if n not in spared)
    assert jb.stats.late == len(spared) // 2


def test_the_fastest_packet_leaving_the_window_does_not_move_playout() -> None:
    # One packet 16 ms faster than all others sets the base for 10 s (the window's 500 packets);
    # 1 % of packets are 18 ms late, enough that the grid point below the target costs nearly as
    # much as the one above. When the fast packet leaves the window the base rises 16 ms: nothing
    # about the network changed, so the playout delay must not. Target and cover are delays
    # above the base, and the cover used to keep its old offset: read against the new base, the
    # point playout was on looked like the one above, which took the bonus for staying put, and
    # playout moved there (20 ms more delay and a time-scale edit, for nothing).
    def delay(rng: random.Random, i: int) -> float:
        if i == 100:
            return 0.014
        return 0.030 + rng.uniform(0, 0.004) + (0.018 if rng.random() < 0.01 else 0.0)

    trace = jt.make_trace("base", 16, delay)
    jb = ffi.new("tr_jbuf_t *")
    lib.tr_jb_init(jb, 0, 300, 0)
    seen = {}
    for frame, _, _ in jt.play(ffi, lib, jb, trace, frames=int(16 / 0.02), markers=False):
        if frame in (int(10 / 0.02), int(15 / 0.02)):  # before and after the base moves
            seen[frame] = (jb.base, jb.stats.current_delay + jb.base, jb.stats.stretches)
    (base_before, playout_before, edits_before), (base_after, playout_after, edits_after) = (
        seen.values())
    assert base_after - base_before == 16 * 8  # the base did move
    assert playout_after == playout_before  # playout (relative to the timeline) did not
    assert edits_after == edits_before


def test_fixed_mode_keeps_the_configured_delay() -> None:
    trace = jt.make_trace("gauss", 20, jt.gaussian(30, 15))
    jb, _, _ = jt.run(ffi, lib, trace, min_ms=60, max_ms=300, fixed=True)
    assert jb.stats.target_delay == 60 * 8
    assert jb.stats.late < 0.01 * len(trace.packets)


def test_delay_grows_fast_on_a_spike_and_shrinks_slowly() -> None:
    # 30 ms steady, then a 200 ms episode of +120 ms delay, then steady again for 30 s.
    def delay(rng: random.Random, i: int) -> float:
        return 0.150 if 500 <= i < 510 else 0.030

    trace = jt.make_trace("spike", 45, delay)
    jb = ffi.new("tr_jbuf_t *")
    lib.tr_jb_init(jb, 20, 400, 0)
    targets = []
    for _ in jt.play(ffi, lib, jb, trace, frames=int(45.5 / 0.02), markers=False):
        targets.append(jb.stats.target_delay)
    spike_end = int(10.3 / 0.02) + 10  # frames: the spike's last packet has arrived
    assert targets[500] == 160
    assert max(targets[spike_end : spike_end + 15]) >= 110 * 8  # grown within 300 ms
    # Then it decays by at most 10 ms per second, back to the minimum: shrinking stays far slower
    # than growing (120 ms at once), but a past spike no longer holds its delay for 20 s (it was
    # 5 ms/s; G.1050 congestion episodes and Pareto stalls kept their delay long after they ended).
    later = targets[spike_end + 15 :]
    drops = [a - b for a, b in zip(later, later[50:], strict=False)]  # over 1 s
    assert max(drops) <= 10 * 8 + 8
    assert later[-1] == 160
    assert later.index(160) > 8 * 50  # ~100 ms to shed at 10 ms/s: no sooner than 8 s


def test_misses_the_target_leaves_by_choice_do_not_ratchet_it_up() -> None:
    # Gaussian jitter (sigma 30 ms): the cost leaves about 1 % of packets late on purpose, so two
    # misses within 100 packets are routine, not a spike. They used to raise the target over the
    # 98th percentile (plus its 2.5 ms) in 62-70 % of frames, a grid step of delay for nothing.
    for seed in (1, 2, 3):
        trace = jt.make_trace("g30", 60, jt.gaussian(30, 30), seed=seed)
        jb = ffi.new("tr_jbuf_t *")
        lib.tr_jb_init(jb, 20, 300, 0)
        above = []
        for frame, _, _ in jt.play(ffi, lib, jb, trace, frames=int(61 / 0.02), markers=False):
            if frame > 500:  # the window is full
                above.append(jb.stats.target_delay > jb.stats.jitter + 20)
        assert sum(above) / len(above) < 0.35, (seed, sum(above) / len(above))


def quiet_payloads(seed: int, level: int = 60) -> list[bytes]:
    """One second of low-level noise as mu-law packets (every frame under the -45 dBm0 at which
    playout edits freely)."""
    rng = random.Random(seed)
    pcm = ffi.new("int16_t[160]")
    code = ffi.new("uint8_t[160]")
    payloads = []
    for _ in range(50):
        for i in range(160):
            pcm[i] = rng.randint(-level, level)
        lib.tr_ulaw_encode(pcm, code, 160)
        payloads.append(bytes(ffi.buffer(code)))
    return payloads


def test_gaussian_jitter_moves_playout_seldom_and_by_whole_steps() -> None:
    # Every time-scale edit shifts the speech against the talker's timing, and PESQ-NB takes a
    # shift inside an utterance as a defect whatever its size (one 8 ms shift cost up to 0.27 in
    # bench/jitter.py). On Gaussian jitter (sigma 30 ms) the target hovers between two grid
    # points; the cover used to follow it down a step and back up again, each move made of
    # pitch-period edits plus a realignment: 57-75 edits a minute here. Now the point playout is
    # on stays a candidate, and a quiet frame grows a whole step in one edit.
    for seed in (1, 2, 3, 4):
        trace = jt.make_trace("g30", 60, jt.gaussian(30, 30), seed=seed,
                              payloads=quiet_payloads(seed))
        jb = ffi.new("tr_jbuf_t *")
        lib.tr_jb_init(jb, 0, 300, 0)
        for _ in jt.play(ffi, lib, jb, trace, frames=int(61 / 0.02), markers=False):
            pass
        edits = jb.stats.shrinks + jb.stats.stretches
        assert edits <= 15, (seed, jb.stats.shrinks, jb.stats.stretches)
        assert jb.stats.late <= 0.02 * len(trace.packets), (seed, jb.stats.late)


def test_playout_never_steps_back_after_late_packets_silence_it() -> None:
    # Four packets in a row 150 ms late: concealment fades out (60 ms) and playout falls silent
    # with nothing stored past where it stands. It used to step back to the end of the newest
    # stored packet, behind itself, and play the late packets' slots again as delay.
    def delay(rng: random.Random, i: int) -> float:
        return 0.180 if 500 <= i < 504 else 0.030

    trace = jt.make_trace("late run", 20, delay)
    jb = ffi.new("tr_jbuf_t *")
    lib.tr_jb_init(jb, 20, 300, 0)
    last = None
    for frame, _, _ in jt.play(ffi, lib, jb, trace, frames=int(20.5 / 0.02), markers=False):
        if last is not None:
            assert jb.play_ts >= last, (frame, jb.play_ts - last)
        last = jb.play_ts


def test_the_first_second_makes_no_drop_while_the_statistics_are_learnt() -> None:
    # Speech starting with quiet frames: a faster second packet lowers the base, and playout used
    # to drop the "excess" at once, then found frames starting mid-packet and the next packet not
    # there: 16 drops and 483 samples lost over these ten starts. Now it keeps its first delay.
    rng = random.Random(3)
    quiet = [bytes(rng.choice((0xF0, 0x70, 0xF8, 0x78)) for _ in range(160)) for _ in range(25)]
    loud = [bytes(rng.getrandbits(8) for _ in range(160)) for _ in range(225)]
    shrinks = lost = 0
    for seed in range(11, 21):
        trace = jt.make_trace("start", 5, jt.gaussian(30, 10), seed=seed, payloads=quiet + loud)
        jb = ffi.new("tr_jbuf_t *")
        lib.tr_jb_init(jb, 0, 300, 0)
        for _ in jt.play(ffi, lib, jb, trace, frames=50, markers=False):
            pass
        shrinks += jb.stats.shrinks
        lost += jb.stats.lost_samples
    assert shrinks == 0
    assert lost <= 2 * 160  # one packet here really is late (seed 15)


@pytest.mark.parametrize("ppm", [100, -100])
def test_sender_clock_drift_is_followed(ppm: float) -> None:
    trace = jt.make_trace("drift", 120, jt.gaussian(30, 5), sender_ppm=ppm)
    jb, _, delays = jt.run(ffi, lib, trace, min_ms=20, max_ms=300)
    tail = speech_delays(delays, trace)[-2000:]  # the last 40 s
    target = jb.stats.target_delay
    assert all(target - 10 * 8 <= d <= target + 20 * 8 for d in tail), (min(tail), max(tail), target)
    assert (jb.stats.lost_samples - 3 * 160) < 0.005 * 160 * len(trace.packets)
    if ppm > 0:  # a fast sender leaves 12 ms extra audio over 120 s: some must be dropped
        assert jb.stats.shrinks >= 1


def test_talkspurts_start_at_the_target_delay_without_loss() -> None:
    trace = jt.make_trace("talk", 40, jt.gaussian(30, 5), talkspurts=(1.5, 0.7))
    jb = ffi.new("tr_jbuf_t *")
    lib.tr_jb_init(jb, 20, 300, 0)
    played: list[int] = []
    start_delays = []
    was_silent = jb.silent
    for frame, _, out in jt.play(ffi, lib, jb, trace, frames=int(41 / 0.02)):
        played.extend(out)
        if was_silent and not jb.silent and frame > 100:
            start_delays.append(jb.stats.current_delay - jb.stats.target_delay)
        was_silent = jb.silent  # as it is before the next frame's packets are put
    assert len(start_delays) >= 15
    assert all(-80 <= d <= 80 for d in start_delays)  # each spurt starts within 10 ms of target
    counts = jt.find_played(ffi, lib, trace, played)
    # The target is the 98th percentile of the jitter, so about 2 % of packets miss their slot.
    assert sum(counts.get(n) == 1 for n in range(len(trace.packets))) >= 0.97 * len(trace.packets)
    # The concealment at each spurt's end was not loss: the next spurt's marker says so.
    assert jb.stats.lost_samples <= 3 * 160


@pytest.mark.parametrize("silence", [1.2, 3.0])
def test_talkspurts_after_silences_longer_than_the_ring_still_play(silence: float) -> None:
    # A sender with silence suppression (DTX) that pauses over 1.024 s: playout held where the
    # last spurt ended, so the next spurt came more than the ring ahead and every packet from
    # then on was refused as overflow (75 of 839 packets played, for 1.2 s pauses).
    trace = jt.make_trace("dtx", 30, jt.gaussian(30, 5), talkspurts=(1.5, silence))
    jb, played, _ = jt.run(ffi, lib, trace, min_ms=20, max_ms=300)
    assert (jb.stats.overflow, jb.stats.resets) == (0, 0)
    counts = jt.find_played(ffi, lib, trace, played)
    assert sum(counts.get(n) == 1 for n in range(len(trace.packets))) >= 0.97 * len(trace.packets)
    assert jb.stats.lost_samples <= 3 * 160  # the pauses were not loss: the markers say so


def test_bad_packets_are_discarded() -> None:
    jb = ffi.new("tr_jbuf_t *")
    lib.tr_jb_init(jb, 20, 200, 0)
    assert lib.tr_jb_put(jb, 1, 1, 0, 0, ULAW, b"", 0, 0) == lib.TR_JB_DISCARDED
    assert lib.tr_jb_put(jb, 1, 1, 0, 0, ULAW, bytes(481), 481, 0) == lib.TR_JB_DISCARDED
    assert lib.tr_jb_put(jb, 1, 1, 0, 0, 3, bytes(160), 160, 0) == lib.TR_JB_DISCARDED
    assert jb.stats.discarded == 3 and jb.stats.received == 0
    assert lib.tr_jb_put(jb, 1, 1, 0, 0, lib.TR_LAW_ALAW, bytes(160), 160, 0) == lib.TR_JB_ACCEPTED


# --- packet loss concealment -------------------------------------------------------------------

def voiced(n: int, period: int = 73, seed: int = 5) -> list[int]:
    """A vowel-like signal: a decaying pulse train through two resonances, pitch `period`."""
    rng = random.Random(seed)
    out, y1, y2, z1, z2 = [], 0.0, 0.0, 0.0, 0.0
    for i in range(n):
        x = 6000.0 if i % period == 0 else rng.gauss(0, 30)
        y = x + 1.6 * math.cos(2 * math.pi * 700 / 8000) * y1 - 0.81 * y2
        z = y + 1.5 * math.cos(2 * math.pi * 1200 / 8000) * z1 - 0.72 * z2
        y2, y1, z2, z1 = y1, y, z1, z
        out.append(max(-32768, min(32767, int(z * 0.4))))
    return out


def conceal(signal: list[int], good: int, lost: int) -> list[int]:
    plc = ffi.new("tr_plc_t *")
    lib.tr_plc_init(plc)
    buf = ffi.new("int16_t[]", len(signal))
    lib.tr_plc_good(plc, signal[:good], buf, good)
    lib.tr_plc_conceal(plc, buf + good, lost, 1)
    rest = len(signal) - good - lost
    lib.tr_plc_good(plc, signal[good + lost :], buf + good + lost, rest)
    return list(buf)


def rms(x: list[int]) -> float:
    return math.sqrt(sum(v * v for v in x) / len(x)) if x else 0.0


def test_pitch_is_found() -> None:
    plc = ffi.new("tr_plc_t *")
    lib.tr_plc_init(plc)
    sig = voiced(800, period=73)
    lib.tr_plc_good(plc, sig, ffi.new("int16_t[800]"), 800)
    assert lib.tr_plc_pitch(plc) == 73


def test_concealment_continues_the_waveform_for_a_short_loss() -> None:
    sig = voiced(2400)
    out = conceal(sig, 1600, 80)  # 10 ms lost
    a, b = sig[1600:1680], out[1600:1680]
    corr = sum(x * y for x, y in zip(a, b, strict=True)) / (rms(a) * rms(b) * 80)
    assert corr > 0.8
    assert 0.7 < rms(b) / rms(a) < 1.3


def test_concealment_fades_after_10_ms_and_is_silent_by_60_ms() -> None:
    sig = voiced(4000)
    out = conceal(sig, 1600, 800)  # 100 ms lost
    level = rms(sig[1600:1680])
    assert rms(out[1600:1680]) > 0.7 * level  # full level for the first 10 ms
    assert 0.15 * level < rms(out[1600 + 280 : 1600 + 320]) < 0.65 * level  # ~40 % at 35-40 ms
    assert max(abs(v) for v in out[1600 + 480 : 2400]) == 0  # silent from 60 ms


def test_no_clicks_entering_or_leaving_a_loss() -> None:
    sig = voiced(4000)
    natural = max(abs(a - b) for a, b in itertools.pairwise(sig))
    for lost in (80, 160, 400, 800):
        out = conceal(sig, 1600, lost)
        steps = [abs(a - b) for a, b in itertools.pairwise(out[1500 : 1701 + lost])]
        assert max(steps) <= 1.2 * natural, (lost, max(steps), natural)


@pytest.mark.parametrize("seed", [16, 7, 3])
def test_random_loss_is_concealed_without_adding_delay(seed: int) -> None:
    # Lost packets are not late ones: when the audio after a gap has arrived, the buffer must
    # conceal and move on rather than wait, or losses push the delay up (speech, with its quiet
    # frames, is where waiting used to cost: seed 16 went from 30 to 37 ms).
    import echo_models as em

    pcm = em.to_int16(em.speech(["vm-*"], 40))
    codes = bytearray(len(pcm))
    lib.tr_ulaw_encode(ffi.from_buffer("int16_t[]", pcm), ffi.from_buffer(codes), len(pcm))
    payloads = [bytes(codes[i : i + 160]) for i in range(0, len(codes), 160)]

    def lossy(rng: random.Random, i: int) -> bool:
        return rng.random() < 0.02

    clean = jt.make_trace("clean", 40, jt.gaussian(30, 10), seed=seed, payloads=payloads)
    lossy_trace = jt.make_trace("lossy", 40, jt.gaussian(30, 10), seed=seed, loss=lossy,
                                payloads=payloads)
    lost = sum(p.arrival is None for p in lossy_trace.packets)
    assert lost > 15
    _, _, clean_delays = jt.run(ffi, lib, clean)
    jb, _, lossy_delays = jt.run(ffi, lib, lossy_trace)
    assert statistics.mean(speech_delays(lossy_delays, lossy_trace)) <= statistics.mean(
        speech_delays(clean_delays, clean)) + 1 * 8
    concealed_packets = (jb.stats.lost_samples - 3 * 160) / 160
    assert lost <= concealed_packets <= lost * 1.3


# --- heavy-tailed jitter: stalls, the delay/late-loss trade-off ----------------------------------

def stalled(start: int, stall_ms: float, base_ms: float = 30) -> Callable[[random.Random, int], float]:
    """Steady `base_ms`, except that the packets sent during one stall of the path, from packet
    `start` on, are all released when it clears, 1 ms apart (a queue draining)."""
    count = int(stall_ms / 20)

    def delay(rng: random.Random, i: int) -> float:
        k = i - start
        if 0 <= k < count:
            return (base_ms + stall_ms - k * 20 + k) / 1000
        return base_ms / 1000

    return delay


def test_one_stall_does_not_hold_its_delay() -> None:
    # A 300 ms stall releases 15 packets at once: one event, not a confirmed rise in jitter. The
    # buffer conceals through it and is back at its usual delay within 2 s, where the peak rule
    # used to take the burst's packets as two peaks and hold ~280 ms, shedding it at 5 ms/s.
    trace = jt.make_trace("stall", 30, stalled(500, 300))
    jb, played, delays = jt.run(ffi, lib, trace, min_ms=20, max_ms=400)
    stall_end = 500 + int(0.33 / 0.02)  # frames: the stall's packets have arrived
    assert max(delays[stall_end + 100 :]) <= 40 * 8
    assert jb.stats.target_delay == 20 * 8
    counts = jt.find_played(ffi, lib, trace, played)
    # The stall's packets, overdue when they come, are skipped rather than played late (which
    # would hold their delay); everything else plays once.
    missed = [n for n in range(len(trace.packets)) if counts.get(n) != 1]
    assert set(missed) <= set(range(500, 516)), missed


def test_after_a_stall_running_speech_keeps_a_frame_of_delay_until_a_quiet_frame() -> None:
    # The stall's catch-up resumes up to a frame behind the cover. In speech with no quiet frame
    # (these random codes are all loud) playout waits 2 s before cutting a pitch period to shed
    # it: a shift inside an utterance costs PESQ more than the delay (0.04 on Pareto stalls, where
    # it waited 25 frames); then it does shed it.
    for stall_ms in (250, 330, 370):
        trace = jt.make_trace("stall", 30, stalled(500, stall_ms))
        jb = ffi.new("tr_jbuf_t *")
        lib.tr_jb_init(jb, 20, 400, 0)
        drops = []
        for frame, _, _ in jt.play(ffi, lib, jb, trace, frames=800, markers=False):
            if jb.stats.shrinks > len(drops):
                drops.append(frame)
        stall_end = 500 + int((stall_ms + 30) / 20)
        assert drops, stall_ms
        assert stall_end + 90 <= drops[0] <= stall_end + 150, (stall_ms, drops)


@pytest.mark.parametrize("outage", [60, 80, 95])
def test_audio_resumes_after_an_outage_longer_than_the_ring(outage: int) -> None:
    # A link failure of 1.2 to 1.9 s (G.1050 models one of 1.6 s): the stream comes back more
    # than the ring (1.024 s) past where playout held in the silence, yet short of the 2 s that
    # means a new timeline. It used to be turned away as overflow for the rest of the call.
    trace = jt.make_trace("outage", 20, jt.constant(30), loss=jt.burst_loss(300, outage))
    jb, played, delays = jt.run(ffi, lib, trace, min_ms=20, max_ms=300)
    assert (jb.stats.overflow, jb.stats.resets) == (0, 0)
    counts = jt.find_played(ffi, lib, trace, played)
    assert all(counts.get(n) == 1 for n in range(300 + outage, len(trace.packets)))
    before, after = speech_delays(delays, trace)[:240], speech_delays(delays, trace)[-200:]
    assert set(after) <= set(before)  # back at the delay it played at before the outage


def test_sustained_heavy_tailed_stalls_keep_delay_and_late_loss_low() -> None:
    # Pareto-distributed stalls (alpha 1.5, from 60 ms, about every 3 s): covering their tail
    # would need hundreds of ms for a few percent of packets, so the target stays near the body
    # of the distribution, and late loss stays low because each stall is concealed and the
    # playout resumes close to the ideal position.
    trace = jt.make_trace("pareto", 60, jt.pareto_bursts(30, 150, 60), seed=13)
    _, played, delays = jt.run(ffi, lib, trace, min_ms=20, max_ms=300)
    counts = jt.find_played(ffi, lib, trace, played)
    arrived = in_time(trace)
    # Missed: late, skipped after a stall, or cut by a pitch-period edit (which the probe sees
    # as not played). speexdsp's buffer misses 7.7 % of a 40 s run of this network (bench/).
    # Since misses a stall's own tail predicts no longer confirm a spike, and a spike's delay is
    # shed at 10 ms/s, this run misses 6.2 % (was 5.3 %) at 37 ms mean delay (was 68 ms).
    missed = sum(counts.get(n) != 1 for n in arrived) / len(arrived)
    assert missed < 0.07, missed
    # Covering the tail (the 98th percentile is over 300 ms) used to hold about 250 ms.
    assert statistics.mean(speech_delays(delays, trace)) < 50 * 8


def test_g1050_path_plays_nearly_everything_that_arrived() -> None:
    # ITU-T G.1050 severity E over ADSL-class access: 80 ms of core jitter on a congested path.
    import g1050

    path = g1050.path_delays("E", 1, 2000, seed=23)
    trace = jt.make_trace("g1050", 40, lambda rng, i: path[i] or 0.0,
                          loss=lambda rng, i: path[i] is None)
    _, played, delays = jt.run(ffi, lib, trace, min_ms=20, max_ms=300)
    counts = jt.find_played(ffi, lib, trace, played)
    arrived = in_time(trace)
    # Not found once: late (12 here), or cut by one of the pitch-period edits the probe misses.
    assert sum(counts.get(n) == 1 for n in arrived) >= 0.96 * len(arrived)
    spread = sorted(p for p in path if p is not None)
    p98 = (spread[int(0.98 * len(spread))] - spread[0]) * 8000
    assert statistics.mean(speech_delays(delays, trace)) <= p98 + 20 * 8


def test_g1050_model_is_seeded_ordered_and_checks_its_arguments() -> None:
    import g1050

    first = g1050.path_delays("D", 1, 1500, seed=5)
    assert first == g1050.path_delays("D", 1, 1500, seed=5)
    assert first != g1050.path_delays("D", 1, 1500, seed=6)
    arrivals = [i * 0.020 + d for i, d in enumerate(first) if d is not None]
    assert arrivals == sorted(arrivals)  # no segment of the standard models reorders
    # Severity A on fast links: a few ms of core and LAN jitter, nothing lost.
    light = g1050.path_delays("A", 9, 1500, seed=5)
    assert None not in light and max(light) - min(light) < 0.010
    with pytest.raises(ValueError, match="model"):
        g1050.path_delays("Z", 1, 10)
    with pytest.raises(ValueError, match="speed pattern"):
        g1050.path_delays("A", 2, 10)
