"""Restarts of the quotes service against a real server: the stored day state makes a restart
resume exactly where the last written batch left off, so no stored bar is ever rewritten with less.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import orjson
from redis.asyncio import Redis

from marketbus import wire
from marketbus.clock import MarketClock
from marketbus.contracts import Bar, Tick
from marketbus.keys import Keys
from marketbus.sessions import bucket
from marketbus.sessions import shanghai_ms as sh
from marketbus.settings import Settings
from marketbus.trend import TS, VOLUME, TrendStore, unpack
from quotes.feeds.base import Feed, make_tick
from quotes.service import QuotesService
from quotes.universe import load_universe

UNIVERSE = load_universe()
DAY = (2024, 5, 10)
CODES = ["510300.SH", "600519.SH", "159915.SZ"]
PRICE = {"510300.SH": 3.5, "600519.SH": 1700.0, "159915.SZ": 1.9}


class ScriptFeed(Feed):
    """Hands over batches; after each the clock moves to the time given with it. ``drained`` is
    set once the service asked for more after the last batch (it has processed them all)."""

    name = "script"

    def __init__(self, steps: list[tuple[list[Tick], int]], start: int = 0) -> None:
        self.steps = steps
        self.clock = start
        self.drained = asyncio.Event()

    def now_ms(self) -> int:
        return self.clock

    async def batches(self) -> AsyncIterator[list[Tick]]:
        for ticks, clock in self.steps:
            yield ticks
            self.clock = clock
        self.drained.set()
        await asyncio.Event().wait()


async def run_service(client: Redis, settings: Settings, feed: ScriptFeed) -> QuotesService:
    """A service run from start (restoring its state) to SIGTERM-like stop, with every batch
    of the feed processed and the bars due at the feed's last clock closed."""
    service = QuotesService(client, settings, UNIVERSE, feed)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        await asyncio.wait_for(feed.drained.wait(), 20)
        await service.close_bars()
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
    return service


def day_ticks(until: int) -> list[Tick]:
    """Three codes trading every 10 s from 09:30 to ``until``, 100 shares a tick."""
    out: list[Tick] = []
    t = sh(*DAY, 9, 30, 1)
    n = 0
    while t <= until:
        if sh(*DAY, 11, 30) <= t < sh(*DAY, 13):
            t = sh(*DAY, 13, 0, 1)
        n += 1
        for code in CODES:
            p = PRICE[code]
            out.append(make_tick(code, t, p, 100.0 * n, 100.0 * n * p, open=p, pre_close=p))
        t += 10_000
    return out


async def bars_stream(client: Redis, keys: Keys) -> list[Bar]:
    return [wire.decode(Bar, f) for _i, f in await client.xrange(keys.bars)]


async def series(client: Redis, keys: Keys) -> dict[tuple[str, str], bytes]:
    return {(c, p): await client.get(keys.trend(c, p)) or b"" for c in CODES for p in ("1m", "5m", "1d")}


async def test_a_restart_after_the_close_changes_no_stored_bar(
    client: Redis, keys: Keys, settings: Settings
) -> None:
    ticks = day_ticks(sh(*DAY, 14, 59, 58))
    last_print = [make_tick(c, sh(*DAY, 15, 0, 3), PRICE[c], 10**6, 10**6 * PRICE[c]) for c in CODES]
    steps = [(ticks[i : i + 300], ticks[min(i + 300, len(ticks) - 1)].ts) for i in range(0, len(ticks), 300)]
    steps.append((last_print, sh(*DAY, 15, 5)))
    await run_service(client, settings, ScriptFeed(steps))
    published = await bars_stream(client, keys)
    stored = await series(client, keys)
    last_minute = unpack(stored[("510300.SH", "1m")])[-1]
    assert last_minute[TS] == sh(*DAY, 14, 59) and last_minute[VOLUME] > 0
    # restart at 16:00: the first poll returns the last snapshot of the session again
    feed = ScriptFeed([(last_print, sh(*DAY, 16))], start=sh(*DAY, 16))
    service = await run_service(client, settings, feed)
    assert await series(client, keys) == stored  # not one byte of any bar changed
    assert await bars_stream(client, keys) == published  # and nothing published again
    assert service.stats.accepted == 0


async def test_a_restart_mid_bar_continues_the_partial_bar(
    client: Redis, keys: Keys, settings: Settings
) -> None:
    code = "600519.SH"

    def at(s: int, volume: float) -> Tick:
        return make_tick(code, sh(*DAY, 10, 0, s), 1700.0, volume, volume * 1700, pre_close=1700.0)

    first = [make_tick(code, sh(*DAY, 9, 59, 50), 1700.0, 100_000, 1.7e8, pre_close=1700.0)]
    morning = [at(1, 120_000), at(20, 150_000), at(40, 180_000)]
    await run_service(
        client, settings, ScriptFeed([(first, sh(*DAY, 9, 59, 55)), (morning, sh(*DAY, 10, 0, 41))])
    )
    store = TrendStore(client, keys)
    partial = (await store.tail(code, "1m", 1))[-1]
    assert (partial[TS], partial[VOLUME]) == (sh(*DAY, 10), 80_000)  # stored, unfinished
    # the restart sees the repeated last snapshot, then one more trade in the same minute
    await run_service(client, settings, ScriptFeed([([at(40, 180_000), at(50, 190_000)], sh(*DAY, 10, 1))]))
    bar = (await store.tail(code, "1m", 1))[-1]
    assert (bar[TS], bar[VOLUME]) == (sh(*DAY, 10), 90_000)  # continued, never 10,000
    (published,) = [b for b in await bars_stream(client, keys) if b.period == "1m" and b.ts == sh(*DAY, 10)]
    assert published.volume == 90_000


