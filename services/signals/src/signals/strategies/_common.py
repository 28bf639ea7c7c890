"""Indicators shared between strategies, memoised on the window."""

from __future__ import annotations

import numpy as np

from signals import indicators as ind
from signals.strategies.base import Aligned, sat

Array = np.ndarray


def sma_close(a: Aligned, n: int) -> Array:
    return a.cached(("sma", "close", n), lambda: ind.sma(a.close, n, left_aligned=True))


def rolling(a: Aligned, field: str, n: int, fn: np.ufunc) -> Array:
    """Rolling max/min of a field over n bars; the doubling levels are shared between windows
    (HHV(high, 9) for KDJ and max(high, 11) for the swing points reuse the same levels)."""

    def levels() -> list[Array]:
        return ind.rolling_levels(getattr(a, field), n, fn)

    lv = a.cached(("levels", field, fn.__name__, n.bit_length()), levels)
    return a.cached(("rolling", field, fn.__name__, n), lambda: ind.rolling_from_levels(lv, n, fn))


def cross_confidence(gap: Array, vr: Array, gap_scale: float) -> Array:
    """``0.6 * gap/(gap+gap_scale) + 0.4 * vr/(vr+1.5)``: the gap after the cross relative to
    price, and the volume ratio volume[t]/volume[t-1] (1 -> 0.4, 3 -> 0.67)."""
    return 0.6 * sat(np.abs(gap), gap_scale) + 0.4 * sat(vr, VOLUME_SCALE)


VOLUME_SCALE = 1.5
CROSS_DOC = (
    "0.6 * g/(g+{scale}) + 0.4 * v/(v+1.5), where g = |{a} - {b}| / close at the last bar "
    "(the gap after the cross relative to price) and v = volume[t]/volume[t-1]"
)
