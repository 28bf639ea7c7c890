"""rsi_reversal (RSI反转): RSI(14) leaving the oversold / overbought zone."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from signals import indicators as ind
from signals.strategies._common import VOLUME_SCALE
from signals.strategies.base import (
    Hits,
    Strategy,
    StrategyParams,
    Window,
    make_hits,
    sat,
    volume_ratio,
)


class RsiReversalParams(StrategyParams):
    period: int = Field(14, ge=2)
    oversold: float = 30.0
    overbought: float = 70.0


class RsiReversal(Strategy[RsiReversalParams]):
    """BUY when ``r[t-1] <= oversold < r[t]``, SELL when ``r[t-1] >= overbought > r[t]``,
    r = TA-Lib RSI(close, period); price is the close.

    Confidence: ``0.4*m/(m+5) + 0.2*d/(d+5) + 0.4*v/(v+1.5)``: m = how far r[t] moved past the
    level, d = how deep r[t-1] was beyond it (RSI points), v = volume[t]/volume[t-1]."""

    key = "rsi_reversal"
    name = "RSI反转"
    params_type = RsiReversalParams
    confidence_doc = (
        "0.4 * m/(m+5) + 0.2 * d/(d+5) + 0.4 * v/(v+1.5), where m = RSI points r[t] moved past "
        "the level, d = RSI points r[t-1] was beyond it, v = volume[t]/volume[t-1]"
    )

    @property
    def min_bars(self) -> int:
        return self.params.period + 2

    def evaluate(self, w: Window) -> Hits:
        a = w.aligned()
        p = self.params
        gain, loss = a.cached(("rsi", p.period), lambda: ind._rsi_parts(a.close, p.period))
        # the RSI itself is only needed on the last two bars
        r0 = ind.rsi_from_parts(a.at(gain, 1), a.at(loss, 1))
        r1 = ind.rsi_from_parts(a.at(gain), a.at(loss))
        lo, hi = p.oversold, p.overbought
        buy = (r0 <= lo) & (lo < r1)
        sell = (r0 >= hi) & (hi > r1)
        moved = np.where(buy, r1 - lo, hi - r1)
        depth = np.where(buy, lo - r0, r0 - hi)
        conf = 0.4 * sat(moved, 5.0) + 0.2 * sat(depth, 5.0)
        conf = conf + 0.4 * sat(volume_ratio(a), VOLUME_SCALE)

        def reason(j: int, side: int) -> str:
            if side > 0:
                return f"RSI{p.period} rose through {lo:g}: {r0[j]:.2f} -> {r1[j]:.2f}"
            return f"RSI{p.period} fell through {hi:g}: {r0[j]:.2f} -> {r1[j]:.2f}"

        return make_hits(a, self.min_bars, buy, sell, a.at(a.close), conf, reason)
