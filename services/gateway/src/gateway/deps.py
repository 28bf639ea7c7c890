"""What routes need, one dependency per thing: each is built once per process (the settings and
metrics with the app, the rest in its lifespan) and kept on ``app.state`` under the name below.

The getters are async: a plain ``def`` dependency would run on a worker thread for every request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from redis.asyncio import Redis

from gateway.batching import HashFieldLoader
from gateway.metrics import Metrics
from gateway.ratelimit import RateLimiter
from gateway.sse import QuoteHub, SignalHub
from marketbus.contracts import Command
from marketbus.keys import Keys
from marketbus.settings import Settings
from marketbus.streams import Publisher
from marketbus.trend import TrendStore


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_keys(request: Request) -> Keys:
    keys: Keys = request.app.state.keys
    return keys


async def get_redis(request: Request) -> Redis:
    redis: Redis = request.app.state.redis
    return redis


async def get_commands(request: Request) -> Publisher[Command]:
    commands: Publisher[Command] = request.app.state.commands
    return commands


async def get_trend(request: Request) -> TrendStore:
    trend: TrendStore = request.app.state.trend
    return trend


async def get_signal_hub(request: Request) -> SignalHub:
    hub: SignalHub = request.app.state.signal_hub
    return hub


async def get_quote_hub(request: Request) -> QuoteHub:
    hub: QuoteHub = request.app.state.quote_hub
    return hub


async def get_metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


async def get_limiter(request: Request) -> RateLimiter:
    limiter: RateLimiter = request.app.state.limiter
    return limiter


async def get_snapshots(request: Request) -> HashFieldLoader:
    snapshots: HashFieldLoader = request.app.state.snapshots
    return snapshots


SettingsDep = Annotated[Settings, Depends(get_settings)]
KeysDep = Annotated[Keys, Depends(get_keys)]
RedisDep = Annotated[Redis, Depends(get_redis)]
CommandsDep = Annotated[Publisher[Command], Depends(get_commands)]
TrendDep = Annotated[TrendStore, Depends(get_trend)]
SignalHubDep = Annotated[SignalHub, Depends(get_signal_hub)]
QuoteHubDep = Annotated[QuoteHub, Depends(get_quote_hub)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
LimiterDep = Annotated[RateLimiter, Depends(get_limiter)]
SnapshotsDep = Annotated[HashFieldLoader, Depends(get_snapshots)]
