"""macd_cross (MACD金叉): the MACD line crossing its signal line, TA-Lib MACD(12, 26, 9)."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from signals import indicators as ind
from signals.strategies.base import Aligned, CrossStrategy, StrategyParams
from signals.strategies.confidence import cross_confidence

Array = np.ndarray


class MacdCrossParams(StrategyParams):
    fast: int = Field(12, ge=2)
    slow: int = Field(26, ge=2)
    signal: int = Field(9, ge=1)


class MacdCross(CrossStrategy[MacdCrossParams]):
    """BUY on ``cross_over(macd, macdsignal)`` of ``MACD(close, fast, slow, signal)``, SELL on
    ``cross_under``; price is the close. Confidence: :attr:`confidence` (the gap between the
    lines after the cross)."""

    key = "macd_cross"
    name = "MACD金叉"
    params_type = MacdCrossParams
    confidence = cross_confidence(
        0.002, "|macd - macdsignal| / close at the last bar (the gap after the cross relative to price)"
    )

    @property
    def min_bars(self) -> int:
        p = self.params
        return max(p.fast, p.slow) + p.signal

    def lines(self, a: Aligned) -> tuple[Array, Array]:
        p = self.params
        line, sig = a.cached(
            ("macd", p.fast, p.slow, p.signal),
            lambda: ind.macd_lines(a.close, p.fast, p.slow, p.signal),
        )
        return line, sig

    def labels(self) -> tuple[str, str]:
        return "MACD", "signal"
