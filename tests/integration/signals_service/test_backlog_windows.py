"""A worker catching up on a backlog: a bar far behind its series' newest bar is evaluated on its
whole window of 250 bars, as the scan and the history run evaluate it, not on what the tail read
holds of it."""

from __future__ import annotations

import numpy as np
from redis.asyncio import Redis

from marketbus.contracts import Bar, Signal
from marketbus.keys import Keys
from marketbus.trend import TrendStore
from signals.consumer import SLACK_BARS, BarProcessor
from signals.evaluate import Target, evaluate_windows, window_ending_at
from signals.store import SignalStore
from signals.strategies import WINDOW_BARS, build_strategies
from signals.windows import WindowCache

MINUTE = 60_000
T0 = 1_764_000_000_000 // MINUTE * MINUTE
CODES = ["600000.SH", "000001.SZ", "510300.SH"]
BARS = WINDOW_BARS + 3 * SLACK_BARS + 40


def series(seed: int) -> list[Bar]:
    rng = np.random.default_rng(seed)
    close = np.round(10.0 * np.exp(np.cumsum(rng.normal(0, 0.02, BARS))), 2)
    out = []
    for i, c in enumerate(close.tolist()):
        prev = close[i - 1] if i else c
        out.append(
            Bar(code=CODES[seed], period="1m", ts=T0 + i * MINUTE, open=float(prev),
                high=max(prev, c) + 0.01, low=min(prev, c) - 0.01, close=c,
                volume=float(rng.integers(1_000, 50_000)), amount=c * 10_000)
        )  # fmt: skip
    return out


def key(sig: Signal) -> tuple[str, str, str, int, str, float]:
    return (sig.code, sig.strategy, sig.period, sig.bar_ts, sig.side, sig.confidence)


async def test_bars_deep_in_a_backlog_get_their_whole_window(client: Redis, keys: Keys) -> None:
    plain = TrendStore(client, keys, 1000)
    bars = [b for seed in range(len(CODES)) for b in series(seed)]
    await plain.append(bars)
    backlog = [b for b in bars if b.ts >= T0 + WINDOW_BARS * MINUTE]  # every bar with a full window
    strategies = build_strategies()
    cache = WindowCache(client, keys, 1000, WINDOW_BARS + SLACK_BARS, 100)
    processor = BarProcessor(cache, SignalStore(client, keys, 100_000), strategies)

    for start in range(0, len(backlog), 37):  # batches as a worker reads them, oldest first
        await processor.handle(backlog[start : start + 37])

    whole = {c: rows for c, rows in zip(CODES, await plain.tails(CODES, "1m", BARS), strict=True)}
    targets = [Target(b.code, "1m", window_ending_at(whole[b.code], b.ts)) for b in backlog]
    assert all(len(t.rows) == WINDOW_BARS for t in targets)
    expected = evaluate_windows(targets, strategies, {}, 0)
    written = [Signal.model_validate_json(v[b"data"]) for _, v in await client.xrange(keys.signals)]
    assert expected and sorted(map(key, written)) == sorted(map(key, expected))
    assert processor.stats.bars == len(backlog) and processor.stats.missing_window == 0
