"""The history run (signals service) feeding the scorecard service: a generated market with planted
patterns, the hit rates computed here from the bars (the moving averages too), the same as the
scorecard's; a second run adds nothing, a forgotten run changes no figure."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import numpy as np
import pytest
from redis.asyncio import Redis

from marketbus.contracts import ScoreRow, Security, SignalBatch
from marketbus.keys import Keys
from marketbus.settings import Settings
from marketbus.trend import TrendStore, pack
from marketbus.wire import decode
from scorecard.outcomes import HORIZONS
from signals.backfill import HistoryRun
from signals.service import SignalsService
from signals.store import SignalStore
from signals.strategies import build_strategies

DAY = 86_400_000
T0 = 1_735_660_800_000  # 2025-01-01 00:00 +08:00
N_BARS = 250
CODES = [f"{600100 + j:06d}.SH" for j in range(6)] + ["159915.SZ"]


def planted_closes(j: int) -> np.ndarray:
    """Legs of 30 bars, down then up, each leg's moves with a small noise: the moving averages
    cross a few bars into each leg, and the leg goes on after the cross."""
    rng = np.random.default_rng(100 + j)
    step = np.where((np.arange(N_BARS) // 30) % 2 == 0, -0.012, 0.012) * (1 + 0.2 * j / len(CODES))
    return np.round(20.0 * np.exp(np.cumsum(step + rng.normal(0, 0.002, N_BARS))), 2)


def rows_of(j: int) -> np.ndarray:
    close = planted_closes(j)
    prev = np.concatenate([[close[0]], close[:-1]])
    high = np.round(np.maximum(prev, close) * 1.004, 2)
    low = np.round(np.minimum(prev, close) * 0.996, 2)
    ts = T0 + np.arange(N_BARS) * DAY
    vol = np.full(N_BARS, 1e6)
    return np.stack([ts, prev, high, low, close, vol, vol * close], 1)


def sma(x: np.ndarray, n: int) -> np.ndarray:
    out = np.full(len(x), np.nan)
    for t in range(n - 1, len(x)):
        out[t] = sum(x[t - n + 1 : t + 1]) / n
    return out


def ma_cross_hit_rates(market: dict[str, np.ndarray]) -> dict[int, tuple[int, float]]:
    """STRATEGIES.md's ma_cross on every bar (SMA5 crossing SMA20), each signal's return h bars
    later signed by its side: horizon -> (signals with the horizon's bars, hit rate)."""
    rets: dict[int, list[float]] = {h: [] for h in HORIZONS}
    for rows in market.values():
        close = rows[:, 4]
        fast, slow = sma(close, 5), sma(close, 20)
        for t in range(1, len(close)):
            up = fast[t - 1] <= slow[t - 1] and fast[t] > slow[t]
            down = fast[t - 1] >= slow[t - 1] and fast[t] < slow[t]
            if not (up or down):
                continue
            for h in HORIZONS:
                if t + h < len(close):
                    rets[h].append((1 if up else -1) * (close[t + h] / close[t] - 1))
    return {h: (len(r), sum(x > 0 for x in r) / len(r)) for h, r in rets.items()}


@asynccontextmanager
async def signals_service(settings: Settings) -> AsyncIterator[SignalsService]:
    """The signals service (its history run checks at start, then every few seconds)."""
    s = settings.model_copy(update={"auto_calculate_signals": False, "signal_periods": ("1d",)})
    svc = SignalsService(s)
    task = asyncio.create_task(svc.run())
    await asyncio.wait_for(svc.runtime.ready.wait(), 30)
    try:
        yield svc
    finally:
        svc.stop()
        await asyncio.wait_for(task, 15)


def history_run(client: Redis, keys: Keys, settings: Settings) -> HistoryRun:
    """A history run of its own, called directly (as the service's periodic check does)."""

    async def far_future() -> int:
        return T0 + 10_000 * DAY

    return HistoryRun(
        client,
        keys,
        settings,
        TrendStore(client, keys),
        SignalStore(client, keys, settings.signals_maxlen),
        build_strategies(),
        "test",
        far_future,
        ("1d",),
    )


async def seed(client: Redis, keys: Keys) -> dict[str, np.ndarray]:
    market = {code: rows_of(j) for j, code in enumerate(CODES)}
    for code in CODES:
        market_name = "ETF" if code.endswith(".SZ") else "SH主板"
        await client.hset(
            keys.universe, code, Security(code=code, name=code, market=market_name).model_dump_json()
        )
    await TrendStore(client, keys).merge_rows(market, "1d")
    return market


async def history_entries(client: Redis, keys: Keys) -> list[SignalBatch]:
    return [decode(SignalBatch, f) for _, f in await client.xrange(keys.signals_history)]


async def test_the_history_run_fills_the_scorecard_with_the_hit_rates_of_the_bars(
    settings: Settings, run_scorecard, until, client: Redis, keys: Keys
) -> None:
    market = await seed(client, keys)

    async def all_run() -> bool:
        return await client.hlen(keys.backfill_done("1d")) == len(CODES)

    async with signals_service(settings):
        await until(all_run)  # the history was there at start: run at once
    entries = await history_entries(client, keys)
    signals = [s for e in entries for s in e.signals()]
    assert {e.code for e in entries} == set(CODES)
    assert len({s.strategy for s in signals}) >= 8

    async with run_scorecard():

        async def scored() -> dict[bytes, bytes] | None:
            rows = await client.hgetall(keys.scorecard("1d"))
            if not rows:
                return None
            r = ScoreRow.model_validate_json(rows[b"*|*|1"])
            return rows if r.signals == len(signals) else None

        rows = await until(scored)
        assert isinstance(rows, dict)
        expected = ma_cross_hit_rates(market)
        for h in HORIZONS:
            r = ScoreRow.model_validate_json(rows[f"ma_cross|*|{h}".encode()])
            n, rate = expected[h]
            assert r.hit_rate.n == n
            assert r.hit_rate.value == pytest.approx(rate)
        # the planted legs go on after the cross: the averages' signals mostly win
        five = ScoreRow.model_validate_json(rows[b"ma_cross|*|5"]).hit_rate.value
        assert five is not None and five > 0.6

        # run again: nothing is due; forgotten: the same signals again, each id scored once
        run = history_run(client, keys, settings)
        before = await client.xlen(keys.signals_history)
        assert (await run.run_due()).codes == 0
        assert await client.xlen(keys.signals_history) == before
        await client.delete(keys.backfill_done("1d"))
        await client.incr(keys.trend_epoch)  # as `marketbus backfill` does
        assert (await run.run_due()).signals == len(signals)
        assert await client.xlen(keys.signals_history) == 2 * before
        run.close()

        async def consumed() -> bool:
            groups = await client.xinfo_groups(keys.signals_history)
            g = next(g for g in groups if g["name"] == b"scorecard")
            return g["pending"] == 0 and g["lag"] == 0

        await until(consumed)
        assert await client.hgetall(keys.scorecard("1d")) == rows


async def test_the_history_run_looks_at_the_series_only_when_the_trend_epoch_moved(
    settings: Settings, client: Redis, keys: Keys
) -> None:
    """Nothing is read per series while no series was created or merged into: the first bar times
    of the whole market are not read every few seconds on the streaming path's loop."""
    await seed(client, keys)
    run = history_run(client, keys, settings)
    try:
        assert (await run.run_due()).codes == len(CODES)
        hidden, imported = "600990.SH", "600991.SH"
        for code in (hidden, imported):
            security = Security(code=code, name=code, market="SH主板")
            await client.hset(keys.universe, code, security.model_dump_json())
        await client.set(keys.trend(hidden, "1d"), pack(rows_of(1)))  # behind the store's back
        assert (await run.run_due()).codes == 0  # the epoch did not move: not even looked for
        await TrendStore(client, keys).merge_rows({imported: rows_of(2)}, "1d")  # bumps the epoch
        assert (await run.run_due()).codes == 2  # the due check ran: both series found
        assert (await run.run_due()).codes == 0
    finally:
        run.close()
