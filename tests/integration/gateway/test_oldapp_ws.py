"""The old app's WebSocket /ws/stock/prices (OLD_API.md P10) against a real gateway process and a
real WebSocket client: the greeting, subscriptions, errors, price pushes from the live snapshots,
the market clock, a slow client, the limits and the shutdown."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from marketbus.clock import wall_ms
from marketbus.contracts import Quote, Security, Signal, StrategyInfo, signal_id
from marketbus.keys import Keys
from marketbus.sessions import shanghai_ms

from .conftest import SECURITIES, Gateway, add_signal, make_quote, make_signal, start_gateway, stop_gateway

WAIT_S = 30.0  # a bound on every wait for a message, never a delay
INTERVAL_S = 0.2
MAX_CLIENTS = 4
MAX_SUBSCRIPTIONS = 6
SESSION = "2026-11-20T10:00:00"  # a Friday, a trading day: the gateway's fallback clock is in session
BY_CODE = {s.code: s for s in SECURITIES}


def in_session_clock() -> str:
    return f"{SESSION}@{int(time.time())}x1"


# --- fixtures -----------------------------------------------------------------------------------
def seed_strategies(r: redis.Redis, keys: Keys, *names: str) -> None:
    r.hset(
        keys.strategies,
        mapping={n: StrategyInfo(key=n, name=n, min_bars=2).model_dump_json() for n in names},
    )


@pytest.fixture(scope="module")
def gw(redis_url: str, gw_prefix: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    r = redis.Redis.from_url(redis_url)
    keys = Keys(gw_prefix)
    r.hset(keys.universe, mapping={s.code: s.model_dump_json() for s in SECURITIES})
    seed_strategies(r, keys, "ma_cross", "volume_wave")
    r.close()
    gateway = start_gateway(
        redis_url,
        gw_prefix,
        str(tmp_path_factory.mktemp("gw-ws")),
        oldapp_ws_push_interval=str(INTERVAL_S),
        oldapp_ws_max_clients=str(MAX_CLIENTS),
        oldapp_ws_max_subscriptions=str(MAX_SUBSCRIPTIONS),
        market_clock=in_session_clock(),
    )
    try:
        yield gateway
    finally:
        stop_gateway(gateway)


def ws_url(gateway: Gateway) -> str:
    return gateway.url.replace("http://", "ws://") + "/ws/stock/prices"


def write_quote(r: redis.Redis, keys: Keys, quote: Quote) -> None:
    """What the quotes service writes for a code's latest snapshot."""
    r.hset(keys.snapshots, quote.code, quote.model_dump_json())


class Client:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    async def recv(self, within: float = WAIT_S) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.ws.recv(), within)
        message = json.loads(raw)
        assert isinstance(message, dict)
        return message

    async def send(self, message: dict[str, Any] | str | bytes) -> None:
        await self.ws.send(message if isinstance(message, str | bytes) else json.dumps(message))

    async def reply(self, message: dict[str, Any] | str | bytes) -> dict[str, Any]:
        """Send ``message`` and return the answer (pushes in between are skipped)."""
        await self.send(message)
        return await self.next(lambda m: m["type"] != "price_update")

    async def next(self, match: Callable[[dict[str, Any]], bool], within: float = WAIT_S) -> dict[str, Any]:
        """The first message that ``match``es (those before it are skipped), within ``within`` s."""
        deadline = time.monotonic() + within
        while True:
            message = await self.recv(max(0.01, deadline - time.monotonic()))
            if match(message):
                return message

    async def push(self, match: Callable[[dict[str, Any]], bool] = lambda m: True) -> dict[str, Any]:
        return await self.next(lambda m: m["type"] == "price_update" and match(m))


@asynccontextmanager
async def client(gateway: Gateway, **kw: Any) -> AsyncIterator[tuple[Client, dict[str, Any]]]:
    """A connected client and its greeting (the first message)."""
    async with connect(ws_url(gateway), proxy=None, compression=None, open_timeout=WAIT_S, **kw) as ws:
        c = Client(ws)
        yield c, await c.recv()


