"""UDP port pairs for RTP and RTCP (RFC 3550 11: RTP on an even port, RTCP on the next one)."""

from __future__ import annotations

import random
import socket

DSCP_EF = 46  # Expedited Forwarding (RFC 3246), for RTP and RTCP of a call


class PortsExhausted(OSError):
    """No free even/odd port pair in the configured range."""


def open_rtp_pair(host: str, low: int = 10000, high: int = 20000,
                  rng: random.Random | None = None) -> tuple[socket.socket, socket.socket]:
    """Bind an RTP socket on a random even port in [low, high) and RTCP on the next port."""
    if low % 2:
        low += 1
    if high - low < 2:
        raise ValueError(f"RTP port range {low}..{high} holds no even/odd pair")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    rng = rng or random.SystemRandom()
    pairs = list(range(low, high - 1, 2))
    rng.shuffle(pairs)
    for port in pairs:
        rtp = socket.socket(family, socket.SOCK_DGRAM)
        rtcp = socket.socket(family, socket.SOCK_DGRAM)
        try:
            rtp.bind((host, port))
            rtcp.bind((host, port + 1))
        except OSError:
            rtp.close()
            rtcp.close()
            continue
        for sock in (rtp, rtcp):
            sock.setblocking(False)
            _mark_expedited(sock, family)
        return rtp, rtcp
    raise PortsExhausted(f"no free RTP/RTCP port pair in {low}..{high} on {host}")


def _mark_expedited(sock: socket.socket, family: int) -> None:
    tos = DSCP_EF << 2
    try:
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, tos)
        else:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, tos)
    except OSError:
        pass  # marking is a hint to the network; a kernel that refuses it still carries the call
