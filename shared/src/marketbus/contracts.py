"""Message contracts. Frozen pydantic models; every message carries ``schema_version``.

On the wire a message is one stream entry with a single field ``data`` holding the model's JSON
(see :mod:`marketbus.wire`). Timestamps are integer epoch milliseconds, UTC. Prices in yuan,
volumes in shares, amounts in yuan. Codes are tushare style: ``510300.SH``.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from marketbus.wire import text as _text

CODE_RE = re.compile(r"^\d{6}\.(SH|SZ|BJ)$")


def _check_code(value: str) -> str:
    if not CODE_RE.match(value):
        raise ValueError(f"code {value!r} is not like 510300.SH (six digits, .SH/.SZ/.BJ)")
    return value


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


Code = Annotated[str, AfterValidator(_check_code)]
Finite = Annotated[float, AfterValidator(_finite)]
EpochMs = Annotated[int, Field(ge=0, description="epoch milliseconds, UTC")]
Period = Literal["1m", "5m", "1d"]
PERIODS: tuple[Period, ...] = get_args(Period)  # the k-line periods, finest first
Side = Literal["BUY", "SELL"]


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Tick(_Message):
    """A quote snapshot as providers send it: ``volume`` and ``amount`` are cumulative for the day."""

    schema_version: Literal[1] = 1
    code: Code
    ts: EpochMs
    price: Finite
    volume: Finite = Field(description="cumulative shares traded today")
    amount: Finite = Field(description="cumulative yuan traded today")
    open: Finite | None = None
    high: Finite | None = None
    low: Finite | None = None
    pre_close: Finite | None = None
    turnover: Finite | None = Field(default=None, description="turnover rate in percent")


class Bar(_Message):
    """A closed k-line bar. ``ts`` is the bar's start (for 1d: 00:00 Asia/Shanghai of the day)."""

    schema_version: Literal[1] = 1
    code: Code
    period: Period
    ts: EpochMs
    open: Finite
    high: Finite
    low: Finite
    close: Finite
    volume: Finite = Field(description="shares traded in the bar")
    amount: Finite = Field(description="yuan traded in the bar")


class Quote(_Message):
    """The latest snapshot of one code, as the API serves it."""

    code: Code
    name: str
    market: str
    price: float
    change_percent: float | None
    volume: float
    amount: float
    open: float | None
    high: float | None
    low: float | None
    pre_close: float | None
    turnover: float | None = None
    ts: EpochMs


MARKETS = ("ETF", "LOF", "REIT", "SH主板", "SZ主板", "创业板", "科创板", "北交所", "B股", "指数")


class Security(_Message):
    code: Code
    name: str
    market: str = Field(
        description="ETF, LOF, REIT, 指数 (an index), or the board of a stock: SH主板, SZ主板, 创业板, "
        "科创板, 北交所, B股"
    )
    list_date: str | None = Field(default=None, description="listing date YYYYMMDD, when the source gives it")


SignalStatus = Literal["provisional", "confirmed", "withdrawn"]


def signal_id(code: str, strategy: str, period: str, bar_ts: int, kind: str = "") -> str:
    """Deterministic id: the same bar evaluated twice gives the same id.

    ``kind`` "" is a closed-bar signal (the id of schema version 1); "provisional" is a signal on
    the day's forming bar and "withdrawn" the withdrawal of that provisional signal: ids of their
    own, so neither blocks the closed-bar signal's idempotency marker."""
    raw = f"{code}|{strategy}|{period}|{bar_ts}" + (f"|{kind}" if kind else "")
    return hashlib.blake2b(raw.encode(), digest_size=10).hexdigest()