def sub(kind: str, target: object, action: str = "subscribe") -> dict[str, Any]:
    return {"type": action, "subscription_type": kind, "target": target}


def codes_of(push: dict[str, Any]) -> list[str]:
    return [item["code"] for item in push["data"]]


def iso(text: str) -> dt.datetime:
    """An ISO timestamp as the old backend sent it: Asia/Shanghai wall time without a zone."""
    value = dt.datetime.fromisoformat(text)
    assert value.tzinfo is None
    return value


@contextmanager
def published_clock(r: redis.Redis, keys: Keys, start_ms: int) -> Iterator[Callable[[int], None]]:
    """Write the market clock as the quotes service does (every 0.2 s here), starting at
    ``start_ms`` and running at wall speed; the function yielded moves it to another market time."""
    state = {"anchor_wall": wall_ms(), "anchor_ts": start_ms}
    stop = threading.Event()

    def jump(ts: int) -> None:
        state.update(anchor_wall=wall_ms(), anchor_ts=ts)
        write()

    def write() -> None:
        wall = wall_ms()
        ts = state["anchor_ts"] + wall - state["anchor_wall"]
        r.set(keys.market_clock, orjson.dumps({"ts": ts, "wall": wall}))

    def run() -> None:
        while not stop.wait(0.2):
            write()

    write()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield jump
    finally:
        stop.set()
        thread.join(5)
        r.delete(keys.market_clock)


# --- greeting, subscriptions, ping, errors --------------------------------------------------------
async def test_the_connected_greeting_comes_first(gw: Gateway) -> None:
    async with client(gw) as (_, first), client(gw) as (_, second):
        for greeting in (first, second):
            assert set(greeting) == {"type", "client_id", "message", "timestamp"}
            assert greeting["type"] == "connected"
            assert re.fullmatch(r"client_[0-9a-f]{8}", greeting["client_id"])
            assert greeting["message"] == "WebSocket连接成功"
            iso(greeting["timestamp"])
        assert first["client_id"] != second["client_id"]


@pytest.mark.parametrize(
    ("kind", "target"), [("strategy", "ma_cross"), ("stock", "600519"), ("stock", "000001.SH")]
)
async def test_subscribe_and_unsubscribe_replies(gw: Gateway, kind: str, target: str) -> None:
    async with client(gw) as (c, _):
        expected = [
            ("subscribe", "subscribed", "订阅成功"),
            ("subscribe", "subscribed", "已订阅"),
            ("unsubscribe", "unsubscribed", "取消订阅成功"),
            ("unsubscribe", "unsubscribed", "未订阅"),
        ]
        for action, reply_type, text in expected:
            reply = await c.reply(sub(kind, target, action))
            assert set(reply) == {"type", "subscription_type", "target", "message", "timestamp"}
            assert (reply["type"], reply["subscription_type"], reply["target"]) == (reply_type, kind, target)
            assert reply["message"] == text
            iso(reply["timestamp"])


async def test_ping_is_answered_pong(gw: Gateway) -> None:
    async with client(gw) as (c, _):
        for _ in range(3):
            pong = await c.reply({"type": "ping"})
            assert set(pong) == {"type", "timestamp"} and pong["type"] == "pong"
            iso(pong["timestamp"])


