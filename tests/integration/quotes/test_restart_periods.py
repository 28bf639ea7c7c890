"""A quotes restart mid-week keeps the open 60m and 1w bars (the stored day state), against the real
server: the bars published after the restart are those of a run that never stopped, and their
figures are the ticks' own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from redis.asyncio import Redis

from marketbus import wire
from marketbus.contracts import Bar, Tick
from marketbus.keys import Keys
from marketbus.sessions import shanghai_ms as sh
from marketbus.settings import Settings
from marketbus.trend import TS, VOLUME, TrendStore
from quotes.feeds.base import Feed, make_tick
from quotes.service import QuotesService
from quotes.universe import load_universe

UNIVERSE = load_universe()
CODE = "600519.SH"
MONDAY, TUESDAY, FRIDAY = (2024, 10, 28), (2024, 10, 29), (2024, 11, 1)


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


async def run_service(client: Redis, settings: Settings, steps: list[tuple[list[Tick], int]]) -> None:
    """One service life: restore the stored state, take every batch, close what is due, stop."""
    feed = ScriptFeed(steps)
    service = QuotesService(client, settings, UNIVERSE, feed)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        await asyncio.wait_for(feed.drained.wait(), 20)
        await service.close_bars()
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)


def ticks_of(day: tuple[int, int, int], start: tuple[int, int, int], end: tuple[int, int, int],
             first_n: int = 0) -> list[Tick]:  # fmt: skip
    """A trade every 10 s from ``start`` to ``end`` (lunch skipped), 100 shares each, the price
    moving within the band, the day's open as the provider's open field."""
    out: list[Tick] = []
    t, stop = sh(*day, *start), sh(*day, *end)
    n = first_n
    base = 1700.0 if day == MONDAY else 1690.0
    while t <= stop:
        if sh(*day, 11, 30) <= t < sh(*day, 13):
            t = sh(*day, 13, 0, 1)
        n += 1
        price = round(base + (n % 37) - 18 + (5 if day == TUESDAY and n > 900 else 0), 2)
        out.append(
            make_tick(CODE, t, price, 100.0 * n, round(100.0 * n * price, 2), open=base, pre_close=1700.0)
        )
        t += 10_000
    return out


def script() -> tuple[list[tuple[list[Tick], int]], list[tuple[list[Tick], int]]]:
    """(before the stop, after the restart): Monday whole and Tuesday to 10:45; then the rest of
    Tuesday, and the clock on to Friday's close."""
    monday = ticks_of(MONDAY, (9, 30, 1), (14, 59, 58))
    morning = ticks_of(TUESDAY, (9, 30, 1), (10, 45, 0))
    rest = ticks_of(TUESDAY, (10, 45, 10), (14, 59, 58), first_n=len(morning))
    before = [
        (monday[i : i + 500], monday[min(i + 500, len(monday) - 1)].ts) for i in range(0, len(monday), 500)
    ]
    before += [([], sh(*MONDAY, 15, 5)), (morning, sh(*TUESDAY, 10, 45, 0))]
    after = [([morning[-1]], sh(*TUESDAY, 10, 45, 5))]  # the first poll repeats the last snapshot
    after += [(rest[i : i + 500], rest[min(i + 500, len(rest) - 1)].ts) for i in range(0, len(rest), 500)]
    after.append(([], sh(*FRIDAY, 15, 5)))
    return before, after


async def published(client: Redis, keys: Keys, period: str) -> list[Bar]:
    bars = (wire.decode(Bar, f) for _i, f in await client.xrange(keys.bars))
    return [b for b in bars if b.code == CODE and b.period == period]


