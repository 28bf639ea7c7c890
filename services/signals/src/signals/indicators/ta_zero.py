"""TA-Lib's zero tests (``TA_IS_ZERO``, ``TA_IS_ZERO_OR_NEG``), shared by the replayed kernels."""

from __future__ import annotations

import numpy as np

Array = np.ndarray

TA_EPSILON = 0.00000001


def is_zero(x: Array) -> Array:
    """``TA_IS_ZERO``: ``-epsilon < x < epsilon``."""
    return (x > -TA_EPSILON) & (x < TA_EPSILON)


def is_zero_or_neg(x: Array) -> Array:
    """``TA_IS_ZERO_OR_NEG``: ``x < epsilon``."""
    return x < TA_EPSILON
