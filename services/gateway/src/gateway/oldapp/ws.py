"""The old app's WebSocket ``/ws/stock/prices`` (OLD_API.md P10): the hub of its clients.

- A client is accepted, greeted (``connected``, its id) and then served by two tasks: one reads
  its messages and queues the replies (gateway.oldapp.ws_protocol), one sends what its
  :class:`~gateway.oldapp.ws_outbox.Outbox` holds. A bad message is answered with an ``error``
  and the connection goes on.
- Every ``oldapp_ws_push_interval`` seconds in the old push hours (09:15-12:00, 13:00-15:15 of a
  trading day, auctions included: ``ws_push.PUSH_WINDOWS``; on the market clock
  the quotes service publishes, so the accelerated simulation and a replay push too; the
  calendar is the one in Redis, ``marketbus.calendar``), one round of ``price_update`` pushes is
  built from the live snapshots (gateway.oldapp.ws_push) and offered to every subscriber without
  waiting for any: a slow client has pushes dropped (counted) and, a whole queue behind, is
  closed with code 1013; the others never wait for it.
- Limits: ``oldapp_ws_max_clients`` clients (one more is closed with 1013) and
  ``oldapp_ws_max_subscriptions`` subscriptions per client (one more is an ``error``).
- At shutdown :meth:`OldAppWsHub.close` (called by gateway.app.end_streams) closes every client with
  1001 (uvicorn, shutting down, closes them itself with 1012 at the same moment) and refuses
  new ones; every handler returns cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from gateway import reads
from gateway.oldapp import buylist, ws_protocol, ws_push
from gateway.oldapp.ws_outbox import Outbox
from gateway.oldapp.ws_protocol import Ping, ProtocolError, Subscriptions, encode
from marketbus import calendar
from marketbus.clock import market_now, parse_clock, wall_ms
from marketbus.contracts import Signal
from marketbus.tasks import cancel_and_wait

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from marketbus.keys import Keys
    from marketbus.settings import Settings
    from marketbus.trend import TrendStore

log = logging.getLogger("gateway.oldapp.ws")

QUEUE_MAX = 16  # frames queued per client (at 5 s a push, 80 s of pushes)
CLOSE_WAIT_S = 2.0  # how long a handler waits for its close frame to go out
GOING_AWAY = 1001
TRY_AGAIN_LATER = 1013


@dataclass(eq=False)
class Client:
    id: str
    outbox: Outbox
    subs: Subscriptions = field(default_factory=Subscriptions)
    close_code: int | None = None  # None: no close frame to send (the peer left)
    close_reason: str = ""
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def close(self, code: int | None, reason: str = "") -> None:
        """End the connection: with a close frame ``code`` (None: the peer has gone already)."""
        if self.done.is_set():
            return
        self.close_code, self.close_reason = code, reason
        self.outbox.close()
        self.done.set()


class OldAppWsHub:
    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        settings: Settings,
        trend: TrendStore,
        wall: Callable[[], int] = wall_ms,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.trend = trend
        self.wall = wall
        self.interval = settings.oldapp_ws_push_interval
        self.max_clients = settings.oldapp_ws_max_clients
        self.max_subscriptions = settings.oldapp_ws_max_subscriptions
        self.fallback = parse_clock(settings.market_clock)
        self.clients: dict[str, Client] = {}
        self.last_prices: dict[str, float] = {}
        # the buy-list candidates, read again only when the signals stream moved
        self._candidates: tuple[str | None, list[Signal]] | None = None
        self.closed = False
        self._task: asyncio.Task[None] | None = None
        self._calendar_task: asyncio.Task[None] | None = None
        self._calendar_stop = asyncio.Event()
        self._last_failure: str | None = None

    # lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.create_task(self._push_loop(), name="oldapp-ws:push")

    def close(self) -> None:
        """Close every client, and refuse each new one: the server is shutting down."""
        self.closed = True
        for client in list(self.clients.values()):
            client.close(GOING_AWAY, "server shutting down")

    async def stop(self) -> None:
        self.close()
        self._calendar_stop.set()
        await cancel_and_wait([t for t in (self._task, self._calendar_task) if t is not None])

    # one connection -------------------------------------------------------------------------
    async def serve(self, ws: WebSocket) -> None:
        """Serve one client until it leaves or is closed; never raises."""
        try:
            await ws.accept()
        except (WebSocketDisconnect, OSError):
            return
        if self.closed:
            await self._refuse(ws, GOING_AWAY, "server shutting down")
            return
        if len(self.clients) >= self.max_clients:
            log.warning("refusing a WebSocket client: %d clients already (the limit)", len(self.clients))
            await self._refuse(ws, TRY_AGAIN_LATER, f"too many clients (at most {self.max_clients})")
            return
        client = Client(ws_protocol.new_client_id(self.clients), Outbox(QUEUE_MAX))
        client.outbox.reply_nowait(encode(ws_protocol.connected(client.id, self.wall())))
        self.clients[client.id] = client
        receiver = asyncio.create_task(self._receive(ws, client), name=f"oldapp-ws:{client.id}:receive")
        sender = asyncio.create_task(self._send(ws, client), name=f"oldapp-ws:{client.id}:send")
        try:
            await client.done.wait()
            await asyncio.wait({sender}, timeout=CLOSE_WAIT_S)  # its close frame, if it can go out
        finally:
            self.clients.pop(client.id, None)
            client.close(None)
            await cancel_and_wait([receiver, sender])

    async def _refuse(self, ws: WebSocket, code: int, reason: str) -> None:
        with contextlib.suppress(WebSocketDisconnect, OSError, RuntimeError, TimeoutError):
            await asyncio.wait_for(ws.close(code, reason), CLOSE_WAIT_S)

    async def _receive(self, ws: WebSocket, client: Client) -> None:
        try:
            while not client.done.is_set():
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                text = message.get("text")
                if text is None:
                    try:
                        text = (message.get("bytes") or b"").decode("utf-8")
                    except UnicodeDecodeError:
                        details = "a binary frame that is not UTF-8 JSON text"
                        reply = ws_protocol.error(ws_protocol.BAD_MESSAGE, details, self.wall())
                        await client.outbox.reply(encode(reply))
                        continue
                await client.outbox.reply(encode(await self.answer(client, text)))
        except (WebSocketDisconnect, OSError, RuntimeError):
            pass  # the peer is gone
        except Exception as exc:  # never leave the handler waiting for a reader that died
            log.warning("WebSocket client %s: reading failed: %s: %s", client.id, type(exc).__name__, exc)
        finally:
            client.close(None)

    async def _send(self, ws: WebSocket, client: Client) -> None:
        try:
            while (text := await client.outbox.take()) is not None:
                await ws.send_text(text)
            if client.close_code is not None:
                await ws.close(client.close_code, client.close_reason)
        except (WebSocketDisconnect, OSError, RuntimeError):  # the peer is gone, or the server closed it
            pass
        except Exception as exc:
            log.warning("WebSocket client %s: sending failed: %s: %s", client.id, type(exc).__name__, exc)
        finally:
            client.close(None)

    async def answer(self, client: Client, text: str) -> dict[str, Any]:
        """The reply to one message of ``client`` (its subscriptions change in place)."""
        now = self.wall()
        try:
            request = ws_protocol.parse_message(text)
            if isinstance(request, Ping):
                return ws_protocol.pong(now)
            # any strategy name is taken, as the old server took it: one the signals service does
            # not run (yet: it may be starting) lists no codes, so it is pushed nothing
            return ws_protocol.apply(client.subs, request, self.max_subscriptions, now)
        except ProtocolError as exc:
            return ws_protocol.error(exc.error, exc.details, now)
        except Exception as exc:  # e.g. the server cannot be reached: this message fails, not the client
            log.warning("WebSocket message of %s failed: %s: %s", client.id, type(exc).__name__, exc)
            return ws_protocol.error(ws_protocol.BAD_MESSAGE, f"{type(exc).__name__}: {exc}", now)

    # pushes ---------------------------------------------------------------------------------
    async def _push_loop(self) -> None:
        next_at = time.monotonic() + self.interval
        while True:
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            next_at = max(next_at + self.interval, time.monotonic())  # late: no burst to catch up
            try:
                await self.push_round()
                self._last_failure = None
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                text = f"{type(exc).__name__}: {exc}"
                if text != self._last_failure:  # logged once, not every round
                    log.warning("WebSocket price push failed (%s); retrying every round", text)
                self._last_failure = text

    async def push_round(self) -> int:
        """Offer one round of pushes to the subscribers, in the push hours. Returns the
        number of messages queued."""
        clients = [c for c in self.clients.values() if c.subs and not c.done.is_set()]
        if not clients:
            return 0
        await self._ensure_calendar()
        now = market_now(await reads.market_clock(self.redis, self.keys), self.wall(), self.fallback)
        if not ws_push.in_push_window(now):
            return 0
        strategies: set[str] = set().union(*(c.subs.strategies for c in clients))
        stocks: set[str] = set().union(*(c.subs.stocks for c in clients))
        by_strategy = await self.buy_codes(strategies) if strategies else {}
        codes = sorted(stocks.union(*by_strategy.values()))
        quotes = await reads.quotes_of(self.redis, self.keys, codes)
        items, self.last_prices = ws_push.price_items(quotes, self.last_prices)
        texts = {key: encode(m) for key, m in ws_push.messages(by_strategy, stocks, items, now).items()}
        queued = 0
        for client in clients:
            wanted = sorted(k for k in client.subs.strategies if k in texts)
            if client.subs.stocks and ws_push.STOCKS in texts:
                wanted.append(ws_push.STOCKS)
            for key in wanted:
                if client.done.is_set():
                    break
                if not client.outbox.push(texts[key]):
                    log.warning(
                        "closing WebSocket client %s: too slow (%d pushes dropped)",
                        client.id,
                        client.outbox.dropped,
                    )
                    client.close(TRY_AGAIN_LATER, f"too slow: {client.outbox.dropped} pushes dropped")
                    break
                queued += 1
        return queued

    async def buy_codes(self, strategies: set[str]) -> dict[str, list[str]]:
        """strategy -> the codes of its buy list, as the old app's REST buy list lists them
        (gateway.oldapp.buylist: the buy view of the latest daily signals, on each code's last bar)."""
        moved_to = await reads.signals_last_id(self.redis, self.keys)
        if self._candidates is None or self._candidates[0] != moved_to:
            latest = await reads.latest_signals(self.redis, self.keys)
            self._candidates = (moved_to, buylist.candidates(latest, None))
        listed = [s for s in self._candidates[1] if s.strategy in strategies]
        codes = sorted({s.code for s in listed})
        tails = await self.trend.tails(codes, buylist.PERIOD, 1) if codes else []
        last_ts = buylist.last_bar_ts(dict(zip(codes, tails, strict=True)))
        return ws_push.strategy_codes(buylist.on_last_bar(listed, last_ts), sorted(strategies))

    async def _ensure_calendar(self) -> None:
        """The trading calendar kept in Redis (imported and learned days), loaded when the first
        push needs it and kept fresh after."""
        if self._calendar_task is not None:
            return
        await calendar.load(self.redis, self.keys, warn=False, record=False)  # the gateway only reads
        self._calendar_task = asyncio.create_task(
            calendar.keep_fresh(self.redis, self.keys, self._calendar_stop, record=False),
            name="oldapp-ws:calendar",
        )
