"""Volatility: the true range, an ATR smoothed from the first bar (:func:`atr0`) and the ATR
trailing stop of volatility_conservation (:func:`atr_trailing_stop`), as STRATEGIES.md defines
them. Not TA-Lib's ATR: that one starts with an SMA of the first ``n`` ranges and has no value
before it; these have a value on every bar from the first.

The kernels take left-aligned (T, N) float64 arrays (every column starts at row 0) and return
left-aligned arrays; the padded functions accept any front padding."""

from __future__ import annotations

import numpy as np

from signals.indicators import loops
from signals.indicators.align import run_kernel
from signals.indicators.pool import empty

Array = np.ndarray


def _true_range_kernel(high: Array, low: Array, close: Array) -> Array:
    """``tr[0] = high[0] - low[0]``; ``tr[i] = max(high[i]-low[i], |high[i]-close[i-1]|,
    |low[i]-close[i-1]|)``, whole arrays at once."""
    T, N = close.shape
    out = empty(T, N)
    np.subtract(high, low, out=out)
    if T > 1:
        gap = empty(T, N)[1:]
        prev = close[:-1]
        for side in (high[1:], low[1:]):
            np.subtract(side, prev, out=gap)
            np.abs(gap, out=gap)
            np.maximum(out[1:], gap, out=out[1:])
    return out


def _wilder0_into(tr: Array, n: int, out: Array) -> None:
    """``out[0] = tr[0]``; ``out[i] = tr[i]/n + out[i-1]*(n-1)/n`` (``tr`` may be ``out``)."""
    T, _N = tr.shape
    if T == 0:
        return
    if out is not tr:
        np.copyto(out, tr)
    out[1:] /= n
    loops.wilder0_loop(out, n)


def _atr0_kernel(high: Array, low: Array, close: Array, n: int) -> Array:
    tr = _true_range_kernel(high, low, close)
    _wilder0_into(tr, n, tr)
    return tr


# beyond any price: ``p - FAR`` and ``p + FAR`` bound nothing in a max / min
FAR = 1e300


def atr_stop_lines(high: Array, low: Array, close: Array, key: float, n: int) -> tuple[Array, Array]:
    """The ATR trailing stop and its ATR (:func:`atr_trailing_stop`) on LEFT-ALIGNED (T, N)
    fields, for callers that cache them (the strategies); :func:`atr_trailing_stop` takes padded
    input.

    The definition, with ``p = stop[i-1]``::

        close[i] > p and close[i-1] > p:  max(p, close[i] - nloss[i])
        close[i] < p and close[i-1] < p:  min(p, close[i] + nloss[i])
        else close[i] > p:                close[i] - nloss[i]
        else:                             close[i] + nloss[i]

    is computed for all codes at once without branches (masked or selecting numpy calls cost
    ~10x more on the random masks of a market), every value exactly as written:
    ``s = close + copysign(nloss, p - close)`` (``close - nloss`` where the close rose above p,
    ``close + nloss`` otherwise, ties included: ``p - close`` is +0), then
    ``s = max(s, p - FAR * (min(close[i], close[i-1]) <= p))`` (``max(s, p)`` where both closes
    are above p, else ``max(s, -1e300) = s``) and likewise
    ``s = min(s, p + FAR * (max(close[i], close[i-1]) >= p))``. Both bounds never apply together.
    """
    T, N = close.shape
    atr = _atr0_kernel(high, low, close, n)
    stop = empty(T, N)
    if T == 0:
        return stop, atr
    nloss = empty(T, N)
    np.multiply(atr, key, out=nloss)
    np.subtract(close[0], nloss[0], out=stop[0])
    if T == 1:
        return stop, atr
    # the lower and the higher close of bars i-1 and i, for every row i >= 1
    lower = empty(T, N)[1:]
    higher = empty(T, N)[1:]
    np.minimum(close[1:], close[:-1], out=lower)
    np.maximum(close[1:], close[:-1], out=higher)
    loops.atr_stop_loop(close, nloss, lower, higher, FAR, stop)
    return stop, atr


def true_range(high: Array, low: Array, close: Array, *, left_aligned: bool = False) -> Array:
    """The true range per column; the first bar's is ``high - low``."""
    return run_kernel(lambda h, lo, c: (_true_range_kernel(h, lo, c),), (high, low, close), left_aligned)[0]


def atr0(high: Array, low: Array, close: Array, n: int = 10, *, left_aligned: bool = False) -> Array:
    """Wilder's ATR seeded with the first true range: ``atr[0] = tr[0]``,
    ``atr[i] = tr[i]/n + atr[i-1]*(n-1)/n`` (a value on every bar; not ``talib.ATR``)."""
    return run_kernel(lambda h, lo, c: (_atr0_kernel(h, lo, c, n),), (high, low, close), left_aligned)[0]


def atr_trailing_stop(
    high: Array,
    low: Array,
    close: Array,
    key: float = 1.0,
    n: int = 10,
    *,
    left_aligned: bool = False,
) -> tuple[Array, Array]:
    """The ATR trailing stop of STRATEGIES.md (a "UT Bot"), per column: ``(stop, atr)``.

    ``nloss = key * atr0(high, low, close, n)``; ``stop[0] = close[0] - nloss[0]``, then the stop
    follows a rising close from ``nloss`` below without ever falling, a falling close from
    ``nloss`` above without ever rising, and jumps to the other side when the close crosses it
    (see :func:`atr_stop_lines`)."""
    stop, atr = run_kernel(
        lambda h, lo, c: atr_stop_lines(h, lo, c, key, n), (high, low, close), left_aligned
    )
    return stop, atr