BAD_MESSAGES: list[tuple[str | bytes | dict[str, Any], str, str]] = [
    ("{not json", "消息处理失败", "not JSON"),
    (b"\xff\xfe", "消息处理失败", "not UTF-8"),
    ("[1, 2, 3]", "消息处理失败", "a message is a JSON object"),
    ({"subscription_type": "stock", "target": "600519"}, "消息缺少type字段", "field 'type' is missing"),
    ({"type": "hello"}, "不支持的消息类型: hello", "field 'type': 'hello' is not one of"),
    (sub("market", "主板"), "订阅失败", "field 'subscription_type': 'market' is not one of strategy, stock"),
    ({"type": "subscribe", "target": "600519"}, "订阅失败", "field 'subscription_type' is missing"),
    (sub("sector", "x", "unsubscribe"), "取消订阅失败", "field 'subscription_type': 'sector'"),
    (sub("stock", "60051"), "订阅失败", "field 'target': '60051' is not a 6-digit code"),
    (sub("stock", "600519.XX", "unsubscribe"), "取消订阅失败", "field 'target': '600519.XX'"),
    (sub("stock", 600519), "订阅失败", "field 'target': 600519 is not a non-empty string"),
    ({"type": "subscribe", "subscription_type": "stock"}, "订阅失败", "field 'target' is missing"),
]


async def test_every_bad_message_is_an_error_and_the_connection_goes_on(gw: Gateway) -> None:
    async with client(gw) as (c, _):
        for message, error, details in BAD_MESSAGES:
            reply = await c.reply(message)
            assert set(reply) == {"type", "error", "details", "timestamp"}, reply
            assert (reply["type"], reply["error"]) == ("error", error), reply
            assert details in reply["details"], reply
            iso(reply["timestamp"])
            assert (await c.reply({"type": "ping"}))["type"] == "pong"
        assert (await c.reply(sub("stock", "600519")))["message"] == "订阅成功"  # nothing was lost
        # a strategy the signals service does not run (yet) is taken, as the old server took it
        assert (await c.reply(sub("strategy", "no_such_strategy")))["message"] == "订阅成功"


# --- pushes -----------------------------------------------------------------------------------
async def test_price_updates_carry_the_live_snapshots(gw: Gateway, sync_redis: redis.Redis) -> None:
    keys = gw.keys
    maotai, etf = BY_CODE["600519.SH"], BY_CODE["510300.SH"]
    ts = shanghai_ms(2026, 11, 20, 10, 5, 3)
    write_quote(sync_redis, keys, make_quote(maotai, 1450.004, ts).model_copy(update={"volume": 3_100_050.0}))
    write_quote(sync_redis, keys, make_quote(etf, 4.1234, ts))
    async with client(gw) as (c, _):
        assert (await c.reply(sub("stock", "600519")))["message"] == "订阅成功"
        assert (await c.reply(sub("stock", "510300")))["message"] == "订阅成功"
        push = await c.push(lambda m: {"600519", "510300"} <= set(codes_of(m)))
        assert set(push) == {"type", "data", "count", "timestamp"}
        assert push["count"] == len(push["data"])
        iso(push["timestamp"])
        item = next(i for i in push["data"] if i["code"] == "600519")
        assert set(item) == {"code", "name", "price", "change", "change_percent", "volume", "timestamp"}
        assert (item["name"], item["price"], item["change_percent"]) == ("贵州茅台", 1450.0, 1.5)
        assert item["volume"] == 31000  # lots
        assert iso(item["timestamp"]) == dt.datetime(2026, 11, 20, 10, 5, 3)
        assert next(i for i in push["data"] if i["code"] == "510300")["price"] == 4.12

        # the price moves: the first push of the new price carries the move, the next one none
        write_quote(sync_redis, keys, make_quote(maotai, 1451.3, ts + 3000))
        moved = await c.push(lambda m: any(i["code"] == "600519" and i["price"] == 1451.3 for i in m["data"]))
        assert next(i for i in moved["data"] if i["code"] == "600519")["change"] == 1.3
        after = await c.push(lambda m: "600519" in codes_of(m))
        assert next(i for i in after["data"] if i["code"] == "600519")["change"] == 0.0
        write_quote(sync_redis, keys, make_quote(maotai, 1450.1, ts + 6000))
        down = await c.push(lambda m: any(i["code"] == "600519" and i["price"] == 1450.1 for i in m["data"]))
        assert next(i for i in down["data"] if i["code"] == "600519")["change"] == -1.2

        # unsubscribed: the code leaves the pushes
        assert (await c.reply(sub("stock", "510300", "unsubscribe")))["message"] == "取消订阅成功"
        await c.push(lambda m: "510300" not in codes_of(m) and "600519" in codes_of(m))


