"""Shaping of the old app's batch-check and index screen (gateway.oldapp.eval_shapes): which stored
signal answers a check, the entries that are not codes, the index list's order."""

from __future__ import annotations

import numpy as np

from gateway.oldapp.eval_models import CheckItem
from gateway.oldapp.eval_shapes import (
    answers_last_bar,
    chart_url,
    from_outcome,
    from_stored,
    index_list,
    theme_of,
    wanted_items,
)
from marketbus.contracts import Security, Signal, signal_id
from marketbus.queries import Outcome
from marketbus.trend import NF

DAY = 86_400_000
T0 = 1_735_660_800_000


def last_bar(ts: int, close: float = 12.5) -> np.ndarray:
    rows = np.zeros((1, NF))
    rows[0, 0], rows[0, 4] = ts, close
    return rows


def signal(bar_ts: int, side: str = "BUY", **extra: object) -> Signal:
    fields: dict[str, object] = {
        "id": signal_id("600519.SH", "ma_cross", "1d", bar_ts),
        "code": "600519.SH",
        "name": "贵州茅台",
        "market": "SH主板",
        "strategy": "ma_cross",
        "strategy_name": "均线金叉",
        "side": side,
        "price": 12.0,
        "period": "1d",
        "bar_ts": bar_ts,
        "confidence": 0.7,
        "volume_ratio": 1.0,
        "change_percent": 1.5,
        "reason": "",
        "created_ts": bar_ts + 1,
        **extra,
    }
    return Signal.model_validate(fields)


def test_only_the_closed_bar_signal_of_the_last_bar_answers() -> None:
    rows = last_bar(T0)
    assert answers_last_bar(signal(T0), rows)
    assert not answers_last_bar(signal(T0 - DAY), rows)  # an older bar's
    assert not answers_last_bar(signal(T0, provisional=True, status="provisional"), rows)
    assert not answers_last_bar(signal(T0, provisional=True, status="withdrawn", withdraws="x"), rows)
    assert not answers_last_bar(signal(T0), np.empty((0, NF)))  # no bar at all
    assert not answers_last_bar(None, rows)


def test_a_stored_signal_keeps_its_own_figures_and_the_last_close() -> None:
    (w,) = wanted_items([CheckItem(code="600519", strategy="ma_cross")])
    got = from_stored(w, signal(T0, "SELL"), last_bar(T0, 12.5))
    assert (got.code, got.signal, got.signal_reason) == ("600519", "sell", "卖出信号")  # no reason stored
    assert (got.price, got.change_percent, got.confidence) == (12.5, 1.5, 0.7)
    assert got.kline_date == "2025-01-01" and got.error is None


def test_entries_that_are_not_codes_keep_their_error_and_their_place() -> None:
    items = [
        CheckItem(code="600519", strategy="volume_wave"),
        CheckItem(code="12345", strategy="volume_wave"),
        CheckItem(code="000001.SH", strategy=" ma_cross "),
        CheckItem(code="300750", strategy="  "),
    ]
    got = wanted_items(items)
    assert [(w.raw, w.code, w.strategy) for w in got] == [
        ("600519", "600519.SH", "volume_wave"),
        ("12345", None, "volume_wave"),
        ("000001.SH", "000001.SH", "ma_cross"),
        ("300750", None, ""),
    ]
    assert got[1].error is not None and got[1].error.startswith("code: '12345'")
    assert got[3].error == "strategy: empty"


def test_an_outcome_without_a_signal_is_a_null_signal() -> None:
    (w,) = wanted_items([CheckItem(code="999999", strategy="ma_cross")])
    got = from_outcome(w, Outcome(code="999999.SZ", strategy="ma_cross", error="unknown code 999999.SZ"))
    assert got.signal is None and got.signal_reason is None and got.confidence == 0.0
    assert got.code == "999999" and got.error == "unknown code 999999.SZ" and got.kline_date is None


def test_index_list_puts_the_old_three_first_and_leaves_other_markets_out() -> None:
    universe = [
        Security(code="000905.SH", name="中证500", market="指数"),
        Security(code="399006.SZ", name="创业板指", market="指数"),
        Security(code="000001.SZ", name="平安银行", market="SZ主板"),
        Security(code="000001.SH", name="上证指数", market="指数"),
        Security(code="899050.BJ", name="北证50", market="指数"),
    ]
    got = index_list(universe)
    assert [i.code for i in got.data] == ["000001.SH", "399006.SZ", "000905.SH", "899050.BJ"]
    assert got.count == 4 and got.success is True
    assert [i.market for i in got.data] == ["上海", "深圳", "上海", "北京"]
    assert [i.symbol for i in got.data] == ["SSE Composite", "ChiNext", "000905", "899050"]


def test_theme_and_chart_url() -> None:
    assert theme_of("LIGHT") == "light" and theme_of("neon") == "dark" and theme_of(None) == "dark"
    assert chart_url("399006.SZ", 90, "light") == "/api/index/chart?index_code=399006.SZ&days=90&theme=light"