async def test_a_future_tick_is_dead_lettered_and_later_ticks_are_accepted(
    client: Redis, keys: Keys, settings: Settings
) -> None:
    now = sh(*DAY, 10, 0)
    clock = MarketClock(now, int(time.time() * 1000), 1.0)
    settings = settings.model_copy(update={"feed": "eastmoney", "market_clock": clock.spec()})
    code = "510300.SH"
    batch = [
        make_tick(code, now - 2_000, 3.5, 100, 350),
        make_tick(code, sh(*DAY, 14, 0), 3.5, 200, 700),  # four hours ahead of the clock
        make_tick(code, now - 1_000, 3.501, 300, 1050),
    ]
    service = QuotesService(client, settings, UNIVERSE, ScriptFeed([]))
    await service.process(batch)
    dlq = await client.xrange(keys.dlq)
    assert len(dlq) == 1
    error = dlq[0][1][b"error"].decode()
    assert error.startswith("future: ") and "14:00:00" in error
    assert orjson.loads(dlq[0][1][b"data"])["ts"] == sh(*DAY, 14, 0)
    assert await client.xlen(keys.ticks) == 2  # the tick after it is accepted
    assert service.last_ts[code] == now - 1_000
    assert await client.hget(keys.metrics, "ticks_rejected:future") == b"1"


async def test_the_heartbeat_publishes_the_market_clock(
    client: Redis, keys: Keys, settings: Settings
) -> None:
    class Report:
        def to_json(self) -> bytes:
            return b'{"codes": 3}'

    feed = ScriptFeed([], start=sh(*DAY, 10, 30))
    feed.last_report = Report()  # type: ignore[attr-defined]
    service = QuotesService(client, settings, UNIVERSE, feed)
    before = int(time.time() * 1000)
    await service.heartbeat()
    clock = orjson.loads(await client.get(keys.market_clock))
    assert clock["ts"] == sh(*DAY, 10, 30)
    assert before <= clock["wall"] <= int(time.time() * 1000)
    assert await client.get(keys.poll_stats) == b'{"codes": 3}'


# --- a real process, killed -------------------------------------------------------------------


def start_quotes(redis_url: str, keys: Keys) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETBUS_")}
    env |= {"MARKETBUS_REDIS_URL": redis_url, "MARKETBUS_KEY_PREFIX": keys.prefix,
            "MARKETBUS_FEED": "sim", "MARKETBUS_SPEED": "60", "MARKETBUS_SEED_HISTORY": "false"}  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-m", "quotes"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


async def wait_until(check: object, what: str, within_s: float = 60.0) -> None:
    deadline = time.monotonic() + within_s
    while not await check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")  # the caller shows the log
        await asyncio.sleep(0.05)


async def code_ticks(client: Redis, keys: Keys, code: str) -> list[Tick]:
    ticks = (wire.decode(Tick, f) for _i, f in await client.xrange(keys.ticks))
    return [t for t in ticks if t.code == code]


async def test_sigkill_mid_bar_then_restart_publishes_the_whole_bar(
    client: Redis, keys: Keys, redis_url: str
) -> None:
    code = "510300.SH"

    async def three_minutes() -> bool:
        first, last = await client.xrange(keys.ticks, count=1), await client.xrevrange(keys.ticks, count=1)
        if not first:
            return False
        return wire.decode(Tick, last[0][1]).ts - wire.decode(Tick, first[0][1]).ts >= 150_000

    first = start_quotes(redis_url, keys)
    try:
        await wait_until(three_minutes, "three minutes of ticks")
    finally:
        first.send_signal(signal.SIGKILL)  # no flush: only what each batch wrote survives
        out, _ = first.communicate(timeout=20)
    assert first.returncode == -signal.SIGKILL, out
    ticks = await code_ticks(client, keys, code)
    minute = bucket(ticks[-1].ts, "1m")  # the bar being built when the process died
    assert minute is not None
    inside = [t for t in ticks if bucket(t.ts, "1m") == minute]
    before = [t for t in ticks if (bucket(t.ts, "1m") or 0) < minute]
    assert before, "the killed bar is not the first one"
    published = [b for b in await bars_stream(client, keys) if b.code == code and b.period == "1m"]
    assert minute not in {b.ts for b in published}
    # the restarted sim carries on from the next minute: the killed bar gets no more ticks, and
    # is published from the stored day state as it stood
    second = start_quotes(redis_url, keys)
    try:

        async def bar_published() -> bool:
            bars = await bars_stream(client, keys)
            return any(b.code == code and b.period == "1m" and b.ts == minute for b in bars)

        await wait_until(bar_published, "the killed bar")
    finally:
        second.send_signal(signal.SIGTERM)
        out, _ = second.communicate(timeout=20)
    assert second.returncode == 0, out
    (bar,) = [
        b for b in await bars_stream(client, keys) if b.code == code and b.period == "1m" and b.ts == minute
    ]
    prices = [t.price for t in inside]
    assert (bar.open, bar.high, bar.low, bar.close) == (prices[0], max(prices), min(prices), prices[-1])
    assert bar.volume == inside[-1].volume - before[-1].volume
    rows = unpack(await client.get(keys.trend(code, "1m")))
    assert minute in rows[:, TS].tolist()
    assert rows[rows[:, TS] == minute][0, VOLUME] == bar.volume