async def test_a_strategy_subscription_follows_the_buy_list(gw: Gateway, sync_redis: redis.Redis) -> None:
    keys = gw.keys
    for i, sec in enumerate(SECURITIES):
        write_quote(sync_redis, keys, make_quote(sec, 10.0 + i, shanghai_ms(2026, 11, 20, 10, 0)))
    add_signal(sync_redis, keys, make_signal("600519.SH", "ma_cross", confidence=0.9))
    add_signal(sync_redis, keys, make_signal("300750.SZ", "ma_cross", confidence=0.5))
    add_signal(sync_redis, keys, make_signal("159915.SZ", "ma_cross", side="SELL"))  # not a buy
    add_signal(sync_redis, keys, make_signal("600234.SH", "ma_cross"))  # an ST name: left out
    add_signal(sync_redis, keys, make_signal("510300.SH", "volume_wave"))  # another strategy
    async with client(gw) as (c, _):
        assert (await c.reply(sub("strategy", "ma_cross")))["message"] == "订阅成功"
        push = await c.push()
        assert codes_of(push) == ["600519", "300750"]  # the buy list's order
        assert push["count"] == 2

        add_signal(sync_redis, keys, make_signal("518880.SH", "ma_cross", confidence=0.99))
        await c.push(lambda m: codes_of(m) == ["600519", "300750", "518880"])  # ETFs after stocks

        later = make_signal(
            "600519.SH", "ma_cross", side="SELL", bar_ts=make_signal("600519.SH").bar_ts + 86_400_000
        )
        add_signal(sync_redis, keys, later)  # its latest signal is a sell now: off the list
        await c.push(lambda m: codes_of(m) == ["300750", "518880"])


async def test_pushes_only_in_the_old_push_hours(gw: Gateway, sync_redis: redis.Redis) -> None:
    # the old backend pushed 09:15-12:00 and 13:00-15:15 of a trading day: the auctions' prices too
    keys = gw.keys
    write_quote(sync_redis, keys, make_quote(BY_CODE["600519.SH"], 1450.0, shanghai_ms(2026, 11, 20, 11, 29)))
    lunch = shanghai_ms(2026, 11, 20, 12, 0)  # a trading day, between the push hours
    evening = shanghai_ms(2026, 11, 20, 15, 20)
    saturday = shanghai_ms(2026, 11, 21, 10, 0)
    closing = shanghai_ms(2026, 11, 20, 15, 5)  # after the close: the closing auction's price
    with published_clock(sync_redis, keys, lunch) as jump:
        async with client(gw) as (c, _):
            assert (await c.reply(sub("stock", "600519")))["message"] == "订阅成功"
            for market_time in (lunch, evening, saturday):
                jump(market_time)
                # ten push intervals of pings: every answer is a pong, no push comes between
                deadline = time.monotonic() + 10 * INTERVAL_S
                while time.monotonic() < deadline:
                    await c.send({"type": "ping"})
                    assert (await c.recv())["type"] == "pong"
            jump(closing)
            push = await c.push()  # the first push, on the published clock, after the close
            assert iso(push["timestamp"]).replace(second=0, microsecond=0) >= dt.datetime(2026, 11, 20, 15, 5)
            assert iso(push["timestamp"]) < dt.datetime(2026, 11, 20, 15, 6)


