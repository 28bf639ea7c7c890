"""The FastAPI app. The Redis client, the command publisher and the SSE hubs are created in the
lifespan, inside the server's loop, and closed on shutdown; nothing connects at import time or in
:func:`create_app`. What routes use is kept on ``app.state`` (see gateway.deps)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException
from fastapi.telemetry import TelemetryConfig
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway import errors
from gateway.batching import HashFieldLoader
from gateway.compress import GZipMiddleware
from gateway.metrics import Metrics, MetricsMiddleware
from gateway.oldapp.ws import OldAppWsHub
from gateway.ratelimit import RateLimiter
from gateway.routes import (
    asyncapi,
    chart,
    dashboard,
    kline,
    oldapp,
    oldapp_eval,
    oldapp_ws,
    ops,
    quotes,
    scheduler,
    scorecard,
    securities,
    signals,
    stream,
)
from gateway.sse import QuoteHub, SignalHub
from marketbus import streams
from marketbus.keys import Keys
from marketbus.redis import connect
from marketbus.settings import Settings
from marketbus.trend import TrendStore

log = logging.getLogger("gateway")

MAX_BODY_BYTES = 16 * 1024
TRIGGER_BURST = 10
TELEMETRY_OFF: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}


class BodyLimitMiddleware:
    """413 for a body larger than ``limit`` bytes: declared (Content-Length) or streamed (chunked:
    counted as it is received, the request ends at the first byte over the limit)."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            has_body = False
            for name, value in scope.get("headers", ()):
                if name == b"transfer-encoding" or (name == b"content-length" and value != b"0"):
                    has_body = True
                if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                    from fastapi.responses import JSONResponse

                    body = errors.ErrorBody(
                        error="payload_too_large",
                        message=f"request body over {self.limit} bytes",
                    )
                    await JSONResponse(body.model_dump(exclude_none=True), 413)(scope, receive, send)
                    return
            if not has_body:  # neither a length nor chunks: HTTP/1.1 sends no body
                await self.app(scope, receive, send)
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


def end_streams(app: FastAPI) -> None:
    """End every open SSE response now, and each one opened after: the server is shutting down.
    The old app's WebSocket clients are closed too (code 1001) and new ones refused.

    uvicorn waits for open responses before it runs the lifespan's shutdown, so this is called
    when the shutdown begins (gateway.__main__.Server), and again by the lifespan for any other
    server."""
    for name in ("signal_hub", "quote_hub", "oldapp_ws"):
        hub = getattr(app.state, name, None)
        if hub is not None:
            hub.close()


def create_app(settings: Settings) -> FastAPI:
    if not settings.redis_url:
        raise ValueError("the gateway needs MARKETBUS_REDIS_URL (or run `uv run marketbus up`)")
    keys = Keys(settings.key_prefix)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        assert settings.redis_url is not None
        redis = connect(settings.redis_url)
        signal_hub = SignalHub(redis, keys.signals)
        quote_hub = QuoteHub(redis, keys.ticks, keys.snapshots, settings.sse_quote_rate)
        state = app.state
        state.redis = redis
        state.commands = streams.Publisher.of(streams.COMMANDS, keys, settings, redis)
        state.trend = TrendStore(redis, keys, settings.trend_max_bars)
        state.snapshots = HashFieldLoader(redis, keys.snapshots)
        state.signal_hub = signal_hub
        state.quote_hub = quote_hub
        state.oldapp_ws = oldapp_ws = OldAppWsHub(redis, keys, settings, state.trend)
        signal_hub.start()
        quote_hub.start()
        oldapp_ws.start()
        try:
            yield
        finally:
            end_streams(app)
            await oldapp_ws.stop()
            await quote_hub.stop()
            await signal_hub.stop()
            await redis.aclose()

    app = FastAPI(
        title="marketbus gateway",
        version="1.0.0",
        description="Quotes, k-lines and trading signals of ETFs and A-shares, read from Redis; "
        "live streams over Server-Sent Events; the full-market scan trigger.",
        lifespan=lifespan,
        # the gateway's metrics are its own (gateway.metrics, /metrics); FastAPI's OpenTelemetry
        # instrumentation, on by default, would otherwise look up the global providers on every
        # request to find that none is configured
        telemetry=TELEMETRY_OFF,
    )
    app.state.settings = settings
    app.state.keys = keys
    app.state.metrics = metrics = Metrics()
    app.state.limiter = RateLimiter(settings.trigger_rate_per_minute, 60.0, burst=TRIGGER_BURST)
    errors.install(app)
    quotes.install(app)  # the one-code quote route, first and outside the included routers
    for module in (
        *(quotes, securities, kline, signals, scheduler, stream, ops, asyncapi, dashboard),
        *(oldapp, oldapp_eval, oldapp_ws, chart, scorecard),
    ):
        app.include_router(module.router)
    app.add_middleware(GZipMiddleware, minimum_size=1000, compresslevel=6)  # as the old backend did
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app
