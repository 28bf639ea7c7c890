"""Rolling max/min (``talib.MAX`` / ``talib.MIN``; exact whatever the algorithm) from doubling
levels that callers may share between window lengths."""

from __future__ import annotations

import numpy as np

from signals.indicators import loops
from signals.indicators.align import nan_head, run_kernel
from signals.indicators.pool import empty

Array = np.ndarray


def rolling_levels(x: Array, n: int, fn: np.ufunc) -> list[Array]:
    """Doubling levels for rolling max/min on a LEFT-ALIGNED (T, N) array:
    ``levels[k][i] = fn(x[i-2^k+1 .. i])``, valid from row 2^k - 1, for every 2^k <= n. Filled
    row by row (the rows stay in cache). The levels for ``n`` serve every length up to ``n``
    (:func:`rolling_from_levels`)."""
    T, N = x.shape
    levels = [x]
    p = 1
    while 2 * p <= n:
        prev, nxt = levels[-1], empty(T, N)
        nxt[: min(2 * p - 1, T)] = np.nan
        loops.pair_loop(prev, prev, p, 2 * p - 1, fn is np.maximum, nxt)
        levels.append(nxt)
        p *= 2
    return levels


def rolling_from_levels(levels: list[Array], n: int, fn: np.ufunc) -> Array:
    """fn over the trailing ``n`` rows from :func:`rolling_levels` (two overlapping windows of
    the largest power of two <= n). NaN before row n-1."""
    k = n.bit_length() - 1
    lev, p = levels[k], 1 << k
    T, N = lev.shape
    out = nan_head(T, N, n - 1)
    if p == n:
        out[n - 1 :] = lev[n - 1 :]
        return out
    back = n - p
    loops.pair_loop(lev, lev, back, n - 1, fn is np.maximum, out)
    return out


def rolling_kernel(x: Array, n: int, fn: np.ufunc) -> Array:
    """Rolling max/min over ``n`` rows of a left-aligned array."""
    return rolling_from_levels(rolling_levels(x, n, fn), n, fn)


def rolling_max(x: Array, n: int, *, left_aligned: bool = False) -> Array:
    """``talib.MAX(x, n)`` per column: max of the trailing n values, NaN before n exist."""
    return run_kernel(lambda a: (rolling_kernel(a, n, np.maximum),), (x,), left_aligned)[0]


def rolling_min(x: Array, n: int, *, left_aligned: bool = False) -> Array:
    """``talib.MIN(x, n)`` per column."""
    return run_kernel(lambda a: (rolling_kernel(a, n, np.minimum),), (x,), left_aligned)[0]
