"""volatility_conservation (趋势追踪), a UT Bot ATR trailing stop from the system being replaced
(its latest version); exact."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from signals import indicators as ind
from signals.strategies.base import (
    Aligned,
    Crossing,
    Hits,
    Strategy,
    StrategyParams,
    Window,
    make_hits,
    volume_ratio,
)
from signals.strategies.confidence import cross_confidence

Array = np.ndarray


class VolatilityConservationParams(StrategyParams):
    key: float = Field(1.0, gt=0)
    atr_period: int = Field(10, ge=1)


class VolatilityConservation(Strategy[VolatilityConservationParams]):
    """The ATR trailing stop of STRATEGIES.md: ``nloss = key * atr`` (Wilder's ATR over
    ``atr_period`` bars seeded with the first true range; key 1, atr_period 10), the stop trailing
    a rising close ``nloss`` below it and a falling close ``nloss`` above it, replayed from the
    first bar of the window. BUY when the close crosses above the stop (``close[t-1] <=
    stop[t-1]`` and ``close[t] > stop[t]``), with ``stop_loss = stop[t]``; SELL when it crosses
    below (``close[t-1] >= stop[t-1]`` and ``close[t] < stop[t]``); price is the close.
    Confidence: :attr:`confidence` (how far the close broke through the stop it crossed)."""

    key = "volatility_conservation"
    name = "趋势追踪"
    params_type = VolatilityConservationParams
    confidence = cross_confidence(
        0.01,
        "|close[t] - stop[t-1]| / close[t] (how far the close broke through the trailing stop it "
        "crossed, relative to price)",
    )

    @property
    def min_bars(self) -> int:
        return 2

    def stop_line(self, a: Aligned) -> tuple[Array, Array]:
        """(stop, atr), left-aligned, memoised on the window."""
        p = self.params
        lines: tuple[Array, Array] = a.cached(
            ("atr_stop", p.key, p.atr_period),
            lambda: ind.atr_stop_lines(a.high, a.low, a.close, p.key, p.atr_period),
        )
        return lines

    def evaluate(self, w: Window) -> Hits:
        a = w.aligned()
        p = self.params
        stop, atr = self.stop_line(a)
        c = Crossing.last_bars(a, a.close, stop)
        buy, sell = c.up, c.down
        close, crossed, new_stop, width = c.x1, c.y0, c.y1, a.at(atr)
        with np.errstate(invalid="ignore", divide="ignore"):
            broke = np.abs(close - crossed) / close
        conf = self.confidence(broke, volume_ratio(a))

        def reason(j: int, side: int) -> str:
            where = "above" if side > 0 else "below"
            text = f"close {close[j]:.4f} broke {where} the ATR trailing stop {crossed[j]:.4f}"
            text += f" (ATR{p.atr_period} {width[j]:.4f})"
            return f"{text}; stop now {new_stop[j]:.4f}" if side > 0 else text

        nan = np.full(a.N, np.nan)
        return make_hits(
            a, self.min_bars, buy, sell, close, conf, reason, stop_loss=np.where(buy, new_stop, nan)
        )