class Signal(_Message):
    """A trading signal, or (``status`` "withdrawn") the withdrawal of a provisional one.

    Version 2 adds ``provisional``, ``status``, ``confirms`` and ``withdraws``; version 1 entries
    (none of these fields) still parse and mean a closed-bar signal.

    - closed-bar signal: ``provisional`` false, ``status`` null (no provisional signal before it)
      or "confirmed" with ``confirms`` = the id of the provisional signal of the same side;
    - provisional signal (in session, on today's forming daily bar): ``provisional`` true,
      ``status`` "provisional"; it may change until the close;
    - withdrawal (the closed bar did not give the provisional signal's side): ``provisional``
      true, ``status`` "withdrawn", ``withdraws`` = the provisional signal's id, its side and
      strategy, the closed bar's price."""

    schema_version: Literal[1, 2] = 2
    id: str
    code: Code
    name: str
    market: str
    strategy: str
    strategy_name: str
    side: Side
    price: Finite
    period: Period
    bar_ts: EpochMs
    confidence: Annotated[float, Field(ge=0.0, le=1.0)]
    volume_ratio: float | None = Field(description="volume[t] / volume[t-1]")
    change_percent: float | None = Field(description="close[t] against close[t-1], percent")
    stop_loss: float | None = None
    take_profit: float | None = None
    reason: str
    created_ts: EpochMs
    provisional: bool = Field(
        default=False, description="true: from the day's forming bar (or withdrawing such a signal)"
    )
    status: SignalStatus | None = Field(
        default=None,
        description="provisional | confirmed (the close gave the provisional signal's side) | "
        "withdrawn (it did not); null: a closed-bar signal with no provisional one before it",
    )
    confirms: str | None = Field(default=None, description="id of the provisional signal confirmed")
    withdraws: str | None = Field(default=None, description="id of the provisional signal withdrawn")


TaskType = Literal["calc_signals"]


class Command(_Message):
    schema_version: Literal[1] = 1
    id: str
    type: TaskType
    period: Period = "1d"
    issued_ts: EpochMs
    source: str = Field(default="api", description="api | schedule | cli")


JobState = Literal["queued", "running", "done", "failed"]


class JobStatus(_Message):
    schema_version: Literal[1] = 1
    job_id: str
    task_type: TaskType
    state: JobState
    period: Period = "1d"
    percent: Annotated[float, Field(ge=0.0, le=100.0)] = 0.0
    codes: int = 0
    signals: int = Field(default=0, description="signals the scan found")
    new_signals: int = Field(
        default=0, description="of those, signals written now (the others were already written)"
    )
    error: str | None = None
    created_ts: EpochMs
    started_ts: EpochMs | None = None
    finished_ts: EpochMs | None = None


class DeadLetter(BaseModel):
    """An entry of the dead-letter stream, as flat fields (not one ``data`` field): what failed,
    where it came from and why (see :mod:`marketbus.dlq`)."""

    error: str = Field(description="why it was dead-lettered")
    stream: str = Field(description="the stream it came from")
    entry_id: str = Field(description="its id there; empty for a message rejected before it was written")
    data: str = Field(description="the original data field, or JSON of all its original fields")
    ts: str = Field(description="epoch ms when it was dead-lettered, as text")


class StrategyInfo(_Message):
    """A strategy the signals service runs, as it publishes it (hash ``mb:strategies``)."""

    key: str
    name: str
    min_bars: int = Field(description="bars of history the strategy needs before it can fire")
    params: dict[str, Any] = Field(default_factory=dict)
    confidence: str | None = Field(default=None, description="how the strategy scores its confidence")


class SchedulerState(_Message):
    """The scan schedule's shared state (hash ``mb:scheduler``): written by the signals service,
    read by the gateway and the CLI. Absent fields are None."""

    schedule: str | None = None
    next_run_ts: EpochMs | None = None
    last_run_ts: EpochMs | None = None
    last_job_id: str | None = None
    running_job: str | None = None

    @classmethod
    def from_hash(cls, raw: Mapping[Any, Any]) -> SchedulerState:
        """From HGETALL's reply (bytes or text); an empty field counts as absent."""
        fields = {_text(k): _text(v) for k, v in raw.items()}
        return cls.model_validate({k: v for k, v in fields.items() if k in cls.model_fields and v != ""})

    def to_hash(self) -> dict[str, str]:
        """The fields that are set, as HSET's mapping."""
        return {k: str(v) for k, v in self.model_dump(exclude_none=True).items()}


WIRE_MODELS: dict[str, type[BaseModel]] = {
    "Tick": Tick,
    "Bar": Bar,
    "Signal": Signal,
    "Command": Command,
    "JobStatus": JobStatus,
}


def json_schemas() -> dict[str, dict[str, object]]:
    """The published JSON Schema of every wire message (shared/schemas/<Name>.schema.json)."""
    return {name: model.model_json_schema() for name, model in WIRE_MODELS.items()}
