"""Seed history for the simulated market: daily and 1-minute bars that end where the sim starts,
and the coarser periods made of them (5m, 15m, 30m, 60m of the minutes, 1w and 1M of the days,
by :func:`quotes.aggregate.resample`, the bucket rules of the live path).

For a code without trend data, the sim's start is made consistent with its past: the last
1-minute bar before the start closes at the code's reference price (the sim's first price), the
daily series ends on the trading day before the start with the close of that day's last minute
(the sim's ``pre_close``), and a start in the afternoon resumes the morning's open, high, low and
volume. Paths are drawn backwards from those anchors, so the reference prices stay realistic.
Everything is a pure function of the seed, the code and the start time.

A derived bar is seeded only when it is whole: it starts inside the seeded rows and closes by the
sim's start. The week and month the sim starts in are not bars yet: their days before the start
become the code's stored day state instead (:func:`quotes.aggregate.prior_days_state`, written
unless the code has one), so the 1w and 1M bars the live path closes hold the whole week and
month.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from marketbus import trend
from marketbus.sessions import (
    bar_close_ms,
    day_start_ms,
    is_in_session,
    local_day_start_ms,
    next_session_open,
    session_minutes,
    trading_date,
    trading_days_before,
)
from quotes.aggregate import coarser_periods, prior_days_state, resample
from quotes.daystate import CodeState, encode
from quotes.feeds.base import DayState
from quotes.feeds.sim import round_to_tick
from quotes.universe import Listing

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from marketbus.keys import Keys

DAILY_BARS = 250
MINUTE_BARS = 250
DAILY_SIGMA = 0.016
MINUTE_SIGMA = 0.0015


@dataclass
class SeedHistory:
    daily: dict[str, np.ndarray] = field(default_factory=dict)  # code -> rows (n, 7)
    minute: dict[str, np.ndarray] = field(default_factory=dict)
    states: dict[str, DayState] = field(default_factory=dict)  # where the sim starts
    derived: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # period -> code -> rows
    carried: dict[str, CodeState] = field(default_factory=dict)  # code -> its days of the start's
    # week and month, as the aggregator's stored day state


def derived_rows(rows: np.ndarray, period: str, start_ms: int) -> np.ndarray:
    """The whole bars of ``period`` made of ``rows`` (finer bars of one code), closed by
    ``start_ms``."""
    out = resample(rows, period, whole_first=True)
    if len(out):
        closed = np.array([bar_close_ms(int(ts), period) <= start_ms for ts in out[:, 0]], dtype=bool)
        out = out[closed]
    return out


def _code_rng(seed: int, code: str) -> np.random.Generator:
    exchange = {"SH": 1, "SZ": 2, "BJ": 3}[code[-2:]]
    return np.random.default_rng([seed, int(code[:6]), exchange])


def minutes_before(start_ms: int, count: int) -> list[int]:
    """The starts of the ``count`` one-minute bars before ``start_ms``, oldest first."""
    out: list[int] = []
    day = trading_date(start_ms)
    todays = [m for m in session_minutes(day) if m < start_ms]
    out.extend(reversed(todays))
    while len(out) < count:
        day = trading_days_before(day, 1)[0]
        out.extend(reversed(session_minutes(day)))
    return sorted(out[:count])


def _ohlc(
    rng: np.random.Generator, close: np.ndarray, first_open: float, spread: float, tick: float
) -> np.ndarray:
    """Open/high/low around a close path; rows of (open, high, low, close), tick-rounded."""
    n = len(close)
    ticks = np.full(n, tick)
    open_ = np.concatenate([[first_open], close[:-1]]) * np.exp(rng.normal(0, spread / 4, n))
    open_ = round_to_tick(open_, ticks)
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, spread / 2, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, spread / 2, n)))
    high = np.maximum(round_to_tick(high, ticks), np.maximum(open_, close))
    low = np.minimum(round_to_tick(low, ticks), np.minimum(open_, close))
    return np.stack([open_, high, low, close], axis=1)


def _backward_path(rng: np.random.Generator, end: float, n: int, sigma: float, limit: float) -> np.ndarray:
    """``n`` closes ending at ``end``, drawn backwards with regime drifts and clipped returns."""
    drift = np.repeat(rng.choice([-1.0, 0.0, 1.0], n // 20 + 1) * sigma * 0.3, 20)[:n]
    returns = np.clip(rng.normal(drift, sigma, n), -limit * 0.95, limit * 0.95)
    # close[i] = close[i + 1] / exp(returns[i + 1]); close[-1] = end
    log_back = np.concatenate([[0.0], np.cumsum(returns[::-1][:-1])])
    return (end * np.exp(-log_back))[::-1]


def synth_code(item: Listing, seed: int, start_ms: int) -> tuple[np.ndarray, np.ndarray, DayState]:
    """Daily rows, minute rows and the sim's start state of one code."""
    rng = _code_rng(seed, item.code)
    tick = item.tick_size
    ref = item.ref_price if item.ref_price > 0 else 10.0
    lots_per_day = np.exp(rng.normal(np.log(3e8), 0.6)) / (ref * 100)

    minutes = np.array(minutes_before(start_ms, MINUTE_BARS), dtype=np.float64)
    m_close = round_to_tick(
        _backward_path(rng, ref, len(minutes), MINUTE_SIGMA, 0.02), np.full(len(minutes), tick)
    )
    m_ohlc = _ohlc(rng, m_close, m_close[0], MINUTE_SIGMA, tick)
    m_vol = (1 + rng.poisson(lots_per_day / 240 * rng.lognormal(0, 0.5, len(minutes)))) * 100.0
    m_amt = np.round(m_vol * m_ohlc.mean(axis=1), 2)
    minute_rows = np.column_stack([minutes, m_ohlc, m_vol, m_amt])

    start_day = local_day_start_ms(start_ms)
    before = minutes < start_day
    pre_close = float(m_close[before][-1])  # the last close of the previous trading day
    today = ~before
    days = trading_days_before(trading_date(start_ms), DAILY_BARS)
    d_close = round_to_tick(
        _backward_path(rng, pre_close, len(days), DAILY_SIGMA, item.limit_pct),
        np.full(len(days), tick),
    )
    d_ohlc = _ohlc(rng, d_close, d_close[0], DAILY_SIGMA, tick)
    d_vol = np.round(lots_per_day * rng.lognormal(0, 0.35, len(days))) * 100.0
    d_amt = np.round(d_vol * d_ohlc.mean(axis=1), 2)
    d_ts = np.array([day_start_ms(d) for d in days], dtype=np.float64)
    daily_rows = np.column_stack([d_ts, d_ohlc, d_vol, d_amt])

    if today.any():
        state = DayState(
            day_ms=start_day,
            pre_close=pre_close,
            price=float(m_close[-1]),
            open=float(m_ohlc[today][0, 0]),
            high=float(m_ohlc[today][:, 1].max()),
            low=float(m_ohlc[today][:, 2].min()),
            volume=float(m_vol[today].sum()),
            amount=float(m_amt[today].sum()),
        )
    else:
        state = DayState(day_ms=start_day, pre_close=pre_close, price=float(m_close[-1]))
    return daily_rows, minute_rows, state


