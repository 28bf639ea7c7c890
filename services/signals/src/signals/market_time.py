"""What time it is in the market, as the signals service sees it.

The quotes service publishes its market clock each second at ``Keys.market_clock``: JSON
``{"ts": market epoch ms up to which every tick was handed over, "wall": wall epoch ms when
written}`` (optionally ``"speed"``, market ms per wall ms). Under ``marketbus up`` the simulated
market runs on an accelerated clock, so "which bar is closed" and "is the market in session" must
be answered on that clock, not on the wall clock.

The published clock is extrapolated by the wall time elapsed since it was written (at its speed,
1 when it does not say), never further than ``MAX_STALE_MS``: an older or missing clock (quotes
stopped) falls back to the configured clock, ``marketbus.clock.parse_clock(settings.market_clock)``
(the wall clock when unset).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import orjson

from marketbus.clock import MarketClock, wall_ms

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from marketbus.keys import Keys

MAX_STALE_MS = 5_000


def published_now(raw: bytes | str | None, wall_now: int, max_stale_ms: int = MAX_STALE_MS) -> int | None:
    """Market now from a published clock value, or None when it is absent, unreadable or older than
    ``max_stale_ms`` of wall time (or written in the future by more than that: a skewed host)."""
    if not raw:
        return None
    try:
        data = orjson.loads(raw)
        ts, wall = int(data["ts"]), int(data["wall"])
        speed = float(data.get("speed", 1.0))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None
    if not math.isfinite(speed) or speed <= 0:
        speed = 1.0
    elapsed = wall_now - wall
    if abs(elapsed) > max_stale_ms:
        return None
    return ts + int(max(0, elapsed) * speed)


def market_now_from(raw: bytes | str | None, wall_now: int, fallback: MarketClock) -> int:
    """The published market clock if it is fresh, else the fallback clock."""
    now = published_now(raw, wall_now)
    return fallback.now_ms() if now is None else now


class MarketTime:
    """Reads the published market clock (one GET) and answers market epoch ms."""

    def __init__(
        self, client: Redis, keys: Keys, fallback: MarketClock, wall: Callable[[], int] = wall_ms
    ) -> None:
        self.client = client
        self.keys = keys
        self.fallback = fallback
        self.wall = wall

    async def now(self) -> int:
        raw = await self.client.get(self.keys.market_clock)
        return market_now_from(raw, self.wall(), self.fallback)
