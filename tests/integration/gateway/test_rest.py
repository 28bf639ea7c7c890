"""Every REST route of the gateway over real HTTP, against data written as the services write it."""

from __future__ import annotations

import httpx
import pytest
import redis

from gateway.queries import codes_max_length
from gateway.routes.params import MAX_CODES
from marketbus import jobs
from marketbus.contracts import JobStatus, SchedulerState, StrategyInfo

from .conftest import (
    DAY,
    SECURITIES,
    T0,
    Gateway,
    add_signal,
    create_signals_group,
    make_signal,
    seed_bars,
    seed_market,
)


@pytest.fixture(scope="module")
def api(gateway: Gateway, sync_redis: redis.Redis) -> httpx.Client:
    keys = gateway.keys
    seed_market(sync_redis, keys)
    # oldest first; different strategies, sides, markets, times and confidences
    add_signal(sync_redis, keys, make_signal("510300.SH", "ma_cross", "BUY", T0, 0.9))
    add_signal(sync_redis, keys, make_signal("600519.SH", "ma_cross", "SELL", T0, 0.7))
    add_signal(sync_redis, keys, make_signal("600519.SH", "volume_wave", "BUY", T0 + DAY, 0.4))
    add_signal(sync_redis, keys, make_signal("300750.SZ", "macd_cross", "BUY", T0 + DAY, 0.4))
    add_signal(sync_redis, keys, make_signal("600234.SH", "ma_cross", "BUY", T0 + DAY, 0.99))
    add_signal(sync_redis, keys, make_signal("159915.SZ", "rsi_reversal", "BUY", T0 + 2 * DAY, 0.95))
    seed_bars(gateway.redis_url, keys, "510300.SH", "1d", 30)
    seed_bars(gateway.redis_url, keys, "510300.SH", "1m", 5)
    strategies = [
        StrategyInfo(
            key="ma_cross",
            name="均线金叉",
            min_bars=21,
            params={"fast": 5, "slow": 20},
            confidence="gap and volume",
        ),
        StrategyInfo(key="volume_wave", name="动量守恒", min_bars=40, confidence="gap"),
    ]
    sync_redis.hset(keys.strategies, mapping={s.key: s.model_dump_json() for s in strategies})
    schedule = SchedulerState(schedule="every 20m in session", last_run_ts=T0, next_run_ts=T0 + 1200_000)
    sync_redis.hset(keys.scheduler_state, mapping=schedule.to_hash())
    create_signals_group(sync_redis, keys)
    with gateway.client() as c:
        yield c


def _codes(body: dict) -> list[str]:
    return [i["code"] for i in body["items"]]


def test_etf_quotes_lists_only_etfs_with_all_fields(api: httpx.Client) -> None:
    r = api.get("/api/etf/quotes")
    assert r.status_code == 200
    items = r.json()["items"]
    assert [i["code"] for i in items] == ["159915.SZ", "510300.SH", "518880.SH"]
    want = {
        "code",
        "name",
        "price",
        "change_percent",
        "volume",
        "amount",
        "open",
        "high",
        "low",
        "pre_close",
        "ts",
    }
    assert want <= set(items[0])
    assert items[1]["name"] == "沪深300ETF"


def test_stock_quotes(api: httpx.Client) -> None:
    r = api.get("/api/stocks/quotes", params={"codes": "600519.SH,510300.sh,000001.SZ"})
    assert r.status_code == 200
    assert _codes(r.json()) == ["600519.SH", "510300.SH"]
    assert r.json()["missing"] == ["000001.SZ"]
    every = api.get("/api/stocks/quotes").json()
    assert set(_codes(every)) == {"600519.SH", "300750.SZ", "600234.SH"}


def test_stock_quotes_bad_codes_is_422_naming_codes(api: httpx.Client) -> None:
    r = api.get("/api/stocks/quotes", params={"codes": "600519.SH,nope"})
    assert r.status_code == 422
    assert r.json()["param"] == "codes"
    assert "nope" in r.json()["message"]


