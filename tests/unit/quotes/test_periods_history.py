"""Seeded sim history of the new periods: the 15m, 30m and 60m bars are the seeded 1m bars
aggregated, the 1w and 1M bars the seeded daily bars aggregated (checked here with pandas, by
time bins and ISO weeks of the exchange's sessions), whole bars only; the week and month the sim
starts in become the code's day state."""

from __future__ import annotations

import datetime as dt
import warnings
from functools import cache

import numpy as np
import pandas as pd
import pytest

from marketbus.sessions import shanghai_ms as sh
from marketbus.trend import FIELDS, TS
from quotes.history import synth_history
from quotes.universe import load_universe

UNIVERSE = load_universe()[::40]
START = sh(2024, 10, 9, 10, 0)  # Wednesday after National Day: its week began on Tuesday the 8th
TZ = "Asia/Shanghai"


@cache
def sessions() -> pd.DatetimeIndex:
    import exchange_calendars as xc

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return xc.get_calendar("XSHG", start="2022-01-01", end="2024-12-31").sessions


def day_ms(day: pd.Timestamp) -> int:
    return sh(day.year, day.month, day.day)


def pandas_bars(rows: np.ndarray, period: str) -> pd.DataFrame:
    """Bars of ``period`` from finer rows, with pandas: intraday by time bins (60m bins offset by
    half an hour in the morning), 1w by ISO week, 1M by month; the bar time is the first bin
    minute, or the first exchange session of the week or month. Column ``end``: when it is over."""
    df = pd.DataFrame(rows, columns=list(FIELDS))
    t = pd.to_datetime(df["ts"].astype("int64"), unit="ms", utc=True).dt.tz_convert(TZ)
    if period in ("15m", "30m", "60m"):
        width = pd.Timedelta(minutes=int(period[:-1]))
        shift = pd.Timedelta(minutes=30) if period == "60m" else pd.Timedelta(0)
        morning = t.dt.hour < 12
        start = (t - shift).dt.floor(width) + shift
        start = start.where(morning, t.dt.floor(width))
        key = start.dt.as_unit("ms").astype("int64").to_numpy()
        end = key + width // pd.Timedelta(milliseconds=1)
    else:
        days = sessions()
        if period == "1w":
            label = t.dt.isocalendar().week.to_numpy() + 100 * t.dt.isocalendar().year.to_numpy()
            group = days.isocalendar().week.to_numpy() + 100 * days.isocalendar().year.to_numpy()
        else:
            label = (t.dt.year * 100 + t.dt.month).to_numpy()
            group = days.year * 100 + days.month
        first = {g: day_ms(days[group == g].min()) for g in np.unique(label)}
        last = {g: day_ms(days[group == g].max()) for g in np.unique(label)}
        key = np.array([first[g] for g in label])
        end = np.array([last[g] + 15 * 3_600_000 + 10_000 for g in label])
    df["key"], df["end"] = key, end
    out = df.groupby("key", sort=True).agg(
        open=("open", "first"), high=("high", "max"), low=("low", "min"), close=("close", "last"),
        volume=("volume", "sum"), amount=("amount", "sum"), end=("end", "first"), first=("ts", "min"),
    )  # fmt: skip
    return out


@pytest.mark.parametrize("period", ["15m", "30m", "60m", "1w", "1M"])
def test_seeded_bars_of_the_new_periods_are_the_seeded_bars_aggregated(period: str) -> None:
    history = synth_history(UNIVERSE, 7, START)
    for item in UNIVERSE:
        source = history.daily[item.code] if period in ("1w", "1M") else history.minute[item.code]
        want = pandas_bars(source, period)
        whole = want[(want.index >= source[0, TS]) & (want["end"] <= START)]  # begun in the rows, over
        got = history.derived[period][item.code]
        assert got[:, TS].astype(np.int64).tolist() == whole.index.tolist()
        columns = ["open", "high", "low", "close", "volume", "amount"]
        assert np.allclose(got[:, 1:], whole[columns].to_numpy(), rtol=1e-12, atol=0.006)
        assert len(got) > 0


def test_the_week_and_month_of_the_start_are_carried_in_the_day_state() -> None:
    history = synth_history(UNIVERSE, 7, START)
    tuesday = sh(2024, 10, 8)
    for item in UNIVERSE:
        daily = history.daily[item.code]
        assert daily[-1, TS] == tuesday  # the only trading day of the week (and month) before the start
        assert tuesday not in history.derived["1w"][item.code][:, TS]  # not a bar yet: still forming
        state = history.carried[item.code]
        assert state.day_ms == tuesday and set(state.bars) == {"1w", "1M"}
        for bar in state.bars.values():
            assert bar.carried and bar.ts == tuesday
            assert (bar.open, bar.high, bar.low, bar.close) == tuple(daily[-1, 1:5])
            assert -bar.base_volume == daily[-1, 5] and bar.volume == 0.0
        assert state.bars["1w"].close_at == sh(2024, 10, 11, 15, 0, 10)
        assert state.bars["1M"].close_at == sh(2024, 10, 31, 15, 0, 10)


def test_the_60m_bars_are_the_four_of_the_sessions() -> None:
    history = synth_history(UNIVERSE[:1], 7, sh(2024, 10, 10, 9, 30))
    stamps = history.derived["60m"][UNIVERSE[0].code][:, TS]
    times = {
        dt.datetime.fromtimestamp(ts / 1000, dt.timezone(dt.timedelta(hours=8))).strftime("%H:%M")
        for ts in stamps
    }
    assert times == {"09:30", "10:30", "13:00", "14:00"}
