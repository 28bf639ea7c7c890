"""LINEARREG: the end value of the least-squares line over each window, as ``talib.LINEARREG``.

Computed from scratch for every window as a fixed-weight sum (TA-Lib's own running sums carry
rounding from earlier bars), so a flat stretch gives exactly the same value on every bar and
``lr[i] - lr[i-1]`` is exactly 0 there."""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from signals.indicators import loops
from signals.indicators.align import nan_head, run_kernel

Array = np.ndarray


def _linearreg_weights(n: int) -> list[float]:
    """Least-squares end-value weights, oldest first: ``lr = sum(w[k] * x[t-n+1+k])``."""
    xbar = Fraction(n - 1, 2)
    sxx = Fraction(n * (n * n - 1), 12)
    return [float(Fraction(1, n) + (k - xbar) * xbar / sxx) for k in range(n)]


def _linearreg_kernel(x: Array, n: int) -> Array:
    """LINEARREG as a fixed-weight sum over each window, oldest bar first (compiled loop).

    Every window is computed from scratch with the same operations, so a constant window gives
    exactly the same value on every row (its slope difference is exactly 0)."""
    T, N = x.shape
    out = nan_head(T, N, n - 1)
    if n > T:
        return out
    loops.linearreg_loop(x, np.array(_linearreg_weights(n)), out)
    return out


def linearreg(x: Array, n: int = 14, *, left_aligned: bool = False) -> Array:
    """``talib.LINEARREG(x, n)`` per column: the end value of the least-squares line."""
    return run_kernel(lambda a: (_linearreg_kernel(a, n),), (x,), left_aligned)[0]
