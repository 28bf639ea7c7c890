"""Bar aggregation: ticks in, closed 1m / 5m / 1d bars out. Pure (no I/O, no clock).

- Buckets follow the A-share session rules of :mod:`marketbus.sessions` (call auction into the
  09:30 bar, a tick stamped 11:30:00 / 15:00:00 into the bar before, no bar across lunch).
- Providers send cumulative day volume and amount; a 1m/5m bar's volume is the difference of the
  cumulative figure across the bar. The first tick of a code's day counts from zero when it falls
  in the day's first bar (09:30, auction included); a first tick later in the day (a service
  started mid-session) only sets the baseline, since how much of its total belongs to its bar is
  unknown. The 1d bar takes the provider's cumulative figures, and its open/high/low when given.
- A bar closes when a tick of the same code lands in a later bucket, or when ``advance(now)``
  passes its close time (11:30 and 15:00 bars close on time without a later tick). ``flush()``
  closes everything (shutdown).
- A late tick for a bucket that already closed does not reopen it: its price is dropped from that
  period's bars and its volume counts in the next bar.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from marketbus.contracts import Bar, Tick
from marketbus.sessions import (
    MORNING_OPEN,
    bar_close_ms,
    bucket_of_minute,
    local_day_start_ms,
    minute_bucket,
)

DEFAULT_PERIODS = ("1m", "5m", "1d")


@dataclass(slots=True)
class _OpenBar:
    ts: int
    close_at: int
    open: float
    high: float
    low: float
    close: float
    base_volume: float
    base_amount: float
    volume: float  # cumulative at the last tick
    amount: float


@dataclass(slots=True)
class _CodeState:
    day_ms: int
    volume: float  # cumulative shares of the day seen so far (never decreases)
    amount: float
    bars: dict[str, _OpenBar] = field(default_factory=dict)
    closed: dict[str, int] = field(default_factory=dict)  # period -> ts of the last closed bar
    base: dict[str, tuple[float, float]] = field(default_factory=dict)  # period -> cumulative
    # volume and amount at the end of its last closed bar (where the next bar starts counting)


class BarAggregator:
    def __init__(self, periods: Sequence[str] = DEFAULT_PERIODS) -> None:
        self.periods = tuple(periods)
        self._codes: dict[str, _CodeState] = {}
        self._due: dict[int, set[tuple[str, str]]] = {}

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
            if state is not None:
                if day < state.day_ms:
                    return []  # a tick of a past day: nothing left to update
                closed.extend(self._close_code(code, state))
            first_bar = minute == day + MORNING_OPEN
            base_v = 0.0 if first_bar else tick.volume
            base_a = 0.0 if first_bar else tick.amount
            state = _CodeState(day, base_v, base_a)
            self._codes[code] = state
        volume = max(state.volume, tick.volume)
        amount = max(state.amount, tick.amount)
        price = tick.price
        for period in self.periods:
            ts = bucket_of_minute(minute, period)
            bar = state.bars.get(period)
            if bar is not None and bar.ts != ts:
                if ts < bar.ts:
                    continue  # late tick
                closed.append(self._close(code, period, state))
                bar = None
            if bar is None:
                if ts <= state.closed.get(period, -1):
                    continue  # its bar already closed
                if period == "1d":
                    bar = _OpenBar(
                        ts, bar_close_ms(ts, period),
                        tick.open or price, max(price, tick.high or price),
                        min(price, tick.low or price), price, 0.0, 0.0, volume, amount,
                    )  # fmt: skip
                else:
                    base_v, base_a = state.base.get(period, (state.volume, state.amount))
                    bar = _OpenBar(
                        ts, bar_close_ms(ts, period), price, price, price, price,
                        base_v, base_a, volume, amount,
                    )  # fmt: skip
                state.bars[period] = bar
                self._due.setdefault(bar.close_at, set()).add((code, period))
                continue
            if price > bar.high:
                bar.high = price
            if price < bar.low:
                bar.low = price
            if period == "1d":
                if tick.high and tick.high > bar.high:
                    bar.high = tick.high
                if tick.low and tick.low < bar.low:
                    bar.low = tick.low
            bar.close = price
            bar.volume = volume
            bar.amount = amount
        state.volume = volume
        state.amount = amount
        return closed

    def add_many(self, ticks: Iterable[Tick]) -> list[Bar]:
        closed: list[Bar] = []
        for tick in ticks:
            closed.extend(self.add(tick))
        return closed

    def advance(self, now_ms: int) -> list[Bar]:
        """Close every bar whose close time is at or before ``now_ms``."""
        closed: list[Bar] = []
        for close_at in sorted(t for t in self._due if t <= now_ms):
            for code, period in sorted(self._due.pop(close_at)):
                state = self._codes[code]
                bar = state.bars.get(period)
                if bar is not None and bar.close_at == close_at:
                    closed.append(self._close(code, period, state))
        return closed

    def flush(self) -> list[Bar]:
        """Close every open bar (shutdown)."""
        return self.advance(max(self._due, default=0))

    # --- inspection -------------------------------------------------------------------------

    def open_bars(self) -> list[Bar]:
        """The bars still open, as they would close now."""
        return [
            self._bar(code, period, bar)
            for code, state in self._codes.items()
            for period, bar in state.bars.items()
        ]

    # --- internals --------------------------------------------------------------------------

    def _close(self, code: str, period: str, state: _CodeState) -> Bar:
        bar = state.bars.pop(period)
        state.closed[period] = bar.ts
        state.base[period] = (bar.volume, bar.amount)
        due = self._due.get(bar.close_at)
        if due is not None:
            due.discard((code, period))
            if not due:
                del self._due[bar.close_at]
        return self._bar(code, period, bar)

    def _close_code(self, code: str, state: _CodeState) -> list[Bar]:
        return [self._close(code, period, state) for period in list(state.bars)]

    @staticmethod
    def _bar(code: str, period: str, bar: _OpenBar) -> Bar:
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
