"""The old app's batch-check (OLD_API.md P4) and index screen (P9) over real HTTP: a real gateway
process asking a real signals service process (``python -m signals``) over the queries stream,
against bars and signals written as the services write them; and the same gateway with no signals
service running, which answers 504 within its query timeout instead of hanging."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import numpy as np
import pytest
import redis

from marketbus import wire
from marketbus.contracts import IndexAnalysisArgs, Query, Security, Signal, signal_id
from marketbus.keys import Keys
from marketbus.queries import QueryReply, new_query
from marketbus.sessions import shanghai_ms
from marketbus.trend import NF, pack
from signals.index_analysis import analyse

from .conftest import TOKEN, Gateway, start_gateway, stop_gateway

DAY = 86_400_000
D0 = shanghai_ms(2025, 1, 2)  # the first daily bar (00:00 Asia/Shanghai)
AUTH = {"X-API-Token": TOKEN}

SECURITIES = [
    Security(code="600519.SH", name="贵州茅台", market="SH主板"),
    Security(code="300750.SZ", name="宁德时代", market="创业板"),
    Security(code="510300.SH", name="沪深300ETF", market="ETF"),
    Security(code="159915.SZ", name="创业板ETF", market="ETF"),
    # indices, stored in no particular order
    Security(code="000905.SH", name="中证500", market="指数"),
    Security(code="399006.SZ", name="创业板指", market="指数"),
    Security(code="000300.SH", name="沪深300", market="指数"),
    Security(code="000001.SH", name="上证指数", market="指数"),
    Security(code="399001.SZ", name="深证成指", market="指数"),
]


def rows_of(closes: np.ndarray, seed: int = 0) -> np.ndarray:
    """Daily trend records (ts, open, high, low, close, volume, amount) from D0 on."""
    rng = np.random.default_rng(seed)
    n = len(closes)
    prev = np.concatenate([[closes[0]], closes[:-1]])
    rows = np.empty((n, NF))
    rows[:, 0] = D0 + np.arange(n) * DAY
    rows[:, 1] = prev
    rows[:, 2] = np.maximum(prev, closes) * (1 + rng.uniform(0.0005, 0.006, n))
    rows[:, 3] = np.minimum(prev, closes) * (1 - rng.uniform(0.0005, 0.006, n))
    rows[:, 4] = closes
    rows[:, 5] = rng.lognormal(16, 0.4, n).round()
    rows[:, 6] = rows[:, 5] * closes
    return rows


def golden_cross() -> np.ndarray:
    """A slow decline, then a jump on the last bar: SMA5 crosses above SMA20 exactly there."""
    closes = np.round(np.linspace(12.0, 10.0, 120), 2)
    closes[-1] = 11.5
    return rows_of(closes)


def walk(n: int, seed: int, start: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rows_of(start * np.exp(np.cumsum(rng.normal(0.0, 0.01, n))), seed)


BARS = {
    "600519.SH": rows_of(np.linspace(100.0, 120.0, 120)),
    "300750.SZ": golden_cross(),
    "510300.SH": rows_of(np.linspace(3.0, 4.0, 120)),
    "159915.SZ": rows_of(np.linspace(2.0, 2.5, 120)),
    "000001.SH": walk(200, 11, 3200.0),
    "000300.SH": walk(200, 12, 3900.0),
    "399001.SZ": walk(70, 13, 10_000.0),
    "000905.SH": walk(30, 14, 5600.0),
}


def last_ts(code: str) -> int:
    return int(BARS[code][-1, 0])


def planted_signal(code: str, strategy: str, side: str, bar_ts: int, **extra: object) -> Signal:
    sec = next(s for s in SECURITIES if s.code == code)
    fields: dict[str, object] = {
        "id": signal_id(code, strategy, "1d", bar_ts),
        "code": code,
        "name": sec.name,
        "market": sec.market,
        "strategy": strategy,
        "strategy_name": strategy,
        "side": side,
        "price": 1.0,
        "period": "1d",
        "bar_ts": bar_ts,
        "confidence": 0.61,
        "volume_ratio": 1.1,
        "change_percent": 0.84,
        "reason": f"planted {side} of {strategy}",
        "created_ts": bar_ts + 1000,
        **extra,
    }
    return Signal.model_validate(fields)


def seed(r: redis.Redis, keys: Keys) -> None:
    r.hset(keys.universe, mapping={s.code: s.model_dump_json() for s in SECURITIES})
    for code, rows in BARS.items():
        r.set(keys.trend(code, "1d"), pack(rows))  # what the quotes service stores
    stored = [
        # the closed bar's signal of the last bar: answers the check as it is
        planted_signal("600519.SH", "volume_wave", "SELL", last_ts("600519.SH")),
        # a signal of an older bar: not the last bar's, so the service evaluates the last bar
        planted_signal("510300.SH", "ma_cross", "BUY", last_ts("510300.SH") - 5 * DAY),
        # a provisional signal on the last bar's day: not a closed bar's signal
        planted_signal(
            "159915.SZ", "ma_cross", "BUY", last_ts("159915.SZ"), provisional=True, status="provisional"
        ),
    ]
    for sig in stored:
        r.hset(keys.signals_latest, f"{sig.code}|{sig.strategy}|{sig.period}", sig.model_dump_json())


@dataclass
class Stack:
    gateway: Gateway
    signals: subprocess.Popen[bytes]
    signals_log: str
    keys: Keys


def start_signals(redis_url: str, prefix: str, tmp: str) -> tuple[subprocess.Popen[bytes], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETBUS_")}
    env.update(
        MARKETBUS_REDIS_URL=redis_url,
        MARKETBUS_KEY_PREFIX=prefix,
        MARKETBUS_AUTO_CALCULATE_SIGNALS="false",
        PYTHONUNBUFFERED="1",
    )
    log_path = os.path.join(tmp, f"signals-{prefix}.log")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "signals"], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp
        )
    return proc, log_path


def wait_consuming(r: redis.Redis, keys: Keys, proc: subprocess.Popen[bytes], log_path: str) -> None:
    """Until the worker's first heartbeat: it is published once its subscribers run."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if any(wire.text(k).startswith("signals:") for k in r.hkeys(keys.heartbeats)):
            return
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    with open(log_path, encoding="utf-8", errors="replace") as f:
        raise RuntimeError(f"the signals service is not consuming: {f.read()[-3000:]}")


