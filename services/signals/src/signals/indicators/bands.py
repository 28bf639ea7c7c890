"""Bollinger bands, as ``talib.BBANDS`` with an SMA middle band.

:func:`bb_parts` takes a LEFT-ALIGNED (T, N) close and returns the middle band and the variance
for callers that cache them and need the bands on a few rows only (:func:`bb_bands` works on any
shape); :func:`bbands` accepts any front padding."""

from __future__ import annotations

import numpy as np

from signals.indicators import loops
from signals.indicators.align import nan_head, run_kernel
from signals.indicators.averages import sma_kernel
from signals.indicators.ta_zero import is_zero_or_neg

Array = np.ndarray


def bb_parts(x: Array, n: int) -> tuple[Array, Array]:
    """Middle band (TA-Lib SMA) and the variance as TA_INT_stddev_using_precalc_ma computes it
    (running mean of squares minus the squared mean), before the zero/negative test."""
    mid = sma_kernel(x, n)
    T, N = x.shape
    var = nan_head(T, N, n - 1)
    if n > T:
        return mid, var
    loops.bb_var_loop(x, mid, n, var)
    return mid, var


def bb_bands(mid: Array, var: Array, nbdevup: float, nbdevdn: float) -> tuple[Array, Array]:
    """Upper and lower band from :func:`bb_parts` values (any shape), as TA_BBANDS does."""
    with np.errstate(invalid="ignore"):
        std = np.where(is_zero_or_neg(var), 0.0, np.sqrt(var))
    if nbdevup == nbdevdn:
        dev = std * nbdevup
        return mid + dev, mid - dev
    return mid + std * nbdevup, mid - std * nbdevdn


def _bbands_kernel(x: Array, n: int, nbdevup: float, nbdevdn: float) -> tuple[Array, Array, Array]:
    mid, var = bb_parts(x, n)
    upper, lower = bb_bands(mid, var, nbdevup, nbdevdn)
    return upper, mid, lower


def bbands(
    x: Array,
    n: int = 20,
    nbdevup: float = 2.0,
    nbdevdn: float = 2.0,
    *,
    left_aligned: bool = False,
) -> tuple[Array, Array, Array]:
    """``talib.BBANDS(x, n, nbdevup, nbdevdn, matype=SMA)`` per column: (upper, middle, lower)."""
    up, mid, lo = run_kernel(lambda a: _bbands_kernel(a, n, nbdevup, nbdevdn), (x,), left_aligned)
    return up, mid, lo