# --- limits -----------------------------------------------------------------------------------
async def test_the_subscription_limit(gw: Gateway) -> None:
    async with client(gw) as (c, _):
        assert (await c.reply(sub("strategy", "ma_cross")))["message"] == "订阅成功"
        for n in range(1, MAX_SUBSCRIPTIONS):
            assert (await c.reply(sub("stock", f"60000{n}")))["message"] == "订阅成功"
        over = await c.reply(sub("stock", "510300"))
        assert (over["type"], over["error"]) == ("error", "订阅失败")
        assert f"at most {MAX_SUBSCRIPTIONS} subscriptions per client" in over["details"]
        assert (await c.reply(sub("stock", "600001")))["message"] == "已订阅"
        assert (await c.reply(sub("stock", "600001", "unsubscribe")))["message"] == "取消订阅成功"
        assert (await c.reply(sub("stock", "510300")))["message"] == "订阅成功"  # room again


async def test_the_client_limit(gw: Gateway) -> None:
    async with AsyncExitStack() as stack:
        held = 0
        deadline = time.monotonic() + WAIT_S
        while held < MAX_CLIENTS:  # clients of earlier tests may still be leaving: a refused one tries again
            assert time.monotonic() < deadline, "the allowed clients could not connect"
            ws = await stack.enter_async_context(connect(ws_url(gw), proxy=None, open_timeout=WAIT_S))
            try:
                greeting = json.loads(await asyncio.wait_for(ws.recv(), WAIT_S))
            except ConnectionClosed:
                await asyncio.sleep(0.05)  # a pause between attempts, not a wait for anything
                continue
            assert greeting["type"] == "connected"
            held += 1
        async with connect(ws_url(gw), proxy=None, open_timeout=WAIT_S) as extra:
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(extra.recv(), WAIT_S)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1013
        assert closed.value.rcvd.reason == f"too many clients (at most {MAX_CLIENTS})"
        pong = json.loads(await asyncio.wait_for(_ping(ws), WAIT_S))
        assert pong["type"] == "pong"  # the clients held are served on


async def _ping(ws: ClientConnection) -> str | bytes:
    await ws.send(json.dumps({"type": "ping"}))
    while True:
        raw = await ws.recv()
        if json.loads(raw)["type"] == "pong":
            return raw


# --- a slow client, the shutdown ------------------------------------------------------------------
BULK = 400  # codes in the bulk strategy's buy list: a push of about 400 KB
LONG_NAME = "长" * 300


def seed_bulk(r: redis.Redis, keys: Keys) -> None:
    ts = shanghai_ms(2026, 11, 20, 10, 0)
    pipe = r.pipeline(transaction=False)
    for n in range(BULK):
        sec = Security(code=f"{600000 + n}.SH", name=f"{LONG_NAME}{n}", market="SH主板")
        write_quote(pipe, keys, make_quote(sec, 10.0 + n / 100, ts))  # type: ignore[arg-type]
        sig = Signal(
            id=signal_id(sec.code, "bulk", "1d", ts),
            code=sec.code,
            name=sec.name,
            market=sec.market,
            strategy="bulk",
            strategy_name="bulk",
            side="BUY",
            price=10.0,
            period="1d",
            bar_ts=ts,
            confidence=0.5,
            volume_ratio=None,
            change_percent=None,
            reason="test",
            created_ts=ts,
        )
        pipe.hset(keys.signals_latest, f"{sig.code}|{sig.strategy}|{sig.period}", sig.model_dump_json())
    pipe.execute()
    seed_strategies(r, keys, "bulk")


def wait_for_log(gateway: Gateway, needle: str, timeout: float = WAIT_S) -> str:
    deadline = time.monotonic() + timeout
    while needle not in (log := gateway.log()):
        assert time.monotonic() < deadline, f"{needle!r} not logged: {log[-3000:]}"
        time.sleep(0.1)  # polling the log file for the line
    return log


