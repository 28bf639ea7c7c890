from marketbus.contracts import MARKETS
from marketbus.securities import is_st
from quotes.boards import market_of, price_limit_pct
from quotes.universe import load_universe, select


def test_bundled_universe() -> None:
    universe = load_universe()
    by_code = {item.code: item for item in universe}
    assert len(by_code) == len(universe)
    etfs = [item for item in universe if item.market == "ETF"]
    stocks = [item for item in universe if item.market != "ETF"]
    assert len(etfs) >= 50 and len(stocks) >= 50
    assert by_code["510300.SH"].name == "沪深300ETF"
    assert by_code["159915.SZ"].name == "创业板ETF"
    assert by_code["588000.SH"].name == "科创50ETF"
    assert by_code["518880.SH"].name == "黄金ETF"
    assert by_code["600519.SH"].name == "贵州茅台"
    assert by_code["300750.SZ"].market == "创业板"
    assert any(is_st(item.name) for item in stocks)
    for item in universe:
        assert item.market in MARKETS and item.ref_price > 0
        assert market_of(item.code) == item.market, item.code


def test_rules() -> None:
    assert price_limit_pct("SH主板", "贵州茅台") == 0.10
    assert price_limit_pct("SZ主板", "*ST金科") == 0.10  # 5% before 2026-07-06: see test_boards
    assert price_limit_pct("创业板", "宁德时代") == 0.20
    assert price_limit_pct("科创板") == 0.20
    assert price_limit_pct("北交所") == 0.30
    assert price_limit_pct("ETF", "沪深300ETF") == 0.10
    assert price_limit_pct("ETF", "创业板ETF") == 0.20


def test_select() -> None:
    universe = load_universe()
    chosen = select(universe, "510300.SH, 000001.sz,600000.SH")
    assert [item.code for item in chosen] == ["510300.SH", "000001.SZ", "600000.SH"]
    unknown = select(universe, "920001.BJ")[0]
    assert unknown.name == "920001.BJ" and unknown.market == "北交所"
    assert select(universe, None) is universe
