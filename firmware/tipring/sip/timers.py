"""RFC 3261 timer values (section 17 and table 4) and the address type the transports use.

T1 is the round-trip estimate, T2 the cap on non-INVITE retransmission intervals, T4 how long a
message may linger in the network. Every transaction timer is derived from them, so a test or a
slow satellite link changes three numbers, not eleven.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

# (host, port, transport): where a message comes from or goes to. transport is "udp", "tcp"
# or "tls" in lower case; the runtime maps it to a socket or connection.
Address = tuple[str, int, str]

RELIABLE_TRANSPORTS = frozenset({"tcp", "tls", "ws", "wss"})


def is_reliable(address: Address) -> bool:
    """Reliable transports get no retransmissions and zero-length wait timers (D, I, J, K)."""
    return address[2].lower() in RELIABLE_TRANSPORTS


@dataclass(frozen=True)
class TimerSettings:
    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0

    @property
    def b(self) -> float:
        """Timers B, F, H, J, L, M: 64*T1, the longest a transaction may wait."""
        return 64 * self.t1

    @property
    def d(self) -> float:
        """Timer D: at least 32 s on unreliable transports (RFC 3261 17.1.1.2)."""
        return max(32.0, self.b)


def random_token(rng: random.Random, bits: int = 64) -> str:
    """Hex text from the injected generator: tags, Call-IDs and branches are reproducible in tests."""
    return f"{rng.getrandbits(bits):0{bits // 4}x}"


def new_branch(rng: random.Random) -> str:
    """A Via branch with the RFC 3261 magic cookie, unique per transaction (8.1.1.7)."""
    return "z9hG4bK" + random_token(rng, 80)