async def test_a_restart_mid_week_keeps_the_open_60m_and_week_bars(
    client: Redis, keys: Keys, settings: Settings
) -> None:
    before, after = script()
    await run_service(client, settings, before)
    # stopped at 10:45 on Tuesday: the 10:30 60m bar and the week are stored, not published
    assert sh(*TUESDAY, 10, 30) not in {b.ts for b in await published(client, keys, "60m")}
    assert await published(client, keys, "1w") == []
    store = TrendStore(client, keys)
    partial_week = (await store.tail(CODE, "1w", 1))[-1]
    assert partial_week[TS] == sh(*MONDAY)
    await run_service(client, settings, after)

    # the reference: the same ticks through a service that never stopped
    ref_keys = Keys(keys.prefix + "-ref")
    ref_settings = settings.model_copy(update={"key_prefix": ref_keys.prefix})
    await run_service(client, ref_settings, [*before, *after[1:]])
    for period in ("60m", "1w", "1M", "1d", "30m", "15m"):
        got, want = await published(client, keys, period), await published(client, ref_keys, period)
        assert got == want and got, period
    # October's bar closed on time on Thursday the 31st (its last trading day) without a tick
    (october,) = await published(client, keys, "1M")
    assert october.ts == sh(2024, 10, 8) and october.volume == (await published(client, keys, "1w"))[0].volume

    (sixty,) = [b for b in await published(client, keys, "60m") if b.ts == sh(*TUESDAY, 10, 30)]
    tuesday = [t for t in [*before[-1][0], *after[1][0]] if t.ts < sh(*TUESDAY, 11, 30)]
    inside = [t for t in tuesday if t.ts >= sh(*TUESDAY, 10, 30)]
    earlier = [t for t in tuesday if t.ts < sh(*TUESDAY, 10, 30)]
    prices = [t.price for t in inside]
    assert (sixty.open, sixty.high, sixty.low, sixty.close) == (
        prices[0],
        max(prices),
        min(prices),
        prices[-1],
    )
    assert sixty.volume == inside[-1].volume - earlier[-1].volume

    (week,) = await published(client, keys, "1w")
    monday_ticks = [t for batch, _ in before[:-2] for t in batch]
    tuesday_ticks = [*before[-1][0], *[t for batch, _ in after[1:] for t in batch]]
    everything = monday_ticks + tuesday_ticks
    assert week.ts == sh(*MONDAY)
    assert week.open == monday_ticks[0].open  # Monday's provider open, not Tuesday's
    assert week.high == max(t.price for t in everything) and week.low == min(t.price for t in everything)
    assert week.close == tuesday_ticks[-1].price
    assert week.volume == monday_ticks[-1].volume + tuesday_ticks[-1].volume
    stored = (await store.tail(CODE, "1w", 1))[-1]
    assert stored[TS] == week.ts and stored[VOLUME] == week.volume >= partial_week[VOLUME]


async def test_a_first_start_mid_week_builds_the_week_from_the_stored_daily_bars(
    client: Redis, keys: Keys, settings: Settings
) -> None:
    # the reference: a service that saw Monday's and Tuesday's ticks
    monday = ticks_of(MONDAY, (9, 30, 1), (14, 59, 58))
    tuesday = ticks_of(TUESDAY, (9, 30, 1), (14, 59, 58))
    ref_keys = Keys(keys.prefix + "-ref")
    ref_settings = settings.model_copy(update={"key_prefix": ref_keys.prefix})
    await run_service(
        client,
        ref_settings,
        [(monday, sh(*MONDAY, 15, 5)), (tuesday, sh(*TUESDAY, 15, 5)), ([], sh(*FRIDAY, 15, 5))],
    )
    (ref_week,) = await published(client, ref_keys, "1w")
    (monday_bar,) = [b for b in await published(client, ref_keys, "1d") if b.ts == sh(*MONDAY)]

    # a first start on Tuesday morning with no day state, Monday's daily bar imported
    await TrendStore(client, keys).append([monday_bar])
    feed = ScriptFeed([(tuesday, sh(*TUESDAY, 15, 5)), ([], sh(*FRIDAY, 15, 5))], start=sh(*TUESDAY, 9, 0))
    service = QuotesService(client, settings, UNIVERSE, feed)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        await asyncio.wait_for(feed.drained.wait(), 20)
        await service.close_bars()
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
    (week,) = await published(client, keys, "1w")
    assert week == ref_week  # Monday's open, the whole week's range and volume, not Tuesday's alone
    assert week.open == monday[0].open and week.volume == monday[-1].volume + tuesday[-1].volume