@pytest.fixture(scope="module")
def stack(
    redis_url: str, gw_prefix: str, sync_redis: redis.Redis, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    keys = Keys(gw_prefix)
    seed(sync_redis, keys)
    tmp = str(tmp_path_factory.mktemp("eval"))
    proc, log_path = start_signals(redis_url, gw_prefix, tmp)
    try:
        wait_consuming(sync_redis, keys, proc, log_path)
        gw = start_gateway(redis_url, gw_prefix, tmp)
        try:
            yield Stack(gw, proc, log_path, keys)
        finally:
            stop_gateway(gw)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture(scope="module")
def api(stack: Stack) -> Iterator[httpx.Client]:
    with stack.gateway.client() as c:
        yield c


# --- P4 ---------------------------------------------------------------------------------------------
def test_batch_check_answers_every_entry_from_the_store_or_the_signals_service(
    api: httpx.Client, stack: Stack, sync_redis: redis.Redis
) -> None:
    entries = [
        {"code": "600519", "strategy": "volume_wave"},
        {"code": "300750", "strategy": "ma_cross"},
        {"code": "510300", "strategy": "ma_cross"},
        {"code": "159915", "strategy": "ma_cross"},
        {"code": "600519", "strategy": "no_such"},
        {"code": "999999", "strategy": "ma_cross"},
        {"code": "60051", "strategy": "ma_cross"},
    ]
    r = api.post("/api/stocks/signal/batch-check", json={"stocks": entries}, headers=AUTH)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["code"] == 200 and body["message"] == "批量查询信号成功"
    results = body["data"]["results"]
    assert body["data"]["count"] == len(results) == len(entries)
    assert [(x["code"], x["strategy"]) for x in results] == [(e["code"], e["strategy"]) for e in entries]
    stored, cross, older, provisional, no_strategy, no_code, not_code = results

    # the stored signal of the last bar, as stored; the price is that bar's close
    assert stored["signal"] == "sell" and stored["signal_reason"] == "planted SELL of volume_wave"
    assert stored["confidence"] == 0.61 and stored["change_percent"] == 0.84
    assert stored["price"] == 120.0 and stored["name"] == "贵州茅台" and stored["error"] is None
    assert stored["kline_date"] == "2025-05-01"  # the 120th day from 2025-01-02

    # no stored signal: the signals service evaluated the planted golden cross on the last bar
    assert cross["signal"] == "buy" and cross["error"] is None and cross["name"] == "宁德时代"
    assert cross["signal_reason"].startswith("SMA5 ") and "crossed above SMA20" in cross["signal_reason"]
    assert 0 < cross["confidence"] <= 1 and cross["price"] == 11.5
    assert cross["change_percent"] == pytest.approx((11.5 / BARS["300750.SZ"][-2, 4] - 1) * 100)

    # a stored signal of an older bar, or a provisional one, is not the last bar's: evaluated, nothing
    for item, code in ((older, "510300.SH"), (provisional, "159915.SZ")):
        assert item["signal"] is None and item["signal_reason"] is None and item["error"] is None
        assert item["confidence"] == 0 and item["price"] == pytest.approx(BARS[code][-1, 4])

    assert no_strategy["signal"] is None and "unknown strategy 'no_such'" in no_strategy["error"]
    assert no_code["signal"] is None and no_code["error"] == "unknown code 999999.SZ"
    assert not_code["signal"] is None and not_code["error"].startswith("code: '60051' is not")

    # the signals service was asked once, for the entries the store did not answer
    ((_, fields),) = sync_redis.xrevrange(stack.keys.queries, count=1)
    query = wire.decode(Query, fields)
    asked = [(i.code, i.strategy) for i in query.arguments.items]  # type: ignore[union-attr]
    assert asked == [
        ("300750.SZ", "ma_cross"),
        ("510300.SH", "ma_cross"),
        ("159915.SZ", "ma_cross"),
        ("600519.SH", "no_such"),
        ("999999.SZ", "ma_cross"),
    ]


def test_batch_check_wants_the_token_and_a_body_naming_what_is_wrong(api: httpx.Client) -> None:
    body = {"stocks": [{"code": "600519", "strategy": "volume_wave"}]}
    r = api.post("/api/stocks/signal/batch-check", json=body)
    assert r.status_code == 401 and "X-API-Token" in r.json()["detail"]
    r = api.post("/api/stocks/signal/batch-check", json={"stocks": [{"code": "600519"}]}, headers=AUTH)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "stocks", 0, "strategy"]
    r = api.post("/api/stocks/signal/batch-check", json={"stocks": []}, headers=AUTH)
    assert r.status_code == 200 and r.json()["data"] == {"count": 0, "results": []}


