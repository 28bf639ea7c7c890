"""Indicators shared between strategies, memoised on the window."""

from __future__ import annotations

import numpy as np

from signals import indicators as ind
from signals.strategies.base import Aligned

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
