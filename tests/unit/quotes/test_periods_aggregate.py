"""15m, 30m, 60m, 1w and 1M bars from the aggregator against bars aggregated here, independently,
from the aggregator's own 1m bars (plain loops over explicit session boundaries, ISO weeks and
calendar months of the exchange's sessions).

The days run over a lunch break every day, the week of National Day 2024 (Monday 30 September is
its only trading day), the following week (it starts on Tuesday 8 October) and two month boundaries
(September/October across the holiday, October/November inside one week)."""

from __future__ import annotations

import datetime as dt
import math
import random
import warnings
from collections import defaultdict
from functools import cache
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from marketbus.contracts import Bar, Tick
from marketbus.sessions import shanghai_ms as sh
from quotes.aggregate import BarAggregator, prior_days_state, resample
from quotes.daystate import decode, encode
from quotes.feeds.base import make_tick

SH = ZoneInfo("Asia/Shanghai")
CODES = ("510300.SH", "600519.SH")
DAYS = [dt.date(2024, 9, d) for d in (26, 27, 30)] + [dt.date(2024, 10, d) for d in (8, 9, 10, 11, 30, 31)]
DAYS.append(dt.date(2024, 11, 1))
NEW_PERIODS = ("15m", "30m", "60m", "1w", "1M")
STEP = {"15m": 15, "30m": 30}
SIXTY = [((9, 30), (10, 30)), ((10, 30), (11, 30)), ((13, 0), (14, 0)), ((14, 0), (15, 0))]
SESSIONS = [((9, 30), (11, 30)), ((13, 0), (15, 0))]


@cache
def xshg_sessions() -> tuple[dt.date, ...]:
    """The exchange's trading days (exchange-calendars directly, not marketbus.sessions)."""
    import exchange_calendars as xc

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cal = xc.get_calendar("XSHG", start="2024-01-01", end="2024-12-31")
    return tuple(d.date() for d in cal.sessions)


def ms(day: dt.date, hour: int = 0, minute: int = 0, second: int = 0) -> int:
    return sh(day.year, day.month, day.day, hour, minute, second)


# --- ticks ------------------------------------------------------------------------------------


def day_ticks(day: dt.date, rng: random.Random, prices: dict[str, float]) -> list[Tick]:
    """Every code: the 09:25 auction result, a trade every 20 s in both sessions, a print stamped
    11:30:00 and one 15:00:03 (the session-end grace); day-cumulative volume from zero."""
    stamps = [ms(day, 9, 25)]
    for (h0, m0), (h1, m1) in SESSIONS:
        t, end = ms(day, h0, m0, 10), ms(day, h1, m1)
        while t < end:
            stamps.append(t)
            t += 20_000
    stamps += [ms(day, 11, 30), ms(day, 15, 0, 3)]
    stamps.sort()
    out: list[Tick] = []
    for code in CODES:
        volume = amount = 0.0
        for ts in stamps:
            prices[code] = round(max(0.5, prices[code] * (1 + rng.gauss(0, 0.002))), 3)
            traded = 100.0 * rng.randint(1, 50)
            volume += traded
            amount += round(traded * prices[code], 2)
            out.append(make_tick(code, ts, prices[code], volume, amount))
    return sorted(out, key=lambda t: t.ts)


def all_ticks() -> list[list[Tick]]:
    rng = random.Random(20241008)
    prices = {"510300.SH": 3.9, "600519.SH": 1500.0}
    return [day_ticks(day, rng, prices) for day in DAYS]


def run(agg: BarAggregator, days: list[list[Tick]]) -> list[tuple[Bar, int]]:
    """Every bar with the market time it was emitted at: the timer (``advance``) runs before each
    tick and at 15:00:09 / 15:00:10 after each day's last print."""
    out: list[tuple[Bar, int]] = []
    for ticks in days:
        for tick in ticks:
            out += [(b, tick.ts) for b in agg.advance(tick.ts)]
            out += [(b, tick.ts) for b in agg.add(tick)]
        day = dt.datetime.fromtimestamp(ticks[0].ts / 1000, SH).date()
        for now in (ms(day, 15, 0, 9), ms(day, 15, 0, 10)):
            out += [(b, now) for b in agg.advance(now)]
    end = ms(DAYS[-1], 23)
    out += [(b, end) for b in agg.flush()]
    return out


