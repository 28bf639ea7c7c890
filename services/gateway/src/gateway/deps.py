"""What every route needs, built once per process in the lifespan and reached through the app."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from redis.asyncio import Redis

from gateway.batching import HashFieldLoader
from gateway.bus import CommandPublisher
from gateway.metrics import Metrics
from gateway.ratelimit import RateLimiter
from gateway.sse import QuoteHub, SignalHub
from marketbus.keys import Keys
from marketbus.settings import Settings
from marketbus.trend import TrendStore


@dataclass
class Ctx:
    settings: Settings
    keys: Keys
    redis: Redis
    commands: CommandPublisher
    trend: TrendStore
    signal_hub: SignalHub
    quote_hub: QuoteHub
    metrics: Metrics
    limiter: RateLimiter
    snapshot_loader: HashFieldLoader


async def get_ctx(request: Request) -> Ctx:
    # async: a plain def dependency would be run on a worker thread for every request
    ctx: Ctx = request.app.state.ctx
    return ctx


CtxDep = Annotated[Ctx, Depends(get_ctx)]
