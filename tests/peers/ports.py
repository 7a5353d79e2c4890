"""Free loopback ports for the peers a test session starts.

A port is probed free for both UDP and TCP (Kamailio and baresip listen on both) and is never
handed out twice in one session, so two peers started by the same test cannot collide even
though the probe sockets are closed before the peer binds. Ports come from below the kernel's
ephemeral range, so outgoing connections of other processes do not take them in the meantime.
"""

from __future__ import annotations

import random
import socket
import threading
from pathlib import Path

_lock = threading.Lock()
_handed_out: set[int] = set()
_rng = random.Random()


def _ephemeral_low() -> int:
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    return max(low, 12000)


def _bindable(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(family, kind) as probe:
            if kind == socket.SOCK_STREAM:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError:
                return False
    return True


def free_port(host: str = "127.0.0.1", span: int = 1) -> int:
    """A port p with p .. p+span-1 free on host for UDP and TCP, not handed out before.

    baresip binds its TLS listener at SIP port + 1, so give it ``span=2``.
    """
    if span < 1:
        raise ValueError("span must be at least 1")
    high = _ephemeral_low() - span
    with _lock:
        for _ in range(500):
            port = _rng.randrange(10000, high)
            block = range(port, port + span)
            if any(p in _handed_out for p in block):
                continue
            if all(_bindable(host, p) for p in block):
                _handed_out.update(block)
                return port
    raise RuntimeError(f"no free block of {span} port(s) on {host}")