def as_dict(bars: list[Bar]) -> dict[tuple[str, str, int], tuple[float, ...]]:
    out: dict[tuple[str, str, int], tuple[float, ...]] = {}
    for b in bars:
        key = (b.code, b.period, b.ts)
        assert key not in out, f"bar emitted twice: {key}"
        out[key] = (b.open, b.high, b.low, b.close, b.volume, b.amount)
    return out


# --- the independent aggregation ------------------------------------------------------------------


def label(minute_ts: int, period: str) -> int:
    """The start of the bar of ``period`` holding the 1m bar starting at ``minute_ts``."""
    t = dt.datetime.fromtimestamp(minute_ts / 1000, SH)
    day = t.date()
    if period == "60m":
        bounds = SIXTY
    elif period in STEP:
        bounds = []
        for (h0, m0), (h1, m1) in SESSIONS:
            start = dt.datetime.combine(day, dt.time(h0, m0))
            end = dt.datetime.combine(day, dt.time(h1, m1))
            while start < end:
                stop = start + dt.timedelta(minutes=STEP[period])
                bounds.append(((start.hour, start.minute), (stop.hour, stop.minute)))
                start = stop
    else:
        sessions = xshg_sessions()
        if period == "1w":
            members = [d for d in sessions if d.isocalendar()[:2] == day.isocalendar()[:2]]
        elif period == "1M":
            members = [d for d in sessions if (d.year, d.month) == (day.year, day.month)]
        else:
            members = [day]
        return ms(min(members))
    for (h0, m0), (h1, m1) in bounds:
        if dt.time(h0, m0) <= t.time() < dt.time(h1, m1):
            return ms(day, h0, m0)
    raise AssertionError(f"{t} is in no {period} bar")


def aggregate(minutes: list[Bar], period: str) -> dict[tuple[str, str, int], tuple[float, ...]]:
    """Open of the first minute, highest high, lowest low, close of the last, sums."""
    groups: dict[tuple[str, str, int], list[Bar]] = defaultdict(list)
    for m in sorted(minutes, key=lambda b: (b.code, b.ts)):
        groups[(m.code, period, label(m.ts, period))].append(m)
    return {
        key: (g[0].open, max(b.high for b in g), min(b.low for b in g), g[-1].close,
              sum(b.volume for b in g), sum(b.amount for b in g))
        for key, g in groups.items()
    }  # fmt: skip


def assert_same(got: dict, want: dict) -> None:  # type: ignore[type-arg]
    assert got.keys() == want.keys(), sorted(set(got) ^ set(want))[:10]
    for key, values in want.items():
        close = [
            math.isclose(a, b, rel_tol=1e-9, abs_tol=0.011) for a, b in zip(got[key], values, strict=True)
        ]
        assert all(close), (key, got[key], values)


# --- tests --------------------------------------------------------------------------------------


def test_the_test_days_are_what_they_claim() -> None:
    sessions = set(xshg_sessions())
    assert all(day in sessions for day in DAYS)
    assert [d for d in sessions if dt.date(2024, 9, 30) <= d <= dt.date(2024, 10, 7)] == [
        dt.date(2024, 9, 30)
    ]
    assert min(d for d in sessions if d.isocalendar()[:2] == (2024, 41)) == dt.date(2024, 10, 8)


