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
Period = Literal["1m", "5m", "15m", "30m", "60m", "1d", "1w", "1M"]
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
    """A closed k-line bar. ``ts`` is the bar's start (for 1d: 00:00 Asia/Shanghai of the day; for
    1w and 1M: 00:00 of the first trading day of the calendar week or month)."""

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
    """A strategy the signals service runs, as it publishes it (hash ``{mb}:strategies``)."""

    key: str
    name: str
    min_bars: int = Field(description="bars of history the strategy needs before it can fire")
    params: dict[str, Any] = Field(default_factory=dict)
    confidence: str | None = Field(default=None, description="how the strategy scores its confidence")


class SchedulerState(_Message):
    """The scan schedule's shared state (hash ``{mb}:scheduler``): written by the signals service,
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


# queries: questions for the signals service, answered on a reply key (see marketbus.queries) -----
class EvaluateItem(_Message):
    """One (code, strategy) to evaluate on the code's last closed bar."""

    code: Code
    strategy: str = Field(min_length=1, max_length=64, description="strategy key, e.g. ma_cross")


class EvaluateArgs(_Message):
    """Evaluate strategies on the last closed bar of codes (the old app's batch-check)."""

    kind: Literal["evaluate"] = "evaluate"
    period: Period = "1d"
    items: list[EvaluateItem] = Field(min_length=1, max_length=500)


class IndexAnalysisArgs(_Message):
    """Analyse an index (or any code) from its closed daily bars (the old app's index screen)."""

    kind: Literal["index_analysis"] = "index_analysis"
    code: Code
    days: int = Field(default=180, ge=30, le=1000, description="daily bars of the analysed period")


QueryArguments = Annotated[EvaluateArgs | IndexAnalysisArgs, Field(discriminator="kind")]
QueryKind = Literal["evaluate", "index_analysis"]


class Query(_Message):
    """A question for the signals service. A worker answers it once on ``reply_key`` (a list the
    asker pops), unless ``deadline_ts`` has passed: then nobody waits for it and it is skipped."""

    schema_version: Literal[1] = 1
    id: str = Field(min_length=1, max_length=64)
    arguments: QueryArguments
    reply_key: str = Field(description="list key the answer (a QueryReply) is pushed to")
    issued_ts: EpochMs
    deadline_ts: EpochMs = Field(description="epoch ms after which the asker no longer waits")

    @property
    def kind(self) -> QueryKind:
        return self.arguments.kind


# the history run and the scorecard ----------------------------------------------------------------
class SignalBatch(_Message):
    """Closed-bar signals of one code and period found by the signals service's history run (every
    strategy at every stored bar), on the ``signals_history`` stream: one entry per code and period,
    column by column (the i-th signal is the i-th item of every list), so a whole market's history
    is written in seconds. :meth:`signals` gives them as :class:`Signal` messages, each exactly
    what the streaming path gives for that bar (the id is derived, as always, from code, strategy,
    period and bar time)."""

    schema_version: Literal[1] = 1
    code: Code
    name: str
    market: str
    period: Period
    created_ts: EpochMs
    strategy_names: dict[str, str] = Field(description="strategy key -> its name")
    strategy: list[str] = Field(description="oldest bar first")
    side: list[Side]
    bar_ts: list[EpochMs]
    price: list[Finite]
    confidence: list[Annotated[float, Field(ge=0.0, le=1.0)]]
    volume_ratio: list[float | None]
    change_percent: list[float | None]
    stop_loss: list[float | None]
    take_profit: list[float | None]
    # the last column: its check sees every other one (pydantic validates fields in order)
    reason: Annotated[list[str], AfterValidator(lambda v, info: _same_lengths(v, info.data))]

    def __len__(self) -> int:
        return len(self.strategy)

    def signals(self) -> list[Signal]:
        out = []
        for i, key in enumerate(self.strategy):
            bar_ts = self.bar_ts[i]
            out.append(
                Signal(
                    id=signal_id(self.code, key, self.period, bar_ts),
                    code=self.code,
                    name=self.name,
                    market=self.market,
                    strategy=key,
                    strategy_name=self.strategy_names[key],
                    side=self.side[i],
                    price=self.price[i],
                    period=self.period,
                    bar_ts=bar_ts,
                    confidence=self.confidence[i],
                    volume_ratio=self.volume_ratio[i],
                    change_percent=self.change_percent[i],
                    stop_loss=self.stop_loss[i],
                    take_profit=self.take_profit[i],
                    reason=self.reason[i],
                    created_ts=self.created_ts,
                )
            )
        return out


