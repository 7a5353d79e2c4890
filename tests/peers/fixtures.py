"""pytest fixtures for the real peers; register with ``pytest_plugins = ["peers.fixtures"]``.

Factories start as many peers as a test needs, each in its own directory under ``tmp_path``,
and stop all of them in teardown, pass or fail. When a test fails, the tail of every running
peer's log is attached to its report.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .baresip import BARESIP, Baresip
from .kamailio import KAMAILIO, Kamailio
from .process import LIVE
from .sipp import SIPP, Sipp

PROGRAMS = {"kamailio": KAMAILIO, "baresip": BARESIP, "sipp": SIPP}


def require(program: str) -> None:
    """Fail (not skip) when a peer's Debian package is missing: CI must install it."""
    path = PROGRAMS[program]
    if not Path(path).exists() and not shutil.which(program):
        pytest.fail(f"{path} not found: install the Debian package (kamailio, baresip or sip-tester)")


@pytest.fixture
def kamailio_factory(tmp_path: Path) -> Iterator[Callable[..., Kamailio]]:
    """``make(**Kamailio kwargs)`` -> a started Kamailio; all stopped after the test."""
    require("kamailio")
    started: list[Kamailio] = []

    def make(**kwargs: Any) -> Kamailio:
        proxy = Kamailio(tmp_path / f"kamailio{len(started)}", **kwargs)
        started.append(proxy)
        return proxy.start()

    yield make
    for proxy in reversed(started):
        proxy.stop()


@pytest.fixture
def kamailio(kamailio_factory: Callable[..., Kamailio]) -> Kamailio:
    """A started registrar/proxy with users 1001/secret1001 and 1002/secret1002."""
    return kamailio_factory()


@pytest.fixture
def baresip_factory(tmp_path: Path) -> Iterator[Callable[..., Baresip]]:
    """``make(aor, **Baresip kwargs)`` -> a started baresip; all stopped after the test."""
    require("baresip")
    started: list[Baresip] = []

    def make(aor: str, **kwargs: Any) -> Baresip:
        name = kwargs.pop("name", f"baresip{len(started)}")
        phone = Baresip(tmp_path / name, aor, name=name, **kwargs)
        started.append(phone)
        return phone.start()

    yield make
    for phone in reversed(started):
        phone.stop()


@pytest.fixture
def sipp_factory(tmp_path: Path) -> Iterator[Callable[..., Sipp]]:
    """``make(scenario, **Sipp kwargs)`` -> a Sipp, not started (call ``run()`` or ``start()``)."""
    require("sipp")
    made: list[Sipp] = []

    def make(scenario: str | Path, **kwargs: Any) -> Sipp:
        name = kwargs.pop("name", f"sipp{len(made)}")
        run = Sipp(tmp_path / name, scenario, name=name, **kwargs)
        made.append(run)
        return run

    yield make
    for run in reversed(made):
        run.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.failed and report.when in ("setup", "call"):
        for peer in list(LIVE):
            report.sections.append((f"peer {peer.name} log", peer.log_tail()))
