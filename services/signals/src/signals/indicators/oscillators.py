"""Oscillators: RSI (TA-Lib's Wilder smoothing replayed) and KDJ (STRATEGIES.md; TA-Lib has none).

:func:`rsi_parts` and :func:`kd_lines` take LEFT-ALIGNED (T, N) float64 arrays (every column
starts at row 0) and return left-aligned arrays, for callers that cache them (the strategies);
:func:`rsi` and :func:`kdj` accept any front padding."""

from __future__ import annotations

import numpy as np

from signals.indicators import loops
from signals.indicators.align import nan_head, run_kernel
from signals.indicators.rolling import rolling_kernel
from signals.indicators.ta_zero import is_zero

Array = np.ndarray


def rsi_parts(x: Array, n: int) -> tuple[Array, Array]:
    """TA_RSI's smoothed average gain and loss per row of a left-aligned close (Wilder, no
    MetaStock compatibility); rows before n are NaN. :func:`rsi_from_parts` turns them into the
    RSI (on any rows: callers that need only a few rows convert only those)."""
    T, N = x.shape
    gains = nan_head(T, N, n + 1)
    losses = nan_head(T, N, n + 1)
    if n >= T:
        return gains, losses
    loops.rsi_loop(x, n, gains, losses)
    return gains, losses


def rsi_from_parts(gain: Array, loss: Array) -> Array:
    """``100 * gain / (gain + loss)``, 0 where the sum is zero by TA-Lib's test (any shape)."""
    total = gain + loss
    with np.errstate(invalid="ignore", divide="ignore"):
        r = 100.0 * (gain / total)
    r[is_zero(total)] = 0.0
    return r


def kd_lines(
    high: Array,
    low: Array,
    close: Array,
    n: int,
    m1: int,
    m2: int,
    hh: Array | None = None,
    ll: Array | None = None,
) -> tuple[Array, Array]:
    """K and D of :func:`kdj` on left-aligned (T, N) fields; NaN before the first RSV (row
    n-1). ``hh``/``ll`` (HHV(high, n), LLV(low, n), left-aligned) may be passed in when already
    computed."""
    T, N = close.shape
    k_out = nan_head(T, N, n - 1)
    d_out = nan_head(T, N, n - 1)
    if n > T:
        return k_out, d_out
    if hh is None:
        hh = rolling_kernel(high, n, np.maximum)
    if ll is None:
        ll = rolling_kernel(low, n, np.minimum)
    loops.kd_loop(close, hh, ll, n, m1, m2, k_out, d_out)
    return k_out, d_out


def rsi(x: Array, n: int = 14, *, left_aligned: bool = False) -> Array:
    """``talib.RSI(x, n)`` per column."""
    return run_kernel(lambda a: (rsi_from_parts(*rsi_parts(a, n)),), (x,), left_aligned)[0]


def kdj(
    high: Array,
    low: Array,
    close: Array,
    n: int = 9,
    m1: int = 3,
    m2: int = 3,
    *,
    left_aligned: bool = False,
) -> tuple[Array, Array, Array]:
    """KDJ(n, m1, m2) as on Chinese trading screens (STRATEGIES.md): (K, D, J).

    ``RSV = (close - LLV(low,n)) / (HHV(high,n) - LLV(low,n)) * 100`` (50 where the range is 0);
    ``K = D = 50`` before the first RSV, then ``K = (m1-1)/m1*K + RSV/m1``,
    ``D = (m2-1)/m2*D + K/m2``, ``J = 3K - 2D``. NaN where no RSV exists yet.
    """
    k, d = run_kernel(lambda h, lo, c: kd_lines(h, lo, c, n, m1, m2), (high, low, close), left_aligned)
    return k, d, 3.0 * k - 2.0 * d
