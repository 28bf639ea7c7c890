"""Provider parsers on sample responses in each provider's documented format. No network: the
polling loop is tested over real HTTP against the provider simulator
(tests/integration/quotes/test_provider_http.py)."""

import datetime as dt

import orjson
import pytest

from marketbus.contracts import Tick
from marketbus.sessions import shanghai_ms as sh
from quotes.feeds.eastmoney import EastMoney, secid
from quotes.feeds.poll import PollReport, in_trading_window, prefixed, rebase, unprefixed
from quotes.feeds.sina import Sina
from quotes.feeds.tencent import Tencent

SINA = (
    'var hq_str_sh510300="沪深300ETF,3.870,3.868,3.905,3.912,3.866,3.904,3.905,843395628,'
    "3285234567.000,1200,3.904,3000,3.903,500,3.902,800,3.901,900,3.900,1500,3.905,2000,3.906,"
    '300,3.907,400,3.908,100,3.909,2024-05-10,15:00:03,00,";\n'
    'var hq_str_sz000001="平安银行,10.500,10.480,10.620,10.700,10.450,10.610,10.620,98765400,'
    "1045678901.230,100,10.610,200,10.600,300,10.590,400,10.580,500,10.570,100,10.620,200,"
    '10.630,300,10.640,400,10.650,500,10.660,2024-05-10,14:59:57,00,";\n'
    'var hq_str_sh600001="";\n'
    'var hq_str_sz000004="*ST国华,0.000,5.120,0.000,0.000,0.000,0.000,0.000,0,0.000,0,0.000,'
    "0,0.000,0,0.000,0,0.000,0,0.000,0,0.000,0,0.000,0,0.000,0,0.000,0,0.000,2024-05-10,"
    '15:00:00,03,";\n'
).encode("gbk")

TENCENT = (
    'v_sh510300="1~沪深300ETF~510300~3.905~3.868~3.870~8433956~4200000~4233956~3.904~1200'
    "~3.903~3000~3.902~500~3.901~800~3.900~900~3.905~1500~3.906~2000~3.907~300~3.908~400"
    "~3.909~100~~20240510150003~0.037~0.96~3.912~3.866~3.905/8433956/3285234567~8433956"
    '~328523~0.52~~~3.912~3.866~1.19~1150.21~1150.21~0.00~4.255~3.481~0.98~";\n'
    'v_sz300750="51~宁德时代~300750~189.50~186.20~186.80~234567~120000~114567~189.49~10'
    "~189.48~20~189.47~30~189.46~40~189.45~50~189.50~10~189.51~20~189.52~30~189.53~40"
    "~189.54~50~~20240510145957~3.30~1.77~190.20~185.90~189.50/234567/4420012345~234567"
    '~442001~0.60~21.5~~190.20~185.90~2.31~8335.6~8335.6~4.98~223.44~148.96~1.1~";\n'
    'v_pv_none_match="1";\n'
).encode("gbk")

EASTMONEY = orjson.dumps({
    "rc": 0, "rt": 11, "svr": 181669, "lt": 1, "full": 1, "dlmkts": "",
    "data": {"total": 3, "diff": [
        {"f2": 3.905, "f3": 0.96, "f5": 8433956, "f6": 3285234567.0, "f8": 0.52,
         "f12": "510300", "f13": 1, "f14": "沪深300ETF", "f15": 3.912, "f16": 3.866,
         "f17": 3.87, "f18": 3.868, "f124": 1715324403},
        {"f2": 10.62, "f3": 1.34, "f5": 987654, "f6": 1045678901.23, "f8": 0.05,
         "f12": "000001", "f13": 0, "f14": "平安银行", "f15": 10.7, "f16": 10.45,
         "f17": 10.5, "f18": 10.48, "f124": 1715324397},
        {"f2": "-", "f3": "-", "f5": "-", "f6": "-", "f8": "-", "f12": "000004", "f13": 0,
         "f14": "*ST国华", "f15": "-", "f16": "-", "f17": "-", "f18": 5.12, "f124": 1715324400},
    ]},
})  # fmt: skip


def by_code(ticks: list[Tick]) -> dict[str, Tick]:
    return {t.code: t for t in ticks}


def test_code_forms() -> None:
    assert prefixed("510300.SH") == "sh510300" and unprefixed("sz159915") == "159915.SZ"
    assert secid("510300.SH") == "1.510300" and secid("430047.BJ") == "0.430047"


