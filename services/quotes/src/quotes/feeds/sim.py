"""The simulated market: seeded, reproducible, session-aware.

Each code follows a log-price random walk with regime-switching drift (up, flat, down trends
lasting minutes), weak mean reversion to its reference price and occasional volume surges that
start a trend, so moving averages cross and volume waves appear on 1-minute bars. Observed prices
are rounded to the tick size (0.001 yuan ETFs, 0.01 yuan stocks) and clamped to the daily price
limits; volumes come in lots of 100 shares and are cumulative per day, as providers send them.

The market advances in steps of one market second; each code ticks with probability
``TICK_PROB`` per step (about every 3 market seconds), at a random millisecond inside the second;
the first step of a run and of every trading day quotes every code (so every snapshot exists
from the first batch on).
The tick sequence depends only on the seed, the universe, the start time and the resume state:
never on wall-clock jitter.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np

from marketbus.contracts import Tick
from marketbus.sessions import (
    is_in_session,
    last_session_open,
    local_day_start_ms,
    next_session_open,
    trading_date,
)
from quotes.boards import limit_pct
from quotes.feeds.base import DayState, Feed, FeedContext, SessionClock, make_tick
from quotes.universe import Listing

STEP_MS = 1000
TICK_PROB = 1 / 3
SIGMA = 2.0e-4  # log-price noise per market second (~0.15% per minute)
DRIFT = 8.0e-6  # trend drift per market second (~0.5% per 10 minutes)
REGIME_SWITCH = 1 / 600  # a regime lasts about 10 market minutes
SURGE_START = 1 / 2400  # a volume surge about every 40 market minutes per code
REVERSION = 1.5e-5  # pull toward the reference price (half-life ~ 3 trading days)
TICKS_PER_DAY = 4 * 3600 * TICK_PROB
MAX_STEPS_PER_ROUND = 120  # catch up at most 2 market minutes per round


def round_to_tick(values: np.ndarray, tick: np.ndarray) -> np.ndarray:
    """Round half up to a multiple of the tick size (and to the tick's decimals)."""
    prices = np.floor(values / tick + 0.5 + 1e-9) * tick
    return np.where(tick < 0.005, np.round(prices, 3), np.round(prices, 2))


class SimMarket:
    """The pure state machine of the simulated market (no clock, no I/O)."""

    def __init__(
        self,
        universe: list[Listing],
        seed: int,
        start_ms: int,
        resume: dict[str, DayState] | None = None,
    ) -> None:
        self.codes = [item.code for item in universe]
        n = len(universe)
        self.rng = np.random.default_rng(seed)
        self.tick = np.array([item.tick_size for item in universe])
        self.securities = [item.security for item in universe]
        self.undated_limit_pct = np.array([item.limit_pct for item in universe])
        self.limit_pct = self.undated_limit_pct.copy()
        ref = np.array([item.ref_price if item.ref_price > 0 else 10.0 for item in universe])
        self.anchor = np.log(ref)
        self.base_amount = np.exp(self.rng.normal(np.log(3e8), 0.6, n))  # yuan per day
        self.mu = np.zeros(n)
        self.surge_left = np.zeros(n)
        self.surge_mult = np.ones(n)
        resume = resume or {}
        self.t = start_ms if is_in_session(start_ms) else next_session_open(start_ms)
        self.day_ms = local_day_start_ms(self.t)
        self.pre_close = ref.copy()
        self.price = ref.copy()
        self.open = np.full(n, np.nan)
        self.high = np.full(n, np.nan)
        self.low = np.full(n, np.nan)
        self.volume = np.zeros(n)
        self.amount = np.zeros(n)
        for i, code in enumerate(self.codes):
            state = resume.get(code)
            if state is None:
                continue
            if state.day_ms == self.day_ms:
                self.pre_close[i], self.price[i] = state.pre_close, state.price
                self.open[i] = np.nan if state.open is None else state.open
                self.high[i] = np.nan if state.high is None else state.high
                self.low[i] = np.nan if state.low is None else state.low
                self.volume[i], self.amount[i] = state.volume, state.amount
            else:
                self.pre_close[i] = self.price[i] = state.price
        self.logp = np.log(self.price)
        self._set_limits()
        self._opening = True  # the first step of a run or a day quotes every code

    def _set_limits(self) -> None:
        # the rule of the day (dated, as validation checks it); no limit (an index, a new
        # listing's first days): the listing's undated limit bounds the simulated day
        day = trading_date(self.day_ms)
        dated = [limit_pct(security, day) for security in self.securities]
        self.limit_pct = np.array(
            [p if p is not None else u for p, u in zip(dated, self.undated_limit_pct, strict=True)]
        )
        self.limit_up = round_to_tick(self.pre_close * (1 + self.limit_pct), self.tick)
        self.limit_down = round_to_tick(self.pre_close * (1 - self.limit_pct), self.tick)

    def _new_day(self) -> None:
        self.pre_close = self.price.copy()
        self.open[:] = np.nan
        self.high[:] = np.nan
        self.low[:] = np.nan
        self.volume[:] = 0.0
        self.amount[:] = 0.0
        self._set_limits()
        self._opening = True

    def step(self) -> list[Tick]:
        """One market second at ``self.t``; returns its ticks and moves ``t`` to the next second
        inside a session."""
        day = local_day_start_ms(self.t)
        if day != self.day_ms:
            self.day_ms = day
            self._new_day()
        rng, n = self.rng, len(self.codes)
        # regimes: trend up / flat / down with a random strength
        switch = rng.random(n) < REGIME_SWITCH
        if switch.any():
            k = int(switch.sum())
            self.mu[switch] = rng.choice([-1.0, 0.0, 0.0, 1.0], k) * rng.uniform(0.5, 2.0, k) * DRIFT
        # volume surges start a trend of their own
        surge = (rng.random(n) < SURGE_START) & (self.surge_left <= 0)
        if surge.any():
            k = int(surge.sum())
            self.surge_left[surge] = rng.integers(120, 420, k)
            self.surge_mult[surge] = rng.uniform(3.0, 6.0, k)
            self.mu[surge] = rng.choice([-1.0, 1.0], k) * rng.uniform(2.0, 4.0, k) * DRIFT
        self.surge_left -= 1
        self.surge_mult[self.surge_left <= 0] = 1.0
        # the price process runs every second; ticks observe it
        noise = rng.standard_normal(n) * SIGMA
        self.logp += self.mu + noise - REVERSION * (self.logp - self.anchor)
        ticking = rng.random(n) < TICK_PROB
        if self._opening:
            ticking[:] = True
            self._opening = False
        offsets = rng.integers(0, STEP_MS, n)
        idx = np.flatnonzero(ticking)
        ticks: list[Tick] = []
        if idx.size:
            raw = np.exp(self.logp[idx])
            price = np.clip(round_to_tick(raw, self.tick[idx]), self.limit_down[idx], self.limit_up[idx])
            at_limit = (price <= self.limit_down[idx]) | (price >= self.limit_up[idx])
            self.logp[idx[at_limit]] = np.log(price[at_limit])
            mean_lots = self.base_amount[idx] / TICKS_PER_DAY / (price * 100)
            lots = 1 + rng.poisson(mean_lots * self.surge_mult[idx])
            self.price[idx] = price
            self.volume[idx] += lots * 100
            self.amount[idx] += lots * 100 * price
            opened = np.isnan(self.open[idx])
            self.open[idx[opened]] = price[opened]
            self.high[idx] = np.fmax(self.high[idx], price)
            self.low[idx] = np.fmin(self.low[idx], price)
            for j, i in enumerate(idx.tolist()):
                ticks.append(
                    make_tick(
                        code=self.codes[i],
                        ts=self.t + int(offsets[i]),
                        price=float(price[j]),
                        volume=float(self.volume[i]),
                        amount=round(float(self.amount[i]), 2),
                        open=float(self.open[i]),
                        high=float(self.high[i]),
                        low=float(self.low[i]),
                        pre_close=float(self.pre_close[i]),
                    )
                )
            ticks.sort(key=lambda tick: tick.ts)
        self.t += STEP_MS
        if not is_in_session(self.t):
            self.t = next_session_open(self.t)
        return ticks

    def step_until(self, target_ms: int, max_steps: int | None = None) -> list[Tick]:
        """Every tick before ``target_ms`` (at most ``max_steps`` market seconds of them)."""
        out: list[Tick] = []
        steps = 0
        while self.t < target_ms and (max_steps is None or steps < max_steps):
            out.extend(self.step())
            steps += 1
        return out

    def day_states(self) -> dict[str, DayState]:
        def opt(x: float) -> float | None:
            return None if np.isnan(x) else float(x)

        return {
            code: DayState(
                day_ms=self.day_ms,
                pre_close=float(self.pre_close[i]),
                price=float(self.price[i]),
                open=opt(self.open[i]),
                high=opt(self.high[i]),
                low=opt(self.low[i]),
                volume=float(self.volume[i]),
                amount=float(self.amount[i]),
            )
            for i, code in enumerate(self.codes)
        }


class SimFeed(Feed):
    """The simulated market on an accelerated session clock."""

    name = "sim"

    def __init__(
        self,
        market: SimMarket,
        clock: SessionClock,
        batch: int = 500,
        interval: float = 0.05,
    ) -> None:
        self.market = market
        self.clock = clock
        self.batch = batch
        self.interval = interval
        self._delivered = market.t

    def now_ms(self) -> int:
        return self._delivered

    async def batches(self) -> AsyncIterator[list[Tick]]:
        while True:
            target = self.clock.now_ms()
            ticks = self.market.step_until(target, MAX_STEPS_PER_ROUND)
            for start in range(0, len(ticks), self.batch):
                yield ticks[start : start + self.batch]
            # the consumer asked for more: every tick before market.t has been handled
            self._delivered = self.market.t
            if self.market.t >= target:
                await asyncio.sleep(self.interval)
            else:
                await asyncio.sleep(0)


def sim_start_ms(now_ms: int) -> int:
    """The latest session open at or before ``now_ms``: a user at night sees a live market."""
    return last_session_open(now_ms)


def create(ctx: FeedContext) -> Feed:
    from quotes.feeds.base import WallClock

    start = ctx.start_ms if ctx.start_ms is not None else sim_start_ms(WallClock().now_ms())
    market = SimMarket(ctx.universe, ctx.settings.seed, start, ctx.resume)
    clock = SessionClock(market.t, ctx.settings.speed)
    return SimFeed(market, clock, batch=ctx.settings.tick_batch)
