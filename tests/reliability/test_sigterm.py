"""SIGTERM to each service while it is busy: in-flight work finishes and is acknowledged, quotes
flushes its open bars, every process exits 0 within 10 s."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import numpy as np
import pytest
from redis.asyncio import Redis

from marketbus.keys import SIGNALS_GROUP, Keys
from marketbus.sessions import shanghai_ms
from marketbus.trend import VOLUME, unpack

from ._support import (
    Procs,
    expected_signal_ids,
    group_drained,
    group_info,
    publish_bars,
    random_walk_bars,
    signal_ids,
    tick_rows,
    wait_for,
    write_csv,
)

pytestmark = pytest.mark.slow


async def test_quotes_flushes_its_open_bars_and_exits_0(
    procs: Procs, redis_url: str, prefix: str, keys: Keys, client: Redis, tmp_path: Path
) -> None:
    codes = [f"{600000 + i:06d}.SH" for i in range(10)]
    rows = tick_rows(codes, shanghai_ms(2025, 11, 25, 9, 30, 1) + 500, steps=400, step_ms=3_000)
    replay = write_csv(tmp_path / "ticks.csv", rows)
    quotes = procs.start(
        "quotes", url=redis_url, prefix=prefix, MARKETBUS_FEED="replay",
        MARKETBUS_REPLAY_FILE=str(replay), MARKETBUS_SPEED="60",
    )  # fmt: skip
    await wait_for(lambda: client.xlen(keys.bars), 30, "bars closing")
    code, took = quotes.terminate(10)
    assert code == 0 and took < 10, quotes.log()[-3000:]
    accepted = int(await client.hget(keys.metrics, "ticks_accepted") or 0)
    assert 0 < accepted < len(rows), "stopped while idle: the replay had ended"
    # the flushed bars hold every accepted tick: 1m volumes add up to each code's last snapshot
    for c in codes:
        snap = await client.hget(keys.snapshots, c)
        assert snap is not None
        import orjson

        cum = orjson.loads(snap)["volume"]
        bars = unpack(await client.get(keys.trend(c, "1m")))
        assert np.sum(bars[:, VOLUME]) == pytest.approx(cum), c


async def test_signals_acknowledges_its_in_flight_batch_and_exits_0(
    procs: Procs, redis_url: str, prefix: str, keys: Keys, client: Redis
) -> None:
    codes = [f"{600000 + i:06d}.SH" for i in range(40)]
    series = {c: random_walk_bars(c, 330, seed=i) for i, c in enumerate(codes)}
    await publish_bars(client, keys, [b for c in codes for b in series[c][:250]])
    await client.delete(keys.bars)
    env = {"MARKETBUS_AUTO_CALCULATE_SIGNALS": "false", "MARKETBUS_BATCH_SIZE": "20"}
    first = procs.start("signals", url=redis_url, prefix=prefix, name="first", **env)
    await wait_for(lambda: group_info(client, keys.bars, SIGNALS_GROUP), 30, "the group")
    live = [series[c][i] for i in range(250, 330) for c in codes]
    await publish_bars(client, keys, live)

    async def busy() -> bool:
        g = await group_info(client, keys.bars, SIGNALS_GROUP)
        return g is not None and g["entries-read"] is not None and 0 < g["entries-read"] < len(live)

    await wait_for(busy, 30, "the worker busy", every=0.01)
    code, took = first.terminate(10)
    assert code == 0 and took < 10, first.log()[-3000:]
    g = await group_info(client, keys.bars, SIGNALS_GROUP)
    assert g is not None and g["pending"] == 0, f"in-flight bars left unacknowledged: {g}"
    assert g["lag"], "stopped while idle"
    # a second worker takes the rest; nothing missing, nothing twice
    procs.start("signals", url=redis_url, prefix=prefix, name="second", **env)
    await wait_for(lambda: group_drained(client, keys.bars, SIGNALS_GROUP), 60, "the rest consumed")
    got = await signal_ids(client, keys)
    assert len(got) == len(set(got))
    assert set(got) == await expected_signal_ids(client, keys, live)


async def test_gateway_exits_0_with_open_streams_and_requests(
    procs: Procs, redis_url: str, prefix: str
) -> None:
    gateway, base = procs.start_gateway(url=redis_url, prefix=prefix)

    async def sse(http: httpx.AsyncClient) -> None:
        try:
            async with http.stream("GET", "/api/stream/signals") as r:
                async for _ in r.aiter_bytes():
                    pass
        except httpx.HTTPError:
            pass

    async def hammer(http: httpx.AsyncClient) -> None:
        for _ in range(1000):
            try:
                await http.get("/api/signals")
            except httpx.HTTPError:
                return

    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        tasks = [asyncio.create_task(sse(http)) for _ in range(3)]
        tasks += [asyncio.create_task(hammer(http)) for _ in range(4)]
        await asyncio.sleep(1.0)
        code, took = await asyncio.to_thread(gateway.terminate, 10)
        await asyncio.gather(*tasks, return_exceptions=True)
    assert code == 0 and took < 10, gateway.log()[-3000:]