def test_stock_quotes_take_what_the_document_declares(api: httpx.Client) -> None:
    assert api.get("/api/stocks/quotes", params={"codes": ""}).json() == {"items": [], "missing": []}
    many = [f"{600000 + i:06d}.SH" for i in range(MAX_CODES + 1)]
    r = api.get("/api/stocks/quotes", params={"codes": ",".join(many[:MAX_CODES])})  # the longest declared
    assert r.status_code == 200, r.text
    assert _codes(r.json()) == ["600234.SH"] and len(r.json()["missing"]) == MAX_CODES - 1
    r = api.get("/api/stocks/quotes", params={"codes": ",".join(many)})
    assert r.status_code == 422 and r.json()["param"] == "codes"
    assert r.json()["message"] == f"codes: at most {MAX_CODES} codes per request, got {MAX_CODES + 1}"
    for bad in (
        "0",
        "510300.SH,,159915.SZ",
        "510300.SH, 159915.SZ",
        "😀" * (codes_max_length(MAX_CODES) + 1),
    ):
        r = api.get("/api/stocks/quotes", params={"codes": bad})
        assert r.status_code == 422 and r.json()["param"] == "codes", bad


def test_one_quote_and_404_and_422(api: httpx.Client) -> None:
    r = api.get("/api/quotes/510300.SH")
    assert r.status_code == 200 and r.json()["code"] == "510300.SH"
    r = api.get("/api/quotes/000001.SZ")
    assert r.status_code == 404 and "000001.SZ" in r.json()["message"]
    r = api.get("/api/quotes/510300")
    assert r.status_code == 422 and r.json()["param"] == "code"
    r = api.get("/api/quotes/٥١٠٣٠٠.SH")  # digits, but not the ASCII ones the document declares
    assert r.status_code == 422 and r.json()["param"] == "code"
    r = api.get("/api/quotes/510300.SH%0A")  # a trailing newline: `$` of Python's re would take it
    assert r.status_code == 422 and r.json()["param"] == "code"


def test_one_quote_other_methods(api: httpx.Client) -> None:
    got = api.get("/api/quotes/510300.SH")
    assert got.headers["content-type"] == "application/json"
    assert got.headers["content-length"] == str(len(got.content))
    for method in ("HEAD", "POST"):
        r = api.request(method, "/api/quotes/510300.SH")
        assert r.status_code == 405 and r.headers["allow"] == "GET", method


def test_codes_and_search(api: httpx.Client) -> None:
    r = api.get("/api/stocks/codes")
    assert r.status_code == 200
    assert len(r.json()["items"]) == len(SECURITIES)
    assert {i["market"] for i in api.get("/api/stocks/codes?market=ETF").json()["items"]} == {"ETF"}
    assert _codes(api.get("/api/stocks/search", params={"q": "5103"}).json()) == ["510300.SH"]
    assert _codes(api.get("/api/stocks/search", params={"q": "茅台"}).json()) == ["600519.SH"]
    assert _codes(api.get("/api/stocks/search", params={"q": "etf"}).json()) == [
        "159915.SZ",
        "510300.SH",
        "518880.SH",
    ]
    r = api.get("/api/stocks/search")
    assert r.status_code == 422 and r.json()["param"] == "q"


def test_kline(api: httpx.Client) -> None:
    r = api.get("/api/kline/510300.SH", params={"period": "1d", "limit": 10})
    assert r.status_code == 200
    items = r.json()["items"]
    assert len(items) == 10
    assert [i["ts"] for i in items] == sorted(i["ts"] for i in items)
    assert items[-1] == {
        "ts": T0 + 29 * DAY,
        "open": 39.0,
        "high": 40.0,
        "low": 38.0,
        "close": 39.5,
        "volume": 1029.0,
        "amount": 10029.0,
    }
    assert len(api.get("/api/kline/510300.SH?period=1m").json()["items"]) == 5
    # a known code with no bars of that period: empty, not 404
    assert api.get("/api/kline/510300.SH?period=5m").json()["items"] == []
    assert api.get("/api/kline/600519.SH").status_code == 200
    r = api.get("/api/kline/000001.SZ")
    assert r.status_code == 404
    r = api.get("/api/kline/510300.SH", params={"period": "2h"})
    assert r.status_code == 422 and r.json()["param"] == "period"
    r = api.get("/api/kline/510300.SH", params={"limit": 0})
    assert r.status_code == 422 and r.json()["param"] == "limit"


