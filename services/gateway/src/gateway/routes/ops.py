"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from gateway import reads
from gateway.deps import KeysDep, MetricsDep, RedisDep, SettingsDep
from gateway.models import Health, Readiness
from marketbus.keys import SIGNALS_GROUP
from marketbus.redis import redact

router = APIRouter(tags=["ops"])

# The readiness checks answer within this bound. The client retries a dropped connection with
# backoff for about 3 s (marketbus.redis), which spans a whole Sentinel failover: without a bound
# /readyz waited through it and answered 200, never saying the primary was gone.
READY_TIMEOUT_S = 1.0


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process is alive (no dependency is checked)."""
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "not ready; `reason` says why"}},
)
async def readyz(redis: RedisDep, keys: KeysDep, settings: SettingsDep) -> JSONResponse:
    """Ready when the server answers within 1 s, the consumer group `signals` exists on the bars
    stream and its lag is at most `ready_max_lag`. `checks.calendar_warning` says when the trading
    calendar ends within 30 days (it does not make the gateway unready)."""
    url = redact(settings.redis_url or "")
    max_lag = settings.ready_max_lag
    checks: dict[str, object] = {}
    reason: str | None = None
    try:
        async with asyncio.timeout(READY_TIMEOUT_S):
            await reads.ping(redis)
            checks["redis"] = "ok"
            groups = {g.get("name"): g for g in await reads.groups_of(redis, keys.bars)}
            group = groups.get(SIGNALS_GROUP)
            if group is None:
                reason = f"consumer group {SIGNALS_GROUP!r} on {keys.bars} does not exist yet"
            else:
                lag = group.get("lag")
                checks["signals_group_lag"] = lag
                if isinstance(lag, int) and lag > max_lag:
                    reason = f"consumer group {SIGNALS_GROUP!r} lags {lag} entries (limit {max_lag})"
            checks.update(await reads.calendar_checks(redis, keys, settings.market_clock))  # warns
    except TimeoutError:
        checks["redis"] = "unreachable"
        reason = f"Redis at {url} did not answer within {READY_TIMEOUT_S} s"
    except Exception as exc:
        checks["redis"] = "unreachable"
        reason = f"Redis at {url} is unreachable: {type(exc).__name__}"
    body = Readiness(
        status="ok" if reason is None else "unavailable", redis=url, reason=reason, checks=checks
    )
    return JSONResponse(body.model_dump(), status_code=200 if reason is None else 503)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text"}},
)
async def metrics(redis: RedisDep, keys: KeysDep, registry: MetricsDep) -> Response:
    """Requests, latency, SSE clients, stream lengths, group lag and the services' counters."""
    body = registry.render(await reads.bus_stats(redis, keys))
    return Response(content=body, media_type=CONTENT_TYPE_LATEST)
