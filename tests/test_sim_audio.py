"""The sim audio port: it is the media clock, counts xruns, and `stop` wakes a blocked read."""

from __future__ import annotations

import threading
import time

import pytest

from conftest import T0
from tipring.hal.api import PERIOD_BYTES, AudioStopped, RingCadence
from tipring.hal.sim import SimBoard, create_sim_board
from tipring.hal.simclock import RealClock, VirtualClock



def test_read_moves_the_virtual_clock_one_period_at_a_time(
    board: SimBoard, clock: VirtualClock
) -> None:
    audio = board.lines[0].audio
    audio.start()
    audio.start()  # idempotent: the schedule does not restart
    times = []
    for _ in range(50):
        assert len(audio.read()) == PERIOD_BYTES
        times.append(clock.now())
    assert times == pytest.approx([T0 + 0.02 * (k + 1) for k in range(50)], abs=1e-9)
    assert audio.overruns == 0 and audio.underruns == 0


def test_timers_fire_while_the_media_clock_runs(board: SimBoard, clock: VirtualClock) -> None:
    audio, slic, handset = board.lines[0].audio, board.lines[0].slic, board.handsets[0]
    audio.start()
    slic.ring(RingCadence(((0.1, 0.1),)))
    for _ in range(25):
        audio.read()
    assert clock.now() == pytest.approx(T0 + 0.5)
    assert len(handset.ring_bursts) == 3


def test_read_on_a_stopped_port_raises(board: SimBoard) -> None:
    audio = board.lines[0].audio
    with pytest.raises(AudioStopped):
        audio.read()
    audio.start()
    audio.read()
    audio.stop()
    with pytest.raises(AudioStopped):
        audio.read()
    audio.write(bytes(PERIOD_BYTES))  # dropped, not an error: the device is gone
    audio.start()  # a new period schedule from now
    audio.read()


def test_write_checks_the_period_length(board: SimBoard) -> None:
    audio = board.lines[0].audio
    audio.start()
    with pytest.raises(ValueError, match=r"expected one period of 320 bytes .* got 318 bytes"):
        audio.write(bytes(318))
    with pytest.raises(ValueError, match="got 640 bytes"):
        audio.write(bytes(640))
    with pytest.raises(TypeError):
        audio.write(320)  # type: ignore[arg-type]


def test_underruns_count_periods_that_had_nothing_to_play(
    board: SimBoard, clock: VirtualClock
) -> None:
    audio = board.lines[0].audio
    audio.start()
    for _ in range(5):  # not playing yet: nothing is missing
        audio.read()
    assert audio.underruns == 0
    for _ in range(10):  # the normal media loop: read a period, write a period
        audio.read()
        audio.write(bytes(PERIOD_BYTES))
    assert audio.underruns == 0
    audio.read()
    audio.read()  # the slot after the last write played nothing
    assert audio.underruns == 1
    audio.read()
    audio.write(bytes(PERIOD_BYTES))
    audio.read()
    assert audio.underruns == 2


def test_a_written_period_is_heard_one_playout_lead_after_the_capture_period_ends(
    board: SimBoard, clock: VirtualClock
) -> None:
    audio, handset = board.lines[0].audio, board.handsets[0]
    handset.lift()
    audio.start()
    assert audio.playout_lead == pytest.approx(0.02)  # one period, as ALSA primed with one
    for _ in range(3):
        audio.read()
        audio.write(bytes(PERIOD_BYTES))
    assert [at for at, _ in handset._heard] == pytest.approx(
        [T0 + 0.02 * k + audio.playout_lead for k in (1, 2, 3)], abs=1e-9)


def test_a_shorter_lead_is_heard_sooner_and_a_write_later_than_it_underruns(
    clock: VirtualClock,
) -> None:
    board = create_sim_board(1, clock, playout_lead=0.005)
    audio, handset = board.lines[0].audio, board.handsets[0]
    handset.lift()
    audio.start()
    audio.read()
    audio.write(bytes(PERIOD_BYTES))
    assert handset._heard[-1][0] == pytest.approx(T0 + 0.025)
    audio.read()
    clock.advance(0.004)  # still within the lead: on time
    audio.write(bytes(PERIOD_BYTES))
    assert audio.underruns == 0 and handset._heard[-1][0] == pytest.approx(T0 + 0.045)
    audio.read()
    clock.advance(0.006)  # past it: that slot began empty, the period plays in the next one
    audio.write(bytes(PERIOD_BYTES))
    assert audio.underruns == 1 and handset._heard[-1][0] == pytest.approx(T0 + 0.085)
    with pytest.raises(ValueError, match="playout_lead"):
        create_sim_board(1, clock, playout_lead=0.03)


