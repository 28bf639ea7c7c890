"""The time loops of the indicator kernels, compiled (numba).

A numpy time loop costs a few ufunc calls per row whatever the number of codes: ~250 rows x a few
calls x ~1 us, the same for one code as for a batch of 500. The streaming path evaluates small
batches, so that fixed cost was most of its time; compiled, a loop costs what its arithmetic costs.

Each loop does, per element, exactly the operations (and in the order) of the numpy code it
replaced, so every value is bit for bit the same: no fast-math (no reassociation, no fused
multiply-add), IEEE division by zero (``error_model="numpy"``: inf/NaN, no exception), and
:func:`_max` / :func:`_min` as ``np.maximum`` / ``np.minimum`` (NaN propagates; on equal values
the first argument). The arrays are (T, N), C order; the loops run row by row, codes inside.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

Array = np.ndarray

_jit = njit(cache=True, nogil=True, error_model="numpy")


@_jit
def _max(a: float, b: float) -> float:
    """``np.maximum(a, b)``."""
    return a if (a >= b or a != a) else b


@_jit
def _min(a: float, b: float) -> float:
    """``np.minimum(a, b)``."""
    return a if (a <= b or a != a) else b


@_jit
def sma_loop(x: Array, n: int, out: Array) -> None:
    """TA_INT_SMA's running total into rows n-1.. of ``out`` (n <= T)."""
    T, N = x.shape
    total = np.zeros(N)
    for i in range(n - 1):
        for j in range(N):
            total[j] += x[i, j]
    for i in range(n - 1, T):
        back = i - n + 1
        for j in range(N):
            total[j] += x[i, j]
            out[i, j] = total[j] / n
            total[j] -= x[back, j]


@_jit
def ema_loop(x: Array, n: int, k: float, seed_start: int, out: Array) -> None:
    """TA_INT_EMA from the seed row ``seed_start + n - 1`` (< T) on: the seed is the plain sum of
    the n values ending there / n, then ``e = (x - e) * k + e``."""
    T, N = x.shape
    r = seed_start + n - 1
    seed = np.zeros(N)
    for i in range(seed_start, r + 1):
        for j in range(N):
            seed[j] += x[i, j]
    for j in range(N):
        out[r, j] = seed[j] / n
    for i in range(r + 1, T):
        for j in range(N):
            prev = out[i - 1, j]
            out[i, j] = (x[i, j] - prev) * k + prev


@_jit
def ema0_loop(x: Array, k: float, out: Array) -> None:
    """``e[0] = x[0]``, ``e[i] = x[i]*k + e[i-1]*(1-k)`` (T >= 1)."""
    T, N = x.shape
    c = 1.0 - k
    for j in range(N):
        out[0, j] = x[0, j]
    for i in range(1, T):
        for j in range(N):
            out[i, j] = x[i, j] * k + out[i - 1, j] * c


@_jit
def devil_loop(close: Array, lr: Array, length: int, mult: float, k: float, out: Array) -> None:
    """volume_wave's devil line: ``ema0`` (T >= 1) of ``close + mult * (lr[i] - lr[i-1])`` from
    row ``length`` on, of ``close`` before it."""
    T, N = close.shape
    c = 1.0 - k
    for j in range(N):
        out[0, j] = close[0, j]
    for i in range(1, T):
        for j in range(N):
            src = (lr[i, j] - lr[i - 1, j]) * mult + close[i, j] if i >= length else close[i, j]
            out[i, j] = src * k + out[i - 1, j] * c


@_jit
def rsi_loop(x: Array, n: int, gains: Array, losses: Array) -> None:
    """TA_RSI's Wilder-smoothed average gain and loss into rows n.. (n < T)."""
    T, N = x.shape
    gain = np.zeros(N)
    loss = np.zeros(N)
    for i in range(1, n + 1):
        for j in range(N):
            d = x[i, j] - x[i - 1, j]
            gain[j] += _max(d, 0.0)
            loss[j] -= _min(d, 0.0)
    for j in range(N):
        gains[n, j] = gain[j] / n
        losses[n, j] = loss[j] / n
    for i in range(n + 1, T):
        for j in range(N):
            d = x[i, j] - x[i - 1, j]
            gains[i, j] = (gains[i - 1, j] * (n - 1) + _max(d, 0.0)) / n
            losses[i, j] = (losses[i - 1, j] * (n - 1) - _min(d, 0.0)) / n


@_jit
def kd_loop(close: Array, hh: Array, ll: Array, n: int, m1: int, m2: int, k_out: Array, d_out: Array) -> None:
    """KDJ's K and D from row n-1 (< T) on; K = D = 50 before the first RSV."""
    T, N = close.shape
    ka, kb = (m1 - 1) / m1, 1 / m1
    da, db = (m2 - 1) / m2, 1 / m2
    for i in range(n - 1, T):
        for j in range(N):
            rng = hh[i, j] - ll[i, j]
            rsv = (close[i, j] - ll[i, j]) / rng * 100.0
            if rng == 0.0:
                rsv = 50.0
            k_prev = 50.0 if i == n - 1 else k_out[i - 1, j]
            d_prev = 50.0 if i == n - 1 else d_out[i - 1, j]
            k = k_prev * ka + rsv * kb
            k_out[i, j] = k
            d_out[i, j] = d_prev * da + k * db


