"""macd_cross (MACD金叉): the MACD line crossing its signal line, TA-Lib MACD(12, 26, 9)."""

from __future__ import annotations

from pydantic import Field

from signals import indicators as ind
from signals.strategies._common import CROSS_DOC, cross_confidence
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

GAP_SCALE = 0.002


class MacdCrossParams(StrategyParams):
    fast: int = Field(12, ge=2)
    slow: int = Field(26, ge=2)
    signal: int = Field(9, ge=1)


class MacdCross(Strategy[MacdCrossParams]):
    """BUY on ``cross_over(macd, macdsignal)``, SELL on ``cross_under``; price is the close.
    Confidence: ``0.6*g/(g+0.002) + 0.4*v/(v+1.5)``, g = |macd - signal| / close at t,
    v = volume[t]/volume[t-1]."""

    key = "macd_cross"
    name = "MACD金叉"
    params_type = MacdCrossParams
    confidence_doc = CROSS_DOC.format(scale=GAP_SCALE, a="macd", b="macdsignal")

    @property
    def min_bars(self) -> int:
        p = self.params
        return max(p.fast, p.slow) + p.signal

    def evaluate(self, w: Window) -> Hits:
        a = w.aligned()
        p = self.params
        line, sig = a.cached(
            ("macd", p.fast, p.slow, p.signal),
            lambda: ind._macd_k(a.close, p.fast, p.slow, p.signal),
        )
        m0, m1, s0, s1 = a.at(line, 1), a.at(line), a.at(sig, 1), a.at(sig)
        close = a.at(a.close)
        conf = cross_confidence((m1 - s1) / close, volume_ratio(a), GAP_SCALE)

        def reason(j: int, side: int) -> str:
            verb = "crossed above" if side > 0 else "crossed below"
            return f"MACD {m1[j]:.4f} {verb} signal {s1[j]:.4f}"

        return make_hits(
            a,
            self.min_bars,
            cross_over(m0, m1, s0, s1),
            cross_under(m0, m1, s0, s1),
            close,
            conf,
            reason,
        )
