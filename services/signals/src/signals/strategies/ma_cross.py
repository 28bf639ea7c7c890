"""ma_cross (均线金叉): SMA(close, fast) crossing SMA(close, slow)."""

from __future__ import annotations

from pydantic import Field

from signals.strategies._common import CROSS_DOC, cross_confidence, sma_close
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

GAP_SCALE = 0.005


class MaCrossParams(StrategyParams):
    fast: int = Field(5, ge=1)
    slow: int = Field(20, ge=2)


class MaCross(Strategy[MaCrossParams]):
    """BUY on ``cross_over(SMA(close,fast), SMA(close,slow))``, SELL on ``cross_under``; price is
    the close. Confidence: ``0.6*g/(g+0.005) + 0.4*v/(v+1.5)``, g = |SMA_fast - SMA_slow| / close
    at t, v = volume[t]/volume[t-1]."""

    key = "ma_cross"
    name = "均线金叉"
    params_type = MaCrossParams
    confidence_doc = CROSS_DOC.format(scale=GAP_SCALE, a="SMA_fast", b="SMA_slow")

    @property
    def min_bars(self) -> int:
        return max(self.params.fast, self.params.slow) + 1

    def evaluate(self, w: Window) -> Hits:
        a = w.aligned()
        p = self.params
        fast, slow = sma_close(a, p.fast), sma_close(a, p.slow)
        f0, f1, s0, s1 = a.at(fast, 1), a.at(fast), a.at(slow, 1), a.at(slow)
        close = a.at(a.close)
        conf = cross_confidence((f1 - s1) / close, volume_ratio(a), GAP_SCALE)

        def reason(j: int, side: int) -> str:
            verb = "crossed above" if side > 0 else "crossed below"
            return f"SMA{p.fast} {f1[j]:.4f} {verb} SMA{p.slow} {s1[j]:.4f}"

        return make_hits(
            a,
            self.min_bars,
            cross_over(f0, f1, s0, s1),
            cross_under(f0, f1, s0, s1),
            close,
            conf,
            reason,
        )
