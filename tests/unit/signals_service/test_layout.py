"""The evaluation's layout is ``marketbus.trend.time_major`` without the amount, from the pool:
front-padded short windows, longer ones cut to their last rows, and no leftover of an earlier
call's pooled array (NaN where a window has no bar)."""

from __future__ import annotations

import numpy as np

from marketbus.trend import AMOUNT, NF, time_major
from signals.evaluate import layout
from signals.indicators import recycle


def rows(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random((n, NF))


def test_layout_is_time_major_without_the_amount() -> None:
    windows = [rows(12, 1), rows(3, 2), rows(0, 3), rows(10, 4), rows(1, 5)]
    np.testing.assert_array_equal(layout(windows, 10), time_major(windows, 10)[:AMOUNT])


def test_a_reused_pooled_array_keeps_nothing_of_the_call_before() -> None:
    full = [rows(10, 6), rows(10, 7)]
    short = [rows(4, 8), rows(0, 9)]
    with recycle():
        layout(full, 10)
    with recycle():
        got = layout(short, 10)
        np.testing.assert_array_equal(got, time_major(short, 10)[:AMOUNT])
