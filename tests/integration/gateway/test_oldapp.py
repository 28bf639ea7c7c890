"""The replaced system's mobile app against a real gateway process (OLD_API.md P1-P3, P5-P7): its
paths, envelopes, field names and types, 6-digit codes, its token both ways, old error shapes."""

from __future__ import annotations

import datetime as dt
import gzip
import re
import uuid
from collections.abc import Iterator

import httpx
import pytest
import redis

from marketbus.contracts import Security, Signal, StrategyInfo, signal_id
from marketbus.sessions import from_ms, trading_date
from signals.provisional import as_provisional

from .conftest import (
    DAY,
    SECURITIES,
    T0,
    TOKEN,
    Gateway,
    add_signal,
    make_quote,
    make_signal,
    seed_bars,
    seed_market,
    start_gateway,
    stop_gateway,
)

INDEX = Security(code="000001.SH", name="上证指数", market="指数")
LAST = T0 + 29 * DAY  # the last of the 30 daily bars seeded for 600519.SH and 510300.SH
ISO_LOCAL = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?$")  # no zone
DATE = re.compile(r"^\d{4}-\d\d-\d\d$")
AUTH = {"X-API-Token": TOKEN}


def signal_of(sec: Security, strategy: str, bar_ts: int, confidence: float, side: str = "BUY") -> Signal:
    """A signal of any security (conftest's make_signal knows only its SECURITIES)."""
    base = make_signal("600519.SH", strategy, side, bar_ts, confidence)
    return base.model_copy(
        update={
            "id": signal_id(sec.code, strategy, "1d", bar_ts),
            "code": sec.code,
            "name": sec.name,
            "market": sec.market,
        }
    )


def local_date(ts: int) -> str:
    return trading_date(ts).isoformat()


@pytest.fixture(scope="module")
def seeded(gateway: Gateway, sync_redis: redis.Redis) -> dict[str, Signal]:
    keys = gateway.keys
    seed_market(sync_redis, keys)
    sync_redis.hset(keys.universe, INDEX.code, INDEX.model_dump_json())
    sync_redis.hset(keys.snapshots, INDEX.code, make_quote(INDEX, 3300.0).model_dump_json())
    seed_bars(gateway.redis_url, keys, "600519.SH", "1d", 30)
    seed_bars(gateway.redis_url, keys, "510300.SH", "1d", 30)
    by_code = {s.code: s for s in SECURITIES}
    sigs = {
        # on 600519's last bar: listed, with that bar's volume
        "moutai": signal_of(by_code["600519.SH"], "volume_wave", LAST, 0.6),
        # an older BUY of 600519 (another strategy): its bar is not the last any more, so gone
        "moutai_old": signal_of(by_code["600519.SH"], "ma_cross", T0 + 20 * DAY, 0.99),
        # no bars stored for 300750: nothing says it is old, listed (no volume known)
        "catl": signal_of(by_code["300750.SZ"], "macd_cross", T0, 0.4),
        # an ETF on its last bar: after the stocks, whatever its confidence
        "etf": signal_of(by_code["510300.SH"], "volume_wave", LAST, 0.9),
        # provisional, on the forming day of its snapshot (seed_market's quotes are at T0)
        "gold": as_provisional(signal_of(by_code["518880.SH"], "volume_wave", T0, 0.5)),
        "st": signal_of(by_code["600234.SH"], "volume_wave", T0, 0.95),  # ST: never listed
        "sell": signal_of(by_code["159915.SZ"], "volume_wave", T0, 0.7, "SELL"),
        "index": signal_of(INDEX, "volume_wave", T0, 0.9),  # an index cannot be bought
    }
    for s in sigs.values():
        add_signal(sync_redis, keys, s)
    strategies = [
        StrategyInfo(key="ma_cross", name="均线金叉", min_bars=21, params={"fast": 5, "slow": 20}),
        StrategyInfo(key="trend_continuation", name="趋势延续", min_bars=11),
        StrategyInfo(key="volume_wave", name="动量守恒", min_bars=40),
    ]
    sync_redis.hset(keys.strategies, mapping={s.key: s.model_dump_json() for s in strategies})
    return sigs


