"""Structured logging: logfmt lines on stderr, and the same events to syslog when /dev/log exists."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tipring.runtime import logs


@pytest.fixture
def restore_tipring_logger() -> Iterator[None]:
    logger = logging.getLogger("tipring")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    for handler in logger.handlers:
        if handler not in saved[0]:
            handler.close()
    logger.handlers[:], logger.level, logger.propagate = saved


def test_fields_are_quoted_only_when_needed() -> None:
    record = logging.LogRecord("tipring.x", logging.WARNING, __file__, 1, "bad value", None, None)
    record.field = "accounts[0].expires"
    record.reason = 'must be "between" 60 and 86400'
    record.count = 3
    line = logs.LogfmtFormatter(with_time=False).format(record)
    assert line == (
        'level=warning logger=tipring.x msg="bad value" field=accounts[0].expires '
        'reason="must be \\"between\\" 60 and 86400" count=3'
    )


def test_newlines_cannot_forge_a_second_log_line() -> None:
    record = logging.LogRecord("tipring.sip", logging.INFO, __file__, 1, "from %s", ("a\nlevel=error",), None)
    line = logs.LogfmtFormatter(with_time=False).format(record)
    assert "\n" not in line
    assert 'msg="from a\\nlevel=error"' in line


def test_syslog_receives_events_when_the_socket_exists(
    tmp_path: Path, restore_tipring_logger: None, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "log"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sink:
        sink.bind(str(path))
        sink.settimeout(5)
        logs.configure("info", syslog_socket=str(path))
        logging.getLogger("tipring.test").info("hook", extra={"line": 0, "state": "off"})
        datagram = sink.recv(4096).decode()
    # <priority>ident message: daemon facility (3) * 8 + info (6) = 30; syslog adds its own time.
    assert datagram.startswith("<30>tipring: level=info logger=tipring.test msg=hook line=0 state=off")
    assert "ts=" not in datagram
    assert "msg=hook line=0 state=off" in capsys.readouterr().err


def test_no_syslog_socket_means_stderr_only(tmp_path: Path, restore_tipring_logger: None) -> None:
    logs.configure("warning", syslog_socket=str(tmp_path / "absent"))
    handlers = logging.getLogger("tipring").handlers
    assert [type(h) for h in handlers] == [logging.StreamHandler]
    assert logging.getLogger("tipring").level == logging.WARNING
