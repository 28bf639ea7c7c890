"""Board rules on real codes: board, tick, dated limits, new listings, the band and the grid."""

import datetime as dt

import pytest

from marketbus.contracts import MARKETS, Security
from quotes.boards import (
    MAIN_BOARD_ST_10PCT,
    check_price,
    limit_pct,
    market_of,
    price_band,
    price_limit_pct,
    tick_size,
)

DAY = dt.date(2025, 6, 3)  # a Tuesday


def sec(code: str, name: str = "", list_date: str | None = None) -> Security:
    return Security(code=code, name=name or code, market=market_of(code, name), list_date=list_date)


@pytest.mark.parametrize(
    ("code", "name", "market"),
    [
        ("600519.SH", "贵州茅台", "SH主板"),
        ("601318.SH", "中国平安", "SH主板"),
        ("605499.SH", "东鹏饮料", "SH主板"),
        ("688981.SH", "中芯国际", "科创板"),
        ("689009.SH", "九号公司", "科创板"),
        ("900901.SH", "云赛B股", "B股"),
        ("510300.SH", "沪深300ETF", "ETF"),
        ("588000.SH", "科创50ETF", "ETF"),
        ("501018.SH", "南方原油LOF", "LOF"),
        ("508000.SH", "华安张江产业园REIT", "REIT"),
        ("000001.SH", "上证指数", "指数"),
        ("000300.SH", "沪深300", "指数"),
        ("000905.SH", "中证500", "指数"),
        ("000688.SH", "科创50", "指数"),
        ("000001.SZ", "平安银行", "SZ主板"),
        ("002594.SZ", "比亚迪", "SZ主板"),
        ("003816.SZ", "中国广核", "SZ主板"),
        ("300750.SZ", "宁德时代", "创业板"),
        ("301269.SZ", "华大九天", "创业板"),
        ("200596.SZ", "古井贡B", "B股"),
        ("159915.SZ", "创业板ETF", "ETF"),
        ("161725.SZ", "招商中证白酒指数LOF", "LOF"),
        ("180101.SZ", "博时蛇口产园REIT", "REIT"),
        ("399001.SZ", "深证成指", "指数"),
        ("399006.SZ", "创业板指", "指数"),
        ("920799.BJ", "艾融软件", "北交所"),
        ("430047.BJ", "诺思兰德", "北交所"),  # an old code, before October 2025
        ("899050.BJ", "北证50", "指数"),
    ],
)
def test_market_of_real_codes(code: str, name: str, market: str) -> None:
    assert market_of(code, name) == market
    assert market_of(code) == market  # the number alone decides these
    assert market in MARKETS


def test_the_exchange_decides_and_names_refine_funds() -> None:
    assert market_of("000001.SH") == "指数" and market_of("000001.SZ") == "SZ主板"
    assert market_of("159001.SZ", "易方达保证金") == "ETF"
    assert market_of("160706.SZ", "嘉实沪深300ETF联接") == "ETF"  # said by its name
    with pytest.raises(ValueError, match=r"not like 510300\.SH"):
        market_of("60051.SH")


def test_tick_sizes() -> None:
    assert tick_size("SH主板") == tick_size("创业板") == tick_size("北交所") == 0.01
    assert tick_size("ETF") == tick_size("LOF") == tick_size("REIT") == 0.001
    assert tick_size("B股", "900901.SH") == 0.001  # USD
    assert tick_size("B股", "200596.SZ") == 0.01  # HKD
    assert tick_size("指数", "000001.SH") is None
    with pytest.raises(ValueError, match="B share depends on its exchange"):
        tick_size("B股")
    with pytest.raises(ValueError, match="unknown market 'NASDAQ'"):
        tick_size("NASDAQ")