@pytest.fixture(scope="module")
def app(gateway: Gateway, seeded: dict[str, Signal]) -> Iterator[httpx.Client]:
    """The old app's client: its token in X-API-Token, as services/http_client.dart sends it."""
    with gateway.client(headers={**AUTH, "Accept": "application/json"}) as c:
        yield c


@pytest.fixture(scope="module")
def anon(gateway: Gateway, seeded: dict[str, Signal]) -> Iterator[httpx.Client]:
    with gateway.client() as c:
        yield c


# P1 ----------------------------------------------------------------------------------------------
def test_strategies_serve_both_clients_from_one_answer(anon: httpx.Client) -> None:
    r = anon.get("/api/strategies")  # open: marketbus's own route too
    assert r.status_code == 200
    body = r.json()
    assert [i["key"] for i in body["items"]] == ["ma_cross", "trend_continuation", "volume_wave"]
    assert body["items"][0]["params"] == {"fast": 5, "slow": 20}
    # the old app's keys: its default (the first) is volume_wave
    assert body["strategies"] == [
        {"code": "volume_wave", "name": "动量守恒", "description": ""},
        {"code": "trend_continuation", "name": "趋势延续", "description": ""},
        {"code": "ma_cross", "name": "均线金叉", "description": ""},
    ]
    assert body["total"] == 3 and isinstance(body["total"], int)


# P2 ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/api/market-types", "/market-types"])
def test_market_types(app: httpx.Client, path: str) -> None:
    body = app.get(path).json()
    assert body["code"] == 200 and isinstance(body["message"], str)
    types = body["data"]["market_types"]
    # the universe: SH主板 stocks, a 创业板 stock, ETFs and an index (in none)
    assert types == [
        {"code": "all", "name": "全部"},
        {"code": "main_board", "name": "主板"},
        {"code": "gem", "name": "创业板"},
        {"code": "etf", "name": "ETF"},
    ]
    assert body["data"]["count"] == 4


# P3 ----------------------------------------------------------------------------------------------
def test_buy_list_envelope_order_and_rules(app: httpx.Client) -> None:
    r = app.get("/api/stocks/signal/buy")
    assert r.status_code == 200
    body = r.json()
    assert body["code"] == 200 and body["message"] == "获取买入信号成功"
    data = body["data"]
    listed = [(i["code"], i["strategy"]) for i in data["signals"]]
    # stocks (by confidence) before ETFs (by confidence); no ST, no SELL, no index, no stale BUY
    assert listed == [
        ("600519", "volume_wave"),
        ("300750", "macd_cross"),
        ("510300", "volume_wave"),
        ("518880", "volume_wave"),
    ]
    assert data["count"] == 4 and data["strategy"] is None


def test_buy_list_of_one_strategy(app: httpx.Client) -> None:
    data = app.get("/api/stocks/signal/buy", params={"strategy": "volume_wave"}).json()["data"]
    assert data["strategy"] == "volume_wave"
    assert [i["code"] for i in data["signals"]] == ["600519", "510300", "518880"]
    assert app.get("/api/stocks/signal/buy", params={"strategy": "nope"}).json()["data"]["signals"] == []


