"""What time it is in the market, as the signals service sees it.

The quotes service publishes its market clock each second at ``Keys.market_clock``: JSON
``{"ts": market epoch ms up to which every tick was handed over, "wall": wall epoch ms when
written}`` (optionally ``"speed"``, market ms per wall ms). Under ``marketbus up`` the simulated
market runs on an accelerated clock, so "which bar is closed" and "is the market in session" must
be answered on that clock, not on the wall clock.

The published clock is extrapolated by the wall time elapsed since it was written (at its speed,
1 when it does not say), never further than ``MAX_STALE_MS``: an older or missing clock (quotes
stopped) falls back to the configured clock, ``marketbus.clock.parse_clock(settings.market_clock)``
(the wall clock when unset). Reading the published value is :func:`marketbus.clock.market_now`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from marketbus.clock import MarketClock, market_now, wall_ms

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from marketbus.keys import Keys


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
        return market_now(raw, self.wall(), self.fallback)
