"""The FastAPI app. Clients (Redis, the FastStream broker) and the SSE readers are created in the
lifespan, inside uvicorn's loop, and closed on shutdown; nothing connects at import time."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway import errors
from gateway.batching import HashFieldLoader
from gateway.bus import CommandPublisher, make_broker
from gateway.deps import Ctx
from gateway.metrics import Metrics, MetricsMiddleware
from gateway.ratelimit import RateLimiter
from gateway.routes import dashboard, kline, ops, quotes, scheduler, securities, signals, stream
from gateway.sse import QuoteHub, SignalHub
from marketbus.keys import Keys
from marketbus.redis import connect
from marketbus.settings import Settings
from marketbus.trend import TrendStore

log = logging.getLogger("gateway")

MAX_BODY_BYTES = 16 * 1024
TRIGGER_BURST = 10


class BodyLimitMiddleware:
    """413 for a body larger than ``limit`` bytes: declared (Content-Length) or streamed (chunked:
    counted as it is received, the request ends at the first byte over the limit)."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for name, value in scope.get("headers", ()):
                if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                    from fastapi.responses import JSONResponse

                    body = errors.ErrorBody(
                        error="payload_too_large",
                        message=f"request body over {self.limit} bytes",
                    )
                    await JSONResponse(body.model_dump(exclude_none=True), 413)(scope, receive, send)
                    return
            received = 0
            limit = self.limit

            async def limited_receive() -> Message:
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > limit:
                        raise HTTPException(413, detail=f"request body over {limit} bytes")
                return message

            await self.app(scope, limited_receive, send)
            return
        await self.app(scope, receive, send)


def create_app(settings: Settings) -> FastAPI:
    if not settings.redis_url:
        raise ValueError("the gateway needs MARKETBUS_REDIS_URL (or run `uv run marketbus up`)")
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        assert settings.redis_url is not None
        keys = Keys(settings.key_prefix)
        redis = connect(settings.redis_url)
        broker = make_broker(settings.redis_url)
        broker_client = await broker.connect()
        maxlen = settings.commands_maxlen
        signal_hub = SignalHub(redis, keys.signals)
        quote_hub = QuoteHub(redis, keys.ticks, keys.snapshots, settings.sse_quote_rate)
        rate = settings.trigger_rate_per_minute
        app.state.ctx = Ctx(
            settings=settings,
            keys=keys,
            redis=redis,
            commands=CommandPublisher(broker_client, keys.commands, maxlen),
            trend=TrendStore(redis, keys, settings.trend_max_bars),
            signal_hub=signal_hub,
            quote_hub=quote_hub,
            metrics=metrics,
            limiter=RateLimiter(rate, 60.0, burst=TRIGGER_BURST),
            snapshot_loader=HashFieldLoader(redis, keys.snapshots),
        )
        signal_hub.start()
        quote_hub.start()
        try:
            yield
        finally:
            await quote_hub.stop()
            await signal_hub.stop()
            await broker.stop()
            await redis.aclose()

    app = FastAPI(
        title="marketbus gateway",
        version="1.0.0",
        description="Quotes, k-lines and trading signals of ETFs and A-shares, read from Redis; "
        "live streams over Server-Sent Events; the full-market scan trigger.",
        lifespan=lifespan,
    )
    errors.install(app)
    for module in (quotes, securities, kline, signals, scheduler, stream, ops, dashboard):
        app.include_router(module.router)
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app
