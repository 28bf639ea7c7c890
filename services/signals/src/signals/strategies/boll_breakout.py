"""boll_breakout (布林突破): the close breaking out of TA-Lib BBANDS(20, 2, 2)."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from signals import indicators as ind
from signals.strategies._common import cross_confidence
from signals.strategies.base import (
    Hits,
    Strategy,
    StrategyParams,
    Window,
    cross_over,
    cross_under,
    make_hits,
    volume_ratio,
)

GAP_SCALE = 0.01


class BollBreakoutParams(StrategyParams):
    period: int = Field(20, ge=2)
    nbdevup: float = Field(2.0, gt=0)
    nbdevdn: float = Field(2.0, gt=0)


class BollBreakout(Strategy[BollBreakoutParams]):
    """BUY on ``cross_over(close, upper)``, SELL on ``cross_under(close, lower)``; price is the
    close. Confidence: ``0.6*g/(g+0.01) + 0.4*v/(v+1.5)``, g = distance of the close beyond the
    band it broke, relative to the close; v = volume[t]/volume[t-1]."""

    key = "boll_breakout"
    name = "布林突破"
    params_type = BollBreakoutParams
    confidence_doc = (
        "0.6 * g/(g+0.01) + 0.4 * v/(v+1.5), where g = |close - band| / close at the last bar "
        "(how far the close broke out of the band it crossed) and v = volume[t]/volume[t-1]"
    )

    @property
    def min_bars(self) -> int:
        return self.params.period + 1

    def evaluate(self, w: Window) -> Hits:
        a = w.aligned()
        p = self.params
        mid, var = a.cached(("bb_parts", p.period), lambda: ind._bb_parts(a.close, p.period))
        # the bands are only needed on the last two bars of each code
        up0, lo0 = ind.bb_bands(a.at(mid, 1), a.at(var, 1), p.nbdevup, p.nbdevdn)
        up1, lo1 = ind.bb_bands(a.at(mid), a.at(var), p.nbdevup, p.nbdevdn)
        c0, c1 = a.at(a.close, 1), a.at(a.close)
        buy = cross_over(c0, c1, up0, up1)
        sell = cross_under(c0, c1, lo0, lo1)
        gap = np.where(buy, (c1 - up1) / c1, (lo1 - c1) / c1)
        conf = cross_confidence(gap, volume_ratio(a), GAP_SCALE)

        def reason(j: int, side: int) -> str:
            if side > 0:
                return f"close {c1[j]:.4f} broke above the upper band {up1[j]:.4f}"
            return f"close {c1[j]:.4f} broke below the lower band {lo1[j]:.4f}"

        return make_hits(a, self.min_bars, buy, sell, c1, conf, reason)