# --- P9 ---------------------------------------------------------------------------------------------
def test_index_list_puts_the_old_three_first(api: httpx.Client) -> None:
    r = api.get("/api/index/list")  # no token: the old screen sends none
    assert r.status_code == 200
    body = r.json()
    assert body["success"] is True and body["count"] == 5
    assert [(i["code"], i["name"]) for i in body["data"]] == [
        ("000001.SH", "上证指数"),
        ("399001.SZ", "深证成指"),
        ("399006.SZ", "创业板指"),
        ("000300.SH", "沪深300"),
        ("000905.SH", "中证500"),
    ]
    first = body["data"][0]
    assert first["market"] == "上海" and first["symbol"] == "SSE Composite"
    assert body["data"][1]["market"] == "深圳" and body["data"][3]["symbol"] == "000300"
    assert first["description"] == "上证指数 (000001.SH)"


def test_index_analysis_is_the_signals_service_analysis_of_the_stored_bars(api: httpx.Client) -> None:
    r = api.get("/api/index/analysis", params={"index_code": "000001.SH", "days": 180, "theme": "light"})
    assert r.status_code == 200, r.text
    body = r.json()
    expected = analyse("000001.SH", BARS["000001.SH"], 180).model_dump(mode="json")
    assert body["success"] is True and body["index_code"] == "000001.SH" and body["index_name"] == "上证指数"
    assert body["days"] == 180 and body["kline_date"] == "2025-07-20"  # the 200th day from 2025-01-02
    for part in ("technical_analysis", "market_sentiment", "key_metrics", "key_levels"):
        assert body[part] == expected[part], part
    assert body["key_metrics"]["current_price"] == BARS["000001.SH"][-1, 4]
    assert body["chart_url"] == "/api/index/chart?index_code=000001.SH&days=180&theme=light"
    # every number the screen reads is a number (the app formats each one)
    sentiment = body["market_sentiment"]
    assert all(
        isinstance(sentiment[k], int | float) for k in ("sentiment_score", "volume_ratio", "momentum_5d")
    )

    other = api.get("/api/index/analysis", params={"index_code": "399001.SZ", "days": 60, "theme": "purple"})
    assert other.status_code == 200 and other.json()["days"] == 60 and other.json()["theme"] == "dark"
    default = api.get("/api/index/analysis").json()  # the old defaults: 000001.SH, 180 days
    assert default["index_code"] == "000001.SH" and default["key_levels"] == expected["key_levels"]