_BATCH_COLUMNS = (
    "side",
    "bar_ts",
    "price",
    "confidence",
    "volume_ratio",
    "change_percent",
    "stop_loss",
    "take_profit",
)


def _same_lengths(reason: list[str], data: dict[str, Any]) -> list[str]:
    """Every column of a SignalBatch as long as ``strategy``, every strategy named."""
    n = len(data.get("strategy", ()))
    for name in (*_BATCH_COLUMNS, "reason"):
        got = len(reason) if name == "reason" else len(data.get(name, ()))
        if got != n:
            raise ValueError(f"column {name} has {got} items, strategy has {n}")
    unnamed = set(data.get("strategy", ())) - set(data.get("strategy_names", {}))
    if unnamed:
        raise ValueError(f"strategy_names lacks {sorted(unnamed)}")
    return reason


class Figure(_Message):
    """One figure of the scorecard with its sample size; ``value`` is null (and ``note`` says why)
    when fewer than the minimum sample of signals stand behind it."""

    value: float | None
    n: int = Field(ge=0, description="signals behind the figure")
    note: str | None = None


class ConfidenceBucket(_Message):
    """The figures of the signals whose confidence is in [lo, hi) (the last bucket includes 1)."""

    bucket: str = Field(description="e.g. 0.4-0.6")
    lo: float
    hi: float
    hit_rate: Figure
    mean_return: Figure
    median_return: Figure


class StopTargetFirst(_Message):
    """BUY signals with a stop and/or a target: which was reached first within the horizon."""

    n: int = Field(ge=0, description="BUY signals with a stop or a target and the horizon's bars")
    target: int = 0
    stop: int = 0
    both: int = Field(default=0, description="both in the same bar (the order inside a bar is unknown)")
    neither: int = 0


class ScoreRow(_Message):
    """The scorecard of one strategy (or ``*``: all), period, market (or ``*``: all) and horizon.
    Returns are fractions (0.012 = +1.2%), signed by the signal's side (a SELL that was followed
    by a fall scores positive)."""

    schema_version: Literal[1] = 1
    strategy: str
    strategy_name: str | None = None
    period: Period
    market: str
    horizon: int = Field(description="bars of the period after the signal's bar")
    signals: int = Field(description="signals scored (the horizon's bars may not all be there yet)")
    pending: int = Field(description="of those, signals whose horizon has not passed yet")
    hit_rate: Figure = Field(description="share of signals with a return above 0")
    mean_return: Figure
    median_return: Figure
    vs_market: Figure = Field(
        description="mean of the return minus the equal-weight average return of the universe over "
        "the same bars (signed by the side)"
    )
    vs_csi300: Figure = Field(description="the same against CSI 300 (000300.SH), where it is stored")
    mae: Figure = Field(description="mean maximum adverse excursion within the horizon")
    mfe: Figure = Field(description="mean maximum favourable excursion within the horizon")
    stop_target: StopTargetFirst
    buckets: list[ConfidenceBucket] = Field(default_factory=list)


class ReturnDistribution(_Message):
    """How the returns of one strategy (or ``*``), period, market (or ``*``) and horizon spread."""

    schema_version: Literal[1] = 1
    strategy: str
    period: Period
    market: str
    horizon: int
    n: int
    edges: list[float] = Field(description="bin edges (returns as fractions), len(counts) + 1")
    counts: list[int]
    quantiles: dict[str, float] = Field(default_factory=dict, description="p5, p25, p50, p75, p95")
    note: str | None = None


class ScorecardState(_Message):
    """What the scorecard service last computed (hash ``mb:scorecard:meta``, field ``state``)."""

    schema_version: Literal[1] = 1
    updated_ts: EpochMs
    horizons: list[int]
    min_samples: int
    periods: list[str] = Field(default_factory=list, description="periods with scored signals")
    scored: int = Field(default=0, description="signals scored so far, all periods")
    pending: int = Field(default=0, description="signals with a horizon still to come")


ScoreHorizon = Literal[1, 5, 10, 20]
SCORE_HORIZONS: tuple[int, ...] = get_args(ScoreHorizon)  # bars after a signal the scorecard scores
