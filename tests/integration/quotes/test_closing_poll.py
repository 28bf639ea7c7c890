"""The day's closing snapshot is fetched whatever the poll interval (over real HTTP, simulator).

The trading window ends 15 s after 15:00. With a poll interval of 60 market seconds (3 s of wall
time at x20) and a first poll at 14:59:40, the regular poll after it falls at 15:00:40, after the
window: without the closing poll the feed would sleep until the next session and the day's last
snapshot (stamped 15:00:0x, the close) would never reach the bars.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator

import pytest

from marketbus.clock import MarketClock, parse_clock, wall_ms
from marketbus.contracts import Tick
from marketbus.sessions import is_trading_day
from marketbus.sessions import shanghai_ms as sh
from quotes.feeds.eastmoney import EastMoney
from quotes.feeds.poll import PollFeed
from quotes.providersim.launch import SimProcess, start_simulator

DAY = dt.date(2026, 11, 20)  # a Friday, a trading day
CLOSE = sh(DAY.year, DAY.month, DAY.day, 15, 0)


@pytest.fixture(scope="module")
def sim() -> Iterator[SimProcess]:
    process = start_simulator(codes=60, seed=7)
    try:
        yield process
    finally:
        process.stop()


async def test_the_closing_snapshot_is_polled_when_the_interval_overruns_the_window(sim: SimProcess) -> None:
    assert is_trading_day(DAY)  # (loads the calendar now, not in the first poll)
    # 14:59:30 in half a second, twenty times real speed (set once the simulator is up)
    spec = MarketClock(CLOSE - 30_000, wall_ms() + 500, 20.0).spec()
    sim.control("clock", clock=spec)
    clock = parse_clock(spec)
    codes = [row["code"] for row in sim.listing()["securities"]]
    traded = set(codes) - set(sim.listing()["suspended"])
    feed = PollFeed([EastMoney()], codes, interval=3.0, clock=clock, base_url=sim.url)
    ticks: list[Tick] = []
    await asyncio.sleep(clock.wall_seconds(CLOSE - 20_000 - clock.now_ms()))  # the first poll at 14:59:40

    async def collect() -> None:
        async for batch in feed.batches():
            ticks.extend(batch)

    task = asyncio.create_task(collect())
    try:
        while clock.now_ms() < CLOSE + 40_000:  # well past the window (15:00:15) and one interval
            assert not task.done(), task
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    first = min((t.ts for t in ticks), default=None)
    assert first is not None and first < CLOSE - 10_000, (
        f"the first poll came late ({first}): the simulator was slow"
    )
    closing = {t.code for t in ticks if t.ts >= CLOSE}
    assert closing == traded, (
        f"{len(traded - closing)} codes without their closing snapshot, e.g. {sorted(traded - closing)[:5]}"
    )
    assert feed.closing_poll_at() is None  # owed once, then done