def test_board_limits() -> None:
    assert limit_pct(sec("600519.SH", "贵州茅台"), DAY) == 0.10
    assert limit_pct(sec("000001.SZ", "平安银行"), DAY) == 0.10
    assert limit_pct(sec("300750.SZ", "宁德时代"), DAY) == 0.20
    assert limit_pct(sec("300750.SZ", "宁德时代"), dt.date(2020, 8, 21)) == 0.10  # before the reform
    assert limit_pct(sec("688981.SH", "中芯国际"), DAY) == 0.20
    assert limit_pct(sec("920799.BJ", "艾融软件"), DAY) == 0.30
    assert limit_pct(sec("510300.SH", "沪深300ETF"), DAY) == 0.10
    assert limit_pct(sec("159915.SZ", "创业板ETF"), DAY) == 0.20
    assert limit_pct(sec("588000.SH", "科创50ETF"), DAY) == 0.20
    assert limit_pct(sec("161725.SZ", "招商中证白酒指数LOF"), DAY) == 0.10
    assert limit_pct(sec("900901.SH", "云赛B股"), DAY) == 0.10
    assert limit_pct(sec("000300.SH", "沪深300"), DAY) is None


def test_main_board_st_limit_is_dated() -> None:
    jinke = sec("000656.SZ", "*ST金科")
    friday, monday = dt.date(2026, 7, 3), dt.date(2026, 7, 6)
    assert monday == MAIN_BOARD_ST_10PCT
    assert limit_pct(jinke, dt.date(2025, 7, 7)) == 0.05  # only proposed then
    assert limit_pct(jinke, friday) == 0.05
    assert limit_pct(jinke, monday) == 0.10
    assert check_price(1.60, 1.52, jinke, friday) is None  # 1.52 × 1.05 = 1.596 -> 1.60
    reason, detail = check_price(1.61, 1.52, jinke, friday)  # type: ignore[misc]
    assert reason == "limit_band"
    assert "1.44-1.60" in detail and "±5%" in detail and "ST" in detail and "2026-07-03" in detail
    assert check_price(1.67, 1.52, jinke, monday) is None  # 1.672 -> 1.67
    assert check_price(1.68, 1.52, jinke, monday)[0] == "limit_band"  # type: ignore[index]
    chinext_st = sec("300313.SZ", "*ST天山")
    assert limit_pct(chinext_st, friday) == 0.20  # ChiNext ST follows ChiNext
    assert price_limit_pct("SZ主板", "*ST金科") == 0.10  # the rules in force now
    assert price_limit_pct("SZ主板", "*ST金科", friday) == 0.05


def test_new_listings_trade_without_limit_in_their_first_days() -> None:
    # a ChiNext IPO listed Thursday 2024-02-08; the exchange was closed 02-09 to 02-18 (Spring
    # Festival), so its trading days are 02-08, 02-19, 02-20, 02-21, 02-22, then limited
    ipo = sec("301589.SZ", "诺瓦星云", list_date="20240208")
    assert limit_pct(ipo, dt.date(2024, 2, 20)) is None  # third trading day
    assert limit_pct(ipo, dt.date(2024, 2, 22)) is None  # fifth
    assert limit_pct(ipo, dt.date(2024, 2, 23)) == 0.20  # sixth
    assert check_price(380.0, 126.89, ipo, dt.date(2024, 2, 20)) is None  # +200%: no band
    assert check_price(380.005, 126.89, ipo, dt.date(2024, 2, 20))[0] == "tick_grid"  # type: ignore[index]
    star = sec("688981.SH", "中芯国际", list_date="20200716")
    assert limit_pct(star, dt.date(2020, 7, 22)) is None and limit_pct(star, dt.date(2020, 7, 23)) == 0.20
    main = sec("603296.SH", "华勤技术", list_date="20230808")  # registration era: five days
    assert limit_pct(main, dt.date(2023, 8, 14)) is None and limit_pct(main, dt.date(2023, 8, 15)) == 0.10
    old_main = sec("601868.SH", "中国能建", list_date="20210928")  # before: the first day only
    assert limit_pct(old_main, dt.date(2021, 9, 28)) is None
    assert limit_pct(old_main, dt.date(2021, 9, 29)) == 0.10
    bj = sec("920002.BJ", "万达轴承", list_date="20240530")  # Beijing: the first day only
    assert limit_pct(bj, dt.date(2024, 5, 30)) is None and limit_pct(bj, dt.date(2024, 5, 31)) == 0.30
    reit = sec("508000.SH", "华安张江产业园REIT", list_date="20210621")
    assert limit_pct(reit, dt.date(2021, 6, 21)) == 0.30 and limit_pct(reit, dt.date(2021, 6, 22)) == 0.10
    with pytest.raises(ValueError, match=r"list_date .2024-04-29. of 301589\.SZ is not YYYYMMDD"):
        limit_pct(sec("301589.SZ", "诺瓦星云", list_date="2024-04-29"), DAY)


