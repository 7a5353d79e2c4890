"""Structured log lines: `key=value` pairs (logfmt), one event per line, to stderr and syslog.

Why logfmt: lines stay readable on a serial console and in `logread`, and tools can still split
them. Extra fields come from `logger.info("msg", extra={"key": value})`. Nothing here knows about
secrets: the config layer's `Secret` type renders itself redacted wherever it ends up.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
import time

# Attributes every LogRecord has; anything else on a record came from `extra=` and is printed.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def _quote(value: object) -> str:
    text = str(value)
    if text and not any(c in text for c in ' "=\\\n\t') and text.isprintable():
        return text
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{escaped}"'


class LogfmtFormatter(logging.Formatter):
    def __init__(self, with_time: bool = True) -> None:
        super().__init__()
        self.with_time = with_time

    def format(self, record: logging.LogRecord) -> str:
        parts = []
        if self.with_time:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            parts.append(f"ts={stamp}.{int(record.msecs):03d}Z")
        parts += [
            f"level={record.levelname.lower()}",
            f"logger={record.name}",
            f"msg={_quote(record.getMessage())}",
        ]
        parts += [
            f"{key}={_quote(value)}"
            for key, value in vars(record).items()
            if key not in _STANDARD and not key.startswith("_")
        ]
        if record.exc_info:
            parts.append(f"exc={_quote(self.formatException(record.exc_info))}")
        return " ".join(parts)


def configure(level: str = "info", syslog_socket: str = "/dev/log") -> None:
    """Send the `tipring` loggers to stderr, and to syslog when the socket exists."""
    root = logging.getLogger("tipring")
    root.handlers.clear()
    root.setLevel(level.upper())
    root.propagate = False
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setFormatter(LogfmtFormatter())
    root.addHandler(stderr)
    if os.path.exists(syslog_socket):
        try:
            handler = logging.handlers.SysLogHandler(
                address=syslog_socket, facility=logging.handlers.SysLogHandler.LOG_DAEMON
            )
        except OSError as exc:
            root.warning("syslog not available", extra={"reason": str(exc)})
        else:
            handler.ident = "tipring: "
            handler.setFormatter(LogfmtFormatter(with_time=False))  # syslog stamps its own time
            root.addHandler(handler)
    logging.captureWarnings(True)
