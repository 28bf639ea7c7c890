"""Synthetic market data for benchmarks: reproducible random walks in the trend record layout."""

from __future__ import annotations

from typing import Any

import numpy as np

from marketbus.trend import NF

DAY_MS = 86_400_000
START_MS = 1_700_000_000_000 // DAY_MS * DAY_MS


def codes(n: int) -> list[str]:
    """n distinct, valid codes (half SH, half SZ)."""
    out = []
    for i in range(n):
        out.append(f"{600000 + i:06d}.SH" if i % 2 == 0 else f"{1 + i:06d}.SZ")
    return out


def daily_rows(n_codes: int, bars: int, seed: int = 1) -> np.ndarray:
    """Array (n_codes, bars, 7): ts, open, high, low, close, volume, amount."""
    rng = np.random.default_rng(seed)
    steps = rng.normal(0.0005, 0.02, size=(n_codes, bars))
    close = np.round(10 * np.exp(np.cumsum(steps, axis=1)), 2)
    open_ = np.round(close * (1 + rng.normal(0, 0.005, size=close.shape)), 2)
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.01, size=close.shape)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.01, size=close.shape)))
    volume = np.round(rng.lognormal(13, 0.5, size=close.shape) / 100) * 100
    out = np.empty((n_codes, bars, NF))
    out[:, :, 0] = START_MS + np.arange(bars) * DAY_MS
    out[:, :, 1] = open_
    out[:, :, 2] = np.round(high, 2)
    out[:, :, 3] = np.round(low, 2)
    out[:, :, 4] = close
    out[:, :, 5] = volume
    out[:, :, 6] = volume * close
    return out


async def load_market(
    client: Any, prefix: str, codes_: list[str], rows: np.ndarray, period: str = "1d"
) -> None:
    """Trend series (``rows`` per code) and the universe, as the quotes service would leave them."""
    from marketbus.contracts import Security
    from marketbus.keys import Keys
    from marketbus.trend import TrendStore
    from quotes.universe import market_of

    keys = Keys(prefix)
    trend = TrendStore(client, keys, max_bars=500)
    for start in range(0, len(codes_), 1000):
        chunk = codes_[start : start + 1000]
        await trend.merge_rows(dict(zip(chunk, rows[start : start + 1000], strict=True)), period)
    universe = {c: Security(code=c, name=c, market=market_of(c)).model_dump_json() for c in codes_}
    await client.hset(keys.universe, mapping=universe)
