"""The signals worker's kept windows (signals.windows) against a real server: every read gives
exactly what a whole read of the series gives, whatever happened to the series in between."""

from __future__ import annotations

import numpy as np
import pytest
from redis.asyncio import Redis

from marketbus.contracts import Bar
from marketbus.keys import Keys
from marketbus.trend import TrendStore
from signals.windows import WindowCache

DAY = 86_400_000
MAX_BARS = 300
KEEP = 266


def bar(code: str, i: int, close: float | None = None) -> Bar:
    c = 10.0 + i * 0.01 if close is None else close
    return Bar(
        code=code, period="1d", ts=1_700_000_000_000 + i * DAY, open=c, high=c + 0.1, low=c - 0.1,
        close=c, volume=1000.0 + i, amount=c * (1000.0 + i),
    )  # fmt: skip


@pytest.fixture(params=["script", "pipeline"])
def stores(request: pytest.FixtureRequest, client: Redis, keys: Keys) -> tuple[TrendStore, WindowCache]:
    """A plain store and a cache reading by one script (one server) or by a pipeline (a Cluster)."""
    cache = WindowCache(client, keys, MAX_BARS, KEEP, capacity=2)
    cache.scripted = request.param == "script"
    return TrendStore(client, keys, MAX_BARS), cache


async def same(plain: TrendStore, cache: WindowCache, codes: list[str], n: int = 258) -> None:
    expected = await plain.tails(codes, "1d", n)
    got = await cache.tails(codes, "1d", n)
    for e, g in zip(expected, got, strict=True):
        np.testing.assert_array_equal(g, e)


async def test_appended_bars_are_read_as_deltas(stores: tuple[TrendStore, WindowCache]) -> None:
    plain, cache = stores
    await plain.append([bar("600000.SH", i) for i in range(270)])
    await same(plain, cache, ["600000.SH"])
    assert (cache.stats.hits, cache.stats.misses) == (0, 1)
    for i in range(270, 275):
        await plain.append([bar("600000.SH", i)])
        await same(plain, cache, ["600000.SH"])
    await same(plain, cache, ["600000.SH"])  # nothing new
    assert (cache.stats.hits, cache.stats.misses) == (6, 1)


async def test_a_rewritten_series_is_read_whole(
    stores: tuple[TrendStore, WindowCache], client: Redis, keys: Keys
) -> None:
    plain, cache = stores
    await plain.append([bar("600000.SH", i) for i in range(300)])
    await same(plain, cache, ["600000.SH"])
    await plain.append([bar("600000.SH", 299, close=99.0)])  # the last bar replaced
    await same(plain, cache, ["600000.SH"])
    await plain.append([bar("600000.SH", i) for i in range(300, 301 + MAX_BARS)])  # trimmed meanwhile
    await same(plain, cache, ["600000.SH"])
    await client.delete(keys.trend("600000.SH", "1d"))  # gone (an empty restart)
    await same(plain, cache, ["600000.SH"])
    await plain.append([bar("600000.SH", 5)])  # and started again
    await same(plain, cache, ["600000.SH"])
    assert cache.stats.misses == 5 and cache.stats.hits == 0


async def test_an_import_rewriting_older_bars_empties_the_cache(
    stores: tuple[TrendStore, WindowCache],
) -> None:
    plain, cache = stores
    await plain.append([bar("600000.SH", i) for i in range(280)])
    await same(plain, cache, ["600000.SH"])
    corrected = np.array([[b.ts, 1, 2, 0.5, 1.5, 7, 8] for b in [bar("600000.SH", 200)]], dtype=np.float64)
    assert await plain.merge_rows({"600000.SH": corrected}, "1d") == 0  # no bar added, one changed
    await same(plain, cache, ["600000.SH"])  # the correction is in the window
    assert cache.stats.resets == 1
    assert await plain.merge_rows({"600000.SH": corrected}, "1d") == 0  # the same again: nothing written
    await same(plain, cache, ["600000.SH"])
    assert cache.stats.resets == 1 and cache.stats.hits == 1


async def test_a_new_series_keeps_the_windows_of_the_others(
    stores: tuple[TrendStore, WindowCache], client: Redis, keys: Keys
) -> None:
    """A listing's first bar (a series created) moves the trend epoch for the history run, and
    leaves every kept window in place."""
    plain, cache = stores
    await plain.append([bar("600000.SH", i) for i in range(280)])
    await same(plain, cache, ["600000.SH"])
    epoch = await client.get(keys.trend_epoch)
    await plain.append([bar("600001.SH", 0), bar("600000.SH", 280)])  # 600001 created
    assert await client.get(keys.trend_epoch) != epoch
    await same(plain, cache, ["600000.SH", "600001.SH"])
    assert cache.stats.resets == 0 and cache.stats.hits == 1 and cache.stats.misses == 2


async def test_bounded_and_short_series(stores: tuple[TrendStore, WindowCache]) -> None:
    plain, cache = stores
    codes = ["600000.SH", "600001.SH", "600002.SH"]
    for k, code in enumerate(codes):
        await plain.append([bar(code, i) for i in range(10 + k * 200)])  # 10, 210 and 410 bars
    await same(plain, cache, [*codes, "600003.SH"])  # 600003 has no series
    assert len(cache) == 2  # capacity 2: the least recently used dropped
    await plain.append([bar(code, 500) for code in codes])
    await same(plain, cache, codes)
    await same(plain, cache, codes, n=KEEP + 1)  # more than is kept: read whole
    assert len(cache) == 2