def test_price_band_rounds_half_up_to_the_tick() -> None:
    assert price_band(12.35, 0.10, 0.01) == (11.12, 13.59)  # 11.115 and 13.585, half up
    assert price_band(1500.0, 0.10, 0.01) == (1350.0, 1650.0)
    assert price_band(3.962, 0.10, 0.001) == (3.566, 4.358)  # 3.5658, 4.3582
    assert price_band(0.01, 0.10, 0.01) == (0.01, 0.01)  # never below one tick


def test_check_price_real_examples() -> None:
    moutai = sec("600519.SH", "贵州茅台")
    assert check_price(1650.0, 1500.0, moutai, DAY) is None
    assert check_price(1350.0, 1500.0, moutai, DAY) is None
    reason, detail = check_price(1650.01, 1500.0, moutai, DAY)  # type: ignore[misc]
    assert reason == "limit_band"
    assert detail == (
        "price 1650.01 of 600519.SH is above the limit-up 1650.00: band 1350.00-1650.00 = "
        "pre_close 1500 ±10% rounded half up to 0.01 (SH主板 ±10% rule on 2025-06-03)"
    )
    assert check_price(1349.99, 1500.0, moutai, DAY)[0] == "limit_band"  # type: ignore[index]
    reason, detail = check_price(1500.005, 1500.0, moutai, DAY)  # type: ignore[misc]
    assert reason == "tick_grid"
    assert "tick 0.01" in detail and "1500.00 and 1500.01" in detail
    assert check_price(1500.0 + 0.1 + 0.2, 1500.0, moutai, DAY) is None  # float noise is fine
    catl = sec("300750.SZ", "宁德时代")
    assert check_price(300.0, 250.0, catl, DAY) is None
    assert check_price(300.01, 250.0, catl, DAY)[0] == "limit_band"  # type: ignore[index]
    smic = sec("688981.SH", "中芯国际")
    assert check_price(105.6, 88.0, smic, DAY) is None and check_price(70.39, 88.0, smic, DAY)
    bj = sec("920799.BJ", "艾融软件")
    assert check_price(47.84, 36.80, bj, DAY) is None  # 36.80 × 1.3 = 47.84
    assert check_price(47.85, 36.80, bj, DAY)[0] == "limit_band"  # type: ignore[index]
    lof = sec("161725.SZ", "招商中证白酒指数LOF")
    assert check_price(0.801, 0.80, lof, DAY) is None
    reason, detail = check_price(0.8005, 0.80, lof, DAY)  # type: ignore[misc]
    assert reason == "tick_grid" and "tick 0.001 (LOF)" in detail and "0.800 and 0.801" in detail
    index = sec("000001.SH", "上证指数")
    assert check_price(3361.4567, 3300.0, index, DAY) is None  # an index: nothing to check
    assert check_price(1650.01, None, moutai, DAY) is None  # no pre_close: no band
    assert check_price(1650.001, None, moutai, DAY)[0] == "tick_grid"  # type: ignore[index]