def test_every_new_period_equals_the_1m_bars_aggregated_independently() -> None:
    emitted = run(BarAggregator(), all_ticks())
    bars = [b for b, _ in emitted]
    minutes = [b for b in bars if b.period == "1m"]
    assert len(minutes) == len(DAYS) * 240 * len(CODES)  # nothing over lunch, nothing after 14:59
    for period in (*NEW_PERIODS, "1d"):
        got = as_dict([b for b in bars if b.period == period])
        assert_same(got, aggregate(minutes, period))
    got = as_dict(bars)
    # the shapes a user sees: four 60m bars a day ending 10:30, 11:30, 14:00, 15:00; 16 and 8
    for period, per_day in (("15m", 16), ("30m", 8), ("60m", 4)):
        assert sum(1 for k in got if k[1] == period) == per_day * len(DAYS) * len(CODES)
    sixty = sorted(
        {dt.datetime.fromtimestamp(k[2] / 1000, SH).strftime("%H:%M") for k in got if k[1] == "60m"}
    )
    assert sixty == ["09:30", "10:30", "13:00", "14:00"]
    weeks = sorted(
        dt.datetime.fromtimestamp(k[2] / 1000, SH).date() for k in got if k[1] == "1w" and k[0] == CODES[0]
    )
    assert weeks == [dt.date(2024, 9, 23), dt.date(2024, 9, 30), dt.date(2024, 10, 8), dt.date(2024, 10, 28)]
    months = sorted(
        dt.datetime.fromtimestamp(k[2] / 1000, SH).date() for k in got if k[1] == "1M" and k[0] == CODES[0]
    )
    assert months == [dt.date(2024, 9, 2), dt.date(2024, 10, 8), dt.date(2024, 11, 1)]
    # the week of 28 October holds the last two days of October and the first of November
    code = CODES[0]
    week = got[(code, "1w", ms(dt.date(2024, 10, 28)))]
    days = [
        got[(code, "1d", ms(d))] for d in (dt.date(2024, 10, 30), dt.date(2024, 10, 31), dt.date(2024, 11, 1))
    ]
    assert week[4] == sum(d[4] for d in days) and week[0] == days[0][0] and week[3] == days[-1][3]


def test_bars_close_on_time_by_the_trading_calendar() -> None:
    """A week or month bar closes at 15:00:10 of its last trading day (Monday 30 September for
    the holiday week), not at 15:00:09 and not when the next tick comes; a 60m bar at its end."""
    emitted = run(BarAggregator(), all_ticks())
    sessions = xshg_sessions()
    for bar, at in emitted:
        if bar.period not in ("1w", "1M", "1d"):
            continue
        day = dt.datetime.fromtimestamp(bar.ts / 1000, SH).date()
        if bar.period == "1w":
            last = max(d for d in sessions if d.isocalendar()[:2] == day.isocalendar()[:2])
        elif bar.period == "1M":
            last = max(d for d in sessions if (d.year, d.month) == (day.year, day.month))
        else:
            last = day
        if last > DAYS[-1]:
            assert at == ms(DAYS[-1], 23), bar  # November is still open: only the final flush
        else:
            assert at == ms(last, 15, 0, 10), (bar, dt.datetime.fromtimestamp(at / 1000, SH))
    holiday_week = [at for b, at in emitted if b.period == "1w" and b.ts == ms(dt.date(2024, 9, 30))]
    assert holiday_week == [ms(dt.date(2024, 9, 30), 15, 0, 10)] * len(CODES)
    sixty = {(b.code, b.ts): at for b, at in emitted if b.period == "60m"}
    day = dt.date(2024, 10, 9)
    assert sixty[(CODES[0], ms(day, 9, 30))] == ms(day, 10, 30, 10)  # the first tick past 10:30
    assert sixty[(CODES[0], ms(day, 10, 30))] > ms(day, 11, 30, 0)  # the 11:30:00 print was in it
    assert sixty[(CODES[0], ms(day, 14))] == ms(day, 15, 0, 10)  # on time, after the 15:00:03 print