def test_buy_item_fields_and_types(app: httpx.Client, seeded: dict[str, Signal]) -> None:
    items = {i["code"]: i for i in app.get("/api/stocks/signal/buy").json()["data"]["signals"]}
    moutai, sig = items["600519"], seeded["moutai"]
    for field, kind in [
        ("code", str), ("ts_code", str), ("name", str), ("industry", str), ("market", str),
        ("strategy", str), ("strategy_name", str), ("kline_date", str), ("calculated_time", str),
        ("reason", str), ("confidence", float), ("timestamp", float), ("price", float),
        ("volume_ratio", float), ("change_percent", float), ("volume", int), ("is_latest", bool),
        ("volume_display", str),
    ]:  # fmt: skip
        assert isinstance(moutai[field], kind), field
    assert "signal_index" in moutai
    assert moutai["ts_code"] == "600519.SH" and moutai["name"] == "贵州茅台" and moutai["market"] == "主板"
    assert moutai["kline_date"] == local_date(LAST)
    assert ISO_LOCAL.match(moutai["calculated_time"])
    written = dt.datetime.fromisoformat(moutai["calculated_time"])
    assert written == from_ms(sig.created_ts).replace(tzinfo=None)
    assert moutai["timestamp"] == sig.created_ts / 1000
    assert (moutai["price"], moutai["confidence"], moutai["reason"]) == (
        sig.price,
        sig.confidence,
        sig.reason,
    )
    assert (moutai["volume_ratio"], moutai["change_percent"]) == (sig.volume_ratio, sig.change_percent)
    # the last seeded bar traded 1000 + 29 shares: 10 lots
    assert moutai["volume"] == 10 and moutai["volume_display"] == "1029股"
    assert items["300750"]["market"] == "创业板" and items["300750"]["volume"] is None
    etf = items["510300"]
    assert etf["market"] == "ETF" and etf["kline_date"] == local_date(LAST)
    # provisional: the volume of its day so far, from the snapshot (1e6 shares)
    assert items["518880"]["volume"] == 10_000 and items["518880"]["kline_date"] == local_date(T0)


# P5 ----------------------------------------------------------------------------------------------
def test_batch_price(app: httpx.Client) -> None:
    codes = "600519,000001.SH,000001,abc,510300,600519.SH,000001.sh"
    r = app.get("/api/stocks/batch-price", params={"codes": codes})
    assert r.status_code == 200
    body = r.json()
    assert body["success"] is True and body["total"] == 7 and ISO_LOCAL.match(body["timestamp"])
    items = body["data"]
    # each code as the app sent it: the app finds its prices by the codes it asked for
    assert [i["code"] for i in items] == codes.split(",")
    assert items[5]["price"] == items[0]["price"] and items[6]["price"] == items[1]["price"]
    for item in items:
        assert set(item) == {"code", "name", "price", "change", "change_percent", "volume", "error"}
    moutai = items[0]
    sec = next(s for s in SECURITIES if s.code == "600519.SH")
    quote = make_quote(sec, 3.0 + SECURITIES.index(sec))
    assert moutai["name"] == "贵州茅台" and moutai["price"] == quote.price and moutai["error"] is None
    assert moutai["volume"] == 1_000_000 and isinstance(moutai["volume"], int)  # the app's int.tryParse
    assert moutai["change"] == round(quote.price - (quote.pre_close or 0), 2)
    assert moutai["change_percent"] == quote.change_percent
    assert items[1]["name"] == "上证指数" and items[1]["price"] == 3300.0  # the index keeps its suffix
    # 000001 is 平安银行 (Shenzhen), which has no quote here; abc is no code: errors, nulls, the rest kept
    for bad in items[2:4]:
        assert isinstance(bad["error"], str) and bad["price"] is None and bad["volume"] is None
    assert "abc" in items[3]["error"]
    assert items[4]["price"] is not None


@pytest.mark.parametrize("codes", ["", ",", ",".join(f"{600000 + i}" for i in range(101))])
def test_batch_price_refuses_no_code_and_more_than_100(app: httpx.Client, codes: str) -> None:
    r = app.get("/api/stocks/batch-price", params={"codes": codes})
    assert r.status_code == 400
    assert r.json()["detail"].startswith("codes:")