def test_signals_newest_first_and_filters(api: httpx.Client) -> None:
    items = api.get("/api/signals").json()["items"]
    assert [i["code"] for i in items] == [
        "159915.SZ",
        "600234.SH",
        "300750.SZ",
        "600519.SH",
        "600519.SH",
        "510300.SH",
    ]
    assert _codes(api.get("/api/signals?strategy=ma_cross").json()) == ["600234.SH", "600519.SH", "510300.SH"]
    assert _codes(api.get("/api/signals?side=SELL").json()) == ["600519.SH"]
    assert _codes(api.get("/api/signals?code=510300.SH").json()) == ["510300.SH"]
    assert _codes(api.get("/api/signals?market=ETF").json()) == ["159915.SZ", "510300.SH"]
    assert _codes(api.get("/api/signals", params={"since": T0 + 2 * DAY}).json()) == ["159915.SZ"]
    assert api.get("/api/signals", params={"since": T0 + 9 * DAY}).json()["items"] == []


def test_signals_paging_with_cursor(api: httpx.Client) -> None:
    first = api.get("/api/signals?limit=4").json()
    assert len(first["items"]) == 4 and first["next_cursor"]
    rest = api.get("/api/signals", params={"limit": 4, "cursor": first["next_cursor"]}).json()
    assert _codes(rest) == ["600519.SH", "510300.SH"]
    assert rest["next_cursor"] is None


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=ten", "limit"),
        ("side=HOLD", "side"),
        ("code=abc", "code"),
        ("since=-5", "since"),
        ("cursor=x-1", "cursor"),
        ("period=1h", "period"),
    ],
)
def test_signals_bad_parameter_is_422_naming_it(api: httpx.Client, query: str, param: str) -> None:
    r = api.get(f"/api/signals?{query}")
    assert r.status_code == 422
    body = r.json()
    assert body["param"] == param
    assert body["message"].startswith(param)


def test_buy_view_order(api: httpx.Client) -> None:
    items = api.get("/api/signals/buy").json()["items"]
    # BUY only, ST left out, stocks before ETFs, then confidence desc, then time desc
    assert [(i["code"], i["strategy"]) for i in items] == [
        ("300750.SZ", "macd_cross"),
        ("600519.SH", "volume_wave"),
        ("159915.SZ", "rsi_reversal"),
        ("510300.SH", "ma_cross"),
    ]
    assert [i["code"] for i in api.get("/api/signals/buy?strategy=ma_cross").json()["items"]] == ["510300.SH"]


def test_signals_of_a_code(api: httpx.Client) -> None:
    items = api.get("/api/signals/600519.SH").json()["items"]
    assert [i["strategy"] for i in items] == ["volume_wave", "ma_cross"]
    assert api.get("/api/signals/518880.SH").json()["items"] == []  # known, no signals
    assert api.get("/api/signals/000001.SZ").status_code == 404
    r = api.get("/api/signals/60051")
    assert r.status_code == 422 and r.json()["param"] == "code"


def test_strategies(api: httpx.Client) -> None:
    items = api.get("/api/strategies").json()["items"]
    assert [i["key"] for i in items] == ["ma_cross", "volume_wave"]
    assert items[0]["params"] == {"fast": 5, "slow": 20} and items[0]["min_bars"] == 21


