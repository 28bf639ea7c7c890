"""The old app's answers shaped from marketbus data (gateway.oldapp): markets, strategies, the buy
list, prices, history, the stock list, dates and the token rule."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from gateway.oldapp import buylist, history, markets, prices, stocks
from gateway.oldapp.auth import accepted
from gateway.oldapp.strategies import old_strategies
from gateway.oldapp.times import day, day_range, local_time, parse_day
from marketbus.contracts import MARKETS, Quote, Security, Side, Signal, StrategyInfo, signal_id
from marketbus.sessions import shanghai_ms
from marketbus.trend import NF

D1 = shanghai_ms(2025, 6, 12)  # the 1d bar of 2025-06-12 (its 00:00 in Shanghai)
D2 = shanghai_ms(2025, 6, 13)
WRITTEN = shanghai_ms(2025, 6, 13, 14, 50, 2) + 100  # 14:50:02.100 in Shanghai


def sig(
    code: str = "600519.SH",
    name: str = "贵州茅台",
    market: str = "SH主板",
    strategy: str = "volume_wave",
    side: Side = "BUY",
    bar_ts: int = D2,
    confidence: float = 0.8,
    provisional: bool = False,
) -> Signal:
    return Signal(
        id=signal_id(code, strategy, "1d", bar_ts, "provisional" if provisional else ""),
        code=code,
        name=name,
        market=market,
        strategy=strategy,
        strategy_name="动量守恒",
        side=side,
        price=1450.0,
        period="1d",
        bar_ts=bar_ts,
        confidence=confidence,
        volume_ratio=1.35,
        change_percent=1.2,
        reason="策略volume_wave最新买入信号",
        created_ts=WRITTEN,
        provisional=provisional,
        status="provisional" if provisional else None,
    )


def rows(*bars: tuple[int, float]) -> np.ndarray:
    """Trend rows (ts, volume), the other fields counted up from 10."""
    out = np.zeros((len(bars), NF))
    for i, (ts, volume) in enumerate(bars):
        out[i] = [ts, 10 + i, 11 + i, 9 + i, 10.5 + i, volume, 1000 * volume]
    return out


def quote(code: str = "600519.SH", market: str = "SH主板", **kw: float | None) -> Quote:
    fields: dict[str, object] = dict(
        code=code, name="贵州茅台", market=market, price=1450.0, change_percent=1.2, volume=3_100_000.0,
        amount=4.48e9, open=1433.0, high=1455.0, low=1430.0, pre_close=1432.8, ts=WRITTEN,
    )  # fmt: skip
    fields.update(kw)
    return Quote.model_validate(fields)


# markets ---------------------------------------------------------------------------------------
def test_every_marketbus_market_has_an_old_name() -> None:
    old = {markets.old_market(m) for m in MARKETS}
    assert old <= {"主板", "创业板", "科创板", "北交所", "ETF", "其他", "指数"}
    assert markets.old_market("SH主板") == markets.old_market("SZ主板") == "主板"
    assert markets.old_market("LOF") == markets.old_market("B股") == "其他"
    assert markets.old_market("something new") == "其他"


def test_market_types_in_the_old_order_with_only_the_present_ones() -> None:
    types = markets.market_types(["ETF", "SZ主板", "指数", "LOF", "创业板", "SH主板"])
    assert [(t.code, t.name) for t in types] == [
        ("all", "全部"),
        ("main_board", "主板"),
        ("gem", "创业板"),
        ("etf", "ETF"),
        ("other", "其他"),
    ]
    assert [t.code for t in markets.market_types(["指数"])] == ["all"]
    assert [t.code for t in markets.DEFAULT_TYPES] == ["all", "main_board", "gem", "star", "bse", "etf"]


# strategies ------------------------------------------------------------------------------------
def test_the_old_apps_default_strategy_comes_first() -> None:
    infos = [
        StrategyInfo(key=k, name=n, min_bars=10)
        for k, n in [("boll_breakout", "布林突破"), ("ma_cross", "均线金叉"),
                     ("trend_continuation", "趋势延续"), ("volume_wave", "动量守恒")]
    ]  # fmt: skip
    old = old_strategies(infos)
    assert [s.code for s in old] == ["volume_wave", "trend_continuation", "boll_breakout", "ma_cross"]
    assert old[0].model_dump() == {"code": "volume_wave", "name": "动量守恒", "description": ""}


# the buy list ----------------------------------------------------------------------------------
def test_candidates_are_the_buy_view_of_daily_signals() -> None:
    latest = [
        sig("510300.SH", "沪深300ETF", "ETF", confidence=0.9),
        sig(confidence=0.5),
        sig("600234.SH", "ST科创"),
        sig("300750.SZ", "宁德时代", "创业板", side="SELL"),
        sig("000001.SH", "上证指数", "指数"),
        sig("300750.SZ", "宁德时代", "创业板", strategy="ma_cross"),
        sig().model_copy(update={"period": "5m", "code": "601318.SH"}),
    ]
    assert [(s.code, s.strategy) for s in buylist.candidates(latest, None)] == [
        ("300750.SZ", "ma_cross"),  # stocks first, by confidence (0.8, then 0.5)
        ("600519.SH", "volume_wave"),
        ("510300.SH", "volume_wave"),  # then ETFs, whatever their confidence (0.9)
    ]
    assert [s.code for s in buylist.candidates(latest, "ma_cross")] == ["300750.SZ"]
    assert buylist.candidates(latest, "nope") == []


def test_a_buy_counts_only_on_its_codes_last_bar() -> None:
    old, last, forming = (
        sig(bar_ts=D1),
        sig("300750.SZ", bar_ts=D1),
        sig("510300.SH", bar_ts=D2, provisional=True),
    )
    unknown = sig("688001.SH", bar_ts=D1)
    last_ts = buylist.last_bar_ts(
        {"600519.SH": rows((D1, 1), (D2, 2)), "300750.SZ": rows((D1, 1)), "510300.SH": rows((D1, 1)),
         "688001.SH": rows()}
    )  # fmt: skip
    assert last_ts == {"600519.SH": D2, "300750.SZ": D1, "510300.SH": D1}
    assert buylist.on_last_bar([old, last, forming, unknown], last_ts) == [last, forming, unknown]


def test_bar_volume_from_the_stored_bar_or_the_forming_days_snapshot() -> None:
    assert buylist.bar_shares(sig(bar_ts=D2), rows((D1, 5), (D2, 3_100_000)), None) == 3_100_000
    assert buylist.bar_shares(sig(bar_ts=D1), rows((D2, 3_100_000)), None) is None
    forming = sig(bar_ts=D2, provisional=True)
    assert buylist.bar_shares(forming, rows((D1, 5)), quote()) == 3_100_000.0
    assert buylist.bar_shares(forming, rows((D1, 5)), quote(ts=D1 + 3600_000)) is None  # another day
    assert buylist.bar_shares(sig(bar_ts=D2), None, quote()) is None  # closed: only its stored bar


@pytest.mark.parametrize(
    ("shares", "text"),
    [(None, None), (9500.0, "9500股"), (31000.0, "3.1万股"), (3_100_000.0, "310.0万股"), (2.5e8, "2.5亿股")],
)
def test_shares_display(shares: float | None, text: str | None) -> None:
    assert buylist.shares_display(shares) == text


def test_a_buy_item_has_every_field_the_app_reads() -> None:
    sec = Security(code="600519.SH", name="贵州茅台", market="SH主板")
    item = buylist.buy_item(sig(name="old name"), sec, 3_100_000.0).model_dump()
    assert item == {
        "code": "600519",
        "ts_code": "600519.SH",
        "name": "贵州茅台",
        "industry": "",
        "market": "主板",
        "strategy": "volume_wave",
        "strategy_name": "动量守恒",
        "confidence": 0.8,
        "kline_date": "2025-06-13",
        "calculated_time": "2025-06-13T14:50:02.100",
        "timestamp": WRITTEN / 1000,
        "price": 1450.0,
        "volume": 31000,
        "volume_ratio": 1.35,
        "change_percent": 1.2,
        "reason": "策略volume_wave最新买入信号",
        "signal_index": None,
        "is_latest": True,
        "volume_display": "310.0万股",
    }
    # without a universe entry: the signal's own name and market
    bare = buylist.buy_item(sig("159915.SZ", "创业板ETF", "ETF"), None, None)
    assert (bare.code, bare.name, bare.market, bare.volume) == ("159915", "创业板ETF", "ETF", None)


def test_the_failure_answer_is_code_500_with_no_signal() -> None:
    body = buylist.failure("volume_wave").model_dump()
    assert body["code"] == 500 and body["data"] == {"strategy": "volume_wave", "count": 0, "signals": []}
    assert buylist.answer(None, []).code == 200


# prices ----------------------------------------------------------------------------------------
def test_wanted_codes_keep_order_drop_repeats_and_keep_bad_ones_with_their_error() -> None:
    wanted = prices.wanted_codes(" 600519, 000001.SH,600519,abc,,000001")
    assert [(w.raw, w.code) for w in wanted] == [
        ("600519", "600519.SH"),
        ("000001.SH", "000001.SH"),
        ("abc", None),
        ("000001", "000001.SZ"),
    ]
    assert wanted[2].error is not None and "abc" in wanted[2].error and wanted[2].error.startswith("codes:")


@pytest.mark.parametrize(
    ("raw", "words"), [("", "no code"), (" , ", "no code"), (",".join(["600519"] * 101), "101")]
)
def test_no_code_or_more_than_100_is_refused(raw: str, words: str) -> None:
    with pytest.raises(ValueError, match=words) as info:
        prices.wanted_codes(raw)
    assert str(info.value).startswith("codes:")


def test_a_price_item() -> None:
    (w,) = prices.wanted_codes("600519")
    item = prices.price_item(w, quote())
    assert item.model_dump() == {
        "code": "600519",
        "name": "贵州茅台",
        "price": 1450.0,
        "change": 17.2,
        "change_percent": 1.2,
        "volume": 3_100_000,
        "error": None,
    }
    assert isinstance(item.volume, int)
    assert prices.price_item(w, quote(pre_close=None)).change is None
    index = prices.price_item(prices.wanted_codes("000001.SH")[0], quote("000001.SH", "指数"))
    assert index.code == "000001.SH"
    missing = prices.price_item(w, None)
    assert missing.error == "no quote for 600519" and missing.price is None and missing.volume is None


# history ---------------------------------------------------------------------------------------
def test_history_bars_between_two_days_both_included() -> None:
    days = [shanghai_ms(2025, 6, d) for d in (10, 11, 12, 13)]
    stored = rows(*((d, 100.0 * i) for i, d in enumerate(days)))
    every = history.history_bars(stored, None, None)
    assert [b.trade_date for b in every] == ["2025-06-10", "2025-06-11", "2025-06-12", "2025-06-13"]
    assert every[1].model_dump() == {
        "trade_date": "2025-06-11", "open": 11.0, "high": 12.0, "low": 10.0, "close": 11.5,
        "volume": 100.0, "amount": 100_000.0,
    }  # fmt: skip
    some = history.history_bars(stored, dt.date(2025, 6, 11), dt.date(2025, 6, 12))
    assert [b.trade_date for b in some] == ["2025-06-11", "2025-06-12"]
    assert [b.trade_date for b in history.history_bars(stored, dt.date(2025, 6, 12), None)] == [
        "2025-06-12",
        "2025-06-13",
    ]
    assert history.history_bars(rows(), None, None) == []


# dates -----------------------------------------------------------------------------------------
def test_times_as_the_app_reads_them() -> None:
    assert local_time(WRITTEN) == "2025-06-13T14:50:02"
    assert local_time(WRITTEN, "milliseconds") == "2025-06-13T14:50:02.100"
    assert day(D2) == "2025-06-13" and day(D2 + 15 * 3600_000) == "2025-06-13"


def test_date_parameters() -> None:
    assert parse_day("start_date", "20250613") == dt.date(2025, 6, 13)
    assert parse_day("start_date", None) is None and parse_day("start_date", "") is None
    assert day_range("20250601", "20250613") == (dt.date(2025, 6, 1), dt.date(2025, 6, 13))
    assert day_range(None, "20250613") == (None, dt.date(2025, 6, 13))


@pytest.mark.parametrize(
    ("start", "end", "words"),
    [
        ("2025-06-13", None, "start_date: '2025-06-13' is not a date YYYYMMDD"),
        ("20251301", None, "start_date: '20251301'"),
        (None, "2025061", "end_date: '2025061'"),
        ("20250613", "20250601", "start_date 20250613 is after end_date 20250601"),
    ],
)
def test_bad_date_parameters_name_the_field(start: str | None, end: str | None, words: str) -> None:
    with pytest.raises(ValueError) as info:
        day_range(start, end)
    assert words in str(info.value)


# the stock list --------------------------------------------------------------------------------
def test_the_stock_list_has_6_digit_symbols_old_markets_and_no_index() -> None:
    universe = [
        Security(code="600519.SH", name="贵州茅台", market="SH主板"),
        Security(code="000001.SH", name="上证指数", market="指数"),
        Security(code="430047.BJ", name="诺思兰德", market="北交所"),
        Security(code="159915.SZ", name="创业板ETF", market="ETF"),
    ]
    listed = stocks.stock_list(universe)
    assert [(s.ts_code, s.symbol, s.name, s.market) for s in listed] == [
        ("159915.SZ", "159915", "创业板ETF", "ETF"),
        ("430047.BJ", "430047", "诺思兰德", "北交所"),
        ("600519.SH", "600519", "贵州茅台", "主板"),
    ]
    assert {(s.area, s.industry) for s in listed} == {("", "")}  # the universe has neither


# the token -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("token", "header", "bearer", "ok"),
    [
        (None, None, None, True),  # no token configured: open
        ("", "anything", None, True),
        ("s3cret", None, None, False),
        ("s3cret", "s3cret", None, True),
        ("s3cret", None, "s3cret", True),
        ("s3cret", "wrong", "s3cret", True),
        ("s3cret", "s3cret", "wrong", True),
        ("s3cret", "wrong", "wrong", False),
        ("s3cret", "s3cre", None, False),
        ("s3cret", "s3cret ", None, False),
        ("s3cret", "", "", False),
    ],
)
def test_the_token_rule(token: str | None, header: str | None, bearer: str | None, ok: bool) -> None:
    assert accepted(token, header, bearer) is ok
