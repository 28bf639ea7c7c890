"""SignalStore writes whole batches in a few script calls (chunks of WRITE_CHUNK signals): each
signal is still written once, the latest hash moves forward only, and the provisional signals of
closed daily bars are resolved, across chunk boundaries. Real valkey-server (tests/conftest.py)."""

from __future__ import annotations

import numpy as np
import orjson
from redis.asyncio import Redis

from marketbus.contracts import Signal, signal_id
from marketbus.keys import Keys
from marketbus.trend import NF, TS
from signals.evaluate import Target
from signals.provisional import as_provisional
from signals.store import WRITE_CHUNK, SignalStore

DAY = 1_764_000_000_000


def code(i: int) -> str:
    return f"{600000 + i:06d}.SH"


def sig(i: int, bar_ts: int = DAY, side: str = "BUY", strategy: str = "ma_cross") -> Signal:
    return Signal(
        id=signal_id(code(i), strategy, "1d", bar_ts),
        code=code(i),
        name=code(i),
        market="SH主板",
        strategy=strategy,
        strategy_name=strategy,
        side=side,
        price=10.0 + i / 1000,
        period="1d",
        bar_ts=bar_ts,
        confidence=0.5,
        volume_ratio=1.2,
        change_percent=0.5,
        reason="test",
        created_ts=bar_ts + 1,
    )


def target(i: int, bar_ts: int = DAY) -> Target:
    rows = np.ones((3, NF))
    rows[:, TS] = [bar_ts - 2 * 86_400_000, bar_ts - 86_400_000, bar_ts]
    return Target(code(i), "1d", rows)


async def stream_signals(client: Redis, keys: Keys) -> list[dict[str, object]]:
    return [orjson.loads(f[b"data"]) for _, f in await client.xrange(keys.signals)]


async def test_a_batch_larger_than_a_chunk_is_written_once_each(client: Redis, keys: Keys) -> None:
    store = SignalStore(client, keys, maxlen=100_000)
    n = 2 * WRITE_CHUNK + 7
    batch = [sig(i) for i in range(n)]
    assert await store.write(batch) == n
    assert await store.write(batch) == 0  # redelivered: nothing again
    written = await stream_signals(client, keys)
    assert sorted(s["id"] for s in written) == sorted(s.id for s in batch)
    latest = await client.hgetall(keys.signals_latest)
    assert len(latest) == n


async def test_latest_moves_forward_only_within_one_batch(client: Redis, keys: Keys) -> None:
    store = SignalStore(client, keys, maxlen=100_000)
    newer, older = sig(1, bar_ts=DAY + 86_400_000), sig(1, bar_ts=DAY)
    # the newer bar first, the older one in the next chunk of the same call
    batch = [newer] + [sig(100 + i) for i in range(WRITE_CHUNK)] + [older]
    assert await store.write(batch) == len(batch)
    field = f"{code(1)}|ma_cross|1d"
    assert orjson.loads(await client.hget(keys.signals_latest, field))["id"] == newer.id


async def test_provisional_signals_resolve_across_chunks(client: Redis, keys: Keys) -> None:
    store = SignalStore(client, keys, maxlen=100_000)
    n = WRITE_CHUNK + 3
    provisional = [as_provisional(sig(i)) for i in range(n)]
    assert await store.write_provisional(provisional) == n
    assert await store.write_provisional(provisional) == 0
    # the closed bars: even codes give the same side again (confirmed), odd codes nothing (withdrawn)
    closed = [sig(i) for i in range(0, n, 2)]
    await store.write(closed, [target(i) for i in range(n)])
    by_id: dict[object, list[dict[str, object]]] = {}
    for s in await stream_signals(client, keys):
        by_id.setdefault(s["code"], []).append(s)
    for i in range(n):
        statuses = sorted(str(s["status"]) for s in by_id[code(i)])
        assert statuses == sorted(["confirmed" if i % 2 == 0 else "withdrawn", "provisional"]), (i, statuses)
    # a provisional signal for a bar already closed is refused
    assert await store.write_provisional([as_provisional(sig(0))]) == 0


async def test_a_signal_is_stored_as_its_json_whatever_its_text_holds(client: Redis, keys: Keys) -> None:
    # a chunk's values travel as one newline-ended list: text with newlines, quotes and the
    # latest-time key itself must come back exactly, and "latest" still compares bar times
    store = SignalStore(client, keys, maxlen=100_000)
    text = 'line 1\nline 2 {"bar_ts": 1, "x":"bar_ts"}\\n'
    newer = sig(1, bar_ts=DAY + 86_400_000).model_copy(update={"reason": text, "name": text})
    older = sig(1, bar_ts=DAY).model_copy(update={"reason": text})
    provisional = as_provisional(sig(2)).model_copy(update={"reason": text})
    assert await store.write([newer, sig(3)]) == 2
    assert await store.write([older]) == 1
    assert await store.write_provisional([provisional]) == 1
    raw = [f[b"data"] for _, f in await client.xrange(keys.signals)]
    assert raw == [s.model_dump_json().encode() for s in (newer, sig(3), older, provisional)]
    field = f"{code(1)}|ma_cross|1d"
    assert await client.hget(keys.signals_latest, field) == newer.model_dump_json().encode()


async def test_bars_closed_before_the_write_resolve_as_in_it(client: Redis, keys: Keys) -> None:
    # the scan closes the bars while it evaluates them, then passes what that gave to the write
    store = SignalStore(client, keys, maxlen=100_000)
    provisional = [as_provisional(sig(i)) for i in range(4)]
    assert await store.write_provisional(provisional) == 4
    evaluated = [target(i) for i in range(4)]
    resolving = await store.close_bars(evaluated)
    assert sorted(resolving) == sorted((s.code, s.strategy, s.period, s.bar_ts) for s in provisional)
    assert await store.write_provisional([as_provisional(sig(0))]) == 0  # closed already
    assert await store.write([sig(0), sig(2)], evaluated, resolving) == 4  # 2 confirmed, 2 withdrawn
    statuses = sorted((str(s["code"]), str(s["status"])) for s in await stream_signals(client, keys))
    assert statuses == sorted(
        [(code(i), "provisional") for i in range(4)]
        + [(code(0), "confirmed"), (code(1), "withdrawn"), (code(2), "confirmed"), (code(3), "withdrawn")]
    )
