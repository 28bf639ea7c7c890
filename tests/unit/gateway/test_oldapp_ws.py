"""The old app's WebSocket, its pure parts: the protocol, the pushes, the market clock, the outbox."""

from __future__ import annotations

import asyncio
import re

import orjson
import pytest

from gateway.oldapp import ws_protocol, ws_push
from gateway.oldapp.ws_outbox import Outbox
from gateway.oldapp.ws_protocol import Ping, ProtocolError, Subscription, Subscriptions
from marketbus.contracts import Quote, Signal, signal_id
from marketbus.sessions import shanghai_ms

NOW = shanghai_ms(2026, 11, 20, 10, 30, 0) + 123


def quote(code: str = "600519.SH", price: float = 1450.004, **kw: object) -> Quote:
    fields: dict[str, object] = {
        "code": code,
        "name": "贵州茅台",
        "market": "SH主板",
        "price": price,
        "change_percent": 1.234,
        "volume": 3_100_050.0,
        "amount": 4.48e9,
        "open": 1433.0,
        "high": 1455.0,
        "low": 1430.0,
        "pre_close": 1432.8,
        "ts": NOW,
    }
    fields.update(kw)
    return Quote.model_validate(fields)


def signal(code: str, strategy: str) -> Signal:
    return Signal(
        id=signal_id(code, strategy, "1d", NOW),
        code=code,
        name=code,
        market="SH主板",
        strategy=strategy,
        strategy_name=strategy,
        side="BUY",
        price=10.0,
        period="1d",
        bar_ts=NOW,
        confidence=0.5,
        volume_ratio=None,
        change_percent=None,
        reason="test",
        created_ts=NOW,
    )


def error_of(text: str) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        ws_protocol.parse_message(text)
    return info.value


# --- protocol ---------------------------------------------------------------------------------
def test_client_ids_look_like_the_old_ones_and_avoid_the_taken() -> None:
    first = ws_protocol.new_client_id()
    assert re.fullmatch(r"client_[0-9a-f]{8}", first)
    assert all(ws_protocol.new_client_id({first}) != first for _ in range(50))


def test_timestamps_are_shanghai_wall_time_without_a_zone() -> None:
    assert ws_protocol.timestamp(NOW) == "2026-11-20T10:30:00.123"
    greeting = ws_protocol.connected("client_00000001", NOW)
    assert greeting == {
        "type": "connected",
        "client_id": "client_00000001",
        "message": "WebSocket连接成功",
        "timestamp": "2026-11-20T10:30:00.123",
    }


def test_encode_keeps_chinese_text_readable() -> None:
    assert ws_protocol.encode({"message": "订阅成功"}) == '{"message":"订阅成功"}'


@pytest.mark.parametrize(
    ("text", "request_"),
    [
        ('{"type":"ping"}', Ping()),
        (
            '{"type":"subscribe","subscription_type":"strategy","target":"volume_wave"}',
            Subscription("subscribe", "strategy", "volume_wave", "volume_wave"),
        ),
        (
            '{"type":"subscribe","subscription_type":"stock","target":"600519"}',
            Subscription("subscribe", "stock", "600519", "600519.SH"),
        ),
        (
            '{"type":"unsubscribe","subscription_type":"stock","target":"000001.SH"}',
            Subscription("unsubscribe", "stock", "000001.SH", "000001.SH"),
        ),
        (
            '{"type":"subscribe","subscription_type":"stock","target":"000001"}',
            Subscription("subscribe", "stock", "000001", "000001.SZ"),
        ),
    ],
)
def test_parse_message(text: str, request_: object) -> None:
    assert ws_protocol.parse_message(text) == request_


@pytest.mark.parametrize(
    ("text", "error", "details"),
    [
        ("{not json", "消息处理失败", "not JSON"),
        ("[1, 2]", "消息处理失败", "JSON object"),
        ('"ping"', "消息处理失败", "JSON object"),
        ("{}", "消息缺少type字段", "'type' is missing"),
        ('{"type": ""}', "消息缺少type字段", "'type' is missing"),
        ('{"type": "hello"}', "不支持的消息类型: hello", "'hello' is not one of subscribe"),
        ('{"type": 5}', "不支持的消息类型: 5", "5 is not one of"),
        ('{"type": "subscribe", "target": "x"}', "订阅失败", "'subscription_type' is missing"),
        (
            '{"type": "subscribe", "subscription_type": "market", "target": "x"}',
            "订阅失败",
            "'subscription_type': 'market' is not one of strategy, stock",
        ),
        (
            '{"type": "unsubscribe", "subscription_type": "sector", "target": "x"}',
            "取消订阅失败",
            "'subscription_type': 'sector'",
        ),
        ('{"type": "subscribe", "subscription_type": "stock"}', "订阅失败", "'target' is missing"),
        ('{"type": "subscribe", "subscription_type": "stock", "target": 600519}', "订阅失败", "'target'"),
        ('{"type": "subscribe", "subscription_type": "strategy", "target": "  "}', "订阅失败", "'target'"),
        (
            '{"type": "subscribe", "subscription_type": "stock", "target": "60051"}',
            "订阅失败",
            "field 'target': '60051' is not a 6-digit code",
        ),
        (
            '{"type": "unsubscribe", "subscription_type": "stock", "target": "600519.SS"}',
            "取消订阅失败",
            "field 'target': '600519.SS'",
        ),
    ],
)
def test_bad_messages_name_what_is_wrong(text: str, error: str, details: str) -> None:
    exc = error_of(text)
    assert exc.error == error
    assert details in exc.details


