"""The full-market scan: trigger it (Bearer token, rate limited), follow its job, see the schedule."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials

from gateway import reads, writes
from gateway.auth import bearer, token_matches
from gateway.deps import CommandsDep, KeysDep, LimiterDep, RedisDep, SettingsDep
from gateway.errors import ApiError, not_found, responses
from gateway.models import SchedulerStatus, TriggerAccepted, TriggerRequest
from marketbus import jobs
from marketbus.contracts import Command, JobStatus

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from marketbus.keys import Keys
    from marketbus.streams import Publisher

router = APIRouter(tags=["scheduler"])


async def authorize(
    request: Request,
    settings: SettingsDep,
    limiter: LimiterDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """503 without a configured token, 429 over the rate, 401 for a wrong or missing token."""
    token = settings.api_token
    if token is None or not token.get_secret_value():
        raise ApiError(
            503,
            "trigger_disabled",
            "the trigger is disabled: set MARKETBUS_API_TOKEN for the gateway to enable it",
        )
    client = request.client.host if request.client else "unknown"
    wait = limiter.check(client)
    if wait > 0:
        raise ApiError(
            429,
            "rate_limited",
            f"too many trigger requests; retry in {wait:.0f} s",
            headers={"Retry-After": str(max(1, round(wait)))},
        )
    given = credentials.credentials if credentials is not None else ""
    if not token_matches(given, token.get_secret_value()):
        raise ApiError(
            401,
            "unauthorized",
            "missing or wrong token: send Authorization: Bearer <MARKETBUS_API_TOKEN>",
            headers={"WWW-Authenticate": "Bearer"},
        )


TriggerBody = Annotated[TriggerRequest | None, Body(description="defaults: calc_signals on 1d")]


async def _trigger(
    redis: Redis, keys: Keys, commands: Publisher[Command], body: TriggerRequest | None
) -> TriggerAccepted:
    body = body or TriggerRequest()
    cmd = jobs.new_command(source="api", period=body.period, task_type=body.task_type)
    job = await writes.queue_job(redis, keys, commands, cmd)
    return TriggerAccepted(job_id=job.job_id, status_url=f"/api/scheduler/jobs/{job.job_id}")


TRIGGER: dict[str, Any] = {
    "status_code": 202,
    "response_model": TriggerAccepted,
    "responses": responses(401, 422, 429, 503),
    "dependencies": [Depends(authorize)],
}


@router.post("/api/scheduler/trigger", **TRIGGER)
async def trigger(
    redis: RedisDep, keys: KeysDep, commands: CommandsDep, body: TriggerBody = None
) -> TriggerAccepted:
    """Queue a full-market scan (`calc_signals`). Needs `Authorization: Bearer <token>`."""
    return await _trigger(redis, keys, commands, body)


@router.post("/api/stocks/scheduler/trigger", **TRIGGER)
async def trigger_alias(
    redis: RedisDep, keys: KeysDep, commands: CommandsDep, body: TriggerBody = None
) -> TriggerAccepted:
    """Alias of POST /api/scheduler/trigger, for clients of the old system."""
    return await _trigger(redis, keys, commands, body)


@router.get("/api/scheduler/jobs/{job_id}", response_model=JobStatus, responses=responses(404, 422, 503))
async def job(
    job_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="from the trigger")],
    redis: RedisDep,
    keys: KeysDep,
) -> JobStatus:
    """A scan job's state: queued, running (with percent), done (with counts) or failed."""
    found = await reads.job(redis, keys, job_id)
    if found is None:
        raise not_found(f"no job {job_id} (unknown, or expired)")
    return found


@router.get("/api/scheduler/status", response_model=SchedulerStatus, responses=responses(503))
async def status(redis: RedisDep, keys: KeysDep, settings: SettingsDep) -> SchedulerStatus:
    """The scan schedule, the last and next run, the job running now."""
    state = await reads.scheduler_state(redis, keys)
    token = settings.api_token
    return SchedulerStatus(
        schedule=state.schedule,
        last_run_ts=state.last_run_ts,
        next_run_ts=state.next_run_ts,
        running_job=state.running_job,
        trigger_enabled=token is not None and bool(token.get_secret_value()),
    )
