"""The full-market scan: trigger it (Bearer token, rate limited), follow its job, see the schedule."""

from __future__ import annotations

import hmac
import time
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from gateway import reads
from gateway.deps import Ctx, CtxDep, get_ctx
from gateway.errors import ApiError, not_found, responses
from gateway.models import SchedulerStatus, TriggerAccepted, TriggerRequest
from marketbus.contracts import Command, JobStatus
from marketbus.keys import JOB_TTL_S

router = APIRouter(tags=["scheduler"])
bearer = HTTPBearer(auto_error=False, description="MARKETBUS_API_TOKEN")


async def authorize(
    request: Request,
    ctx: Annotated[Ctx, Depends(get_ctx)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """503 without a configured token, 429 over the rate, 401 for a wrong or missing token."""
    token = ctx.settings.api_token
    if token is None or not token.get_secret_value():
        raise ApiError(
            503,
            "trigger_disabled",
            "the trigger is disabled: set MARKETBUS_API_TOKEN for the gateway to enable it",
        )
    client = request.client.host if request.client else "unknown"
    wait = ctx.limiter.check(client)
    if wait > 0:
        raise ApiError(
            429,
            "rate_limited",
            f"too many trigger requests; retry in {wait:.0f} s",
            headers={"Retry-After": str(max(1, round(wait)))},
        )
    given = credentials.credentials if credentials is not None else ""
    if not hmac.compare_digest(given.encode(), token.get_secret_value().encode()):
        raise ApiError(
            401,
            "unauthorized",
            "missing or wrong token: send Authorization: Bearer <MARKETBUS_API_TOKEN>",
            headers={"WWW-Authenticate": "Bearer"},
        )


TriggerBody = Annotated[TriggerRequest | None, Body(description="defaults: calc_signals on 1d")]


async def _trigger(ctx: Ctx, request: Request, body: TriggerRequest | None) -> TriggerAccepted:
    body = body or TriggerRequest()
    job_id = uuid.uuid4().hex
    now = int(time.time() * 1000)
    status = JobStatus(
        job_id=job_id, task_type=body.task_type, state="queued", period=body.period, created_ts=now
    )
    # the job exists before the command does: whoever sees the command can find its job
    await ctx.redis.set(ctx.keys.job(job_id), status.model_dump_json(), ex=JOB_TTL_S)
    cmd = Command(id=job_id, type=body.task_type, period=body.period, issued_ts=now, source="api")
    await ctx.commands.publish(cmd)
    return TriggerAccepted(job_id=job_id, status_url=f"/api/scheduler/jobs/{job_id}")


TRIGGER: dict[str, Any] = {
    "status_code": 202,
    "response_model": TriggerAccepted,
    "responses": responses(401, 422, 429, 503),
    "dependencies": [Depends(authorize)],
}


@router.post("/api/scheduler/trigger", **TRIGGER)
async def trigger(ctx: CtxDep, request: Request, body: TriggerBody = None) -> TriggerAccepted:
    """Queue a full-market scan (`calc_signals`). Needs `Authorization: Bearer <token>`."""
    return await _trigger(ctx, request, body)


@router.post("/api/stocks/scheduler/trigger", **TRIGGER)
async def trigger_alias(ctx: CtxDep, request: Request, body: TriggerBody = None) -> TriggerAccepted:
    """Alias of POST /api/scheduler/trigger, for clients of the old system."""
    return await _trigger(ctx, request, body)


@router.get("/api/scheduler/jobs/{job_id}", response_model=JobStatus, responses=responses(404, 422, 503))
async def job(
    job_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="from the trigger")],
    ctx: CtxDep,
) -> JobStatus:
    """A scan job's state: queued, running (with percent), done (with counts) or failed."""
    raw = await ctx.redis.get(ctx.keys.job(job_id))
    if raw is None:
        raise not_found(f"no job {job_id} (unknown, or expired)")
    return JobStatus.model_validate_json(raw)


@router.get("/api/scheduler/status", response_model=SchedulerStatus, responses=responses(503))
async def status(ctx: CtxDep) -> SchedulerStatus:
    """The scan schedule, the last and next run, the job running now."""
    state = {reads.text(k): v for k, v in (await ctx.redis.hgetall(ctx.keys.scheduler_state)).items()}
    token = ctx.settings.api_token
    return SchedulerStatus(
        schedule=reads.text(state.get("schedule")),
        last_run_ts=reads.integer(state.get("last_run_ts")),
        next_run_ts=reads.integer(state.get("next_run_ts")),
        running_job=reads.text(state.get("running_job")) or None,
        trigger_enabled=token is not None and bool(token.get_secret_value()),
    )
