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
    assert await store.append([bar(1), bar(2), bar(2, close=3.0), bar(1)]) == [1, 1, 2, 0]
    tail = await store.tail("510300.SH", "1m", 10)
    assert tail[:, TS].tolist() == [1, 2]
    assert tail[-1, CLOSE] == 3.0  # same bar time: replaced, not appended
    await store.append([bar(t) for t in range(3, 1000)])
    full = await store.tail("510300.SH", "1m", 5000)
    assert len(full) <= 500 and full[-1, TS] == 999
    assert (full[1:, TS] > full[:-1, TS]).all()
