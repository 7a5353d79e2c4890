"""Two media threads on loopback, each on a sim board in real time: audio, RFC 4733 digits,
hold, and RTCP BYE cross between them as they would between two ATAs."""

from __future__ import annotations

import array
import math
import os
import queue
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tipring.hal.sim import SimBoard, create_sim_board
from tipring.media.stream import RtpStream, StreamConfig
from tipring.media.telephone_event import DigitEnded, DigitStarted
from tipring.runtime.media import MediaEvent, MediaStats, MediaStopped, MediaThread, RemoteBye
from tipring.runtime.rtp_ports import open_rtp_pair

pytestmark = pytest.mark.slow


@dataclass
class End:
    board: SimBoard
    thread: MediaThread
    events: queue.Queue[MediaEvent]


def goertzel_power(samples: array.array, freq: float) -> float:
    k = 2 * math.cos(2 * math.pi * freq / 8000)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + k * s1 - s2, s1
    return (s1 * s1 + s2 * s2 - k * s1 * s2) / len(samples) ** 2


@pytest.fixture
def call() -> Iterator[tuple[End, End]]:
    ends = []
    socks = [open_rtp_pair("127.0.0.1", 30000, 40000, rng=random.Random(seed)) for seed in (1, 2)]
    for i, (rtp, rtcp) in enumerate(socks):
        peer_rtp = socks[1 - i][0].getsockname()
        board = create_sim_board(1)
        board.handsets[0].lift()
        events: queue.Queue[MediaEvent] = queue.Queue()
        stream = RtpStream(StreamConfig(payload_type=0, remote=peer_rtp,
                                        event_payload_type=101, cname=f"end{i}"),
                           rng=random.Random(10 + i))
        thread = MediaThread(board.lines[0].audio, events.put)
        thread.attach(stream, rtp, rtcp)
        ends.append(End(board, thread, events))
    for end in ends:
        end.thread.start()
    yield ends[0], ends[1]
    for end, (rtp, rtcp) in zip(ends, socks, strict=True):
        end.thread.stop()
        end.thread.join(timeout=2)
        end.board.close()
        rtp.close()
        rtcp.close()


def wait_for(events: queue.Queue[MediaEvent], kind: type, deadline: float = 3.0) -> list:
    seen = []
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            event = events.get(timeout=max(0.0, end - time.monotonic()))
        except queue.Empty:
            break
        seen.append(event)
        if isinstance(event, kind):
            return seen
    raise AssertionError(f"no {kind.__name__} within {deadline} s; saw {seen}")


def test_speech_reaches_the_far_handset(call: tuple[End, End]) -> None:
    a, b = call
    tone = array.array("h", (int(8000 * math.sin(2 * math.pi * 1000 * n / 8000))
                             for n in range(8000)))
    a.board.handsets[0].speak(tone)
    stats = wait_for(b.events, MediaStats, deadline=3.0)[-1]
    deadline = time.monotonic() + 3.0
    window = array.array("h")
    while time.monotonic() < deadline:  # the sim plays in real time: poll what the far end hears
        heard = array.array("h")
        heard.frombytes(b.board.handsets[0].heard())
        if len(heard) > 800:
            loud = max(range(0, len(heard) - 800, 400),
                       key=lambda i, h=heard: goertzel_power(h[i : i + 800], 1000))
            window = heard[loud : loud + 800]
            if goertzel_power(window, 1000) > 1e6:
                break
        time.sleep(0.1)
    assert goertzel_power(window, 1000) > 100 * goertzel_power(window, 1500)
    amplitude = math.sqrt(2 * sum(x * x for x in window) / len(window))
    assert 7000 < amplitude < 9000  # G.711 round trip keeps the level
    assert stats.received_packets > 0
    # Deadline diagnostics: frames took some time; reads came a period apart, or more.
    assert b.thread.longest_frame > 0
    assert b.thread.longest_gap >= 0.015
    # The nominal delay is the target on the 20 ms frame grid: one of the two points around it.
    assert stats.buffer_nominal_ms > 0
    assert abs(stats.buffer_nominal_ms - stats.buffer_target_ms) < 20


