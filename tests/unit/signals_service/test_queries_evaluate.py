"""The evaluate query's pure part (signals.queries.evaluate_items): each (code, strategy) on its
code's window gives what the scan's evaluation gives; unknown codes and strategies are said per
item and the others go on."""

from __future__ import annotations

import numpy as np
import pytest

from marketbus.contracts import EvaluateArgs, EvaluateItem, Security
from marketbus.trend import NF
from signals.evaluate import Target, evaluate_windows
from signals.queries import evaluate_items
from signals.strategies import build_strategies

DAY = 86_400_000
T0 = 1_735_660_800_000


def rows_of(closes: np.ndarray) -> np.ndarray:
    rows = np.empty((len(closes), NF))
    prev = np.concatenate([[closes[0]], closes[:-1]])
    rows[:, 0] = T0 + np.arange(len(closes)) * DAY
    rows[:, 1] = prev
    rows[:, 2] = np.maximum(prev, closes) + 0.01
    rows[:, 3] = np.minimum(prev, closes) - 0.01
    rows[:, 4] = closes
    rows[:, 5] = 10_000.0 + 100 * np.arange(len(closes))
    rows[:, 6] = rows[:, 5] * closes
    return rows


def golden_cross() -> np.ndarray:
    """A slow decline, then a jump on the last bar: SMA5 crosses above SMA20 exactly there."""
    closes = np.round(np.linspace(12.0, 10.0, 120), 2)
    closes[-1] = 11.5
    return rows_of(closes)


UNIVERSE = {
    "300750.SZ": Security(code="300750.SZ", name="宁德时代", market="创业板"),
    "600519.SH": Security(code="600519.SH", name="贵州茅台", market="SH主板"),
    "688001.SH": Security(code="688001.SH", name="华兴源创", market="科创板"),
}


def test_items_are_answered_in_order_each_with_its_signal_or_its_reason() -> None:
    strategies = build_strategies()
    cross, rising = golden_cross(), rows_of(np.linspace(10.0, 20.0, 120))
    windows = {"300750.SZ": cross, "600519.SH": rising, "688001.SH": np.empty((0, NF))}
    args = EvaluateArgs(
        items=[
            EvaluateItem(code="300750.SZ", strategy="ma_cross"),
            EvaluateItem(code="600519.SH", strategy="ma_cross"),
            EvaluateItem(code="300750.SZ", strategy="no_such"),
            EvaluateItem(code="999999.SZ", strategy="ma_cross"),
            EvaluateItem(code="688001.SH", strategy="ma_cross"),
        ]
    )
    got = evaluate_items(args, windows, strategies, UNIVERSE, 123).items
    assert [(o.code, o.strategy) for o in got] == [(i.code, i.strategy) for i in args.items]

    buy = got[0]
    scan = [
        s
        for s in evaluate_windows([Target("300750.SZ", "1d", cross)], strategies, UNIVERSE, 123)
        if s.strategy == "ma_cross"
    ]
    assert buy.side == "BUY" == scan[0].side and buy.reason == scan[0].reason and buy.error is None
    assert buy.reason.startswith("SMA5 ") and "crossed above SMA20" in buy.reason
    assert buy.confidence == scan[0].confidence > 0
    assert buy.price == 11.5 and buy.bar_ts == int(cross[-1, 0]) and buy.name == "宁德时代"
    assert buy.change_percent == pytest.approx((11.5 / cross[-2, 4] - 1) * 100)

    quiet = got[1]  # rising all along: SMA5 above SMA20 since long ago, no cross on the last bar
    assert quiet.side is None and quiet.reason is None and quiet.confidence == 0.0 and quiet.error is None
    assert quiet.price == 20.0 and quiet.name == "贵州茅台"

    assert got[2].side is None and "unknown strategy 'no_such'" in (got[2].error or "")
    assert "ma_cross" in (got[2].error or "")  # it names the strategies there are
    assert got[3].error == "unknown code 999999.SZ" and got[3].name is None
    assert got[4].error == "no closed 1d bars of 688001.SH" and got[4].name == "华兴源创"


def test_a_short_window_gives_no_signal_and_no_error() -> None:
    short = golden_cross()[-10:]  # under ma_cross's 21 bars
    args = EvaluateArgs(items=[EvaluateItem(code="300750.SZ", strategy="ma_cross")])
    (o,) = evaluate_items(args, {"300750.SZ": short}, build_strategies(), UNIVERSE, 1).items
    assert o.side is None and o.error is None and o.price == 11.5
