"""Response and request models of the HTTP API (they make the OpenAPI document)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gateway.oldapp.models import OldStrategy
from marketbus.contracts import JobState, Period, Quote, Security, Signal, StrategyInfo, TaskType


class ErrorBody(BaseModel):
    """Every error answer: a code word, a message a person understands, the parameter at fault."""

    error: str = Field(description="short code word: not_found, invalid_parameter, unauthorized…")
    message: str = Field(description="what went wrong, in words")
    param: str | None = Field(default=None, description="the request parameter at fault, if any")
    details: list[dict[str, Any]] | None = None


class QuoteList(BaseModel):
    items: list[Quote]
    missing: list[str] = Field(default_factory=list, description="requested codes with no quote")


class SecurityList(BaseModel):
    items: list[Security]


class KlineBar(BaseModel):
    ts: int = Field(description="bar start, epoch ms UTC")
    open: float
    high: float
    low: float
    close: float
    volume: float
    amount: float


class KlineList(BaseModel):
    code: str
    period: Period
    items: list[KlineBar] = Field(description="oldest first")


class SignalList(BaseModel):
    items: list[Signal] = Field(description="newest first")
    next_cursor: str | None = Field(
        default=None, description="pass as `cursor` to get the next (older) page; null at the end"
    )


class StrategyList(BaseModel):
    """Today's clients read ``items``; the replaced system's app reads ``strategies`` and ``total``
    (OLD_API.md P1): one answer for both (see GET /api/strategies)."""

    items: list[StrategyInfo] = Field(description="every strategy with its parameters, by key")
    strategies: list[OldStrategy] = Field(description="the old app's list: its default (volume_wave) first")
    total: int = Field(description="how many strategies (the old app's count)")


class TriggerRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    task_type: TaskType = "calc_signals"
    period: Period = "1d"


class TriggerAccepted(BaseModel):
    job_id: str
    state: JobState = "queued"
    status_url: str


class SchedulerStatus(BaseModel):
    schedule: str | None = None
    last_run_ts: int | None = None
    next_run_ts: int | None = None
    running_job: str | None = None
    trigger_enabled: bool = Field(description="false until MARKETBUS_API_TOKEN is set")


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str = Field(description="ok or unavailable")
    redis: str = Field(description="server URL, password redacted")
    reason: str | None = None
    checks: dict[str, Any] = Field(default_factory=dict)