def test_digits_cross_as_rfc_4733_events(call: tuple[End, End]) -> None:
    a, b = call
    wait_for(b.events, MediaStats)  # media is flowing
    a.thread.start_digit("5")
    started = wait_for(b.events, DigitStarted)[-1]
    a.thread.stop_digit()
    ended = wait_for(b.events, DigitEnded)[-1]
    assert started.key == ended.key == "5"
    assert ended.duration >= 320  # the sender's minimum of 40 ms


def test_hold_stops_sending_and_bye_reaches_the_peer(call: tuple[End, End]) -> None:
    a, b = call
    wait_for(b.events, MediaStats)
    a.thread.set_direction(send=False, receive=True)
    time.sleep(0.2)
    before = b.thread.stream.stats.received_packets
    time.sleep(0.4)
    assert b.thread.stream.stats.received_packets - before <= 1
    assert a.thread.stream.stats.sent_packets > 0
    a.thread.stop()
    assert isinstance(wait_for(b.events, RemoteBye)[-1], RemoteBye)
    assert isinstance(wait_for(a.events, MediaStopped)[-1], MediaStopped)


def test_line_audio_without_a_call_plays_tones_and_detects_digits() -> None:
    """Before any call: dial tone reaches the handset, and the handset's keypad is detected."""
    from tipring.media.dsp import ToneEvent, ToneEventKind, ToneSegment

    board = create_sim_board(1)
    events: queue.Queue[MediaEvent] = queue.Queue()
    thread = MediaThread(board.lines[0].audio, events.put)
    try:
        handset = board.handsets[0]
        handset.lift()
        thread.start()
        thread.play_tone([ToneSegment(((350.0, -13.0), (440.0, -13.0)), None, 0.0)])
        handset.dial_dtmf("4")
        seen = wait_for(events, ToneEvent)
        assert next((e.kind, e.digit) for e in seen if isinstance(e, ToneEvent)) == (
            ToneEventKind.DIGIT_START, "4")
        deadline = time.monotonic() + 2.0
        heard = array.array("h")
        while time.monotonic() < deadline and len(heard) < 1600:
            heard = array.array("h")
            heard.frombytes(handset.heard())
            time.sleep(0.05)
        window = heard[-800:]
        assert goertzel_power(window, 350) > 100 * goertzel_power(window, 1000)
        assert goertzel_power(window, 440) > 100 * goertzel_power(window, 1000)
    finally:
        thread.stop()
        thread.join(timeout=2)
        board.close()
    assert not thread.is_alive()


@pytest.mark.parametrize("same_keys", [True, False])
def test_srtp_between_two_lines(same_keys: bool) -> None:
    from tipring.media.srtp import SrtpSession
    from tipring.sdp.crypto import KeyParams
    from tipring.sdp.negotiation import SrtpKeys

    rng = random.Random(5)
    k_a, k_b, k_wrong = (KeyParams(rng.randbytes(30)) for _ in range(3))
    keys = [SrtpKeys("AES_CM_128_HMAC_SHA1_80", k_a, k_b),
            SrtpKeys("AES_CM_128_HMAC_SHA1_80", k_b, k_a if same_keys else k_wrong)]
    socks = [open_rtp_pair("127.0.0.1", 40000, 50000, rng=random.Random(seed)) for seed in (3, 4)]
    ends = []
    try:
        for i, (rtp, rtcp) in enumerate(socks):
            board = create_sim_board(1)
            board.handsets[0].lift()
            events: queue.Queue[MediaEvent] = queue.Queue()
            stream = RtpStream(StreamConfig(payload_type=8, remote=socks[1 - i][0].getsockname()),
                               rng=random.Random(20 + i))
            thread = MediaThread(board.lines[0].audio, events.put)
            thread.attach(stream, rtp, rtcp, SrtpSession(keys[i]))
            thread.start()
            ends.append(End(board, thread, events))
        stats = wait_for(ends[1].events, MediaStats)[-1]
        time.sleep(0.3)
        b = ends[1].thread.stream
        assert b is not None and b.stats.received_packets + b.stats.dropped["srtp rejected"] > 0
        if same_keys:
            assert b.stats.dropped["srtp rejected"] == 0 and b.stats.received_packets > 0
        else:
            assert b.stats.received_packets == 0 and b.stats.dropped["srtp rejected"] > 5
        assert stats.sent_packets > 0
    finally:
        for end in ends:
            end.thread.stop()
            end.thread.join(timeout=2)
            end.board.close()
        for rtp, rtcp in socks:
            rtp.close()
            rtcp.close()


