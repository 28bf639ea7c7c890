"""volume_surge (放量突破): a volume spike with a large price move."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from signals.strategies.base import Hits, Strategy, StrategyParams, Window, make_hits
from signals.strategies.confidence import Confidence, Term


class VolumeSurgeParams(StrategyParams):
    lookback: int = Field(20, ge=1)
    volume_multiple: float = Field(2.0, gt=0)
    price_change: float = Field(0.02, ge=0)


class VolumeSurge(Strategy[VolumeSurgeParams]):
    """With ``mean = mean(volume[t-lookback .. t-1])``: BUY when
    ``volume[t] >= volume_multiple * mean`` and ``close[t] >= (1 + price_change) * close[t-1]``;
    SELL on the same volume test and ``close[t] <= (1 - price_change) * close[t-1]`` (lookback
    20, volume_multiple 2, price_change 0.02 by default); price is the close. Confidence:
    :attr:`confidence` (the volume multiple and the size of the move)."""

    key = "volume_surge"
    name = "放量突破"
    params_type = VolumeSurgeParams
    confidence = Confidence(
        (
            Term(0.5, "m", "volume[t] / mean(volume[t-lookback..t-1]) (2 -> 0.33, 8 -> 0.67)", 4.0),
            Term(0.5, "c", "|close[t]/close[t-1] - 1|", 0.05),
        )
    )

    @property
    def min_bars(self) -> int:
        return self.params.lookback + 1

    def evaluate(self, w: Window) -> Hits:
        a = w.aligned()
        p = self.params
        total = np.zeros(a.N)
        for back in range(p.lookback, 0, -1):  # oldest first, like a plain sum
            total += a.at(a.volume, back)
        mean = total / p.lookback
        vol, c0, c1 = a.at(a.volume), a.at(a.close, 1), a.at(a.close)
        surge = vol >= p.volume_multiple * mean
        buy = surge & (c1 >= (1 + p.price_change) * c0)
        sell = surge & (c1 <= (1 - p.price_change) * c0)
        with np.errstate(invalid="ignore", divide="ignore"):
            multiple = vol / mean
            change = c1 / c0 - 1.0
        conf = self.confidence(multiple, np.abs(change))

        def reason(j: int, side: int) -> str:
            return f"volume {multiple[j]:.2f}x its {p.lookback}-bar mean, close {change[j] * 100:+.2f}%"

        return make_hits(a, self.min_bars, buy, sell, c1, conf, reason)
