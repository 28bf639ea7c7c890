"""What routes need, one dependency per thing: each is built once per process (the settings and
metrics with the app, the rest in its lifespan) and kept on ``app.state`` under the name below.

The getters are async: a plain ``def`` dependency would run on a worker thread for every request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

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


def _state(name: str) -> Callable[[Request], Awaitable[Any]]:
    """The dependency that returns ``app.state.<name>``."""

    async def get(request: Request) -> Any:
        return getattr(request.app.state, name)

    get.__name__ = get.__qualname__ = f"get_{name}"
    return get


SettingsDep = Annotated[Settings, Depends(_state("settings"))]
KeysDep = Annotated[Keys, Depends(_state("keys"))]
RedisDep = Annotated[Redis, Depends(_state("redis"))]
CommandsDep = Annotated[Publisher[Command], Depends(_state("commands"))]
TrendDep = Annotated[TrendStore, Depends(_state("trend"))]
SignalHubDep = Annotated[SignalHub, Depends(_state("signal_hub"))]
QuoteHubDep = Annotated[QuoteHub, Depends(_state("quote_hub"))]
MetricsDep = Annotated[Metrics, Depends(_state("metrics"))]
LimiterDep = Annotated[RateLimiter, Depends(_state("limiter"))]
SnapshotsDep = Annotated[HashFieldLoader, Depends(_state("snapshots"))]
