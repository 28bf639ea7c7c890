"""kdj_cross (KDJ金叉): K crossing D in the oversold / overbought zone, KDJ(9, 3, 3)."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from signals import indicators as ind
from signals.strategies.base import Aligned, Crossing, CrossStrategy, StrategyParams, volume_ratio
from signals.strategies.confidence import Confidence, Term, volume_term
from signals.strategies.shared_indicators import rolling

Array = np.ndarray


class KdjCrossParams(StrategyParams):
    n: int = Field(9, ge=1)
    m1: int = Field(3, ge=1)
    m2: int = Field(3, ge=1)
    # the zones: K below buy_below (oversold), K above sell_above (overbought), in KDJ points
    buy_below: float = Field(30.0, gt=0, le=100)
    sell_above: float = Field(70.0, ge=0, lt=100)


def zone_depth(k: Array, buy: Array, buy_below: float, sell_above: float) -> Array:
    """How far K is inside the zone of its side, as a share of the zone's width:
    ``(buy_below - K) / buy_below`` for BUY, ``(K - sell_above) / (100 - sell_above)`` for SELL
    (1 at K = 0 or 100, 0 at the threshold)."""
    return np.where(buy, (buy_below - k) / buy_below, (k - sell_above) / (100.0 - sell_above))


class KdjCross(CrossStrategy[KdjCrossParams]):
    """BUY on ``cross_over(K, D)`` with ``K[t] < buy_below``, SELL on ``cross_under(K, D)`` with
    ``K[t] > sell_above`` (30 and 70 by default); price is the close. Confidence:
    :attr:`confidence` (the gap after the cross, the depth of K in the zone, the volume)."""

    key = "kdj_cross"
    name = "KDJ金叉"
    params_type = KdjCrossParams
    confidence = Confidence(
        (
            Term(0.4, "g", "|K - D| at the last bar (KDJ points, the gap after the cross)", 5.0),
            Term(
                0.3,
                "e",
                "the depth of K inside the zone ((buy_below-K)/buy_below for BUY, "
                "(K-sell_above)/(100-sell_above) for SELL, clipped to [0, 1])",
            ),
            volume_term(0.3),
        )
    )
    digits = 2

    @property
    def min_bars(self) -> int:
        return self.params.n + 1

    def lines(self, a: Aligned) -> tuple[Array, Array]:
        p = self.params
        k, d = a.cached(
            ("kd", p.n, p.m1, p.m2),
            lambda: ind.kd_lines(
                a.high,
                a.low,
                a.close,
                p.n,
                p.m1,
                p.m2,
                hh=rolling(a, "high", p.n, np.maximum),
                ll=rolling(a, "low", p.n, np.minimum),
            ),
        )
        return k, d

    def labels(self) -> tuple[str, str]:
        return "K", "D"

    def sides(self, c: Crossing) -> tuple[Array, Array]:
        p = self.params
        return c.up & (c.x1 < p.buy_below), c.down & (c.x1 > p.sell_above)

    def scores(self, a: Aligned, c: Crossing, buy: Array, close: Array) -> tuple[Array, ...]:
        p = self.params
        return np.abs(c.x1 - c.y1), zone_depth(c.x1, buy, p.buy_below, p.sell_above), volume_ratio(a)
