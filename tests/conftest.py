"""Shared test fixtures: paths to the project and to the standard vectors in ../shared."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tipring.hal.sim import SimBoard, create_sim_board
from tipring.hal.simclock import VirtualClock

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT.parent / "shared" / "vectors"
T0 = 1000.0  # virtual clock start: far from 0 so code that treats 0 as "unset" is caught


@pytest.fixture(scope="session")
def vectors() -> Path:
    if not VECTORS.is_dir():
        pytest.fail(f"standard test vectors not found at {VECTORS} (shared/ must sit beside the checkout)")
    return VECTORS


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(start=T0)


@pytest.fixture
def board(clock: VirtualClock) -> Iterator[SimBoard]:
    """A one-line sim board on the virtual clock."""
    sim = create_sim_board(1, clock)
    yield sim
    sim.close()