def test_sina_parser() -> None:
    ticks = by_code(Sina().parse(SINA, ["510300.SH", "000001.SZ", "600001.SH", "000004.SZ"]))
    assert set(ticks) == {"510300.SH", "000001.SZ"}  # unknown and suspended left out
    etf = ticks["510300.SH"]
    assert etf.ts == sh(2024, 5, 10, 15, 0, 3) and etf.price == 3.905
    assert (etf.open, etf.high, etf.low, etf.pre_close) == (3.870, 3.912, 3.866, 3.868)
    assert etf.volume == 843395628  # sina counts shares
    assert etf.amount == 3285234567.0
    req = Sina().request(["510300.SH", "000001.SZ"])
    assert req.url.endswith("list=sh510300,sz000001") and "Referer" in req.headers
    with pytest.raises(ValueError):
        Sina().parse(b"<html>blocked</html>", ["510300.SH"])


def test_tencent_parser_converts_lots() -> None:
    ticks = by_code(Tencent().parse(TENCENT, ["510300.SH", "300750.SZ", "600001.SH"]))
    assert set(ticks) == {"510300.SH", "300750.SZ"}
    etf = ticks["510300.SH"]
    assert etf.ts == sh(2024, 5, 10, 15, 0, 3) and etf.price == 3.905
    assert etf.volume == 843395600  # 8433956 lots x 100
    assert etf.amount == 3285234567.0  # from field 35, in yuan
    assert (etf.open, etf.high, etf.low, etf.pre_close, etf.turnover) == (
        3.870, 3.912, 3.866, 3.868, 0.52
    )  # fmt: skip
    catl = ticks["300750.SZ"]
    assert catl.ts == sh(2024, 5, 10, 14, 59, 57) and catl.volume == 23456700
    with pytest.raises(ValueError):
        Tencent().parse(b"error", ["510300.SH"])


def test_eastmoney_parser_converts_lots() -> None:
    codes = ["510300.SH", "000001.SZ", "000004.SZ"]
    ticks = by_code(EastMoney().parse(EASTMONEY, codes))
    assert set(ticks) == {"510300.SH", "000001.SZ"}  # "-" = suspended
    etf = ticks["510300.SH"]
    assert etf.ts == 1715324403000 and etf.price == 3.905
    assert etf.volume == 843395600 and etf.amount == 3285234567.0
    assert (etf.open, etf.high, etf.low, etf.pre_close, etf.turnover) == (
        3.87, 3.912, 3.866, 3.868, 0.52
    )  # fmt: skip
    keyed = orjson.loads(EASTMONEY)
    keyed["data"]["diff"] = {str(i): row for i, row in enumerate(keyed["data"]["diff"])}
    assert len(EastMoney().parse(orjson.dumps(keyed), codes)) == 2
    assert EastMoney().parse(b'{"rc":0,"data":null}', codes) == []
    req = EastMoney().request(["510300.SH", "000001.SZ"])
    assert req.params["secids"] == "1.510300,0.000001"
    with pytest.raises(ValueError):
        EastMoney().parse(b"not json", codes)


def test_trading_window() -> None:
    assert in_trading_window(sh(2024, 5, 10, 9, 20))
    assert in_trading_window(sh(2024, 5, 10, 12, 0))
    assert not in_trading_window(sh(2024, 5, 10, 20, 0))
    assert not in_trading_window(sh(2024, 5, 11, 10, 0))


TENCENT_QUIRKS = (
    # STAR: volume in shares (fields 6, 35, 36), not lots
    'v_sh688981="1~中芯国际~688981~72.59~71.98~72.41~687300~343650~343650~72.58~10~72.57~20~72.56'
    "~30~72.55~40~72.54~50~72.59~10~72.60~20~72.61~30~72.62~40~72.63~50~~20240510100004~0.61~0.85"
    '~72.88~72.41~72.59/687300/49919510~687300~4992~2.92~15.20~~72.88~72.41~0.00~0~0~0~86.38~57.58";\n'
    # a delisted code: previous close as the price, every other number 0, stamped 09:00:00
    'v_sh600087="1~退市长油~600087~1.52~1.52~0.00~0~0~0~0~0~0~0~0~0~0~0~0~0~0~0~0~0~0~0~0~0~0~0~'
    '~20240510090000~0~0~0~0~1.52/0/0~0~0~~~0~0~0~0~0~0~0~0";\n'
    # an old code answering with another day's last snapshot
    'v_sz000022="51~深赤湾A~000022~20.10~20.00~20.05~1000~500~500~20.09~1~20.08~1~20.07~1~20.06~1'
    "~20.05~1~20.10~1~20.11~1~20.12~1~20.13~1~20.14~1~~20181225150003~0.10~0.50~20.20~19.90"
    '~20.10/1000/2010000~1000~201~0.01~10~~20.20~19.90~1.5~0~0~0~22.00~18.00";\n'
).encode("gbk")


