"""Technical indicators on time-major arrays, vectorised across codes.

Why not call TA-Lib directly: TA-Lib takes one 1-D series per call. The full-market scan
evaluates ~6,000 codes x 250 bars, and a Python loop over codes calling TA-Lib for every
indicator costs ~0.2 s on a 2-core machine. Here every indicator runs on a ``(T, N)`` array
(time along axis 0, oldest first, one column per code) with the time loop in Python and the work
across all codes done by one numpy operation per step; the step rows stay in cache, so the whole
strategy set runs faster than the TA-Lib loop.

Exactness: STRATEGIES.md defines the indicators as TA-Lib's, so TA-Lib is the oracle. The
recursive ones (SMA, EMA, MACD, RSI, BBANDS) replay TA-Lib's C loop: the same running totals, the
same seeding (an SMA seed for EMA; MACD's fast EMA seeded on the same bar as the slow one; Wilder
smoothing for RSI; mean of squares minus squared mean for the band width), the same zero tests.
SMA is bit-for-bit TA-Lib's (ties in crosses of tick-rounded prices resolve as TA-Lib's do). The
bundled TA-Lib picks an FMA build of some functions at run time on CPUs that have FMA, so for
those only agreement to ~1e-14 relative is possible and the tests use ``rtol=1e-9``. LINEARREG
is computed from scratch for every window as a fixed-weight sum (TA-Lib's own running sums carry
rounding from earlier bars), so a flat stretch gives exactly the same value on every bar and
``lr[i] - lr[i-1]`` is exactly 0 there. Rolling max/min are exact whatever the algorithm.
``ema0`` and KDJ are not TA-Lib's; they follow STRATEGIES.md literally.
tests/unit/signals/test_indicators.py compares every function with TA-Lib (or pandas, or a
literal loop) code by code on randomly padded data.

Padding: a code with fewer than T bars is NaN-padded at the FRONT. Every public function takes
such arrays and returns arrays of the same shape in which column ``j`` is exactly what the
function gives for that code's unpadded series (then padded the same way): results never depend
on the padding nor on the other columns. Internally the columns are first shifted so that every
code starts at row 0 ("left-aligned", the last bar repeated at the back); callers that keep
data left-aligned (the strategies) pass ``left_aligned=True`` and skip the shifting.

All functions accept a 1-D series too and then return 1-D results.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from fractions import Fraction

import numpy as np

__all__ = [
    "bbands",
    "ema",
    "ema0",
    "first_valid",
    "kdj",
    "left_align",
    "linearreg",
    "macd",
    "right_align",
    "rolling_max",
    "rolling_min",
    "rsi",
    "sma",
]

NAN = np.nan
# TA-Lib's TA_IS_ZERO and TA_IS_ZERO_OR_NEG thresholds
_TA_EPSILON = 0.00000001
# rows per step of the fixed-window kernels (keeps the working set in cache)
_ROWS = 16

Array = np.ndarray


# --------------------------------------------------------------------------- padding helpers


def first_valid(x: Array) -> Array:
    """Row of the first non-NaN value per column; ``T`` for an all-NaN column."""
    if x.shape[0] == 0:
        return np.zeros(x.shape[1], dtype=np.int64)
    finite = ~np.isnan(x)
    first = np.argmax(finite, axis=0)
    return np.where(finite.any(axis=0), first, x.shape[0])


def left_align(x: Array, start: Array) -> Array:
    """Shift column ``j`` up by ``start[j]`` rows so that its first bar lands on row 0.

    The rows freed at the back repeat the column's last value (1.0 for a column with no value):
    every computation here is causal, so they never change a real row, and keeping them finite
    keeps NaN out of the time loops (an ordered comparison with NaN sets the FP "invalid" flag,
    and numpy's per-call error handling then costs more than the arithmetic)."""
    if not start.any():
        return x
    T = x.shape[0]
    out = empty(*x.shape)
    np.copyto(out, x)
    cols = np.flatnonzero(start)
    rows = np.arange(T)[:, None] + start[cols][None, :]
    moved = x[np.minimum(rows, T - 1), cols[None, :]]
    no_bars = start[cols] >= T
    if no_bars.any():
        moved[:, no_bars] = 1.0
    out[:, cols] = moved
    return out


def right_align(y: Array, start: Array) -> Array:
    """Inverse of :func:`left_align`: column ``j`` moved down by ``start[j]`` rows, NaN in front."""
    if not start.any():
        return y
    out = y.copy()
    cols = np.flatnonzero(start)
    rows = np.arange(y.shape[0])[:, None] - start[cols][None, :]
    moved = y[np.maximum(rows, 0), cols[None, :]]
    moved[rows < 0] = NAN
    out[:, cols] = moved
    return out


def _run(
    kernel: Callable[..., tuple[Array, ...]], inputs: tuple[Array, ...], left_aligned: bool
) -> tuple[Array, ...]:
    """Apply a left-aligned kernel to front-padded inputs (2-D or 1-D) and pad the outputs back."""
    one_d = inputs[0].ndim == 1
    arrs = tuple(
        np.asarray(a, dtype=np.float64).reshape(-1, 1) if one_d else np.asarray(a, dtype=np.float64)
        for a in inputs
    )
    if left_aligned:
        outs = kernel(*arrs)
    else:
        # every field of a code starts at the same row; the last input (close) decides
        start = first_valid(arrs[-1])
        start = np.minimum(start, arrs[-1].shape[0])
        outs = tuple(right_align(o, start) for o in kernel(*(left_align(a, start) for a in arrs)))
    if one_d:
        outs = tuple(o.ravel() for o in outs)
    return outs


class _Pool(threading.local):
    """Per-thread free lists of (T, N) float64 arrays, used inside :func:`recycle` only."""

    def __init__(self) -> None:
        self.depth = 0
        self.free: dict[tuple[int, int], list[Array]] = {}
        self.lent: list[Array] = []


_pool = _Pool()
# keep at most this much memory in the free lists between calls (only the last call's arrays)
POOL_MAX_BYTES = 1 << 30


@contextmanager
def recycle() -> Iterator[None]:
    """Inside this block the kernels take their (T, N) arrays from a per-thread pool, and on
    exit every array handed out goes back to it for the next call.

    Why: a full-market evaluation allocates ~30 arrays of 250 x 6,000 floats; fresh memory
    costs a page fault per few pages (expensive in a VM) and the allocator hands large blocks
    back to the OS when they are freed, so without reuse the faults cost more than the arithmetic.
    Only for callers that drop every array computed inside before leaving the block and keep
    copies of what they need (``evaluate_all`` does).
    """
    _pool.depth += 1
    try:
        yield
    finally:
        _pool.depth -= 1
        if _pool.depth == 0:
            # keep only what this call used: the next call of the same size reuses it all, and
            # a stream of differently sized batches never piles up arrays of old sizes
            lent, _pool.lent = _pool.lent, []
            _pool.free = {}
            kept = 0
            for a in lent:
                if kept + a.nbytes > POOL_MAX_BYTES:
                    break
                _pool.free.setdefault(a.shape, []).append(a)
                kept += a.nbytes


def empty(T: int, N: int) -> Array:
    """An uninitialised (T, N) float64 array (from the pool inside :func:`recycle`)."""
    if _pool.depth == 0:
        return np.empty((T, N))
    free = _pool.free.get((T, N))
    out = free.pop() if free else np.empty((T, N))
    _pool.lent.append(out)
    return out


def _nan_head(T: int, N: int, head: int) -> Array:
    """An uninitialised (T, N) array whose first ``head`` rows are NaN."""
    out = empty(T, N)
    out[: min(head, T)] = NAN
    return out


# --------------------------------------------------------------------------- kernels
# Kernels take left-aligned (T, N) float64 arrays (every column starts at row 0) and return
# left-aligned arrays. Rows after a column's last bar are filler: callers never read them.


def _sma_k(x: Array, n: int) -> Array:
    """TA_INT_SMA: a running total, first output at row n-1."""
    T, N = x.shape
    out = _nan_head(T, N, n - 1)
    if n > T:
        return out
    total = np.zeros(N)
    for i in range(n - 1):
        total += x[i]
    for i in range(n - 1, T):
        total += x[i]
        np.divide(total, n, out=out[i])
        total -= x[i - n + 1]
    return out


def _ema_into(x: Array, n: int, k: float, seed_start: int, out: Array) -> None:
    """TA_INT_EMA: seed = plain sum of x[seed_start : seed_start+n] / n at row seed_start+n-1,
    then ``e = (x - e) * k + e``. Rows before the seed are set to NaN."""
    T, N = x.shape
    r = seed_start + n - 1
    out[: min(r, T)] = NAN
    if r >= T:
        return
    seed = np.zeros(N)
    for i in range(seed_start, r + 1):
        seed += x[i]
    np.divide(seed, n, out=out[r])
    tmp = np.empty(N)
    for i in range(r + 1, T):
        np.subtract(x[i], out[i - 1], out=tmp)
        tmp *= k
        np.add(tmp, out[i - 1], out=out[i])


def _ema_k(x: Array, n: int) -> Array:
    out = np.empty(x.shape)
    _ema_into(x, n, 2.0 / (n + 1), 0, out)
    return out


def _macd_k(x: Array, fast: int, slow: int, signal: int) -> tuple[Array, Array]:
    """TA_INT_MACD. Both EMAs produce their first value on the same row (slow-1): the fast one is
    seeded with the mean of the ``fast`` closes ending there, not of the first ``fast`` closes."""
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
    line[: min(first, T)] = NAN
    return line, sig


def _rsi_parts(x: Array, n: int) -> tuple[Array, Array]:
    """TA_RSI's smoothed average gain and loss per row (Wilder, no MetaStock compatibility);
    rows before n are NaN. :func:`rsi_from_parts` turns them into the RSI."""
    T, N = x.shape
    gains = _nan_head(T, N, n + 1)
    losses = _nan_head(T, N, n + 1)
    if n >= T:
        return gains, losses
    gain = np.zeros(N)
    loss = np.zeros(N)
    d = np.empty(N)
    part = np.empty(N)
    for i in range(1, n + 1):
        np.subtract(x[i], x[i - 1], out=d)
        gain += np.maximum(d, 0.0, out=part)
        loss -= np.minimum(d, 0.0, out=part)
    np.divide(gain, n, out=gains[n])
    np.divide(loss, n, out=losses[n])
    for i in range(n + 1, T):
        g, lo = gains[i], losses[i]
        np.multiply(gains[i - 1], n - 1, out=g)
        np.multiply(losses[i - 1], n - 1, out=lo)
        np.subtract(x[i], x[i - 1], out=d)
        g += np.maximum(d, 0.0, out=part)
        lo -= np.minimum(d, 0.0, out=part)
        g /= n
        lo /= n
    return gains, losses


def rsi_from_parts(gain: Array, loss: Array) -> Array:
    """``100 * gain / (gain + loss)``, 0 where the sum is zero by TA-Lib's test."""
    total = gain + loss
    with np.errstate(invalid="ignore", divide="ignore"):
        r = 100.0 * (gain / total)
    r[(total > -_TA_EPSILON) & (total < _TA_EPSILON)] = 0.0
    return r


def _rsi_k(x: Array, n: int) -> Array:
    return rsi_from_parts(*_rsi_parts(x, n))


def _bb_parts(x: Array, n: int) -> tuple[Array, Array]:
    """Middle band (TA-Lib SMA) and the variance as TA_INT_stddev_using_precalc_ma computes it
    (running mean of squares minus the squared mean), before the zero/negative test."""
    mid = _sma_k(x, n)
    T, N = x.shape
    var = _nan_head(T, N, n - 1)
    if n > T:
        return mid, var
    total2 = np.zeros(N)
    sq = np.empty(N)
    for i in range(n - 1):
        total2 += np.multiply(x[i], x[i], out=sq)
    for i in range(n - 1, T):
        total2 += np.multiply(x[i], x[i], out=sq)
        v = var[i]
        np.divide(total2, n, out=v)
        old = x[i - n + 1]
        total2 -= np.multiply(old, old, out=sq)
        v -= np.multiply(mid[i], mid[i], out=sq)
    return mid, var


def bb_bands(mid: Array, var: Array, nbdevup: float, nbdevdn: float) -> tuple[Array, Array]:
    """Upper and lower band from :func:`_bb_parts` values (any shape), as TA_BBANDS does."""
    with np.errstate(invalid="ignore"):
        std = np.where(var < _TA_EPSILON, 0.0, np.sqrt(var))
    if nbdevup == nbdevdn:
        dev = std * nbdevup
        return mid + dev, mid - dev
    return mid + std * nbdevup, mid - std * nbdevdn


def _bbands_k(x: Array, n: int, nbdevup: float, nbdevdn: float) -> tuple[Array, Array, Array]:
    mid, var = _bb_parts(x, n)
    upper, lower = bb_bands(mid, var, nbdevup, nbdevdn)
    return upper, mid, lower


def _linearreg_weights(n: int) -> list[float]:
    """Least-squares end-value weights, oldest first: ``lr = sum(w[k] * x[t-n+1+k])``."""
    xbar = Fraction(n - 1, 2)
    sxx = Fraction(n * (n * n - 1), 12)
    return [float(Fraction(1, n) + (k - xbar) * xbar / sxx) for k in range(n)]


def _linearreg_k(x: Array, n: int) -> Array:
    """LINEARREG as a fixed-weight sum over each window, oldest bar first, in row blocks.

    Every window is computed from scratch with the same operations, so a constant window gives
    exactly the same value on every row (its slope difference is exactly 0)."""
    T, N = x.shape
    out = _nan_head(T, N, n - 1)
    if n > T:
        return out
    w = _linearreg_weights(n)
    tmp = np.empty((_ROWS, N))
    for i0 in range(n - 1, T, _ROWS):
        i1 = min(i0 + _ROWS, T)
        acc = out[i0:i1]
        t = tmp[: i1 - i0]
        lo = i0 - n + 1
        np.multiply(x[lo : i1 - n + 1], w[0], out=acc)
        for k in range(1, n):
            acc += np.multiply(x[lo + k : i1 - n + 1 + k], w[k], out=t)
    return out


def rolling_levels(x: Array, n: int, fn: np.ufunc) -> list[Array]:
    """Doubling levels for rolling max/min: ``levels[k][i] = fn(x[i-2^k+1 .. i])``, valid from
    row 2^k - 1, for every 2^k <= n. Filled row by row (the rows stay in cache)."""
    T, N = x.shape
    levels = [x]
    p = 1
    while 2 * p <= n:
        prev, nxt = levels[-1], empty(T, N)
        nxt[: min(2 * p - 1, T)] = NAN
        for i in range(2 * p - 1, T):
            fn(prev[i], prev[i - p], out=nxt[i])
        levels.append(nxt)
        p *= 2
    return levels


def rolling_from_levels(levels: list[Array], n: int, fn: np.ufunc) -> Array:
    """fn over the trailing ``n`` rows from :func:`rolling_levels` (two overlapping windows of
    the largest power of two <= n). NaN before row n-1."""
    k = n.bit_length() - 1
    lev, p = levels[k], 1 << k
    T, N = lev.shape
    out = _nan_head(T, N, n - 1)
    if p == n:
        out[n - 1 :] = lev[n - 1 :]
        return out
    back = n - p
    for i in range(n - 1, T):
        fn(lev[i], lev[i - back], out=out[i])
    return out


def _rolling_k(x: Array, n: int, fn: np.ufunc) -> Array:
    """Rolling max/min over ``n`` rows (exact whatever the algorithm)."""
    return rolling_from_levels(rolling_levels(x, n, fn), n, fn)


def _ema0_k(x: Array, n: int) -> Array:
    """``e[0] = x[0]``, ``e[i] = k*x[i] + (1-k)*e[i-1]``, ``k = 2/(n+1)`` (STRATEGIES.md)."""
    T, N = x.shape
    out = empty(T, N)
    if T == 0:
        return out
    k = 2.0 / (n + 1)
    c = 1.0 - k
    out[0] = x[0]
    tmp = np.empty(N)
    for i in range(1, T):
        np.multiply(x[i], k, out=out[i])
        out[i] += np.multiply(out[i - 1], c, out=tmp)
    return out


def _kd_k(
    high: Array,
    low: Array,
    close: Array,
    n: int,
    m1: int,
    m2: int,
    hh: Array | None = None,
    ll: Array | None = None,
) -> tuple[Array, Array]:
    """K and D as STRATEGIES.md defines them; NaN before the first RSV (row n-1). ``hh``/``ll``
    (HHV(high, n), LLV(low, n)) may be passed in when already computed."""
    T, N = close.shape
    k_out = _nan_head(T, N, n - 1)
    d_out = _nan_head(T, N, n - 1)
    if n > T:
        return k_out, d_out
    if hh is None:
        hh = _rolling_k(high, n, np.maximum)
    if ll is None:
        ll = _rolling_k(low, n, np.minimum)
    ka, kb = (m1 - 1) / m1, 1 / m1
    da, db = (m2 - 1) / m2, 1 / m2
    rng = np.empty(N)
    rsv = np.empty(N)
    flat = np.empty(N, dtype=bool)
    tmp = np.empty(N)
    k_prev: Array | float = 50.0
    d_prev: Array | float = 50.0
    with np.errstate(invalid="ignore", divide="ignore"):
        for i in range(n - 1, T):
            np.subtract(hh[i], ll[i], out=rng)
            np.subtract(close[i], ll[i], out=rsv)
            rsv /= rng
            rsv *= 100.0
            np.equal(rng, 0.0, out=flat)
            rsv[flat] = 50.0
            k, d = k_out[i], d_out[i]
            np.multiply(k_prev, ka, out=k)
            k += np.multiply(rsv, kb, out=tmp)
            np.multiply(d_prev, da, out=d)
            d += np.multiply(k, db, out=tmp)
            k_prev, d_prev = k, d
    return k_out, d_out


# --------------------------------------------------------------------------- public functions


def sma(x: Array, n: int, *, left_aligned: bool = False) -> Array:
    """``talib.SMA(x, n)`` per column."""
    return _run(lambda a: (_sma_k(a, n),), (x,), left_aligned)[0]


def ema(x: Array, n: int, *, left_aligned: bool = False) -> Array:
    """``talib.EMA(x, n)`` per column (seeded with the SMA of the first n values)."""
    return _run(lambda a: (_ema_k(a, n),), (x,), left_aligned)[0]


def macd(
    x: Array, fast: int = 12, slow: int = 26, signal: int = 9, *, left_aligned: bool = False
) -> tuple[Array, Array, Array]:
    """``talib.MACD(x, fast, slow, signal)`` per column: (macd, macdsignal, macdhist)."""
    line, sig = _run(lambda a: _macd_k(a, fast, slow, signal), (x,), left_aligned)
    return line, sig, line - sig


def rsi(x: Array, n: int = 14, *, left_aligned: bool = False) -> Array:
    """``talib.RSI(x, n)`` per column."""
    return _run(lambda a: (_rsi_k(a, n),), (x,), left_aligned)[0]


def bbands(
    x: Array,
    n: int = 20,
    nbdevup: float = 2.0,
    nbdevdn: float = 2.0,
    *,
    left_aligned: bool = False,
) -> tuple[Array, Array, Array]:
    """``talib.BBANDS(x, n, nbdevup, nbdevdn, matype=SMA)`` per column: (upper, middle, lower)."""
    up, mid, lo = _run(lambda a: _bbands_k(a, n, nbdevup, nbdevdn), (x,), left_aligned)
    return up, mid, lo


def linearreg(x: Array, n: int = 14, *, left_aligned: bool = False) -> Array:
    """``talib.LINEARREG(x, n)`` per column: the end value of the least-squares line."""
    return _run(lambda a: (_linearreg_k(a, n),), (x,), left_aligned)[0]


def rolling_max(x: Array, n: int, *, left_aligned: bool = False) -> Array:
    """``talib.MAX(x, n)`` per column: max of the trailing n values, NaN before n exist."""
    return _run(lambda a: (_rolling_k(a, n, np.maximum),), (x,), left_aligned)[0]


def rolling_min(x: Array, n: int, *, left_aligned: bool = False) -> Array:
    """``talib.MIN(x, n)`` per column."""
    return _run(lambda a: (_rolling_k(a, n, np.minimum),), (x,), left_aligned)[0]


def ema0(x: Array, n: int, *, left_aligned: bool = False) -> Array:
    """``pandas.Series(x).ewm(span=n, adjust=False).mean()`` per column, computed literally as
    ``e[0] = x[0]``, ``e[i] = k*x[i] + (1-k)*e[i-1]`` with ``k = 2/(n+1)``."""
    return _run(lambda a: (_ema0_k(a, n),), (x,), left_aligned)[0]


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
    k, d = _run(lambda h, lo, c: _kd_k(h, lo, c, n, m1, m2), (high, low, close), left_aligned)
    return k, d, 3.0 * k - 2.0 * d
