"""Moving averages: SMA, EMA, MACD (TA-Lib's loops replayed) and ``ema0`` (STRATEGIES.md).

The kernels (``*_kernel``, :func:`macd_lines`) take left-aligned (T, N) float64 arrays (every
column starts at row 0) and return left-aligned arrays; rows after a column's last bar are filler
that callers never read. The padded functions (:func:`sma`, ...) accept any front padding."""

from __future__ import annotations

import numpy as np

from signals.indicators import loops
from signals.indicators.align import nan_head, run_kernel
from signals.indicators.pool import empty

Array = np.ndarray


def sma_kernel(x: Array, n: int) -> Array:
    """TA_INT_SMA: a running total, first output at row n-1."""
    T, N = x.shape
    out = nan_head(T, N, n - 1)
    if n > T:
        return out
    loops.sma_loop(x, n, out)
    return out


def _ema_into(x: Array, n: int, k: float, seed_start: int, out: Array) -> None:
    """TA_INT_EMA: seed = plain sum of x[seed_start : seed_start+n] / n at row seed_start+n-1,
    then ``e = (x - e) * k + e``. Rows before the seed are set to NaN."""
    T, _N = x.shape
    r = seed_start + n - 1
    out[: min(r, T)] = np.nan
    if r >= T:
        return
    loops.ema_loop(x, n, k, seed_start, out)


def _ema_kernel(x: Array, n: int) -> Array:
    out = np.empty(x.shape)
    _ema_into(x, n, 2.0 / (n + 1), 0, out)
    return out


def macd_lines(x: Array, fast: int, slow: int, signal: int) -> tuple[Array, Array]:
    """The MACD line and its signal line (``talib.MACD``'s first two outputs) on a LEFT-ALIGNED
    (T, N) close; NaN before TA-Lib's first output row ``max(fast, slow) + signal - 2``.

    TA_INT_MACD: both EMAs produce their first value on the same row (slow-1), the fast one
    seeded with the mean of the ``fast`` closes ending there, not of the first ``fast`` closes.
    For callers that cache the lines (the strategies); :func:`macd` takes padded input."""
    if slow < fast:
        fast, slow = slow, fast
    T, N = x.shape
    first = slow - 1 + signal - 1  # TA-Lib's lookback: first row with all three outputs
    slow_e = empty(T, N)
    fast_e = empty(T, N)
    _ema_into(x, slow, 2.0 / (slow + 1), 0, slow_e)
    _ema_into(x, fast, 2.0 / (fast + 1), slow - fast, fast_e)
    line = fast_e
    np.subtract(fast_e, slow_e, out=line)
    sig = slow_e  # reuse the buffer
    _ema_into(line, signal, 2.0 / (signal + 1), slow - 1, sig)
    line[: min(first, T)] = np.nan
    return line, sig


def _ema0_kernel(x: Array, n: int) -> Array:
    """``e[0] = x[0]``, ``e[i] = k*x[i] + (1-k)*e[i-1]``, ``k = 2/(n+1)`` (STRATEGIES.md)."""
    T, N = x.shape
    out = empty(T, N)
    if T == 0:
        return out
    loops.ema0_loop(x, 2.0 / (n + 1), out)
    return out


def sma(x: Array, n: int, *, left_aligned: bool = False) -> Array:
    """``talib.SMA(x, n)`` per column."""
    return run_kernel(lambda a: (sma_kernel(a, n),), (x,), left_aligned)[0]


def ema(x: Array, n: int, *, left_aligned: bool = False) -> Array:
    """``talib.EMA(x, n)`` per column (seeded with the SMA of the first n values)."""
    return run_kernel(lambda a: (_ema_kernel(a, n),), (x,), left_aligned)[0]


def macd(
    x: Array, fast: int = 12, slow: int = 26, signal: int = 9, *, left_aligned: bool = False
) -> tuple[Array, Array, Array]:
    """``talib.MACD(x, fast, slow, signal)`` per column: (macd, macdsignal, macdhist)."""
    line, sig = run_kernel(lambda a: macd_lines(a, fast, slow, signal), (x,), left_aligned)
    return line, sig, line - sig


def ema0(x: Array, n: int, *, left_aligned: bool = False) -> Array:
    """``pandas.Series(x).ewm(span=n, adjust=False).mean()`` per column, computed literally as
    ``e[0] = x[0]``, ``e[i] = k*x[i] + (1-k)*e[i-1]`` with ``k = 2/(n+1)``."""
    return run_kernel(lambda a: (_ema0_kernel(a, n),), (x,), left_aligned)[0]