def synth_history(universe: list[Listing], seed: int, start_ms: int) -> SeedHistory:
    """Reproducible history of every listing for a sim that starts at ``start_ms``."""
    if not is_in_session(start_ms):
        start_ms = next_session_open(start_ms)
    out = SeedHistory()
    for item in universe:
        daily, minute, state = synth_code(item, seed, start_ms)
        out.daily[item.code] = daily
        out.minute[item.code] = minute
        out.states[item.code] = state
        for source, rows in (("1m", minute), ("1d", daily)):
            for period in coarser_periods(source):
                out.derived.setdefault(period, {})[item.code] = derived_rows(rows, period, start_ms)
        carried = prior_days_state(start_ms, daily)
        if carried is not None:
            out.carried[item.code] = carried
    return out


async def codes_without_history(
    client: Redis, keys: Keys, codes: list[str], periods: tuple[str, ...] = ("1d", "1m")
) -> list[str]:
    """Codes that lack trend data in any of ``periods``."""
    pipe = client.pipeline(transaction=False)
    for code in codes:
        for period in periods:
            pipe.strlen(keys.trend(code, period))
    lengths = await pipe.execute()
    k = len(periods)
    return [
        code for i, code in enumerate(codes) if any(lengths[i * k + j] < trend.RECORD_BYTES for j in range(k))
    ]


async def seed_history(
    store: trend.TrendStore, universe: list[Listing], seed: int, start_ms: int
) -> dict[str, DayState]:
    """Write seed history for the listings without trend data; return their sim start states."""
    missing = set(await codes_without_history(store.client, store.keys, [u.code for u in universe]))
    chosen = [item for item in universe if item.code in missing]
    if not chosen:
        return {}
    history = synth_history(chosen, seed, start_ms)
    await store.merge_rows(history.daily, "1d")
    await store.merge_rows(history.minute, "1m")
    for period, rows_by_code in history.derived.items():
        await store.merge_rows({c: rows for c, rows in rows_by_code.items() if len(rows)}, period)
    if history.carried:
        pipe = store.client.pipeline(transaction=False)
        for code, carried in history.carried.items():
            pipe.hsetnx(store.keys.daystate, code, encode(carried))  # a stored state stands
        await pipe.execute()
    return history.states
