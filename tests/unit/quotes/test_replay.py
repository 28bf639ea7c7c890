import asyncio
from pathlib import Path

import pandas as pd
import pytest

from marketbus.contracts import Tick
from marketbus.sessions import shanghai_ms as sh
from quotes.aggregate import BarAggregator
from quotes.feeds.replay import ReplayFeed, load_replay


def test_tick_file_sorted_with_bad_rows_named(tmp_path: Path) -> None:
    path = tmp_path / "ticks.csv"
    path.write_text(
        "code,ts,price,volume,amount,pre_close\n"
        "510300.SH,2024-05-10 09:30:05,3.90,1000,3900,3.88\n"  # line 2
        "510300.SH,2024-05-10 09:30:01,3.89,500,1945,3.88\n"  # line 3: earlier, sorted first
        "51030.SH,2024-05-10 09:30:02,3.89,500,1945,\n"  # line 4: bad code
        "510300.SH,yesterday,3.89,500,1945,\n"  # line 5: bad ts
        "510300.SH,1715304610000,abc,500,1945,\n"  # line 6: bad price
        "159915.SZ,1715304610,2.1,100,210,\n"  # line 7: epoch seconds
        "510300.SH,2024-05-10 09:30:03,-1,600,2000,\n"  # line 8: parses; the service rejects it
    )
    ticks, bad = load_replay(path)
    assert [(row.line, row.reason.split(" ")[1]) for row in bad] == [
        (4, "code"), (5, "ts"), (6, "price")
    ]  # fmt: skip
    assert [t.ts for t in ticks] == sorted(t.ts for t in ticks)
    assert [(t.code, t.price) for t in ticks] == [
        ("510300.SH", 3.89), ("510300.SH", -1.0), ("510300.SH", 3.90), ("159915.SZ", 2.1)
    ]  # fmt: skip
    assert ticks[0].ts == sh(2024, 5, 10, 9, 30, 1) and ticks[0].pre_close == 3.88
    assert ticks[-1].ts == 1715304610000


def test_bar_file_is_rebuilt_by_the_aggregator(tmp_path: Path) -> None:
    bars = pd.DataFrame({
        "code": ["510300.SH"] * 4,
        "ts": ["2024-05-10 11:28:00", "2024-05-10 11:29:00", "2024-05-10 13:00:00",
               "2024-05-10 13:01:00"],
        "open": [3.90, 3.91, 3.93, 3.92], "high": [3.92, 3.94, 3.95, 3.93],
        "low": [3.89, 3.90, 3.91, 3.90], "close": [3.91, 3.93, 3.92, 3.90],
        "volume": [1000.0, 2000.0, 3000.0, 400.0], "amount": [3910.0, 7860.0, 11760.0, 1560.0],
    })  # fmt: skip
    path = tmp_path / "bars.parquet"
    bars.to_parquet(path)
    ticks, bad = load_replay(path)
    assert bad == [] and len(ticks) == 16
    agg = BarAggregator(("1m",))
    out = agg.add_many(ticks) + agg.flush()
    got = [(b.ts, b.open, b.high, b.low, b.close, b.volume, b.amount) for b in out]
    want = [
        (sh(2024, 5, 10, 11, 28), 3.90, 3.92, 3.89, 3.91, 1000.0, 3910.0),
        (sh(2024, 5, 10, 11, 29), 3.91, 3.94, 3.90, 3.93, 2000.0, 7860.0),
        (sh(2024, 5, 10, 13, 0), 3.93, 3.95, 3.91, 3.92, 3000.0, 11760.0),
        (sh(2024, 5, 10, 13, 1), 3.92, 3.93, 3.90, 3.90, 400.0, 1560.0),
    ]
    assert got == want


def test_daily_bars_carry_pre_close(tmp_path: Path) -> None:
    path = tmp_path / "daily.csv"
    path.write_text(
        "code,trade_date,open,high,low,close,volume,amount\n"
        "600519.SH,20240509,1500,1510,1490,1505,100,150000\n"
        "600519.SH,20240510,1505,1520,1500,1515,200,302000\n"
        "600519.SH,20240510,1,1,1,1,1,1,1\n"  # line 4: too many fields
    )
    ticks, bad = load_replay(path)
    assert [row.line for row in bad] == [4]
    friday = [t for t in ticks if t.ts >= sh(2024, 5, 10)]
    assert friday[0].pre_close == 1505 and friday[0].ts == sh(2024, 5, 10, 9, 30)
    agg = BarAggregator(("1d",))
    daily = agg.add_many(ticks) + agg.flush()
    assert [(b.open, b.high, b.low, b.close, b.volume) for b in daily] == [
        (1500, 1510, 1490, 1505, 100), (1505, 1520, 1500, 1515, 200)
    ]  # fmt: skip


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_replay_clock_runs_at_speed_and_jumps_gaps() -> None:
    def tick(ts: int) -> Tick:
        from quotes.feeds.base import make_tick

        return make_tick("510300.SH", ts, 4.0, 100, 400)

    t0 = sh(2024, 5, 10, 10)
    ticks = [tick(t0), tick(t0 + 30_000), tick(t0 + 120_000), tick(sh(2024, 5, 13, 9, 30))]
    fake = FakeTime()
    feed = ReplayFeed(ticks, speed=60, batch=10, interval=0.001, monotonic=fake)
    it = aiter(feed)
    assert [t.ts for t in await anext(it)] == [t0]
    task = asyncio.ensure_future(anext(it))
    await asyncio.sleep(0.01)
    assert not task.done()  # 30 market seconds = half a wall second away
    assert feed.now_ms() == t0 + 30_000  # the first tick was handled: its bars may close
    fake.now = 0.5  # 30 market seconds later
    assert [t.ts for t in await asyncio.wait_for(task, 2)] == [t0 + 30_000]
    fake.now = 0.9  # the next tick is 66 market s away (more than a wall second): jump
    assert [t.ts for t in await asyncio.wait_for(anext(it), 2)] == [t0 + 120_000]
    monday = await asyncio.wait_for(anext(it), 2)  # over the weekend at once
    assert [t.ts for t in monday] == [sh(2024, 5, 13, 9, 30)]
    with pytest.raises(StopAsyncIteration):
        await anext(it)
    assert feed.now_ms() == sh(2024, 5, 13, 9, 30) + 1
