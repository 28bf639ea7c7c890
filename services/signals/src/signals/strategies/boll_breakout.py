"""boll_breakout (布林突破): the close breaking out of TA-Lib BBANDS(20, 2, 2)."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from signals import indicators as ind
from signals.strategies.base import Crossing, Hits, Strategy, StrategyParams, Window, make_hits, volume_ratio
from signals.strategies.confidence import cross_confidence


class BollBreakoutParams(StrategyParams):
    period: int = Field(20, ge=2)
    nbdevup: float = Field(2.0, gt=0)
    nbdevdn: float = Field(2.0, gt=0)


class BollBreakout(Strategy[BollBreakoutParams]):
    """BUY on ``cross_over(close, upper)``, SELL on ``cross_under(close, lower)`` of
    ``BBANDS(close, period, nbdevup, nbdevdn)``; price is the close. Confidence:
    :attr:`confidence` (how far the close broke out)."""

    key = "boll_breakout"
    name = "布林突破"
    params_type = BollBreakoutParams
    confidence = cross_confidence(
        0.01,
        "|close - band| / close at the last bar (how far the close broke out of the band it crossed)",
    )

    @property
    def min_bars(self) -> int:
        return self.params.period + 1

    def evaluate(self, w: Window) -> Hits:
        a = w.aligned()
        p = self.params
        mid, var = a.cached(("bb_parts", p.period), lambda: ind.bb_parts(a.close, p.period))
        # the bands are only needed on the last two bars of each code
        up0, lo0 = ind.bb_bands(a.at(mid, 1), a.at(var, 1), p.nbdevup, p.nbdevdn)
        up1, lo1 = ind.bb_bands(a.at(mid), a.at(var), p.nbdevup, p.nbdevdn)
        c0, c1 = a.at(a.close, 1), a.at(a.close)
        buy = Crossing(c0, c1, up0, up1).up
        sell = Crossing(c0, c1, lo0, lo1).down
        gap = np.where(buy, (c1 - up1) / c1, (lo1 - c1) / c1)
        conf = self.confidence(np.abs(gap), volume_ratio(a))

        def reason(j: int, side: int) -> str:
            if side > 0:
                return f"close {c1[j]:.4f} broke above the upper band {up1[j]:.4f}"
            return f"close {c1[j]:.4f} broke below the lower band {lo1[j]:.4f}"

        return make_hits(a, self.min_bars, buy, sell, c1, conf, reason)
