"""The sim board's clocks: a virtual clock tests move by hand, and the real-time scheduler."""

from __future__ import annotations

import threading
import time

import pytest

from tipring.hal.simclock import RealClock, VirtualClock


def test_virtual_clock_runs_due_callbacks_in_time_order_at_their_own_time() -> None:
    clock = VirtualClock(start=50.0)
    seen: list[tuple[str, float]] = []
    clock.call_at(52.0, lambda: seen.append(("b", clock.now())))
    clock.call_at(51.0, lambda: seen.append(("a", clock.now())))
    clock.call_later(5.0, lambda: seen.append(("late", clock.now())))
    clock.advance(2.0)
    assert seen == [("a", 51.0), ("b", 52.0)]
    assert clock.now() == 52.0
    clock.advance_to(55.0)
    assert seen[-1] == ("late", 55.0)


def test_virtual_clock_runs_callbacks_scheduled_inside_the_window() -> None:
    clock = VirtualClock()
    ticks: list[float] = []

    def tick() -> None:
        ticks.append(clock.now())
        if len(ticks) < 5:
            clock.call_later(0.25, tick)

    clock.call_later(0.25, tick)
    clock.advance(1.0)
    assert ticks == pytest.approx([1000.25, 1000.5, 1000.75, 1001.0])
    clock.advance(1.0)
    assert len(ticks) == 5


def test_virtual_clock_cancel_and_no_going_back() -> None:
    clock = VirtualClock()
    ran: list[int] = []
    handle = clock.call_later(1.0, lambda: ran.append(1))
    clock.call_later(2.0, lambda: ran.append(2))
    assert clock.next_deadline == 1001.0
    clock.cancel(handle)
    assert clock.next_deadline == 1002.0
    clock.advance(3.0)
    assert ran == [2]
    assert clock.next_deadline is None
    with pytest.raises(ValueError, match="cannot go back"):
        clock.advance(-0.1)
    with pytest.raises(ValueError, match="cannot go back"):
        clock.advance_to(999.0)


def test_virtual_wait_until_advances_and_releases_the_callers_lock() -> None:
    clock = VirtualClock()
    cond = threading.Condition(threading.Lock())
    got_lock: list[bool] = []
    # A callback that needs the waiter's lock must not deadlock.
    clock.call_later(0.01, lambda: got_lock.append(cond.acquire(blocking=False)) or cond.release())
    with cond:
        assert clock.wait_until(1000.02, cond, lambda: False)
    assert clock.now() == 1000.02
    assert got_lock == [True]
    with cond:
        assert not clock.wait_until(1005.0, cond, lambda: True)
    assert clock.now() == 1000.02


def test_real_clock_runs_timers_on_its_thread_and_close_stops_it() -> None:
    clock = RealClock()
    try:
        fired = threading.Event()
        where: list[str] = []
        cancelled_ran: list[bool] = []
        start = clock.now()

        def fire() -> None:
            where.append(threading.current_thread().name)
            fired.set()

        handle = clock.call_later(0.01, lambda: cancelled_ran.append(True))
        clock.call_later(0.03, fire)
        clock.cancel(handle)
        assert fired.wait(1.0)
        assert clock.now() - start >= 0.03
        assert where == ["tipring-sim-clock"]
        assert cancelled_ran == []
    finally:
        clock.close()
    assert not clock._thread.is_alive()
    # Timers racing shutdown are dropped, not raised.
    assert clock.call_later(0.0, lambda: None).cancelled


def test_real_clock_survives_a_failing_callback(caplog: pytest.LogCaptureFixture) -> None:
    clock = RealClock()
    try:
        done = threading.Event()

        def boom() -> None:
            raise RuntimeError("boom")

        clock.call_later(0.0, boom)
        clock.call_later(0.005, done.set)
        assert done.wait(1.0)
    finally:
        clock.close()
    assert "sim clock callback failed" in caplog.text


def test_real_wait_until_waits_for_the_time_or_a_stop() -> None:
    clock = RealClock()
    try:
        cond = threading.Condition()
        with cond:
            t0 = time.monotonic()
            assert clock.wait_until(t0 + 0.02, cond, lambda: False)
            assert time.monotonic() - t0 >= 0.02
        stop = threading.Event()

        def stopper() -> None:
            stop.wait(0.02)
            with cond:
                stop.set()
                cond.notify_all()

        thread = threading.Thread(target=stopper)
        thread.start()
        with cond:
            t0 = time.monotonic()
            assert not clock.wait_until(t0 + 30.0, cond, stop.is_set)
        assert time.monotonic() - t0 < 1.0
        thread.join()
    finally:
        clock.close()
