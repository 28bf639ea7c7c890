import numpy as np
from redis.asyncio import Redis

from marketbus.contracts import Bar
from marketbus.keys import Keys
from marketbus.trend import CLOSE, TS, TrendStore


def bar(ts: int, close: float = 1.0) -> Bar:
    return Bar(
        code="510300.SH",
        period="1m",
        ts=ts,
        open=1,
        high=2,
        low=0.5,
        close=close,
        volume=100,
        amount=150,
    )


async def test_append_is_idempotent_and_bounded(client: Redis, keys: Keys) -> None:
    store = TrendStore(client, keys, max_bars=250)
    assert await store.append([bar(1), bar(2), bar(2, close=3.0), bar(1)]) == [3, 1, 2, 0]
    assert await client.get(keys.trend_epoch) == b"1"  # the series was created
    tail = await store.tail("510300.SH", "1m", 10)
    assert tail[:, TS].tolist() == [1, 2]
    assert tail[-1, CLOSE] == 3.0  # same bar time: replaced, not appended
    await store.append([bar(t) for t in range(3, 1000)])
    assert await client.get(keys.trend_epoch) == b"1"  # appended to, not created
    full = await store.tail("510300.SH", "1m", 5000)
    assert len(full) <= 500 and full[-1, TS] == 999
    assert (full[1:, TS] > full[:-1, TS]).all()


async def test_an_import_does_not_overwrite_a_bar_appended_meanwhile(client: Redis, keys: Keys) -> None:
    """The live service appends a bar while an import merges the same series: both survive."""
    store = TrendStore(client, keys, max_bars=250)
    await store.append([bar(60_000 * i) for i in range(1, 4)])
    imported = np.array([[60_000 * i, 1, 2, 0.5, 1.5, 100, 150] for i in range(10, 13)], float)
    real_packed = store.packed
    raced = False

    async def packed_with_a_live_append(*args, **kwargs):  # the live writer lands mid-merge
        nonlocal raced
        rows = await real_packed(*args, **kwargs)
        if not raced:
            raced = True
            await store.append([bar(60_000 * 20, close=9.0)])
        return rows

    store.packed = packed_with_a_live_append  # type: ignore[method-assign]
    assert await store.merge_rows({"510300.SH": imported}, "1m") == 3
    got = (await store.tail("510300.SH", "1m", 100))[:, TS].tolist()
    assert got == [60_000 * i for i in (1, 2, 3, 10, 11, 12, 20)]
