"""volume_wave (动量守恒), from the system being replaced; the definition is exact."""

from __future__ import annotations

import numpy as np
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

GAP_SCALE = 0.01


class VolumeWaveParams(StrategyParams):
    angel: int = Field(2, ge=1)
    length: int = Field(18, ge=2)
    multiplier: float = 20.0
    devil: int = Field(36, ge=1)


class VolumeWave(Strategy[VolumeWaveParams]):
    """``angel = ema0(close, 2)``; ``lr = LINEARREG(close, 18)``; ``xsl[i] = lr[i] - lr[i-1]``
    where both exist, else 0; ``devil = ema0(close + 20*xsl, 36)``. BUY on
    ``cross_over(angel, devil)``, SELL on ``cross_under``; price is the close.

    Confidence: ``0.6*g/(g+0.01) + 0.4*v/(v+1.5)``, g = |angel - devil| / close at t,
    v = volume[t]/volume[t-1]."""

    key = "volume_wave"
    name = "动量守恒"
    params_type = VolumeWaveParams
    confidence_doc = CROSS_DOC.format(scale=GAP_SCALE, a="angel", b="devil")

    @property
    def min_bars(self) -> int:
        return max(40, self.params.length + 2)

    def lines(self, w: Window) -> tuple[np.ndarray, np.ndarray]:
        """(angel, devil), left-aligned (every code starts at row 0)."""
        a = w.aligned()
        p = self.params
        close = a.close
        angel = ind.ema0(close, p.angel, left_aligned=True)
        lr = ind.linearreg(close, p.length, left_aligned=True)
        devil = devil_line(close, lr, p.length, p.multiplier, p.devil)
        return angel, devil

    def evaluate(self, w: Window) -> Hits:
        a = w.aligned()
        angel, devil = self.lines(w)
        a0, a1, d0, d1 = a.at(angel, 1), a.at(angel), a.at(devil, 1), a.at(devil)
        close = a.at(a.close)
        conf = cross_confidence((a1 - d1) / close, volume_ratio(a), GAP_SCALE)

        def reason(j: int, side: int) -> str:
            verb = "crossed above" if side > 0 else "crossed below"
            return f"angel {a1[j]:.4f} {verb} devil {d1[j]:.4f}"

        return make_hits(
            a,
            self.min_bars,
            cross_over(a0, a1, d0, d1),
            cross_under(a0, a1, d0, d1),
            close,
            conf,
            reason,
        )


def devil_line(close: np.ndarray, lr: np.ndarray, length: int, mult: float, n: int) -> np.ndarray:
    """``ema0(close + mult * xsl, n)`` with ``xsl[i] = lr[i] - lr[i-1]`` where both exist (from
    row ``length`` on), else 0; one pass over the rows (left-aligned input)."""
    T, N = close.shape
    out = ind.empty(T, N)
    if T == 0:
        return out
    k = 2.0 / (n + 1)
    c = 1.0 - k
    src = np.empty(N)
    tmp = np.empty(N)
    out[0] = close[0]
    for i in range(1, T):
        if i >= length:  # lr[i-1] exists from row length-1
            np.subtract(lr[i], lr[i - 1], out=src)
            src *= mult
            src += close[i]
        else:
            src[:] = close[i]  # close + mult * 0
        np.multiply(src, k, out=out[i])
        out[i] += np.multiply(out[i - 1], c, out=tmp)
    return out