def test_remote_digits_are_played_to_the_handset_when_configured(call: tuple[End, End]) -> None:
    from tipring.media.dsp import DtmfDetector, ToneEventKind

    a, b = call
    b.thread.play_remote_digits = True
    wait_for(b.events, MediaStats)
    a.thread.start_digit("9")
    wait_for(b.events, DigitStarted)
    time.sleep(0.2)
    a.thread.stop_digit()
    wait_for(b.events, DigitEnded)
    heard = b.board.handsets[0].heard()
    detector = DtmfDetector()
    found = [e.digit for e in detector.feed(heard) if e.kind is ToneEventKind.DIGIT_START]
    assert found == ["9"]


def scheduling_of_audio_thread(monkeypatch: pytest.MonkeyPatch,
                               refuse: bool) -> tuple[int, float, MediaStopped]:
    """Start a line's audio thread and report the policy it ran under, the interpreter's switch
    interval meanwhile, and how it ended. With `refuse`, SCHED_FIFO is denied as it is to an
    unprivileged process."""
    policies: queue.Queue[int] = queue.Queue()
    real_setscheduler = os.sched_setscheduler

    def setscheduler(pid: int, policy: int, param: os.sched_param) -> None:
        if refuse:
            raise PermissionError(1, "Operation not permitted")
        real_setscheduler(pid, policy, param)

    monkeypatch.setattr(os, "sched_setscheduler", setscheduler)
    previous = sys.getswitchinterval()
    board = create_sim_board(1)
    events: queue.Queue[MediaEvent] = queue.Queue()
    thread = MediaThread(board.lines[0].audio, events.put)
    try:
        thread._commands.put(lambda: policies.put(os.sched_getscheduler(0)))
        thread.start()
        policy = policies.get(timeout=3)
        interval = sys.getswitchinterval()
    finally:
        thread.stop()
        thread.join(timeout=2)
        board.close()
        sys.setswitchinterval(previous)
    stopped = wait_for(events, MediaStopped)[-1]
    return policy, interval, stopped


@pytest.mark.skipif(not hasattr(os, "sched_setscheduler"), reason="Linux only")
def test_audio_thread_runs_sched_fifo_when_permitted_and_normal_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    try:  # can this process have real-time threads at all (root, CAP_SYS_NICE, RLIMIT_RTPRIO)?
        probe = MediaThread.__init__.__kwdefaults__["realtime_priority"]
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(probe))
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        permitted = True
    except PermissionError:
        permitted = False
    policy, interval, stopped = scheduling_of_audio_thread(monkeypatch, refuse=False)
    assert policy == (os.SCHED_FIFO if permitted else os.SCHED_OTHER)
    assert interval <= 0.001 and stopped.reason == "stopped"
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # the test's own thread is untouched
    policy, interval, stopped = scheduling_of_audio_thread(monkeypatch, refuse=True)
    assert policy == os.SCHED_OTHER and stopped.reason == "stopped"  # refused: runs all the same


def test_collector_frozen_while_any_line_has_audio() -> None:
    """A full garbage collection holds the GIL for tens of ms: not while audio runs."""
    import gc

    boards = [create_sim_board(1) for _ in range(2)]
    threads = [MediaThread(board.lines[0].audio, lambda event: None) for board in boards]
    assert gc.get_freeze_count() == 0
    def running(index: int) -> None:  # its audio port starts inside the freeze
        threads[index].start()
        deadline = time.monotonic() + 3
        while not boards[index].lines[0].audio.running and time.monotonic() < deadline:
            time.sleep(0.01)

    try:
        kept = [object()]  # a container the collector tracks, made before any audio
        running(0)
        assert gc.get_freeze_count() > 0 and not any(kept is o for o in gc.get_objects())
        running(1)
        threads[0].stop()
        threads[0].join(timeout=2)
        assert gc.get_freeze_count() > 0  # the other line still has audio
        threads[1].stop()
        threads[1].join(timeout=2)
        assert gc.get_freeze_count() == 0  # handed back: cycles made before are freed again
        assert any(kept is o for o in gc.get_objects())
    finally:
        for thread in threads:
            thread.stop()
            thread.join(timeout=2)
        for board in boards:
            board.close()
