"""The scorecard's pure parts on hand-made bars: a signal's outcome, the market over a span, the
figures and their minimum sample."""

from __future__ import annotations

import math

import numpy as np
import pytest

from scorecard.figures import Scored, bucket_of, figure, period_scorecard
from scorecard.market import CSI300, market_spans
from scorecard.outcomes import BOTH, RECORD, STOP, TARGET, forward

DAY = 86_400_000


def rows(
    closes: list[float], highs: list[float] | None = None, lows: list[float] | None = None
) -> np.ndarray:
    h = highs or [c * 1.01 for c in closes]
    lo = lows or [c * 0.99 for c in closes]
    return np.array([[i * DAY, c, h[i], lo[i], c, 1e6, 1e7] for i, c in enumerate(closes)], dtype=np.float64)


def test_a_buy_and_a_sell_over_the_same_bars() -> None:
    r = rows([10, 11, 9, 12, 10, 13], highs=[10, 11.5, 11, 12.5, 10.5, 13], lows=[10, 10.5, 8.5, 11, 9.5, 12])
    buy = forward(r, 0, +1, 0.5, horizons=(1, 5, 10))
    sell = forward(r, 0, -1, 0.5, horizons=(1, 5, 10))
    assert buy is not None and sell is not None
    b1, b5, b10 = buy.horizons
    assert b1.ret == 11 / 10 - 1 and b1.mfe == 11.5 / 10 - 1 and b1.mae == 10.5 / 10 - 1
    assert b5.ret == 13 / 10 - 1 and b5.mfe == 13 / 10 - 1 and b5.mae == 8.5 / 10 - 1
    assert not b10.known and math.isnan(b10.ret)  # its bars have not come
    s5 = sell.horizons[1]
    assert s5.ret == -(13 / 10 - 1) and s5.mfe == -(8.5 / 10 - 1) and s5.mae == -(13 / 10 - 1)
    assert s5.mae <= s5.mfe
    assert forward(r, 123, +1, 0.5) is None  # the signal's bar is not stored


def test_stop_and_target_reached_first() -> None:
    r = rows(
        [10, 10.2, 10.4, 9.0, 11.0], highs=[10, 10.3, 10.6, 10.4, 11.2], lows=[10, 10.0, 10.1, 8.9, 10.8]
    )
    target_first = forward(r, 0, +1, 0.5, stop=9.5, take=10.5, horizons=(1, 2, 4))
    assert target_first is not None
    assert [h.first for h in target_first.horizons] == [0, TARGET, TARGET]  # bar 2 reached 10.6
    stop_first = forward(r, 0, +1, 0.5, stop=9.5, take=11.1, horizons=(2, 4))
    assert stop_first is not None and [h.first for h in stop_first.horizons] == [0, STOP]
    wide = rows([10, 10, 10], highs=[10, 12, 10], lows=[10, 8, 10])
    both = forward(wide, 0, +1, 0.5, stop=9, take=11, horizons=(1,))
    assert both is not None and both.horizons[0].first == BOTH  # one bar, order unknown
    assert math.isnan(forward(r, 0, -1, 0.5, stop=9.5, take=10.5, horizons=(4,)).horizons[0].first)  # type: ignore[union-attr]


def test_the_market_of_a_span_leaves_indices_out_and_counts_its_codes() -> None:
    a = rows([10, 11, 12])
    b = rows([20, 19, 18])
    gap = rows([5, 6])[[0]]  # only the first bar
    index = rows([100, 101, 103])
    spans = market_spans(
        {"600000.SH": a, "600001.SH": b, "600002.SH": gap, CSI300: index},
        {"600000.SH": "SH主板", "600001.SH": "SH主板", "600002.SH": "SH主板", CSI300: "指数"},
        [(0, 2 * DAY), (0, DAY)],
    )
    two = spans[(0, 2 * DAY)]
    assert two.n == 2 and two.market == pytest.approx(((12 / 10 - 1) + (18 / 20 - 1)) / 2, abs=1e-15)
    assert two.csi300 == 103 / 100 - 1
    assert spans[(0, DAY)].n == 2


def test_figures_say_when_there_are_too_few_signals() -> None:
    assert figure(np.array([0.1, 0.2]), 3, np.mean).value is None
    assert figure(np.array([0.1, 0.2]), 3, np.mean).note == "too few signals (2 < 3)"
    assert figure(np.array([]), 3, np.mean).note == "no signals yet"
    assert figure(np.array([0.1, 0.2, -0.1]), 3, np.mean).n == 3
    assert list(bucket_of(np.array([0.0, 0.19999, 0.2, 0.99, 1.0]))) == [0, 0, 1, 4, 4]


def test_a_return_of_zero_is_not_a_hit() -> None:
    rec = np.full((4, RECORD), np.nan)
    rec[:, 0], rec[:, 1] = 1, 0.5
    for i, ret in enumerate([0.0, 0.01, -0.01, 0.02]):
        rec[i, 5] = ret  # horizon 1's return (scorecard.outcomes.col(0, RET))
    rows_, _ = period_scorecard(Scored(rec, ["s"] * 4, ["ETF"] * 4), "1d", {"s": "S"}, 2)
    one = next(r for r in rows_ if r.strategy == "s" and r.market == "ETF" and r.horizon == 1)
    assert one.hit_rate.value == 0.5 and one.hit_rate.n == 4
    assert one.median_return.value == 0.005
    assert one.pending == 0 and next(r for r in rows_ if r.horizon == 5).pending == 4