def test_scheduler_status_and_jobs(api: httpx.Client, gateway: Gateway, sync_redis: redis.Redis) -> None:
    st = api.get("/api/scheduler/status").json()
    assert st == {
        "schedule": "every 20m in session",
        "last_run_ts": T0,
        "next_run_ts": T0 + 1200_000,
        "running_job": None,
        "trigger_enabled": True,
    }
    job = JobStatus(job_id="abc123", task_type="calc_signals", state="running", percent=40.0, created_ts=T0)
    jobs.save(sync_redis, gateway.keys, job)
    r = api.get("/api/scheduler/jobs/abc123")
    assert r.status_code == 200 and r.json()["percent"] == 40.0
    assert api.get("/api/scheduler/jobs/nope").status_code == 404
    r = api.get("/api/scheduler/jobs/bad%20id")
    assert r.status_code == 422 and r.json()["param"] == "job_id"


def test_health_ready_metrics(api: httpx.Client) -> None:
    assert api.get("/healthz").json() == {"status": "ok"}
    r = api.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "ok"
    text = api.get("/metrics").text
    assert 'marketbus_stream_length{stream="signals"} 6.0' in text
    assert 'marketbus_group_lag{group="signals",stream="bars"}' in text
    assert "gateway_http_requests_total" in text
    assert "gateway_http_request_duration_seconds_bucket" in text


def test_a_server_error_reply_is_a_500_not_an_outage(
    api: httpx.Client, gateway: Gateway, sync_redis: redis.Redis
) -> None:
    # the server answers, with an error (a wrong type under the key): a defect to report, not
    # "retry shortly"
    sync_redis.hset(gateway.keys.trend("600519.SH", "5m"), "not", "a series")
    r = api.get("/api/kline/600519.SH", params={"period": "5m"})
    assert r.status_code == 500 and r.json()["error"] == "internal_error"
    assert "Retry-After" not in r.headers
    assert api.get("/api/kline/600519.SH", params={"period": "1d"}).status_code == 200


def test_errors_are_json(api: httpx.Client) -> None:
    r = api.get("/api/no/such/route")
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    r = api.delete("/api/etf/quotes")
    assert r.status_code == 405 and "message" in r.json()


def test_asyncapi_lists_every_stream_under_the_prefix_and_their_schemas(
    api: httpx.Client, gateway: Gateway
) -> None:
    r = api.get("/api/asyncapi.json")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    doc = r.json()
    assert doc["asyncapi"].startswith("3.")
    keys = gateway.keys
    addresses = {channel["address"] for channel in doc["channels"].values()}
    assert {keys.ticks, keys.bars, keys.signals, keys.commands, keys.dlq} <= addresses
    assert all(a.startswith((f"{keys.prefix}:", f"{{{keys.prefix}}}:")) for a in addresses), addresses
    schemas = doc["components"]["schemas"]
    assert {"open", "high", "low", "close", "volume"} <= set(schemas["Bar"]["properties"])
    assert {"Tick", "Signal", "Command", "DeadLetter"} <= set(schemas)
    assert "/api/asyncapi.json" in api.get("/openapi.json").json()["paths"]


def test_openapi_describes_every_route(api: httpx.Client) -> None:
    doc = api.get("/openapi.json").json()
    paths = doc["paths"]
    for path in [
        "/api/etf/quotes",
        "/api/stocks/quotes",
        "/api/quotes/{code}",
        "/api/stocks/codes",
        "/api/stocks/search",
        "/api/kline/{code}",
        "/api/signals",
        "/api/signals/buy",
        "/api/signals/latest",
        "/api/signals/{code}",
        "/api/strategies",
        "/api/scheduler/trigger",
        "/api/stocks/scheduler/trigger",
        "/api/scheduler/jobs/{job_id}",
        "/api/scheduler/status",
        "/healthz",
        "/readyz",
        "/metrics",
        "/api/stream/signals",
        "/api/stream/quotes",
    ]:
        assert path in paths, path
        for op in paths[path].values():
            assert "200" in op["responses"] or "202" in op["responses"]
