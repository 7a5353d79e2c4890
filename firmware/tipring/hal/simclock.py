"""Clocks for the simulated board: real time for demos, virtual time for tests.

Everything the sim does over time (ring cadences, hook-pulse trains, audio periods) is scheduled on
one `Clock`, so the same driver runs in real time (`tipring run --board sim`, the web virtual
phone) or on a `VirtualClock` that a test moves by hand: deterministic, and it never sleeps.
"""

from __future__ import annotations

import abc
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

Callback = Callable[[], None]


class TimerHandle:
    """A scheduled callback; `Clock.cancel` (or `cancel()`) stops it from running."""

    __slots__ = ("_fn", "cancelled", "when")

    def __init__(self, when: float, fn: Callback) -> None:
        self.when = when
        self._fn = fn
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

    def _run(self) -> None:
        if not self.cancelled:
            self._fn()

    def __repr__(self) -> str:
        state = " cancelled" if self.cancelled else ""
        return f"<TimerHandle at {self.when:.6f}{state}>"


class Clock(abc.ABC):
    """Monotonic time, timers, and a way for the simulated audio device to wait for a period."""

    @abc.abstractmethod
    def now(self) -> float:
        """Monotonic seconds."""

    @abc.abstractmethod
    def call_at(self, when: float, fn: Callback) -> TimerHandle:
        """Run `fn` at `when` (at once, on the clock's terms, if `when` has passed)."""

    def call_later(self, delay: float, fn: Callback) -> TimerHandle:
        return self.call_at(self.now() + delay, fn)

    def cancel(self, handle: TimerHandle) -> None:
        """Cancel a timer; harmless if it already ran or was cancelled."""
        handle.cancel()

    @abc.abstractmethod
    def wait_until(
        self, when: float, cond: threading.Condition, stopped: Callable[[], bool]
    ) -> bool:
        """Block until the clock reaches `when`; False if `stopped()` became true first.

        The caller holds `cond` and whoever makes `stopped()` true notifies it, which is how
        `AudioPort.stop` wakes a blocked `read`.
        """

    def close(self) -> None:  # noqa: B027 - only RealClock has a thread to stop
        """Stop any thread the clock runs; pending timers never fire."""


class VirtualClock(Clock):
    """Time that moves only when told to: `advance`, `advance_to`, or an audio read waiting on it.

    Due callbacks run in time order on the advancing thread, with `now()` equal to their own time;
    a callback may schedule more, and those inside the advanced window run in the same call.
    """

    def __init__(self, start: float = 1000.0) -> None:
        self._now = float(start)
        self._heap: list[tuple[float, int, TimerHandle]] = []
        self._order = itertools.count()
        self._lock = threading.Lock()
        # One advancing thread at a time, so callbacks never run concurrently or out of order.
        self._advancing = threading.RLock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def call_at(self, when: float, fn: Callback) -> TimerHandle:
        handle = TimerHandle(float(when), fn)
        with self._lock:
            heapq.heappush(self._heap, (handle.when, next(self._order), handle))
        return handle

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"a clock cannot go back: advance({seconds})")
        with self._advancing:
            self.advance_to(self.now() + seconds)

    def advance_to(self, t: float) -> None:
        with self._advancing:
            with self._lock:
                if t < self._now:
                    raise ValueError(f"a clock cannot go back: now {self._now}, asked for {t}")
            while True:
                with self._lock:
                    handle = self._pop_due(t)
                    if handle is None:
                        self._now = t
                        return
                    self._now = max(self._now, handle.when)
                handle._run()

    def _pop_due(self, t: float) -> TimerHandle | None:
        while self._heap and self._heap[0][0] <= t:
            handle = heapq.heappop(self._heap)[2]
            if not handle.cancelled:
                return handle
        return None

    @property
    def next_deadline(self) -> float | None:
        """Time of the earliest live timer (None if none): lets a test run to the next event."""
        with self._lock:
            live = [when for when, _, h in self._heap if not h.cancelled]
        return min(live) if live else None

    def wait_until(
        self, when: float, cond: threading.Condition, stopped: Callable[[], bool]
    ) -> bool:
        # Waiting *is* advancing here: the audio device is the media clock. The caller's lock is
        # released meanwhile, because the callbacks that run may need it.
        if stopped():
            return False
        cond.release()
        try:
            with self._advancing:
                self.advance_to(max(when, self.now()))
        finally:
            cond.acquire()
        return not stopped()


class RealClock(Clock):
    """`time.monotonic()` with one daemon thread that runs timers at their time.

    This is hardware emulation inside a driver (like gpiozero's own pin threads): callbacks run on
    the scheduler thread, so anything they touch must be thread-safe.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int, TimerHandle]] = []
        self._order = itertools.count()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="tipring-sim-clock", daemon=True)
        self._thread.start()

    def now(self) -> float:
        return time.monotonic()

    def call_at(self, when: float, fn: Callback) -> TimerHandle:
        handle = TimerHandle(float(when), fn)
        with self._cond:
            if self._closed:
                # Late calls racing board shutdown: nothing is listening any more.
                log.debug("timer scheduled on a closed clock is dropped")
                handle.cancelled = True
                return handle
            heapq.heappush(self._heap, (handle.when, next(self._order), handle))
            if self._heap[0][2] is handle:
                self._cond.notify()
        return handle

    def _next_due(self) -> TimerHandle | None:
        """Wait for the earliest live timer to fall due; None once closed."""
        with self._cond:
            while not self._closed:
                if not self._heap:
                    self._cond.wait()
                    continue
                when, _, handle = self._heap[0]
                if handle.cancelled:
                    heapq.heappop(self._heap)
                    continue
                delay = when - self.now()
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                heapq.heappop(self._heap)
                return handle
        return None

    def _run(self) -> None:
        while (handle := self._next_due()) is not None:
            try:
                handle._run()
            except Exception:  # a faulty callback must not stop the other lines' timers
                log.exception("sim clock callback failed")

    def wait_until(
        self, when: float, cond: threading.Condition, stopped: Callable[[], bool]
    ) -> bool:
        while not stopped():
            remaining = when - self.now()
            if remaining <= 0:
                return True
            cond.wait(remaining)
        return False

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._heap.clear()
            self._cond.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=1.0)