def test_an_oversized_message_is_refused_before_parsing() -> None:
    exc = error_of('{"type":"ping","pad":"' + "x" * ws_protocol.MAX_MESSAGE_CHARS + '"}')
    assert exc.error == "消息处理失败" and "at most 4096 characters" in exc.details


def test_subscribe_and_unsubscribe_replies() -> None:
    subs = Subscriptions()
    stock = Subscription("subscribe", "stock", "600519", "600519.SH")
    first = ws_protocol.apply(subs, stock, 10, NOW)
    assert first == {
        "type": "subscribed",
        "subscription_type": "stock",
        "target": "600519",
        "message": "订阅成功",
        "timestamp": "2026-11-20T10:30:00.123",
    }
    assert ws_protocol.apply(subs, stock, 10, NOW)["message"] == "已订阅"
    assert subs.stocks == {"600519.SH"} and len(subs) == 1
    off = Subscription("unsubscribe", "stock", "600519", "600519.SH")
    reply = ws_protocol.apply(subs, off, 10, NOW)
    assert (reply["type"], reply["message"]) == ("unsubscribed", "取消订阅成功")
    assert ws_protocol.apply(subs, off, 10, NOW)["message"] == "未订阅"
    assert len(subs) == 0


def test_the_subscription_limit_counts_both_kinds_and_changes_nothing_when_reached() -> None:
    subs = Subscriptions()
    ws_protocol.apply(subs, Subscription("subscribe", "strategy", "a", "a"), 2, NOW)
    ws_protocol.apply(subs, Subscription("subscribe", "stock", "600519", "600519.SH"), 2, NOW)
    with pytest.raises(ProtocolError, match="at most 2 subscriptions per client"):
        ws_protocol.apply(subs, Subscription("subscribe", "stock", "510300", "510300.SH"), 2, NOW)
    assert subs.stocks == {"600519.SH"}
    # what is held already is still answered 已订阅 at the limit
    again = ws_protocol.apply(subs, Subscription("subscribe", "strategy", "a", "a"), 2, NOW)
    assert again["message"] == "已订阅"


def test_error_and_pong_messages() -> None:
    assert ws_protocol.pong(NOW) == {"type": "pong", "timestamp": "2026-11-20T10:30:00.123"}
    assert ws_protocol.error("消息处理失败", "why", NOW) == {
        "type": "error",
        "error": "消息处理失败",
        "details": "why",
        "timestamp": "2026-11-20T10:30:00.123",
    }


# --- pushes -----------------------------------------------------------------------------------
def test_a_price_item_as_the_app_reads_it() -> None:
    assert ws_push.price_item(quote(), None) == {
        "code": "600519",
        "name": "贵州茅台",
        "price": 1450.0,
        "change": 0.0,
        "change_percent": 1.23,
        "volume": 31000,
        "timestamp": "2026-11-20T10:30:00.123",
    }


def test_change_is_the_move_since_the_last_pushed_price() -> None:
    items, last = ws_push.price_items([quote(price=10.0)], {})
    assert items["600519.SH"]["change"] == 0.0 and last == {"600519.SH": 10.0}
    items, last = ws_push.price_items([quote(price=10.30)], last)
    assert items["600519.SH"]["change"] == 0.3
    items, last = ws_push.price_items([quote(price=10.30)], last)
    assert items["600519.SH"]["change"] == 0.0
    items, last = ws_push.price_items([quote(price=10.004)], last)
    assert items["600519.SH"]["change"] == -0.3 and items["600519.SH"]["price"] == 10.0
    # a code not pushed this round is forgotten
    _, last = ws_push.price_items([quote("510300.SH", 4.0, market="ETF")], last)
    assert last == {"510300.SH": 4.0}


def test_index_codes_keep_their_suffix_and_etfs_lose_it() -> None:
    index = quote("000001.SH", 3300.123, market="指数", name="上证指数")
    etf = quote("510300.SH", 4.1234, market="ETF", name="沪深300ETF")
    assert ws_push.price_item(index, None)["code"] == "000001.SH"
    assert ws_push.price_item(etf, None)["code"] == "510300"
    assert ws_push.price_item(etf, None)["price"] == 4.12


