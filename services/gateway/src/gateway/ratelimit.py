"""A small per-client token bucket (the trigger endpoint's rate limit)."""

from __future__ import annotations

import time
from collections.abc import Callable


class RateLimiter:
    """``rate`` requests per ``per`` seconds per client, bursts up to ``burst``.

    ``check(client)`` returns 0 when the request may go on, else the seconds to wait.
    """

    def __init__(
        self,
        rate: float,
        per: float = 60.0,
        burst: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = 10_000,
    ) -> None:
        self.refill = rate / per
        self.burst = float(burst if burst is not None else max(1, int(rate)))
        self.clock = clock
        self.max_clients = max_clients
        self._buckets: dict[str, tuple[float, float]] = {}

    def check(self, client: str) -> float:
        now = self.clock()
        tokens, last = self._buckets.get(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.refill)
        if tokens >= 1.0:
            self._store(client, tokens - 1.0, now)
            return 0.0
        self._store(client, tokens, now)
        return (1.0 - tokens) / self.refill

    def _store(self, client: str, tokens: float, now: float) -> None:
        if client not in self._buckets and len(self._buckets) >= self.max_clients:
            # forget full buckets first: they are the clients that are not limited anyway
            full = [c for c, (t, _) in self._buckets.items() if t >= self.burst - 1e-9]
            for c in full or list(self._buckets)[: self.max_clients // 2]:
                del self._buckets[c]
        self._buckets[client] = (tokens, now)