async def test_a_slow_client_does_not_hold_back_a_fast_one(redis_url: str, tmp_path: Path) -> None:
    prefix = f"g{uuid.uuid4().hex[:10]}"
    r = redis.Redis.from_url(redis_url)
    seed_bulk(r, Keys(prefix))
    r.close()
    gateway = start_gateway(
        redis_url, prefix, str(tmp_path), oldapp_ws_push_interval="0.05", market_clock=in_session_clock()
    )
    try:
        # the slow client reads nothing: a tiny receive buffer, one message queued in the library
        host, port = gateway.url.removeprefix("http://").split(":")
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        raw.connect((host, int(port)))
        slow_cm = connect(ws_url(gateway), sock=raw, proxy=None, compression=None, max_queue=1, max_size=None)
        async with slow_cm as slow, client(gateway, max_size=None) as (fast, _):
            slow_id = json.loads(await asyncio.wait_for(slow.recv(), WAIT_S))["client_id"]
            await slow.send(json.dumps(sub("strategy", "bulk")))
            assert (await fast.reply(sub("strategy", "bulk")))["message"] == "订阅成功"
            pushes = 0

            async def read_fast() -> None:
                nonlocal pushes
                while True:
                    message = await fast.recv()
                    if message["type"] == "price_update":
                        assert message["count"] == BULK
                        pushes += 1

            reader = asyncio.create_task(read_fast())
            try:
                log = await asyncio.to_thread(
                    wait_for_log, gateway, f"closing WebSocket client {slow_id}: too slow", 90
                )
                dropped = re.search(
                    rf"closing WebSocket client {slow_id}: too slow \((\d+) pushes dropped\)", log
                )
                assert dropped is not None and int(dropped.group(1)) >= 16
                seen = pushes
                deadline = time.monotonic() + WAIT_S
                while pushes < seen + 10:  # the fast client is served on
                    assert not reader.done(), reader
                    assert time.monotonic() < deadline, "the fast client got no more pushes"
                    await asyncio.sleep(0.05)
                assert not reader.done()
            finally:
                reader.cancel()
            # the slow client, reading at last, finds its connection closed
            with pytest.raises(ConnectionClosed):
                while True:
                    await asyncio.wait_for(slow.recv(), WAIT_S)
    finally:
        stop_gateway(gateway)
    assert "Traceback" not in gateway.log(), gateway.log()[-3000:]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_shutdown_closes_every_socket_cleanly(
    redis_url: str, tmp_path: Path, sig: signal.Signals
) -> None:
    prefix = f"g{uuid.uuid4().hex[:10]}"
    r = redis.Redis.from_url(redis_url)
    seed_strategies(r, Keys(prefix), "ma_cross")
    write_quote(r, Keys(prefix), make_quote(BY_CODE["600519.SH"], 1450.0, shanghai_ms(2026, 11, 20, 10, 0)))
    r.close()
    gateway = start_gateway(
        redis_url,
        prefix,
        str(tmp_path),
        args=("--graceful-timeout", "30"),  # what a socket left open would hold the shutdown for
        oldapp_ws_push_interval=str(INTERVAL_S),
        market_clock=in_session_clock(),
    )
    try:
        async with client(gateway) as (pushed, _), client(gateway) as (idle, _):
            assert (await pushed.reply(sub("stock", "600519")))["message"] == "订阅成功"
            await pushed.push()
            assert (await idle.reply({"type": "ping"}))["type"] == "pong"
            gateway.proc.send_signal(sig)
            for c in (pushed, idle):
                with pytest.raises(ConnectionClosed) as closed:
                    while True:
                        await c.recv()
                assert closed.value.rcvd is not None, "closed without a close frame"
                assert closed.value.rcvd.code in (1001, 1012)  # going away / service restart
            try:
                code = await asyncio.to_thread(gateway.proc.wait, 20)
            except subprocess.TimeoutExpired:
                pytest.fail(f"the gateway still runs 20 s after {sig.name}: {gateway.log()[-3000:]}")
            assert code == 0, gateway.log()[-3000:]
    finally:
        if gateway.proc.poll() is None:
            stop_gateway(gateway)
    log = gateway.log()
    for bad in ("Traceback", "CancelledError", "timeout graceful shutdown exceeded", "Exception in ASGI"):
        assert bad not in log, log[-3000:]
