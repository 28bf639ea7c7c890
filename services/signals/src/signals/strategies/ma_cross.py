"""ma_cross (均线金叉): SMA(close, fast) crossing SMA(close, slow)."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from signals.strategies.base import Aligned, CrossStrategy, StrategyParams
from signals.strategies.confidence import cross_confidence
from signals.strategies.shared_indicators import sma_close

Array = np.ndarray


class MaCrossParams(StrategyParams):
    fast: int = Field(5, ge=1)
    slow: int = Field(20, ge=2)


class MaCross(CrossStrategy[MaCrossParams]):
    """BUY on ``cross_over(SMA(close,fast), SMA(close,slow))``, SELL on ``cross_under``; price is
    the close. Confidence: :attr:`confidence` (the gap between the averages after the cross)."""

    key = "ma_cross"
    name = "均线金叉"
    params_type = MaCrossParams
    confidence = cross_confidence(
        0.005, "|SMA_fast - SMA_slow| / close at the last bar (the gap after the cross relative to price)"
    )

    @property
    def min_bars(self) -> int:
        return max(self.params.fast, self.params.slow) + 1

    def lines(self, a: Aligned) -> tuple[Array, Array]:
        return sma_close(a, self.params.fast), sma_close(a, self.params.slow)

    def labels(self) -> tuple[str, str]:
        return f"SMA{self.params.fast}", f"SMA{self.params.slow}"
