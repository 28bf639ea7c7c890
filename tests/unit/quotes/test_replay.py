import asyncio
from pathlib import Path

import pandas as pd
import pytest

from marketbus.contracts import Tick
from marketbus.sessions import SESSION_END_GRACE_MS
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
    # the recording is over: so is its last trading day (not the week or the month it is in)
    assert feed.now_ms() == sh(2024, 5, 13, 15) + SESSION_END_GRACE_MS


STK_MINS = (
    "ts_code,trade_time,open,close,high,low,vol,amount\n"
    # 2024-05-10: the opening auction as its own 09:30:00 row, then bars labelled by their end
    "600519.SH,2024-05-10 09:30:00,1700.00,1700.00,1700.00,1700.00,5600,9520000\n"
    "600519.SH,2024-05-10 09:31:00,1700.50,1702.00,1703.00,1699.00,8100,13777000\n"
    "600519.SH,2024-05-10 09:32:00,1702.00,1701.00,1702.50,1700.50,4000,6806000\n"
    "600519.SH,2024-05-10 11:30:00,1705.00,1706.00,1706.50,1704.00,3000,5116500\n"
    "600519.SH,2024-05-10 13:01:00,1706.00,1704.00,1706.00,1703.50,2500,4261250\n"
    "600519.SH,2024-05-10 15:00:00,1710.00,1712.00,1712.00,1709.00,9000,15399000\n"
    "510300.SH,2024-05-10 09:30:00,3.612,3.612,3.612,3.612,120000,433440\n"
    "510300.SH,2024-05-10 09:31:00,3.611,3.615,3.616,3.611,300000,1084200\n"
    "510300.SH,2024-05-10 13:00:00,3.620,3.620,3.620,3.620,1000,3620\n"  # a 13:00:00 row
    "510300.SH,2024-05-10 13:01:00,3.619,3.621,3.622,3.618,200000,724000\n"
    # 2024-05-13: an auction row whose first bar is missing stands as that bar
    "510300.SH,2024-05-13 09:30:00,3.630,3.630,3.630,3.630,90000,326700\n"
    "510300.SH,2024-05-13 15:00:00,3.640,3.641,3.642,3.639,150000,546000\n"
)


def test_stk_mins_file_gives_the_same_bars_through_import_and_replay(tmp_path: Path) -> None:
    from marketbus.trend import AMOUNT, CLOSE, HIGH, LOW, OPEN, TS, VOLUME
    from quotes.importer import parse_bars

    path = tmp_path / "stk_mins.csv"
    path.write_text(STK_MINS)
    parsed = parse_bars(path, "1m")
    assert parsed.rejected == []
    imported = {
        code: [(int(r[TS]), r[OPEN], r[HIGH], r[LOW], r[CLOSE], r[VOLUME], r[AMOUNT]) for r in rows]
        for code, rows in parsed.rows_by_code.items()
    }
    ticks, bad = load_replay(path)
    assert bad == []
    agg = BarAggregator(("1m",))
    replayed: dict[str, list[tuple[int, float, float, float, float, float, float]]] = {}
    for b in agg.add_many(ticks) + agg.flush():
        replayed.setdefault(b.code, []).append((b.ts, b.open, b.high, b.low, b.close, b.volume, b.amount))
    assert replayed.keys() == imported.keys()
    for code, bars in imported.items():
        assert replayed[code] == [pytest.approx(bar) for bar in bars], code

    moutai = imported["600519.SH"]
    assert [bar[0] for bar in moutai] == [
        sh(2024, 5, 10, 9, 30), sh(2024, 5, 10, 9, 31), sh(2024, 5, 10, 11, 29),
        sh(2024, 5, 10, 13, 0), sh(2024, 5, 10, 14, 59),
    ]  # fmt: skip
    # the auction opens the first bar, which holds the auction's volume and amount too
    assert moutai[0] == (sh(2024, 5, 10, 9, 30), 1700.0, 1703.0, 1699.0, 1702.0, 13700.0, 23297000.0)
    assert moutai[-1][4] == 1712.0  # the 15:00:00 row is the day's last bar: the close is kept
    etf = imported["510300.SH"]
    assert etf[1] == (sh(2024, 5, 10, 13, 0), 3.620, 3.622, 3.618, 3.621, 201000.0, 727620.0)
    assert etf[2] == (sh(2024, 5, 13, 9, 30), 3.630, 3.630, 3.630, 3.630, 90000.0, 326700.0)
    assert etf[3][0] == sh(2024, 5, 13, 14, 59)


def test_stk_mins_labels_off_the_session_are_named(tmp_path: Path) -> None:
    path = tmp_path / "stk_mins.csv"
    path.write_text(
        "ts_code,trade_time,open,close,high,low,vol,amount\n"
        "600519.SH,2024-05-10 09:31:00,1700,1701,1702,1699,100,170100\n"
        "600519.SH,2024-05-10 12:00:00,1700,1701,1702,1699,100,170100\n"  # line 3: lunch
        "600519.SH,2024-05-10 09:29:00,1700,1701,1702,1699,100,170100\n"  # line 4: before the open
    )
    ticks, bad = load_replay(path)
    assert [(row.line, row.reason) for row in bad] == [
        (3, "trade_time '2024-05-10 12:00:00' is not the end of a 1m session bar (nor the 09:30:00 "
            "opening auction)"),
        (4, "trade_time '2024-05-10 09:29:00' is not the end of a 1m session bar (nor the 09:30:00 "
            "opening auction)"),
    ]  # fmt: skip
    assert {t.ts for t in ticks} <= set(range(sh(2024, 5, 10, 9, 30), sh(2024, 5, 10, 9, 31)))


def test_five_minute_stk_mins_fold_the_auction_the_same_way(tmp_path: Path) -> None:
    from marketbus.trend import TS, VOLUME
    from quotes.importer import parse_bars

    rows = (
        "600519.SH,2024-05-10 09:30:00,1700,1700,1700,1700,5600,9520000\n"
        "600519.SH,2024-05-10 09:35:00,1700.5,1702,1703,1699,8100,13777000\n"
        "600519.SH,2024-05-10 15:00:00,1710,1712,1712,1709,9000,15399000\n"
    )
    (tmp_path / "import.csv").write_text("ts_code,trade_time,open,close,high,low,vol,amount\n" + rows)
    replay_rows = "".join(line + ",5m\n" for line in rows.splitlines())
    (tmp_path / "replay.csv").write_text(
        "ts_code,trade_time,open,close,high,low,vol,amount,period\n" + replay_rows
    )
    imported = parse_bars(tmp_path / "import.csv", "5m").rows_by_code["600519.SH"]
    assert imported[:, TS].tolist() == [sh(2024, 5, 10, 9, 30), sh(2024, 5, 10, 14, 55)]
    assert imported[:, VOLUME].tolist() == [13700.0, 9000.0]
    ticks, bad = load_replay(tmp_path / "replay.csv")
    assert bad == []
    agg = BarAggregator(("5m",))
    bars = agg.add_many(ticks) + agg.flush()
    assert [(b.ts, b.open, b.close, b.volume) for b in bars] == [
        (sh(2024, 5, 10, 9, 30), 1700.0, 1702.0, 13700.0),
        (sh(2024, 5, 10, 14, 55), 1710.0, 1712.0, 9000.0),
    ]
