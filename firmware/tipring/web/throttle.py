"""Login rate limiting: slows password guessing to a few tries per quarter hour.

Counted per client address, plus a global ceiling so guessing from many addresses cannot go
fast either. Only failures count, and a success clears that address. The global ceiling could
let an attacker lock the admin out for a while; that is the lesser evil on a device whose
password guards the phone line (toll fraud).
"""

from __future__ import annotations

from collections import deque

WINDOW_S = 15 * 60
PER_ADDRESS = 5
GLOBAL = 50
MAX_ADDRESSES = 1024


class LoginThrottle:
    def __init__(self, per_address: int = PER_ADDRESS, global_limit: int = GLOBAL,
                 window_s: float = WINDOW_S) -> None:
        self.per_address, self.global_limit, self.window_s = per_address, global_limit, window_s
        self._failures: dict[str, deque[float]] = {}
        self._all: deque[float] = deque()

    def retry_after(self, address: str, now: float) -> float:
        """Seconds until `address` may try again; 0 when it may try now."""
        self._prune(now)
        waits = [0.0]
        mine = self._failures.get(address)
        if mine is not None and len(mine) >= self.per_address:
            waits.append(mine[-self.per_address] + self.window_s - now)
        if len(self._all) >= self.global_limit:
            waits.append(self._all[-self.global_limit] + self.window_s - now)
        return max(waits)

    def failed(self, address: str, now: float) -> None:
        if address not in self._failures and len(self._failures) >= MAX_ADDRESSES:
            self._failures.pop(next(iter(self._failures)))
        self._failures.setdefault(address, deque(maxlen=self.per_address)).append(now)
        self._all.append(now)

    def succeeded(self, address: str) -> None:
        self._failures.pop(address, None)

    def _prune(self, now: float) -> None:
        while self._all and self._all[0] <= now - self.window_s:
            self._all.popleft()
        for address in [a for a, d in self._failures.items() if d[-1] <= now - self.window_s]:
            del self._failures[address]