def test_batch_price_without_codes_is_fastapis_422(app: httpx.Client) -> None:
    r = app.get("/api/stocks/batch-price")
    assert r.status_code == 422
    (error,) = r.json()["detail"]
    assert error["loc"] == ["query", "codes"]


# P6 ----------------------------------------------------------------------------------------------
def test_history_whole_window(app: httpx.Client) -> None:
    body = app.get("/api/stocks/history", params={"stock_code": "600519"}).json()
    assert body["stock_code"] == "600519" and body["total"] == 30 == len(body["data"])
    days = [b["trade_date"] for b in body["data"]]
    assert days == sorted(days) and all(DATE.match(d) for d in days)
    assert days[0] == local_date(T0) and days[-1] == local_date(LAST)
    first = body["data"][0]
    assert first == {
        "trade_date": local_date(T0), "open": 10.0, "high": 11.0, "low": 9.0, "close": 10.5,
        "volume": 1000.0, "amount": 10_000.0,
    }  # fmt: skip


def test_history_between_dates(app: httpx.Client) -> None:
    start, end = trading_date(T0 + 5 * DAY), trading_date(T0 + 9 * DAY)
    params = {"stock_code": "600519", "start_date": f"{start:%Y%m%d}", "end_date": f"{end:%Y%m%d}"}
    body = app.get("/api/stocks/history", params=params).json()
    assert [b["trade_date"] for b in body["data"]] == [local_date(T0 + i * DAY) for i in range(5, 10)]
    assert body["total"] == 5
    only_start = app.get(
        "/api/stocks/history", params={"stock_code": "600519", "start_date": f"{end:%Y%m%d}"}
    )
    assert only_start.json()["total"] == 30 - 9


@pytest.mark.parametrize(
    ("params", "status", "words"),
    [
        ({"stock_code": "600519", "start_date": "2023-11-20"}, 400, "start_date: '2023-11-20' is not a date"),
        ({"stock_code": "600519", "end_date": "20231340"}, 400, "end_date:"),
        ({"stock_code": "600519", "start_date": "20231201", "end_date": "20231101"}, 400, "after end_date"),
        ({"stock_code": "60051"}, 400, "stock_code:"),
        ({"stock_code": "000002"}, 404, "unknown code 000002"),
    ],
)
def test_history_refusals_name_the_field(
    app: httpx.Client, params: dict[str, str], status: int, words: str
) -> None:
    r = app.get("/api/stocks/history", params=params)
    assert r.status_code == status
    assert words in r.json()["detail"]


def test_history_of_a_known_code_without_bars_and_of_an_index(app: httpx.Client) -> None:
    empty = app.get("/api/stocks/history", params={"stock_code": "300750"})
    assert empty.status_code == 200 and empty.json()["data"] == [] and empty.json()["total"] == 0
    index = app.get("/api/stocks/history", params={"stock_code": "000001.SH"})
    assert index.status_code == 200 and index.json()["stock_code"] == "000001.SH"


# P7 ----------------------------------------------------------------------------------------------
def test_stock_list(app: httpx.Client) -> None:
    body = app.get("/api/stocks").json()
    assert isinstance(body["total"], int) and body["total"] == body["returned"] == len(SECURITIES)
    assert ISO_LOCAL.match(body["timestamp"])
    by_symbol = {s["symbol"]: s for s in body["stocks"]}
    assert set(by_symbol) == {s.code.split(".")[0] for s in SECURITIES}  # 6 digits; no index
    assert by_symbol["600519"] == {
        "ts_code": "600519.SH", "symbol": "600519", "name": "贵州茅台", "area": "", "industry": "",
        "market": "主板",
    }  # fmt: skip
    assert by_symbol["300750"]["market"] == "创业板" and by_symbol["510300"]["market"] == "ETF"


# the token, gzip, the old error shape ----------------------------------------------------------
OLD_ROUTES = [
    "/api/market-types",
    "/market-types",
    "/api/stocks/signal/buy?strategy=volume_wave",
    "/api/stocks/batch-price?codes=600519",
    "/api/stocks/history?stock_code=600519",
    "/api/stocks",
]


