"""rsi_reversal (RSI反转): RSI(14) leaving the oversold / overbought zone."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from signals import indicators as ind
from signals.strategies.base import Hits, Strategy, StrategyParams, Window, make_hits, volume_ratio
from signals.strategies.confidence import Confidence, Term, volume_term


class RsiReversalParams(StrategyParams):
    period: int = Field(14, ge=2)
    oversold: float = 30.0
    overbought: float = 70.0


class RsiReversal(Strategy[RsiReversalParams]):
    """BUY when ``r[t-1] <= oversold < r[t]``, SELL when ``r[t-1] >= overbought > r[t]``
    (30 and 70 by default), r = TA-Lib RSI(close, period); price is the close. Confidence:
    :attr:`confidence` (how far r moved past the level and how deep it was beyond it)."""

    key = "rsi_reversal"
    name = "RSI反转"
    params_type = RsiReversalParams
    confidence = Confidence(
        (
            Term(0.4, "m", "RSI points r[t] moved past the level", 5.0),
            Term(0.2, "d", "RSI points r[t-1] was beyond it", 5.0),
            volume_term(0.4),
        )
    )

    @property
    def min_bars(self) -> int:
        return self.params.period + 2

    def evaluate(self, w: Window) -> Hits:
        a = w.aligned()
        p = self.params
        gain, loss = a.cached(("rsi", p.period), lambda: ind.rsi_parts(a.close, p.period))
        # the RSI itself is only needed on the last two bars
        r0 = ind.rsi_from_parts(a.at(gain, 1), a.at(loss, 1))
        r1 = ind.rsi_from_parts(a.at(gain), a.at(loss))
        lo, hi = p.oversold, p.overbought
        buy = (r0 <= lo) & (lo < r1)
        sell = (r0 >= hi) & (hi > r1)
        moved = np.where(buy, r1 - lo, hi - r1)
        depth = np.where(buy, lo - r0, r0 - hi)
        conf = self.confidence(moved, depth, volume_ratio(a))

        def reason(j: int, side: int) -> str:
            if side > 0:
                return f"RSI{p.period} rose through {lo:g}: {r0[j]:.2f} -> {r1[j]:.2f}"
            return f"RSI{p.period} fell through {hi:g}: {r0[j]:.2f} -> {r1[j]:.2f}"

        return make_hits(a, self.min_bars, buy, sell, a.at(a.close), conf, reason)