def test_a_print_at_the_session_end_belongs_to_the_last_60m_bar() -> None:
    agg = BarAggregator(("60m",))
    day = dt.date(2024, 10, 9)
    agg.add(make_tick("510300.SH", ms(day, 10, 45), 4.0, 1_000, 4_000))
    agg.add(make_tick("510300.SH", ms(day, 11, 30, 0), 4.2, 1_500, 6_100))  # grace: same bar
    assert agg.advance(ms(day, 11, 30, 9)) == []
    (bar,) = agg.advance(ms(day, 11, 30, 10))
    assert (bar.ts, bar.close, bar.high, bar.volume) == (ms(day, 10, 30), 4.2, 4.2, 500)
    agg.add(make_tick("510300.SH", ms(day, 14, 59, 59), 4.1, 2_000, 8_150))
    agg.add(make_tick("510300.SH", ms(day, 15, 0, 9), 4.3, 2_600, 10_730))  # still the 14:00 bar
    agg.add(make_tick("510300.SH", ms(day, 15, 0, 10), 9.9, 9_999, 99_999))  # outside every bar
    (bar,) = agg.flush()
    assert (bar.ts, bar.close, bar.high, bar.volume) == (ms(day, 14), 4.3, 4.3, 2_600 - 1_500)


def test_a_week_bar_takes_the_first_days_provider_open_and_every_days_high_and_low() -> None:
    agg = BarAggregator(("1d", "1w"))
    monday, tuesday = dt.date(2024, 10, 28), dt.date(2024, 10, 29)
    agg.add(make_tick("510300.SH", ms(monday, 9, 31), 4.0, 100, 400, open=3.95, high=4.1, low=3.9))
    agg.add(make_tick("510300.SH", ms(tuesday, 9, 31), 4.2, 300, 1_260, open=4.15, high=4.4, low=4.1))
    agg.add(make_tick("510300.SH", ms(tuesday, 10), 4.3, 500, 2_160, open=4.15, high=4.4, low=3.8))
    bars = {(b.period, b.ts): b for b in agg.flush()}
    week = bars[("1w", ms(monday))]
    assert (week.open, week.high, week.low, week.close) == (3.95, 4.4, 3.8, 4.3)
    assert week.volume == 100 + 500 and week.amount == 400 + 2_160
    assert bars[("1d", ms(tuesday))].open == 4.15  # the day bar keeps its own day's open


# --- the day state: restarts keep the forming 60m and 1w bars ---------------------------------------


def restarted(agg: BarAggregator, states: dict[str, bytes]) -> BarAggregator:
    states |= agg.take_changed()
    return BarAggregator(agg.periods, {code: decode(raw, code) for code, raw in states.items()})


def test_restarts_across_days_give_the_same_bars_of_every_period() -> None:
    days = all_ticks()
    want = as_dict([b for b, _ in run(BarAggregator(), days)])
    agg = BarAggregator()
    states: dict[str, bytes] = {}
    got: list[Bar] = []
    count = 0
    for ticks in days:
        for tick in ticks:
            count += 1
            if count % 1499 == 0:  # a restart: only what was stored survives
                agg = restarted(agg, states)
            got += agg.advance(tick.ts)
            got += agg.add(tick)
        day = dt.datetime.fromtimestamp(ticks[0].ts / 1000, SH).date()
        agg = restarted(agg, states)  # and one after every close
        got += agg.advance(ms(day, 15, 0, 10))
    got += restarted(agg, states).flush()
    assert as_dict(got) == want