@pytest.mark.parametrize("path", OLD_ROUTES)
def test_the_token_is_asked_for(anon: httpx.Client, path: str) -> None:
    for headers in (
        {},
        {"X-API-Token": "wrong"},
        {"Authorization": "Bearer wrong"},
        {"Authorization": TOKEN},
    ):
        r = anon.get(path, headers=headers)
        assert r.status_code == 401, headers
        assert set(r.json()) == {"detail"} and "X-API-Token" in r.json()["detail"]
    assert anon.get(path, headers={"X-API-Token": TOKEN}).status_code == 200
    assert anon.get(path, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert (
        anon.get(path, headers={"X-API-Token": "wrong", "Authorization": f"Bearer {TOKEN}"}).status_code
        == 200
    )


def test_the_token_comes_before_the_parameters(anon: httpx.Client) -> None:
    r = anon.get("/api/stocks/batch-price")  # no codes and no token
    assert r.status_code == 401


def test_large_answers_are_gzipped(gateway: Gateway, seeded: dict[str, Signal]) -> None:
    with httpx.Client(base_url=gateway.url, headers={**AUTH, "Accept-Encoding": "gzip"}) as raw:
        with raw.stream("GET", "/api/stocks/history", params={"stock_code": "600519"}) as r:
            assert r.headers["content-encoding"] == "gzip"
            body = b"".join(r.iter_raw())
        assert b'"trade_date"' in gzip.decompress(body)
        small = raw.get("/api/market-types")
        assert "content-encoding" not in small.headers  # under 1 KB


def test_openapi_documents_the_old_routes(anon: httpx.Client) -> None:
    paths = anon.get("/openapi.json").json()["paths"]
    for path in [p.split("?")[0] for p in OLD_ROUTES]:
        op = paths[path]["get"]
        assert {"200", "401"} <= set(op["responses"]), path


# without a token set; and when the store fails ----------------------------------------------------
@pytest.fixture(scope="module")
def broken(
    redis_url: str, tmp_path_factory: pytest.TempPathFactory, sync_redis: redis.Redis
) -> Iterator[Gateway]:
    """A gateway without MARKETBUS_API_TOKEN whose latest signals and universe are under keys of the
    wrong type (the server answers WRONGTYPE)."""
    gw = start_gateway(
        redis_url, f"ob{uuid.uuid4().hex[:10]}", str(tmp_path_factory.mktemp("gwb")), token=None
    )
    sync_redis.set(gw.keys.signals_latest, "not a hash")
    sync_redis.set(gw.keys.universe, "not a hash")
    seed_bars(gw.redis_url, gw.keys, "600519.SH", "1d", 3)
    try:
        yield gw
    finally:
        stop_gateway(gw)
        sync_redis.delete(gw.keys.signals_latest, gw.keys.universe)


def test_open_without_a_token_and_old_failures(broken: Gateway) -> None:
    with broken.client() as c:  # no token sent, none configured
        buy = c.get("/api/stocks/signal/buy", params={"strategy": "volume_wave"})
        assert buy.status_code == 200
        assert buy.json() == {
            "code": 500,
            "message": "获取买入信号失败",
            "data": {"strategy": "volume_wave", "count": 0, "signals": []},
        }
        types = c.get("/api/market-types").json()  # the old default list
        assert types["code"] == 200
        assert [t["code"] for t in types["data"]["market_types"]] == [
            "all", "main_board", "gem", "star", "bse", "etf",
        ]  # fmt: skip
        stocks = c.get("/api/stocks")
        assert stocks.status_code == 500 and set(stocks.json()) == {"detail"}
        history = c.get("/api/stocks/history", params={"stock_code": "600519"})
        assert history.status_code == 200 and history.json()["total"] == 3
