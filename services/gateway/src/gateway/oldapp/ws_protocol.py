"""The old app's WebSocket protocol (OLD_API.md P10): what a client may send, what it is answered.

Pure functions: a client's text becomes a request (:func:`parse_message`) or a
:class:`ProtocolError`; a request applied to the client's :class:`Subscriptions` gives the reply.
Every reply is the old backend's (``subscribed``/``unsubscribed`` with 订阅成功/已订阅/取消订阅成功/
未订阅, ``pong``, ``error``); an ``error``'s ``error`` is the old backend's text, its ``details``
says in English which field is wrong and why. Timestamps are Asia/Shanghai wall time without a
zone, as the old backend sent them.
"""

from __future__ import annotations

import secrets
from collections.abc import Container
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from gateway.oldapp.codes import from_old
from gateway.oldapp.times import local_time

MAX_MESSAGE_CHARS = 4096
MAX_TARGET_CHARS = 64
MESSAGE_TYPES = ("subscribe", "unsubscribe", "ping")
SUBSCRIPTION_TYPES = ("strategy", "stock")

CONNECTED = "WebSocket连接成功"
SUBSCRIBED_NEW = "订阅成功"
SUBSCRIBED_ALREADY = "已订阅"
UNSUBSCRIBED_DONE = "取消订阅成功"
UNSUBSCRIBED_NOT = "未订阅"
NO_TYPE = "消息缺少type字段"
BAD_MESSAGE = "消息处理失败"
SUBSCRIBE_FAILED = "订阅失败"
UNSUBSCRIBE_FAILED = "取消订阅失败"

Action = Literal["subscribe", "unsubscribe"]
Kind = Literal["strategy", "stock"]


class ProtocolError(Exception):
    """A message that cannot be served: ``error`` (the old backend's text) and ``details``."""

    def __init__(self, error: str, details: str) -> None:
        super().__init__(f"{error}: {details}")
        self.error = error
        self.details = details


@dataclass(frozen=True, slots=True)
class Ping:
    pass


@dataclass(frozen=True, slots=True)
class Subscription:
    """A subscribe or unsubscribe request. ``target`` is what the client sent (echoed in the
    reply); ``key`` what it means here: the strategy key, or the marketbus code (``600519.SH``)."""

    action: Action
    kind: Kind
    target: str
    key: str

    @property
    def failed(self) -> str:
        return SUBSCRIBE_FAILED if self.action == "subscribe" else UNSUBSCRIBE_FAILED


Request = Ping | Subscription


@dataclass(eq=False, slots=True)
class Subscriptions:
    """What one client subscribed to: strategy keys and marketbus codes."""

    strategies: set[str] = field(default_factory=set)
    stocks: set[str] = field(default_factory=set)

    def __len__(self) -> int:
        return len(self.strategies) + len(self.stocks)

    def of(self, kind: Kind) -> set[str]:
        return self.strategies if kind == "strategy" else self.stocks


def new_client_id(taken: Container[str] = ()) -> str:
    """``client_1a2b3c4d``: eight random hex digits, not one of ``taken``."""
    while True:
        client_id = f"client_{secrets.token_hex(4)}"
        if client_id not in taken:
            return client_id


def timestamp(ts_ms: int) -> str:
    """``2025-06-13T14:50:02.123``: Asia/Shanghai wall time, no zone."""
    return local_time(ts_ms, "milliseconds")


def encode(message: dict[str, Any]) -> str:
    """A message as the text frame sent (compact JSON, Chinese unescaped)."""
    return orjson.dumps(message).decode()


# --- parsing ------------------------------------------------------------------------------------
def parse_message(text: str) -> Request:
    """The request a client's text frame carries; ProtocolError says what is wrong with it."""
    if len(text) > MAX_MESSAGE_CHARS:
        raise ProtocolError(
            BAD_MESSAGE, f"a message is at most {MAX_MESSAGE_CHARS} characters, got {len(text)}"
        )
    try:
        message = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(BAD_MESSAGE, f"not JSON: {exc}") from None
    if not isinstance(message, dict):
        raise ProtocolError(BAD_MESSAGE, 'a message is a JSON object, like {"type": "ping"}')
    kind = message.get("type")
    if kind is None or kind == "":
        raise ProtocolError(NO_TYPE, f"field 'type' is missing: one of {', '.join(MESSAGE_TYPES)}")
    if kind not in MESSAGE_TYPES:
        raise ProtocolError(
            f"不支持的消息类型: {kind}", f"field 'type': {kind!r} is not one of {', '.join(MESSAGE_TYPES)}"
        )
    if kind == "ping":
        return Ping()
    return _subscription(kind, message)


def _subscription(action: Action, message: dict[str, Any]) -> Subscription:
    failed = SUBSCRIBE_FAILED if action == "subscribe" else UNSUBSCRIBE_FAILED
    kind = message.get("subscription_type")
    if kind is None:
        raise ProtocolError(
            failed, f"field 'subscription_type' is missing: {' or '.join(SUBSCRIPTION_TYPES)}"
        )
    if kind not in SUBSCRIPTION_TYPES:
        raise ProtocolError(
            failed, f"field 'subscription_type': {kind!r} is not one of {', '.join(SUBSCRIPTION_TYPES)}"
        )
    target = message.get("target")
    if target is None:
        raise ProtocolError(failed, "field 'target' is missing")
    if not isinstance(target, str) or not target.strip():
        raise ProtocolError(failed, f"field 'target': {target!r} is not a non-empty string")
    if len(target) > MAX_TARGET_CHARS:
        raise ProtocolError(
            failed, f"field 'target' is at most {MAX_TARGET_CHARS} characters, got {len(target)}"
        )
    if kind == "strategy":
        return Subscription(action, "strategy", target, target.strip())
    try:
        code = from_old(target)
    except ValueError as exc:
        raise ProtocolError(failed, f"field 'target': {exc}") from None
    return Subscription(action, "stock", target, code)


# --- replies ------------------------------------------------------------------------------------
def connected(client_id: str, now_ms: int) -> dict[str, Any]:
    return {"type": "connected", "client_id": client_id, "message": CONNECTED, "timestamp": timestamp(now_ms)}


def pong(now_ms: int) -> dict[str, Any]:
    return {"type": "pong", "timestamp": timestamp(now_ms)}


def error(error_text: str, details: str, now_ms: int) -> dict[str, Any]:
    return {"type": "error", "error": error_text, "details": details, "timestamp": timestamp(now_ms)}


def apply(subs: Subscriptions, request: Subscription, max_subscriptions: int, now_ms: int) -> dict[str, Any]:
    """Subscribe or unsubscribe ``subs`` (changed in place) and the reply; a subscription over
    ``max_subscriptions`` raises ProtocolError and changes nothing."""
    held = subs.of(request.kind)
    if request.action == "subscribe":
        if request.key in held:
            text = SUBSCRIBED_ALREADY
        elif len(subs) >= max_subscriptions:
            raise ProtocolError(
                request.failed,
                f"at most {max_subscriptions} subscriptions per client (strategies and codes together); "
                "unsubscribe from one first",
            )
        else:
            held.add(request.key)
            text = SUBSCRIBED_NEW
        reply_type = "subscribed"
    else:
        if request.key in held:
            held.discard(request.key)
            text = UNSUBSCRIBED_DONE
        else:
            text = UNSUBSCRIBED_NOT
        reply_type = "unsubscribed"
    return {
        "type": reply_type,
        "subscription_type": request.kind,
        "target": request.target,
        "message": text,
        "timestamp": timestamp(now_ms),
    }