def test_tencent_star_volume_is_in_shares_and_placeholders_are_not_ticks() -> None:
    codes = ["688981.SH", "600087.SH", "000022.SZ", "510300.SH"]
    ticks = by_code(Tencent().parse(TENCENT_QUIRKS + TENCENT, codes, day=dt.date(2024, 5, 10)))
    assert set(ticks) == {"688981.SH", "510300.SH"}
    assert ticks["688981.SH"].volume == 687300  # shares as sent, not 68,730,000
    assert ticks["688981.SH"].amount == 49919510
    assert ticks["510300.SH"].volume == 843395600  # other boards: lots x 100
    # without the day, the placeholder row is still recognised; the old row is a plain snapshot
    assert set(by_code(Tencent().parse(TENCENT_QUIRKS, codes))) == {"688981.SH", "000022.SZ"}


def test_rows_of_another_day_are_left_out_by_every_provider() -> None:
    other = dt.date(2024, 5, 13)
    assert Sina().parse(SINA, ["510300.SH", "000001.SZ"], day=other) == []
    assert Tencent().parse(TENCENT, ["510300.SH", "300750.SZ"], day=other) == []
    assert EastMoney().parse(EASTMONEY, ["510300.SH", "000001.SZ"], day=other) == []
    same = dt.date(2024, 5, 10)
    assert len(EastMoney().parse(EASTMONEY, ["510300.SH", "000001.SZ"], day=same)) == 2


def test_a_bad_row_is_skipped_and_the_others_kept() -> None:
    broken = SINA.replace(b"3.905,3.912", b"x.905,3.912", 1)  # 510300's price is not a number
    assert set(by_code(Sina().parse(broken, ["510300.SH", "000001.SZ"]))) == {"000001.SZ"}


def test_rebase_keeps_path_and_query() -> None:
    assert rebase("https://hq.sinajs.cn/list=sh600000", "http://127.0.0.1:9/") == (
        "http://127.0.0.1:9/list=sh600000"
    )
    assert rebase("https://push2.eastmoney.com/api/qt/ulist.np/get", None).startswith("https://push2")


def test_poll_report_json() -> None:
    report = PollReport(1, 12.34, 10, 9, {"eastmoney": 1}, 0)
    assert orjson.loads(report.to_json()) == {
        "started_ts": 1, "duration_ms": 12.3, "codes_requested": 10, "codes_covered": 9,
        "providers": {"eastmoney": 1}, "failed_chunks": 0,
    }  # fmt: skip


def test_clist_page_bad_rows_are_reported_precisely_and_skipped() -> None:
    from quotes.feeds.listing import GROUPS, parse_page

    body = orjson.dumps({"rc": 0, "data": {"total": 250, "diff": [
        {"f12": "600519", "f13": 1, "f14": "贵州茅台", "f26": 20010827},
        {"f12": "92001", "f13": 0, "f14": "短代码", "f26": 20250101},
        {"f12": "920001", "f13": 0, "f14": "京市样本", "f26": "-"},
        {"f12": "000001", "f13": 7, "f14": "平安银行", "f26": 19910403},
        {"f12": "300750", "f13": 0, "f14": "", "f26": 20180611},
        {"f12": "688981", "f13": 1, "f14": "中芯国际", "f26": 20200716},
    ]}})  # fmt: skip
    total, securities, bad = parse_page(body, GROUPS[0], 3)
    assert total == 250
    assert [(s.code, s.market, s.list_date) for s in securities] == [
        ("600519.SH", "SH主板", "20010827"),
        ("920001.BJ", "北交所", None),
        ("688981.SH", "科创板", "20200716"),
    ]
    assert [b.split(":")[0] for b in bad] == [
        "clist A-shares page 3 row 2", "clist A-shares page 3 row 4", "clist A-shares page 3 row 5",
    ]  # fmt: skip
    assert "six digits" in bad[0] and "f13=7" in bad[1] and "empty" in bad[2]
    assert parse_page(b'{"rc":0,"data":null}', GROUPS[0], 99) == (0, [], [])
    with pytest.raises(ValueError, match="page 2: not JSON"):
        parse_page(b"<html>", GROUPS[1], 2)
