"""Bar aggregation: ticks in, closed 1m / 5m / 1d bars out. Pure (no I/O, no clock).

- Buckets follow the A-share session rules of :mod:`marketbus.sessions` (a tick stamped
  11:30:00 / 15:00:00 into the bar before, no bar across lunch).
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

from marketbus.contracts import PERIODS, Bar, Tick
from marketbus.sessions import (
    AUCTION_OPEN,
    DAY_MS,
    MINUTE_MS,
    MORNING_OPEN,
    UTC_OFFSET_MS,
    bar_close_ms,
    bucket_of_minute,
    local_day_start_ms,
    minute_bucket,
)
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
        self._due: dict[int, set[tuple[str, str]]] = {}
        self._changed: set[str] = set()
        for code, state in (states or {}).items():
            for period in [p for p in state.bars if p not in self.periods]:
                del state.bars[period]
            self._codes[code] = state
            for period, bar in state.bars.items():
                self._due.setdefault(bar.close_at, set()).add((code, period))

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
            from_zero = minute == day + MORNING_OPEN  # the auction or the first bar
            base_v = 0.0 if from_zero else tick.volume
            base_a = 0.0 if from_zero else tick.amount
            state = CodeState(day, base_v, base_a, tick.ts)
            self._codes[code] = state
        self._changed.add(code)
        if tick.ts > state.last_ts:
            state.last_ts = tick.ts
        if is_indicative(tick.ts, tick.volume):
            return closed
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
                self._due.setdefault(bar.close_at, set()).add((code, period))
                continue
            if price > bar.high:
                bar.high = price
            if price < bar.low:
                bar.low = price
            if period == "1d":
                if tick.open:
                    bar.open = tick.open  # the provider's open is the day's open
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

    def adds_nothing(self, tick: Tick) -> bool:
        """True when the tick repeats the code's state: the same time and cumulative volume as
        its last tick (a provider's unchanged snapshot, or the one seen before a restart)."""
        state = self._codes.get(tick.code)
        return state is not None and tick.ts == state.last_ts and tick.volume == state.volume

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
        if due is not None:
            due.discard((code, period))
            if not due:
                del self._due[bar.close_at]
        return self._bar(code, period, bar)

    def _close_code(self, code: str, state: CodeState) -> list[Bar]:
        return [self._close(code, period, state) for period in list(state.bars)]

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
