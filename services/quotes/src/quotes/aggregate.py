"""Bar aggregation: ticks in, closed bars of every period out (1m, 5m, 15m, 30m, 60m, 1d, 1w,
1M); and :func:`resample`, finer bars into coarser ones (history seeding and import). Pure (no I/O,
no clock).

- Buckets follow the A-share session rules of :mod:`marketbus.sessions` (a tick stamped
  11:30:00 / 15:00:00 into the bar before, no bar across lunch; 60m bars end at 10:30, 11:30,
  14:00 and 15:00; a 1w / 1M bar holds the trading days of a calendar week / month).
- The call auction: ticks from 09:15 to 09:25 (exclusive) carry indicative prices, not trades.
  They only record the tick time (and start the code's day): no bar, no open/high/low. The
  09:25 result (a tick stamped 09:25:00-09:29:59 with volume > 0) is the first trade and folds
  into the 09:30 bar; a tick of that window without volume matched nothing and makes no bar.
- Providers send cumulative day volume and amount; a 1m/5m bar's volume is the difference of the
  cumulative figure across the bar. A code's day counts from zero when its first tick falls
  before or in the day's first bar (auction included); a first tick later in the day (a service
  started mid-session with no stored state) only sets the baseline, since how much of its total
  belongs to its bar is unknown. The 1d bar takes the provider's cumulative figures, and its
  open (the provider's open field, whenever a tick carries one), high and low when given.
- A 1w or 1M bar is the sum of its days as the 1d bar sees them: opened like a 1d bar, it takes
  each day's provider high and low as well, and at a new day it is carried over (not closed):
  its volume and amount so far stay, the new day's cumulative figures add to them, its open
  stays. It closes with its week's or month's last trading day (or when a tick of the next week
  or month arrives). A code whose earlier days of the week were never aggregated here (no stored
  state: history, or a first start mid-week) starts its week bar from the first tick it sees,
  unless its state is built from its closed 1d bars first (:func:`prior_days_state`; the sim's
  history seeding does so).
- A bar closes when a tick of the same code lands in a later bucket, or when ``advance(now)``
  passes its close time (11:30 and 15:00 bars close on time without a later tick). ``flush()``
  closes everything.
- A late tick for a bucket that already closed does not reopen it: its price is dropped from that
  period's bars and its volume counts in the next bar.
- The per-code state (:class:`quotes.daystate.CodeState`) is what a restart needs:
  ``take_changed()`` encodes the states changed since its last call, and an aggregator built
  from the decoded states (``BarAggregator(states=...)``) goes on exactly as the old one would.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from marketbus.contracts import PERIODS, Bar, Tick
from marketbus.sessions import (
    AUCTION_OPEN,
    DAY_MS,
    DAY_PERIODS,
    INTRADAY_MS,
    MINUTE_MS,
    MORNING_OPEN,
    MULTI_DAY_PERIODS,
    UTC_OFFSET_MS,
    bar_close_ms,
    bucket_of_day,
    bucket_of_minute,
    local_day_start_ms,
    minute_bucket,
)
from marketbus.trend import AMOUNT, CLOSE, HIGH, LOW, NF, OPEN, TS, VOLUME
from quotes.daystate import CodeState, OpenBar, encode

AUCTION_RESULT = (9 * 60 + 25) * MINUTE_MS  # 09:25 local: the opening call auction's result


def is_indicative(ts_ms: int, volume: float) -> bool:
    """True for a pre-open tick that is no trade: 09:15-09:25 (indicative auction prices), or
    09:25-09:30 without volume (the auction matched nothing)."""
    tod = (ts_ms + UTC_OFFSET_MS) % DAY_MS
    if AUCTION_OPEN <= tod < AUCTION_RESULT:
        return True
    return AUCTION_RESULT <= tod < MORNING_OPEN and not volume > 0


class BarAggregator:
    def __init__(
        self, periods: Sequence[str] = PERIODS, states: Mapping[str, CodeState] | None = None
    ) -> None:
        self.periods = tuple(periods)
        self._codes: dict[str, CodeState] = {}
        # close time -> period -> codes whose forming bar of that period closes then (the code
        # strings are the ticks' own: no object per bar)
        self._due: dict[int, dict[str, set[str]]] = {}
        self._changed: set[str] = set()
        for code, state in (states or {}).items():
            for period in [p for p in state.bars if p not in self.periods]:
                del state.bars[period]
            self._codes[code] = state
            for period, bar in state.bars.items():
                self._due.setdefault(bar.close_at, {}).setdefault(period, set()).add(code)

    # --- input ------------------------------------------------------------------------------

    def add(self, tick: Tick) -> list[Bar]:
        """Take one tick (validated, in time order per code); return the bars it closed."""
        minute = minute_bucket(tick.ts)
        if minute is None:
            return []
        closed: list[Bar] = []
        code = tick.code
        day = local_day_start_ms(minute)
        state = self._codes.get(code)
        if state is None or state.day_ms != day:
            if state is not None and day < state.day_ms:
                return []  # a tick of a past day: nothing left to update
            from_zero = minute == day + MORNING_OPEN  # the auction or the first bar
            base_v = 0.0 if from_zero else tick.volume
            base_a = 0.0 if from_zero else tick.amount
            new = CodeState(day, base_v, base_a, tick.ts)
            if state is not None:
                closed.extend(self._close_day(code, state))
                carry_over(state, new)
            state = new
            self._codes[code] = state
        self._changed.add(code)
        if tick.ts > state.last_ts:
            state.last_ts = tick.ts
        if is_indicative(tick.ts, tick.volume):
            return closed
        volume = max(state.volume, tick.volume)
        amount = max(state.amount, tick.amount)
        price = tick.price
        if minute == state.minute:
            # the same minute as the code's last full pass: every period's bucket is the same,
            # so each forming bar is the one to update and no bar opens or closes
            for period, bar in state.bars.items():
                _update(bar, period, tick, price, volume, amount)
            state.volume = volume
            state.amount = amount
            return closed
        clean = True  # no period skipped this tick as late: the buckets of ``minute`` are current
        for period in self.periods:
            ts = bucket_of_minute(minute, period)
            bar = state.bars.get(period)
            if bar is not None and bar.ts != ts:
                if ts < bar.ts:
                    clean = False
                    continue  # late tick
                closed.append(self._close(code, period, state))
                bar = None
            if bar is None:
                if ts <= state.closed.get(period, -1):
                    continue  # its bar already closed
                if period in DAY_PERIODS:  # the day's figures as the provider gives them
                    bar = OpenBar(
                        ts, bar_close_ms(ts, period),
                        tick.open or price, max(price, tick.high or price),
                        min(price, tick.low or price), price, 0.0, 0.0, volume, amount,
                    )  # fmt: skip
                else:
                    base_v, base_a = state.base.get(period, (state.volume, state.amount))
                    bar = OpenBar(
                        ts, bar_close_ms(ts, period), price, price, price, price,
                        base_v, base_a, volume, amount,
                    )  # fmt: skip
                state.bars[period] = bar
                self._due.setdefault(bar.close_at, {}).setdefault(period, set()).add(code)
                continue
            _update(bar, period, tick, price, volume, amount)
        state.volume = volume
        state.amount = amount
        state.minute = minute if clean else -1
        return closed

    def add_many(self, ticks: Iterable[Tick]) -> list[Bar]:
        closed: list[Bar] = []
        for tick in ticks:
            closed.extend(self.add(tick))
        return closed

    def adds_nothing(self, tick: Tick) -> bool:
        """True when the tick repeats the code's state: the same time and cumulative volume as
        its last tick (a provider's unchanged snapshot, or the one seen before a restart)."""
        state = self._codes.get(tick.code)
        return state is not None and tick.ts == state.last_ts and tick.volume == state.volume

    def advance(self, now_ms: int) -> list[Bar]:
        """Close every bar whose close time is at or before ``now_ms``."""
        closed: list[Bar] = []
        for close_at in sorted(t for t in self._due if t <= now_ms):
            due = self._due.pop(close_at)
            for code, period in sorted((c, p) for p, codes in due.items() for c in codes):
                state = self._codes[code]
                bar = state.bars.get(period)
                if bar is not None and bar.close_at == close_at:
                    closed.append(self._close(code, period, state))
        return closed

    def flush(self) -> list[Bar]:
        """Close every open bar."""
        return self.advance(max(self._due, default=0))

    # --- state --------------------------------------------------------------------------------

    def take_changed(self) -> dict[str, bytes]:
        """The encoded state (:func:`quotes.daystate.encode`) of every code changed since the
        last call: what to store so that a restart resumes here."""
        codes, self._changed = self._changed, set()
        return {code: encode(self._codes[code]) for code in codes}

    def last_ts(self) -> dict[str, int]:
        """The last tick time of every code with a state."""
        return {code: state.last_ts for code, state in self._codes.items() if state.last_ts >= 0}

    # --- inspection -------------------------------------------------------------------------

    def open_bars(self) -> list[Bar]:
        """The bars still open, as they would close now."""
        return [
            self._bar(code, period, bar)
            for code, state in self._codes.items()
            for period, bar in state.bars.items()
        ]

    # --- internals --------------------------------------------------------------------------

    def _close(self, code: str, period: str, state: CodeState) -> Bar:
        self._changed.add(code)
        bar = state.bars.pop(period)
        state.closed[period] = bar.ts
        state.base[period] = (bar.volume, bar.amount)
        due = self._due.get(bar.close_at)
        if due is not None and period in due:
            codes = due[period]
            codes.discard(code)
            if not codes:
                del due[period]
                if not due:
                    del self._due[bar.close_at]
        return self._bar(code, period, bar)

    def _close_day(self, code: str, state: CodeState) -> list[Bar]:
        """Close the bars that end with the code's day (all but a forming 1w / 1M bar)."""
        return [self._close(code, p, state) for p in list(state.bars) if p not in MULTI_DAY_PERIODS]

    @staticmethod
    def _bar(code: str, period: str, bar: OpenBar) -> Bar:
        return Bar(
            code=code,
            period=period,
            ts=bar.ts,
            open=bar.open,
            high=bar.high,
            low=bar.low,
            close=bar.close,
            volume=max(0.0, bar.volume - bar.base_volume),
            amount=round(max(0.0, bar.amount - bar.base_amount), 2),
        )


def _update(bar: OpenBar, period: str, tick: Tick, price: float, volume: float, amount: float) -> None:
    """A tick into the forming bar of its bucket (cumulative ``volume`` and ``amount``)."""
    if price > bar.high:
        bar.high = price
    if price < bar.low:
        bar.low = price
    if period in DAY_PERIODS:
        if tick.open and not bar.carried:
            bar.open = tick.open  # the provider's open is the day's open
        if tick.high and tick.high > bar.high:
            bar.high = tick.high
        if tick.low and tick.low < bar.low:
            bar.low = tick.low
    bar.close = price
    bar.volume = volume
    bar.amount = amount


def carry_over(old: CodeState, new: CodeState) -> None:
    """Move the forming 1w / 1M bars (and their last closed bar) of a code's ended day ``old``
    into its next day's state ``new``: the bar keeps its open, high, low, close and what it
    traded so far (subtracted from its start figures, the new day counting from zero as a 1d
    bar does), and is marked carried."""
    for period in MULTI_DAY_PERIODS:
        if period in old.closed:
            new.closed[period] = old.closed[period]
        bar = old.bars.pop(period, None)
        if bar is not None:
            bar.base_volume -= bar.volume
            bar.base_amount -= bar.amount
            bar.volume = bar.amount = 0.0
            bar.carried = True
            new.bars[period] = bar


# --- finer bars into coarser ones ----------------------------------------------------------------

_DERIVED = {
    **{p: tuple(q for q, step in INTRADAY_MS.items() if step > s and step % s == 0)
       for p, s in INTRADAY_MS.items()},
    "1d": MULTI_DAY_PERIODS,
}  # fmt: skip


def coarser_periods(period: str) -> tuple[str, ...]:
    """The periods whose bars are whole bars of ``period`` (5m, 15m, 30m, 60m from 1m; 1w, 1M from
    1d; nothing from 60m, 1w, 1M)."""
    return _DERIVED.get(period, ())


def resample(
    rows: np.ndarray, period: str, *, whole_first: bool = False, starts: np.ndarray | None = None
) -> np.ndarray:
    """Bars of ``period`` made of finer bars of one code: ``rows`` of shape (n, 7) as the trend
    series holds them (:data:`marketbus.trend.FIELDS`), sorted by bar time, without duplicates.

    Each finer bar goes to the bar of ``period`` containing its start
    (:func:`marketbus.sessions.bucket_of_minute`, the rule the live path buckets ticks by):
    open of the first, the highest high, the lowest low, close of the last, volumes and amounts
    added; the bar time is the bucket's start. ``whole_first``: leave out the first bar when
    the rows begin after its start (it would hold only part of its time). ``starts``: each row's
    bucket, when the caller computed them already (for many codes at once)."""
    if len(rows) == 0:
        return np.empty((0, NF), dtype=np.float64)
    if starts is None:
        starts = np.fromiter((bucket_of_minute(int(t), period) for t in rows[:, TS]), np.float64, len(rows))
    edges = np.flatnonzero(np.r_[True, starts[1:] != starts[:-1]])
    lasts = np.r_[edges[1:], len(rows)] - 1
    out = np.empty((len(edges), NF), dtype=np.float64)
    out[:, TS] = starts[edges]
    out[:, OPEN] = rows[edges, OPEN]
    out[:, HIGH] = np.maximum.reduceat(rows[:, HIGH], edges)
    out[:, LOW] = np.minimum.reduceat(rows[:, LOW], edges)
    out[:, CLOSE] = rows[lasts, CLOSE]
    out[:, VOLUME] = np.add.reduceat(rows[:, VOLUME], edges)
    out[:, AMOUNT] = np.round(np.add.reduceat(rows[:, AMOUNT], edges), 2)
    if whole_first and starts[0] < rows[0, TS]:
        out = out[1:]
    return out


def prior_days_state(start_ms: int, daily: np.ndarray, periods: Sequence[str] = PERIODS) -> CodeState | None:
    """The state of a code about to trade on the day of ``start_ms``, whose earlier trading days
    are the closed 1d bars ``daily`` (rows as in :func:`resample`) but whose ticks were never
    aggregated (seeded or imported history): its forming 1w and 1M bars hold the days of the
    week and month of ``start_ms`` before that day, carried (:func:`carry_over`), so the bars the
    live path builds from there are whole. None when no such day exists."""
    start_day = local_day_start_ms(start_ms)
    before = daily[daily[:, TS] < start_day] if len(daily) else daily
    if not len(before):
        return None
    state = CodeState(int(before[-1, TS]), 0.0, 0.0)
    for period in periods:
        if period not in MULTI_DAY_PERIODS:
            continue
        ts = bucket_of_day(start_day, period)
        part = before[before[:, TS] >= ts]
        if not len(part):
            continue
        (row,) = resample(part, period)
        volume, amount = float(row[VOLUME]), float(row[AMOUNT])
        o, h, lo, c = (float(x) for x in row[OPEN : CLOSE + 1])
        bar = OpenBar(ts, bar_close_ms(ts, period), o, h, lo, c, -volume, -amount, 0.0, 0.0, True)
        state.bars[period] = bar
    return state if state.bars else None