def test_volume_is_whole_lots_or_null_and_change_percent_never_null() -> None:
    assert ws_push.price_item(quote(volume=0.0), None)["volume"] is None
    assert ws_push.price_item(quote(volume=99.0), None)["volume"] is None
    assert ws_push.price_item(quote(volume=250.0), None)["volume"] == 2
    no_pct = quote(price=11.0, change_percent=None, pre_close=10.0)
    assert ws_push.price_item(no_pct, None)["change_percent"] == 10.0
    nothing = quote(change_percent=None, pre_close=None)
    assert ws_push.price_item(nothing, None)["change_percent"] == 0.0
    down = quote(change_percent=-0.001)
    assert str(ws_push.price_item(down, None)["change_percent"]) == "0.0"  # never -0.0


def test_strategy_codes_keep_the_list_order_once_per_code() -> None:
    listed = [signal("600519.SH", "a"), signal("300750.SZ", "b"), signal("510300.SH", "a")]
    listed.append(signal("600519.SH", "a"))
    assert ws_push.strategy_codes(listed, ["a", "c"]) == {"a": ["600519.SH", "510300.SH"], "c": []}


def test_messages_of_a_round() -> None:
    items, _ = ws_push.price_items([quote("600519.SH", 10.0), quote("510300.SH", 4.0, market="ETF")], {})
    out = ws_push.messages(
        {"a": ["510300.SH", "600519.SH", "999999.SH"], "empty": [], "gone": ["300750.SZ"]},
        ["600519.SH", "510300.SH", "600519.SH"],
        items,
        NOW,
    )
    assert set(out) == {"a", ws_push.STOCKS}  # no message without an item
    assert [i["code"] for i in out["a"]["data"]] == ["510300", "600519"]  # the list's order
    assert [i["code"] for i in out[ws_push.STOCKS]["data"]] == ["510300", "600519"]  # by code
    assert out["a"]["type"] == "price_update" and out["a"]["count"] == 2
    assert out["a"]["timestamp"] == "2026-11-20T10:30:00.123"
    orjson.dumps(out)  # JSON as is


# --- outbox -----------------------------------------------------------------------------------
def test_the_outbox_drops_the_oldest_push_and_counts_it() -> None:
    box = Outbox(3)
    assert box.push("p1") and box.push("p2")
    box.reply_nowait("r1")
    assert box.push("p3")  # full: p1 makes room
    assert [t for t, _ in box.items] == ["p2", "r1", "p3"]
    assert (box.dropped, box.behind) == (1, 1)


def test_a_client_a_whole_queue_behind_is_to_be_disconnected() -> None:
    box = Outbox(2)
    results = [box.push(f"p{i}") for i in range(5)]
    # 2 queued, then each push drops one: the second drop makes it a whole queue behind
    assert results == [True, True, True, False, False]
    assert box.dropped == 3


async def test_taking_a_frame_means_the_client_keeps_up() -> None:
    box = Outbox(2)
    box.push("p1")
    box.push("p2")
    box.push("p3")
    assert box.behind == 1
    assert await box.take() == "p2"
    assert box.behind == 0
    assert await box.take() == "p3"


def test_a_full_outbox_of_replies_drops_the_push_not_a_reply() -> None:
    box = Outbox(2)
    box.reply_nowait("r1")
    box.reply_nowait("r2")
    assert box.push("p1")
    assert [t for t, _ in box.items] == ["r1", "r2"]
    assert not box.push("p2")  # a whole queue of pushes lost


async def test_a_reply_waits_for_room_and_close_wakes_everyone() -> None:
    box = Outbox(1)
    box.reply_nowait("r1")
    waiting = asyncio.create_task(box.reply("r2"))
    await asyncio.sleep(0)
    assert not waiting.done()
    assert await box.take() == "r1"
    await waiting
    assert await box.take() == "r2"
    taker = asyncio.create_task(box.take())
    await asyncio.sleep(0)
    box.close()
    assert await taker is None
    await box.reply("r3")  # closed: queues nothing, returns at once
    assert box.push("p") and len(box) == 0


def test_an_outbox_needs_room_for_one() -> None:
    with pytest.raises(ValueError, match="maxsize"):
        Outbox(0)


@pytest.mark.parametrize(
    ("when", "pushed"),
    [
        ((2026, 11, 20, 9, 14), False),
        ((2026, 11, 20, 9, 15), True),  # the opening auction's indicative prices
        ((2026, 11, 20, 11, 59), True),
        ((2026, 11, 20, 12, 0), False),
        ((2026, 11, 20, 12, 59), False),
        ((2026, 11, 20, 13, 0), True),
        ((2026, 11, 20, 15, 0), True),  # the closing auction's price
        ((2026, 11, 20, 15, 14), True),
        ((2026, 11, 20, 15, 15), False),
        ((2026, 11, 21, 10, 0), False),  # a Saturday
        ((2026, 10, 1, 10, 0), False),  # National Day, a weekday holiday
    ],
)
def test_the_push_hours(when: tuple[int, int, int, int, int], pushed: bool) -> None:
    assert ws_push.in_push_window(shanghai_ms(*when)) is pushed
