"""volume_wave (动量守恒), from the system being replaced; the definition is exact."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from signals import indicators as ind
from signals.strategies.base import Aligned, CrossStrategy, StrategyParams
from signals.strategies.confidence import cross_confidence

Array = np.ndarray


class VolumeWaveParams(StrategyParams):
    angel: int = Field(2, ge=1)
    length: int = Field(18, ge=2)
    multiplier: float = 20.0
    devil: int = Field(36, ge=1)


class VolumeWave(CrossStrategy[VolumeWaveParams]):
    """``angel = ema0(close, 2)``; ``lr = LINEARREG(close, 18)``; ``xsl[i] = lr[i] - lr[i-1]``
    where both exist, else 0; ``devil = ema0(close + 20*xsl, 36)`` (the parameters angel,
    length, multiplier, devil). BUY on ``cross_over(angel, devil)``, SELL on ``cross_under``;
    price is the close. Confidence: :attr:`confidence` (the gap between the lines after the
    cross)."""

    key = "volume_wave"
    name = "动量守恒"
    params_type = VolumeWaveParams
    confidence = cross_confidence(
        0.01, "|angel - devil| / close at the last bar (the gap after the cross relative to price)"
    )

    @property
    def min_bars(self) -> int:
        return max(40, self.params.length + 2)

    def lines(self, a: Aligned) -> tuple[Array, Array]:
        """(angel, devil), left-aligned (every code starts at row 0)."""
        return wave_lines(a, self.params)

    def labels(self) -> tuple[str, str]:
        return "angel", "devil"


def wave_lines(a: Aligned, p: VolumeWaveParams) -> tuple[Array, Array]:
    """(angel, devil) of the parameters ``p``, left-aligned, memoised on the window: volume_wave
    and volume_wave_enhanced evaluated together compute them once."""

    def compute() -> tuple[Array, Array]:
        close = a.close
        angel = ind.ema0(close, p.angel, left_aligned=True)
        lr = ind.linearreg(close, p.length, left_aligned=True)
        return angel, devil_line(close, lr, p.length, p.multiplier, p.devil)

    lines: tuple[Array, Array] = a.cached(("wave", p.angel, p.length, p.multiplier, p.devil), compute)
    return lines


def devil_line(close: Array, lr: Array, length: int, mult: float, n: int) -> Array:
    """``ema0(close + mult * xsl, n)`` with ``xsl[i] = lr[i] - lr[i-1]`` where both exist (from
    row ``length`` on), else 0; one pass over the rows (left-aligned input)."""
    T, N = close.shape
    out = ind.empty(T, N)
    if T == 0:
        return out
    # lr[i-1] exists from row length-1: before row length the source is close + mult * 0
    ind.devil_loop(close, lr, length, mult, 2.0 / (n + 1), out)
    return out