@_jit
def pair_loop(a: Array, b: Array, back: int, first: int, is_max: bool, out: Array) -> None:
    """``out[i] = max(a[i], b[i - back])`` (or min) for rows ``first`` .. T-1."""
    T, N = a.shape
    for i in range(first, T):
        for j in range(N):
            out[i, j] = _max(a[i, j], b[i - back, j]) if is_max else _min(a[i, j], b[i - back, j])


@_jit
def wilder0_loop(out: Array, n: int) -> None:
    """``out[i] += out[i-1] * (n-1) / n`` for rows 1.. (rows 1.. already divided by n)."""
    T, N = out.shape
    c = n - 1
    for i in range(1, T):
        for j in range(N):
            out[i, j] += out[i - 1, j] * c / n


@_jit
def atr_stop_loop(close: Array, nloss: Array, lower: Array, higher: Array, far: float, stop: Array) -> None:
    """The ATR trailing stop from row 1 on (row 0 set), branch-free as
    :func:`signals.indicators.volatility.atr_stop_lines` documents it."""
    T, N = close.shape
    for i in range(1, T):
        for j in range(N):
            p = stop[i - 1, j]
            c = close[i, j]
            s = math.copysign(nloss[i, j], p - c) + c
            s = _max(s, (1.0 if lower[i - 1, j] <= p else 0.0) * -far + p)
            s = _min(s, (1.0 if higher[i - 1, j] >= p else 0.0) * far + p)
            stop[i, j] = s


@_jit
def bb_var_loop(x: Array, mid: Array, n: int, var: Array) -> None:
    """TA_INT_stddev_using_precalc_ma's variance into rows n-1.. (n <= T)."""
    T, N = x.shape
    total2 = np.zeros(N)
    for i in range(n - 1):
        for j in range(N):
            total2[j] += x[i, j] * x[i, j]
    for i in range(n - 1, T):
        back = i - n + 1
        for j in range(N):
            total2[j] += x[i, j] * x[i, j]
            v = total2[j] / n
            total2[j] -= x[back, j] * x[back, j]
            var[i, j] = v - mid[i, j] * mid[i, j]


@_jit
def linearreg_loop(x: Array, w: Array, out: Array) -> None:
    """``out[i] = sum(w[k] * x[i-n+1+k])``, oldest first, for rows n-1.. (n = len(w) <= T)."""
    T, N = x.shape
    n = w.shape[0]
    # each value is summed in the same order (k = 0, 1, ..), the codes inside: the loop over them
    # reads and writes rows, not columns (a column's rows are a row length apart)
    for i in range(n - 1, T):
        lo = i - n + 1
        for j in range(N):
            out[i, j] = x[lo, j] * w[0]
        for k in range(1, n):
            wk = w[k]
            for j in range(N):
                out[i, j] += x[lo + k, j] * wk


@_jit
def positions_loop(angel: Array, devil: Array, close: Array, trend: Array, held: Array, since: Array) -> None:
    """volume_wave_enhanced's pairing from row 1 on (row 0 flat): ``held`` 1.0/0.0 and ``since``.

    At row i a BUY is ``cross_over(angel, devil)`` with ``close > trend``, a SELL (what ends a
    long) ``cross_under(angel, devil)``: the comparisons numpy made on whole arrays, per element."""
    T, N = held.shape
    long = np.zeros(N, dtype=np.bool_)
    for i in range(1, T):
        for j in range(N):
            a0, a1, d0, d1 = angel[i - 1, j], angel[i, j], devil[i - 1, j], devil[i, j]
            buy = (a0 <= d0) and (a1 > d1) and (close[i, j] > trend[i, j])
            keep = not ((a0 >= d0) and (a1 < d1))
            accepted = (not long[j]) and buy
            long[j] = (long[j] and keep) or accepted
            held[i, j] = 1.0 if long[j] else 0.0
            since[i, j] = _max(float(i) if accepted else 0.0, since[i - 1, j])


@_jit
def swing_loop(
    high: Array, low: Array, hh: Array, ll: Array, L: int, first: int, LH: Array, LL: Array
) -> None:
    """trend_continuation's swing-point state machine (STRATEGIES.md, step 2) for rows ``first``
    .. T-1, starting from the first bar's high and low, direction not up; ``hh`` / ``ll`` are the
    rolling max of high / min of low over 2L+1 rows."""
    T, N = high.shape
    last_high = high[0].copy()
    last_low = low[0].copy()
    up = np.zeros(N, dtype=np.bool_)
    for i in range(first, T):
        j = i - L
        for c in range(N):
            hj, lj = high[j, c], low[j, c]
            mx = hj == hh[j, c]
            mn = lj == ll[j, c]
            if mx or mn:
                dn = not up[c]
                # dir_up: a lower swing low extends the leg; a swing high above it turns down
                if lj < last_low[c] and mn and up[c]:
                    last_low[c] = lj
                if hj > last_low[c] and mx and up[c]:
                    last_high[c] = hj
                    up[c] = False
                # not dir_up: a higher swing high extends; a swing low below it turns up ...
                if hj > last_high[c] and mx and dn:
                    last_high[c] = hj
                turned = lj < last_high[c] and mn and dn
                if turned:
                    last_low[c] = lj
                    up[c] = True
                # ... and then, still for the same j, a swing high above the new low turns down
                if hj > last_low[c] and mx and turned:
                    last_high[c] = hj
                    up[c] = False
            LH[i, c] = last_high[c]
            LL[i, c] = last_low[c]