def test_catching_up_after_a_stall_keeps_the_playout_latency(
    board: SimBoard, clock: VirtualClock
) -> None:
    audio, handset = board.lines[0].audio, board.handsets[0]
    handset.lift()
    audio.start()
    for _ in range(3):
        audio.read()
        audio.write(bytes(PERIOD_BYTES))
    clock.advance(0.06)  # the media thread stalls for three periods
    for _ in range(3):  # ... then reads the buffered ones at once, writing one for each
        audio.read()
        audio.write(bytes(PERIOD_BYTES))
    assert clock.now() == pytest.approx(T0 + 0.12)
    assert audio.underruns == 2  # the slots the stall left empty (the lead covered 20 ms)
    assert audio.playout_trimmed == 2  # they would have stayed queued behind the first
    audio.read()
    audio.write(bytes(PERIOD_BYTES))
    assert handset._heard[-1][0] == pytest.approx(clock.now() + audio.playout_lead)
    assert audio.overruns == 0 and audio.underruns == 2


def test_a_late_reader_gets_the_buffered_periods_and_loses_older_ones(
    board: SimBoard, clock: VirtualClock
) -> None:
    audio, handset = board.lines[0].audio, board.handsets[0]
    handset.lift()
    audio.start()
    samples = b"".join(bytes([k, 0]) * 160 for k in range(10))  # period k holds value k
    handset.speak(samples)
    clock.advance(0.2)  # ten periods captured, nobody reading
    got = [audio.read()[0] for _ in range(4)]
    assert got == [6, 7, 8, 9]  # the four newest, read without waiting
    assert clock.now() == pytest.approx(T0 + 0.2)
    assert audio.overruns == 6
    audio.read()
    assert clock.now() == pytest.approx(T0 + 0.22)


def frozen_real_clock() -> RealClock:
    class FrozenClock(RealClock):
        """Real waiting, but time never reaches the next period: only stop() can end a read."""

        def now(self) -> float:
            return 0.0

    return FrozenClock()


def test_stop_wakes_a_blocked_read() -> None:
    clock = frozen_real_clock()
    board = create_sim_board(1, clock)
    audio = board.lines[0].audio
    audio.start()
    outcome: list[object] = []
    entered = threading.Event()

    def media_thread() -> None:
        entered.set()
        try:
            outcome.append(audio.read())
        except AudioStopped as exc:
            outcome.append(exc)

    thread = threading.Thread(target=media_thread)
    thread.start()
    try:
        assert entered.wait(1.0)
        thread.join(0.05)
        assert thread.is_alive() and outcome == []  # blocked: the period never completes
        started = time.monotonic()
        audio.stop()
        thread.join(1.0)
        assert not thread.is_alive()
        assert time.monotonic() - started < 0.5
        assert len(outcome) == 1 and isinstance(outcome[0], AudioStopped)
    finally:
        audio.stop()
        board.close()
        clock.close()


def test_real_clock_periods_and_overruns() -> None:
    board = create_sim_board(1)  # its own RealClock, closed with the board
    audio = board.lines[0].audio
    try:
        audio.start()
        started = time.monotonic()
        audio.read()
        audio.read()
        assert time.monotonic() - started >= 0.039  # paced by the device, 20 ms a period
        threading.Event().wait(0.16)  # fall ~8 periods behind
        for _ in range(4):  # the buffered periods come at once
            audio.read()
        # At least 10 periods done, 2 read, 4 kept: at least 4 lost (more if this machine is slow).
        assert audio.overruns >= 4
    finally:
        board.close()
    assert not board.clock._thread.is_alive()


def test_real_clock_ringer_and_pulses_run_by_themselves() -> None:
    board = create_sim_board(1)
    handset, slic = board.handsets[0], board.lines[0].slic
    events = []
    made = threading.Event()
    slic.on_hook_event = lambda ev: (events.append(ev), made.set() if len(events) == 5 else None)
    rang_twice = threading.Event()
    handset.on_ring = lambda at: rang_twice.set() if len(handset.ring_bursts) >= 2 else None
    try:
        slic.ring(RingCadence(((0.03, 0.03),)))
        assert rang_twice.wait(1.0)
        handset.lift()  # ring trip
        assert not slic.ringing
        handset.dial_rotary("2", pps=50.0)
        assert made.wait(1.0)
        assert [e.off_hook for e in events] == [True, False, True, False, True]
    finally:
        board.close()
