"""Request/reply over the bus: a service asks the signals service a question and waits for its answer.

- The asker (the gateway) publishes a :class:`~marketbus.contracts.Query` on ``{mb}:queries`` with a
  reply key of its own (``mb:query:<id>:reply``) and a deadline (now + the timeout), then waits on
  that key with a bounded ``BLPOP``. No answer by the deadline is :class:`QueryTimeout`, never a
  hang. The wait blocks a connection for its whole duration, so the asker takes a client of its
  own for it (``waiter``): the rest of the process never waits behind a blocked connection, and
  cancelling a wait (a client that went away) only drops a connection of that pool.
- A worker of the signals service reads the stream in its own consumer group
  (:data:`marketbus.streams.QUERY_ANSWERS`, so a running full-market scan never delays a query),
  skips a query whose deadline has passed (nobody waits for it any more), and pushes one
  :class:`QueryReply` on the reply key (``LPUSH`` + ``EXPIRE`` in one transaction, see
  :func:`answer`): an answer nobody pops is gone after ``QUERY_REPLY_TTL_S``. A query delivered
  twice (at least once) may be answered twice; the asker pops the first and the rest expire.

The answers' shapes live here too (the result of each query kind), so both sides read the same
contract.
"""

from __future__ import annotations

import math
import uuid
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from marketbus.clock import wall_ms
from marketbus.contracts import (
    EpochMs,
    EvaluateArgs,
    EvaluateItem,
    Finite,
    IndexAnalysisArgs,
    Period,
    Query,
    Side,
)
from marketbus.keys import QUERY_REPLY_TTL_S, Keys

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from marketbus.streams import Publisher

MIN_WAIT_S = 0.01  # BLPOP's timeout 0 means "forever": a wait is never shorter than this
MAX_WAITING = 64  # questions in flight per asker (each holds a connection of its waiter client)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# evaluate ---------------------------------------------------------------------------------------
class Outcome(_Model):
    """One (code, strategy) of an evaluate query: the signal of the code's last closed bar, or
    none (``side`` null), or why it could not be evaluated (``error``)."""

    code: str
    strategy: str
    side: Side | None = None
    reason: str | None = None
    confidence: float = 0.0
    price: Finite | None = Field(default=None, description="close of the last closed bar")
    change_percent: Finite | None = Field(default=None, description="that close against the one before, %")
    bar_ts: EpochMs | None = Field(default=None, description="the last closed bar evaluated")
    name: str | None = None
    error: str | None = Field(default=None, description="unknown code or strategy, no bars; else null")


class EvaluateResult(_Model):
    kind: Literal["evaluate"] = "evaluate"
    period: Period = "1d"
    items: list[Outcome] = Field(description="one per item asked, in order")


# index analysis (OLD_API.md P9; README "Index analysis fields" defines every field) ---------------
class MovingAverages(_Model):
    ma5: Finite
    ma10: Finite
    ma20: Finite
    ma60: Finite


class Macd(_Model):
    value: Finite = Field(description="DIF: EMA12 - EMA26 of the close")
    signal: Finite = Field(description="DEA: EMA9 of DIF")
    histogram: Finite = Field(description="DIF - DEA")
    interpretation: str = Field(description="转多, 多头, 转空, 空头 or 中性")


class Rsi(_Model):
    value: Finite
    interpretation: str = Field(description="超买, 偏强, 中性, 偏弱 or 超卖")


class TechnicalAnalysis(_Model):
    trend: str = Field(description="强势上涨, 上涨, 中性, 下跌 or 强势下跌")
    moving_averages: MovingAverages
    macd: Macd
    rsi: Rsi
    atr: Finite = Field(description="ATR(14) of the last bar")


class MarketSentiment(_Model):
    sentiment: str
    sentiment_score: Finite
    bull_power_ratio: Finite
    bear_power_ratio: Finite
    up_days_20: int
    down_days_20: int
    volume_trend: str
    volume_change_pct: Finite
    volume_ratio: Finite
    momentum_5d: Finite
    momentum_20d: Finite
    consecutive_up: int
    consecutive_down: int


class KeyMetrics(_Model):
    current_price: Finite
    change: Finite
    change_pct: Finite
    period_high: Finite
    period_low: Finite
    period_return: Finite
    volatility: Finite
    max_drawdown: Finite
    total_trading_days: int


class Level(_Model):
    level: str = Field(description="支撑1.. or 压力1..")
    price: Finite
    distance_pct: Finite


class TargetPrices(_Model):
    upside_target: Finite
    upside_distance: Finite
    probability_up: Finite
    downside_target: Finite
    downside_distance: Finite
    probability_down: Finite


class TradingAdvice(_Model):
    stop_loss: Finite
    stop_loss_pct: Finite
    take_profit: Finite
    take_profit_pct: Finite
    risk_reward_ratio: Finite


class KeyLevels(_Model):
    current_price: Finite
    supports: list[Level]
    resistances: list[Level]
    target_prices: TargetPrices
    trading_advice: TradingAdvice


class IndexAnalysis(_Model):
    kind: Literal["index_analysis"] = "index_analysis"
    code: str
    bar_ts: EpochMs = Field(description="the last closed daily bar analysed")
    days: int = Field(description="bars in the analysed period (at most the days asked)")
    technical_analysis: TechnicalAnalysis
    market_sentiment: MarketSentiment
    key_metrics: KeyMetrics
    key_levels: KeyLevels


