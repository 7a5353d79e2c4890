"""Timing for the benchmarks: the best of several rounds, the least-disturbed figure."""

from __future__ import annotations

import time
from collections.abc import Callable


def best_rate(fn: Callable[[], object], seconds: float, items_per_call: int = 1) -> float:
    """Items per second: rounds sized to about seconds/10 each, best of five."""
    calls = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        if time.perf_counter() - t0 > seconds / 10:
            break
        calls *= 2
    best = 0.0
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        best = max(best, calls * items_per_call / (time.perf_counter() - t0))
    return best