def test_a_restart_keeps_the_open_60m_and_week_bars() -> None:
    monday, tuesday = dt.date(2024, 10, 28), dt.date(2024, 10, 29)
    agg = BarAggregator(("60m", "1w"))
    agg.add(make_tick("600519.SH", ms(monday, 9, 30, 5), 1500.0, 1_000, 1_500_000))
    agg.add(make_tick("600519.SH", ms(monday, 14, 59, 50), 1510.0, 9_000, 13_550_000))
    agg.advance(ms(monday, 15, 0, 10))  # Monday's 60m bars close, the week goes on
    agg.add(make_tick("600519.SH", ms(tuesday, 10, 40), 1490.0, 2_000, 2_980_000))
    agg.add(make_tick("600519.SH", ms(tuesday, 10, 50), 1520.0, 2_600, 3_892_000))
    before = {b.period: b for b in agg.open_bars()}
    raw = agg.take_changed()["600519.SH"]
    assert decode(raw, "600519.SH").bars["1w"].carried and encode(decode(raw)) == raw
    agg = BarAggregator(("60m", "1w"), {"600519.SH": decode(raw, "600519.SH")})
    assert {b.period: b for b in agg.open_bars()} == before  # both open bars survived as they were
    agg.add(make_tick("600519.SH", ms(tuesday, 11, 0), 1530.0, 3_000, 4_504_000))
    bars = {b.period: b for b in agg.advance(ms(dt.date(2024, 11, 1), 15, 0, 10))}
    sixty, week = bars["60m"], bars["1w"]
    assert (sixty.ts, sixty.open, sixty.high, sixty.close, sixty.volume) == (
        ms(tuesday, 10, 30), 1490.0, 1530.0, 1530.0, 1_000.0,  # from the baseline of the first tick
    )  # fmt: skip
    assert (week.ts, week.open, week.high, week.low, week.close) == (
        ms(monday),
        1500.0,
        1530.0,
        1490.0,
        1530.0,
    )
    assert week.volume == 9_000 + 3_000 and week.amount == 13_550_000 + 4_504_000


def test_a_week_begun_in_history_goes_on_in_the_live_bars() -> None:
    """Days of the week that are history (1d rows, never aggregated from ticks) become the
    forming week and month bars of the day state, so the week the live path closes is whole."""
    rows = np.array([
        [ms(dt.date(2024, 10, 28)), 4.0, 4.2, 3.9, 4.1, 10_000, 41_000],
        [ms(dt.date(2024, 10, 29)), 4.1, 4.5, 4.0, 4.4, 20_000, 86_000],
    ])  # fmt: skip
    start = ms(dt.date(2024, 10, 30), 9, 30)
    state = prior_days_state(start, rows)
    assert state is not None and set(state.bars) == {"1w", "1M"}
    agg = BarAggregator(("1d", "1w", "1M"), {"510300.SH": decode(encode(state))})
    day = dt.date(2024, 10, 30)
    agg.add(make_tick("510300.SH", ms(day, 9, 30, 3), 4.3, 5_000, 21_500))
    agg.add(make_tick("510300.SH", ms(day, 14, 0), 3.8, 8_000, 33_000))
    bars = {b.period: b for b in agg.advance(ms(dt.date(2024, 11, 1), 15, 0, 10))}
    wednesday = bars["1d"]
    whole = np.vstack([rows, [[wednesday.ts, wednesday.open, wednesday.high, wednesday.low,
                               wednesday.close, wednesday.volume, wednesday.amount]]])  # fmt: skip
    for period in ("1w", "1M"):
        bar = bars[period]
        (want,) = resample(whole, period)
        assert [bar.ts, bar.open, bar.high, bar.low, bar.close, bar.volume, bar.amount] == want.tolist()
    assert bars["1w"].volume == 38_000 and bars["1w"].open == 4.0 and bars["1w"].low == 3.8
    assert prior_days_state(ms(dt.date(2024, 10, 28), 9, 30), rows) is None  # nothing before Monday


@pytest.mark.parametrize("period", NEW_PERIODS)
def test_resample_equals_the_independent_aggregation(period: str) -> None:
    """The history path (finer rows into coarser ones) groups as the live path does."""
    emitted = run(BarAggregator(("1m", "1d")), all_ticks()[:5])
    source = "1d" if period in ("1w", "1M") else "1m"
    fine = [b for b, _ in emitted if b.period == source]
    for code in CODES:
        mine = sorted((b for b in fine if b.code == code), key=lambda b: b.ts)
        rows = np.array([[b.ts, b.open, b.high, b.low, b.close, b.volume, b.amount] for b in mine])
        got = {(code, period, int(r[0])): tuple(r[1:]) for r in resample(rows, period)}
        want = {k: v for k, v in aggregate(mine, period).items()}
        assert_same(got, want)
