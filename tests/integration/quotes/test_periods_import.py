"""``import-history`` and the new periods against the real server: a daily file brings its 1w and
1M bars (aggregated here independently), a 1-minute file its 5m-60m bars; Tushare 60m and weekly
files import directly."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
from redis.asyncio import Redis

from marketbus.keys import Keys
from marketbus.sessions import shanghai_ms as sh
from marketbus.settings import Settings
from marketbus.trend import AMOUNT, CLOSE, HIGH, LOW, OPEN, TS, VOLUME, TrendStore
from quotes.importer import import_history, parse_bars

DAILY = "ts_code,trade_date,open,high,low,close,pre_close,change,pct_chg,vol,amount"
MINS = "ts_code,trade_time,open,close,high,low,vol,amount"


def daily_rows() -> list[tuple[dt.date, float, float, float, float, float, float]]:
    """600519.SH from Wednesday 25 September to Friday 11 October 2024 (the holiday: 1-7 October)."""
    days = [dt.date(2024, 9, d) for d in (25, 26, 27, 30)] + [dt.date(2024, 10, d) for d in (8, 9, 10, 11)]
    out = []
    for i, day in enumerate(days):
        o = 1500.0 + 10 * i
        out.append((day, o, o + 25, o - 15, o + 5 * (-1) ** i, 1000.0 + 100 * i, 1_500_000.0 + 1000 * i))
    return out


async def test_a_daily_import_brings_its_week_and_month_bars(
    tmp_path: Path, client: Redis, keys: Keys, settings: Settings
) -> None:
    rows = daily_rows()
    path = tmp_path / "daily.csv"
    lines = [DAILY] + [
        f"600519.SH,{d:%Y%m%d},{o},{h},{lo},{c},0,0,0,{v},{a}" for d, o, h, lo, c, v, a in rows
    ]
    path.write_text("\n".join(lines) + "\n")
    summary = await import_history(path, settings, progress=False)
    assert summary.bars == len(rows)
    # the week of 23 September starts before the file (Wednesday the 25th): left out as partial;
    # the holiday week (30 September alone) and the week of 8 October are whole
    assert summary.derived == {"1w": (2, 2), "1M": (1, 1)}
    assert "derived: 1w 2 bars (2 new), 1M 1 bars (1 new)" in summary.render()
    store = TrendStore(client, keys)
    weeks = await store.tail("600519.SH", "1w", 10)
    groups = {dt.date(2024, 9, 30): rows[3:4], dt.date(2024, 10, 8): rows[4:]}
    assert weeks[:, TS].tolist() == [sh(d.year, d.month, d.day) for d in groups]
    for got, group in zip(weeks, groups.values(), strict=True):
        assert got[OPEN] == group[0][1] and got[CLOSE] == group[-1][4]
        assert got[HIGH] == max(r[2] for r in group) and got[LOW] == min(r[3] for r in group)
        assert got[VOLUME] == sum(r[5] for r in group) * 100  # lots -> shares
        assert abs(got[AMOUNT] - sum(r[6] for r in group) * 1000) < 0.01  # thousand yuan -> yuan
    months = await store.tail("600519.SH", "1M", 10)
    assert months[:, TS].tolist() == [sh(2024, 10, 8)]  # October's first trading day
    assert months[0, VOLUME] == sum(r[5] for r in rows[4:]) * 100
    again = await import_history(path, settings, progress=False)
    assert again.derived == {"1w": (2, 0), "1M": (1, 0)}  # importing twice adds nothing
    assert (await store.tail("600519.SH", "1w", 10)).tobytes() == weeks.tobytes()


async def test_a_minute_import_brings_its_coarser_bars(
    tmp_path: Path, client: Redis, keys: Keys, settings: Settings
) -> None:
    day = dt.date(2024, 10, 9)
    lines = [MINS]
    minutes = []
    for h0, m0, h1, m1 in ((9, 30, 11, 30), (13, 0, 15, 0)):
        t = dt.datetime(day.year, day.month, day.day, h0, m0)
        while t < dt.datetime(day.year, day.month, day.day, h1, m1):
            t += dt.timedelta(minutes=1)  # stk_mins: the row is stamped with its bar's end
            i = len(minutes)
            price, volume = 3.9 + 0.001 * (i % 17), 100.0 + i
            minutes.append((price, volume))
            stamp = f"{t:%Y-%m-%d %H:%M:%S}"
            lines.append(f"510300.SH,{stamp},{price},{price},{price + 0.002},{price - 0.001},{volume},1000")
    path = tmp_path / "mins.csv"
    path.write_text("\n".join(lines) + "\n")
    summary = await import_history(path, settings, period="1m", progress=False)
    assert summary.bars == 240
    assert {p: bars for p, (bars, _new) in summary.derived.items()} == {
        "5m": 48,
        "15m": 16,
        "30m": 8,
        "60m": 4,
    }
    store = TrendStore(client, keys)
    sixty = await store.tail("510300.SH", "60m", 10)
    assert sixty[:, TS].tolist() == [sh(2024, 10, 9, 9, 30), sh(2024, 10, 9, 10, 30), sh(2024, 10, 9, 13),
                                     sh(2024, 10, 9, 14)]  # fmt: skip
    assert sixty[:, VOLUME].tolist() == [sum(v for _, v in minutes[k * 60 : k * 60 + 60]) for k in range(4)]
    assert sixty[:, OPEN].tolist() == [minutes[k * 60][0] for k in range(4)]


def test_tushare_60m_and_weekly_files_import_directly(tmp_path: Path) -> None:
    sixty = tmp_path / "60m.csv"
    sixty.write_text("\n".join([
        MINS,
        "510300.SH,2024-10-09 09:30:00,3.90,3.90,3.90,3.90,5000,19500",  # the opening auction
        "510300.SH,2024-10-09 10:30:00,3.90,3.95,3.96,3.89,10000,39200",
        "510300.SH,2024-10-09 11:30:00,3.95,3.93,3.97,3.92,8000,31500",
        "510300.SH,2024-10-09 14:00:00,3.93,3.99,4.00,3.93,9000,35600",
        "510300.SH,2024-10-09 15:00:00,3.99,4.01,4.02,3.98,12000,48000",
        "510300.SH,2024-10-09 11:00:00,3.95,3.93,3.97,3.92,8000,31500",  # no 60m bar ends at 11:00
    ]) + "\n")  # fmt: skip
    parsed = parse_bars(sixty, "60m")
    rows = parsed.rows_by_code["510300.SH"]
    assert rows[:, TS].tolist() == [sh(2024, 10, 9, 9, 30), sh(2024, 10, 9, 10, 30), sh(2024, 10, 9, 13),
                                    sh(2024, 10, 9, 14)]  # fmt: skip
    assert rows[0, VOLUME] == 15000 and rows[0, OPEN] == 3.90  # the auction row folded into 09:30
    assert [(r.line, "not the end of a 60m session bar" in r.reason) for r in parsed.rejected] == [(7, True)]

    weekly = tmp_path / "weekly.csv"
    weekly.write_text("\n".join([
        DAILY,
        "600519.SH,20240930,1500,1560,1490,1550,1480,70,0.047,50000,7600000",  # the holiday week
        "600519.SH,20241011,1550,1600,1500,1520,1550,-30,-0.019,40000,6200000",  # its last day
        "600519.SH,20241009,1550,1600,1500,1520,1550,-30,-0.019,40000,6200000",  # the same week
    ]) + "\n")  # fmt: skip
    parsed = parse_bars(weekly, "1w")
    rows = parsed.rows_by_code["600519.SH"]
    assert rows[:, TS].tolist() == [sh(2024, 9, 30), sh(2024, 10, 8)]  # stamped by the first trading day
    assert rows[0, VOLUME] == 5_000_000 and rows[0, AMOUNT] == 7_600_000_000
    assert [(r.line, "duplicate of line 3" in r.reason) for r in parsed.rejected] == [(4, True)]
    assert np.isfinite(rows).all()
