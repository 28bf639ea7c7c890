"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from gateway.deps import CtxDep
from gateway.metrics import groups_of
from gateway.models import Health, Readiness
from marketbus import calendar
from marketbus.keys import SIGNALS_GROUP
from marketbus.redis import redact

router = APIRouter(tags=["ops"])


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process is alive (no dependency is checked)."""
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "not ready; `reason` says why"}},
)
async def readyz(ctx: CtxDep) -> JSONResponse:
    """Ready when the server answers, the consumer group `signals` exists on the bars stream and
    its lag is below the threshold. `checks.calendar_warning` says when the trading calendar ends
    within 30 days (it does not make the gateway unready)."""
    url = redact(ctx.settings.redis_url or "")
    max_lag = ctx.settings.ready_max_lag
    checks: dict[str, object] = {}
    reason: str | None = None
    try:
        await ctx.redis.ping()
        checks["redis"] = "ok"
        groups = {g.get("name"): g for g in await groups_of(ctx.redis, ctx.keys.bars)}
        group = groups.get(SIGNALS_GROUP)
        if group is None:
            reason = f"consumer group {SIGNALS_GROUP!r} on {ctx.keys.bars} does not exist yet"
        else:
            lag = group.get("lag")
            checks["signals_group_lag"] = lag
            if isinstance(lag, int) and lag > max_lag:
                reason = f"consumer group {SIGNALS_GROUP!r} lags {lag} entries (limit {max_lag})"
        raw_last = await ctx.redis.hget(ctx.keys.calendar, calendar.LAST_DAY_FIELD)
        checks.update(calendar.readiness_checks(raw_last, ctx.settings.market_clock))  # warns, stays 200
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
async def metrics(ctx: CtxDep) -> Response:
    """Requests, latency, SSE clients, stream lengths, group lag and the services' counters."""
    body = await ctx.metrics.render(ctx.redis, ctx.keys)
    return Response(content=body, media_type=CONTENT_TYPE_LATEST)
