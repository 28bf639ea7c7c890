"""kdj_cross (KDJ金叉): K crossing D in the oversold / overbought zone, KDJ(9, 3, 3)."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from signals import indicators as ind
from signals.strategies._common import VOLUME_SCALE, rolling
from signals.strategies.base import (
    Hits,
    Strategy,
    StrategyParams,
    Window,
    cross_over,
    cross_under,
    make_hits,
    sat,
    volume_ratio,
)


class KdjCrossParams(StrategyParams):
    n: int = Field(9, ge=1)
    m1: int = Field(3, ge=1)
    m2: int = Field(3, ge=1)
    buy_below: float = 30.0
    sell_above: float = 70.0


class KdjCross(Strategy[KdjCrossParams]):
    """BUY on ``cross_over(K, D)`` with ``K[t] < 30``, SELL on ``cross_under(K, D)`` with
    ``K[t] > 70``; price is the close.

    Confidence: ``0.4*g/(g+5) + 0.3*e + 0.3*v/(v+1.5)``: g = |K - D| at t (KDJ points, the gap
    after the cross), e = how far K is inside the zone (``(30-K)/30`` for BUY, ``(K-70)/30`` for
    SELL), v = volume[t]/volume[t-1]."""

    key = "kdj_cross"
    name = "KDJ金叉"
    params_type = KdjCrossParams
    confidence_doc = (
        "0.4 * g/(g+5) + 0.3 * e + 0.3 * v/(v+1.5), where g = |K - D| at the last bar (KDJ "
        "points), e = depth of K inside the zone ((30-K)/30 for BUY, (K-70)/30 for SELL) and "
        "v = volume[t]/volume[t-1]"
    )

    @property
    def min_bars(self) -> int:
        return self.params.n + 1

    def evaluate(self, w: Window) -> Hits:
        a = w.aligned()
        p = self.params
        k, d = a.cached(
            ("kd", p.n, p.m1, p.m2),
            lambda: ind._kd_k(
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
        k0, k1, d0, d1 = a.at(k, 1), a.at(k), a.at(d, 1), a.at(d)
        buy = cross_over(k0, k1, d0, d1) & (k1 < p.buy_below)
        sell = cross_under(k0, k1, d0, d1) & (k1 > p.sell_above)
        depth = np.where(buy, (p.buy_below - k1) / 30.0, (k1 - p.sell_above) / 30.0)
        conf = 0.4 * sat(np.abs(k1 - d1), 5.0) + 0.3 * np.clip(depth, 0.0, 1.0)
        conf = conf + 0.3 * sat(volume_ratio(a), VOLUME_SCALE)

        def reason(j: int, side: int) -> str:
            verb = "crossed above" if side > 0 else "crossed below"
            return f"K {k1[j]:.2f} {verb} D {d1[j]:.2f}"

        return make_hits(a, self.min_bars, buy, sell, a.at(a.close), conf, reason)
