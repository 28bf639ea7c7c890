"""The streaming path: closed bars of the ``signals`` consumer group -> signals.

Any worker can handle any bar: the window is read from the trend series (through the windows the
worker kept, :mod:`signals.windows`, which only save reading bytes it already has).
Only the bars of the periods it is given (``MARKETBUS_SIGNAL_PERIODS``, every period by default) are
evaluated; the others are counted and skipped, and acknowledged with the batch.
The bars come decoded from the consumer runtime (:mod:`marketbus.consumer`), which acknowledges them
after :meth:`BarProcessor.handle` returned, dead-letters what cannot be read, and retries.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from marketbus.clock import wall_ms
from marketbus.contracts import PERIODS, Bar
from marketbus.trend import TrendStore
from signals.evaluate import Target, evaluate_windows, window_ending_at
from signals.store import SignalStore
from signals.strategies import WINDOW_BARS, Strategy

log = logging.getLogger("signals.consumer")

SLACK_BARS = 16  # read a little more than the window: the bar may no longer be the newest
WHOLE_SERIES = 1 << 20  # bars: more than any series holds


@dataclass
class Stats:
    bars: int = 0
    signals: int = 0
    missing_window: int = 0
    skipped: int = 0  # bars of a period not evaluated as they arrive


class BarProcessor:
    def __init__(
        self,
        trend: TrendStore,
        store: SignalStore,
        strategies: Sequence[Strategy],
        periods: Collection[str] = PERIODS,
    ) -> None:
        unknown = sorted(set(periods) - set(PERIODS))
        if unknown:
            raise ValueError(f"unknown signal period(s) {', '.join(unknown)}; known: {', '.join(PERIODS)}")
        self.trend = trend
        self.store = store
        self.strategies = strategies
        self.periods = frozenset(periods)
        self.stats = Stats()

    async def handle(self, bars: Sequence[Bar]) -> None:
        """Evaluate the strategies on the window of each bar of the configured periods and write
        the signals (resolving the day's provisional ones); bars of other periods are skipped.
        Raises if the signals could not be written."""
        wanted = [b for b in bars if b.period in self.periods]
        self.stats.skipped += len(bars) - len(wanted)
        if wanted:
            await self._process(wanted)

    async def _process(self, bars: Sequence[Bar]) -> None:
        targets = await self._windows(bars)
        universe = await self.store.universe([b.code for b in bars])
        signals = evaluate_windows(targets, self.strategies, universe, wall_ms())
        self.stats.signals += await self.store.write(signals, targets)  # resolves provisional
        self.stats.bars += len(bars)

    async def _windows(self, bars: Sequence[Bar]) -> list[Target]:
        n = WINDOW_BARS + SLACK_BARS
        rows = await self._tails({(b.code, b.period) for b in bars}, n)
        windows = [window_ending_at(rows[(b.code, b.period)], b.ts) for b in bars]
        # a bar more than SLACK_BARS behind its series' newest bar (a worker catching up on a
        # backlog) needs bars from before the tail: its series are read whole, in one more round trip
        behind = {
            (b.code, b.period)
            for b, w in zip(bars, windows, strict=True)
            if (w is None or len(w) < WINDOW_BARS) and len(rows[(b.code, b.period)]) >= n
        }
        if behind:
            whole = await self._tails(behind, WHOLE_SERIES)
            windows = [
                window_ending_at(whole[(b.code, b.period)], b.ts) if (b.code, b.period) in whole else w
                for b, w in zip(bars, windows, strict=True)
            ]
        targets: list[Target] = []
        for bar, window in zip(bars, windows, strict=True):
            if window is None:
                self.stats.missing_window += 1
                log.warning("bar %s %s %d is not in the trend series", bar.code, bar.period, bar.ts)
                continue
            targets.append(Target(bar.code, bar.period, window))
        return targets

    async def _tails(self, pairs: Iterable[tuple[str, str]], n: int) -> dict[tuple[str, str], np.ndarray]:
        """The last ``n`` rows of each (code, period), one batch per period."""
        by_period: dict[str, list[str]] = {}
        for code, period in sorted(pairs):
            by_period.setdefault(period, []).append(code)
        rows: dict[tuple[str, str], np.ndarray] = {}
        for period, codes in by_period.items():
            tails = await self.trend.tails(codes, period, n)
            rows.update(((c, period), r) for c, r in zip(codes, tails, strict=True))
        return rows