def test_index_analysis_failures_say_why(api: httpx.Client) -> None:
    few = api.get("/api/index/analysis", params={"index_code": "000905.SH"})
    assert few.status_code == 422
    assert few.json() == {
        "success": False,
        "index_code": "000905.SH",
        "error": "000905.SH has 30 closed daily bars; the analysis needs at least 60",
    }
    stock = api.get("/api/index/analysis", params={"index_code": "600519"})
    assert stock.status_code == 404 and stock.json()["success"] is False
    assert "600519.SH is not an index" in stock.json()["error"]
    bad = api.get("/api/index/analysis", params={"index_code": "abc"})
    assert bad.status_code == 400 and bad.json()["error"].startswith("index_code: 'abc' is not")
    days = api.get("/api/index/analysis", params={"days": 10})
    assert days.status_code == 422 and days.json()["detail"][0]["loc"] == ["query", "days"]


# --- the worker's side ------------------------------------------------------------------------------
def test_an_expired_query_is_skipped_and_a_live_one_answered(stack: Stack, sync_redis: redis.Redis) -> None:
    keys = stack.keys
    args = IndexAnalysisArgs(code="000300.SH", days=120)
    stale = new_query(keys, args, 1.0)
    stale = stale.model_copy(update={"deadline_ts": stale.issued_ts - 1})  # nobody waits any more
    live = new_query(keys, args, 30.0)
    sync_redis.xadd(keys.queries, wire.encode(stale))  # type: ignore[arg-type]
    sync_redis.xadd(keys.queries, wire.encode(live))  # type: ignore[arg-type]
    popped = sync_redis.blpop([live.reply_key], timeout=30)
    assert popped is not None, "the live query was not answered"
    reply = QueryReply.model_validate_json(popped[1])
    assert reply.status == "ok" and reply.query_id == live.id
    assert reply.result == analyse("000300.SH", BARS["000300.SH"], 120)
    # the stale one came first on the stream: it was handled (skipped) before the live one
    assert not sync_redis.exists(stale.reply_key)


# --- no signals service -----------------------------------------------------------------------------
@pytest.fixture
def lone_gateway(
    redis_url: str, sync_redis: redis.Redis, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    prefix = f"lone{uuid.uuid4().hex[:10]}"
    seed(sync_redis, Keys(prefix))
    gw = start_gateway(redis_url, prefix, str(tmp_path_factory.mktemp("lone")), query_timeout="1")
    try:
        yield gw
    finally:
        stop_gateway(gw)


def test_with_no_signals_service_a_query_answers_504_within_its_timeout(
    lone_gateway: Gateway, sync_redis: redis.Redis
) -> None:
    with httpx.Client(base_url=lone_gateway.url, timeout=8.0) as c:  # a hang fails here
        body = {"stocks": [{"code": "300750", "strategy": "ma_cross"}]}
        r = c.post("/api/stocks/signal/batch-check", json=body, headers=AUTH)
        assert r.status_code == 504 and r.headers["retry-after"] == "2"
        assert r.json()["code"] == 504 and r.json()["data"] == {"count": 0, "results": []}
        assert r.json()["message"] == "the signals service did not answer the evaluate query within 1 s"
        a = c.get("/api/index/analysis", params={"index_code": "000001.SH"})
        assert a.status_code == 504 and a.json()["success"] is False
        assert a.json()["error"] == "the signals service did not answer the index_analysis query within 1 s"
        # an entry the store answers needs no question: answered without the signals service
        stored = {"stocks": [{"code": "600519", "strategy": "volume_wave"}]}
        ok = c.post("/api/stocks/signal/batch-check", json=stored, headers=AUTH)
        assert ok.status_code == 200 and ok.json()["data"]["results"][0]["signal"] == "sell"
    # both questions were published (for a worker that comes later: it will skip them, expired)
    assert sync_redis.xlen(lone_gateway.keys.queries) == 2