QueryResult = Annotated[EvaluateResult | IndexAnalysis, Field(discriminator="kind")]
ReplyStatus = Literal["ok", "rejected", "failed"]


class QueryReply(_Model):
    """The answer to one query: ``ok`` with its result; ``rejected`` (the question cannot be
    answered: an unknown code, too few bars) or ``failed`` (the worker's error) with ``error``."""

    schema_version: Literal[1] = 1
    query_id: str
    status: ReplyStatus = "ok"
    result: QueryResult | None = None
    error: str | None = None
    worker: str = ""
    answered_ts: EpochMs


# the asker --------------------------------------------------------------------------------------
class QueryTimeout(Exception):
    """No answer within the query's timeout (no signals worker running, or all of them busy)."""


class QueryBusy(QueryTimeout):
    """As many questions are waiting as the asker allows: refused at once, not queued."""


class QueryRejected(Exception):
    """The signals service answered that the question cannot be answered (its reason)."""


class QueryFailed(Exception):
    """The signals service failed answering (its error), or its answer cannot be read."""


def new_query(keys: Keys, arguments: EvaluateArgs | IndexAnalysisArgs, timeout_s: float) -> Query:
    query_id = uuid.uuid4().hex
    now = wall_ms()
    return Query(
        id=query_id,
        arguments=arguments,
        reply_key=keys.query_reply(query_id),
        issued_ts=now,
        deadline_ts=now + math.ceil(timeout_s * 1000),
    )


def expired(query: Query, now_ms: int) -> bool:
    """Nobody waits for the answer any more."""
    return now_ms > query.deadline_ts


def own_reply_key(keys: Keys, query: Query) -> bool:
    """The reply key is the one this deployment's askers wait on for this query (a worker writes
    nowhere else, whatever an entry says)."""
    return query.reply_key == keys.query_reply(query.id)


def answer(pipe: Any, query: Query, reply: QueryReply, ttl_s: int = QUERY_REPLY_TTL_S) -> None:
    """Queue the answer on ``pipe`` (a transaction: the push and its expiry, both or neither)."""
    pipe.lpush(query.reply_key, reply.model_dump_json())
    pipe.expire(query.reply_key, ttl_s)


def parse_reply(raw: bytes | str) -> QueryReply:
    try:
        return QueryReply.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "reply"
        raise QueryFailed(f"unreadable answer from the signals service: {where}: {first['msg']}") from None


class Asker:
    """Asks the signals service. ``publisher`` writes the queries (the process's shared client);
    ``waiter`` is a client of its own for the blocking waits (see the module's doc)."""

    def __init__(
        self,
        publisher: Publisher[Query],
        waiter: Redis,
        keys: Keys,
        timeout_s: float,
        max_waiting: int = MAX_WAITING,
    ) -> None:
        self.publisher = publisher
        self.waiter = waiter  # its pool holds at most ``max_waiting`` connections
        self.keys = keys
        self.timeout_s = timeout_s
        self.max_waiting = max_waiting
        self.waiting = 0

    async def ask(self, arguments: EvaluateArgs | IndexAnalysisArgs) -> EvaluateResult | IndexAnalysis:
        """Publish the question and wait for its answer until the deadline. A question beyond
        ``max_waiting`` in flight is refused at once (:class:`QueryBusy`): a burst of requests
        never opens a connection each nor queues work without bound."""
        if self.waiting >= self.max_waiting:
            raise QueryBusy(
                f"{self.waiting} questions to the signals service are already waiting; retry shortly"
            )
        self.waiting += 1
        try:
            return await self._ask(arguments)
        finally:
            self.waiting -= 1

    async def _ask(self, arguments: EvaluateArgs | IndexAnalysisArgs) -> EvaluateResult | IndexAnalysis:
        query = new_query(self.keys, arguments, self.timeout_s)
        await self.publisher.publish(query)
        remaining = max(MIN_WAIT_S, (query.deadline_ts - wall_ms()) / 1000)
        popped = await self.waiter.blpop([query.reply_key], timeout=remaining)
        if popped is None:
            raise QueryTimeout(
                f"the signals service did not answer the {query.kind} query within {self.timeout_s:g} s"
            )
        reply = parse_reply(popped[1])
        if reply.status == "rejected":
            raise QueryRejected(reply.error or "rejected")
        if reply.status == "failed" or reply.result is None:
            raise QueryFailed(reply.error or "the signals service answered without a result")
        return reply.result

    async def evaluate(self, items: list[EvaluateItem], period: Period = "1d") -> EvaluateResult:
        result = await self.ask(EvaluateArgs(items=items, period=period))
        if not isinstance(result, EvaluateResult):
            raise QueryFailed(f"an evaluate query was answered with a {result.kind} result")
        return result

    async def index_analysis(self, code: str, days: int) -> IndexAnalysis:
        result = await self.ask(IndexAnalysisArgs(code=code, days=days))
        if not isinstance(result, IndexAnalysis):
            raise QueryFailed(f"an index_analysis query was answered with a {result.kind} result")
        return result
