"""Scorecard: how every strategy's signals did (forward returns after 1, 5, 10, 20 bars, per
strategy, period and market), as the scorecard service computed it; and one strategy's
distribution of returns."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import AfterValidator, BaseModel, Field

from gateway import scorecard_reads as reads
from gateway.deps import KeysDep, RedisDep
from gateway.errors import not_found, responses
from marketbus.contracts import SCORE_HORIZONS, Period, ReturnDistribution, ScorecardState, ScoreRow

router = APIRouter(tags=["scorecard"])

KEY_PATTERN = r"^([a-z][a-z0-9_]{0,63}|\*)$"
StrategyQuery = Annotated[
    str | None,
    Query(pattern=KEY_PATTERN, description="strategy key (ma_cross), or * for the all-strategies rows"),
]
PeriodQuery = Annotated[Period | None, Query(description="bar period of the signals")]
MarketQuery = Annotated[
    str | None, Query(min_length=1, max_length=32, description="ETF, a board, or * for the all-markets rows")
]


def _horizon(value: int | None) -> int | None:
    if value is not None and value not in SCORE_HORIZONS:
        raise ValueError(f"must be one of {', '.join(map(str, SCORE_HORIZONS))}")
    return value


HorizonQuery = Annotated[
    int | None,
    Query(
        description="bars after the signal: 1, 5, 10 or 20", json_schema_extra={"enum": list(SCORE_HORIZONS)}
    ),
    AfterValidator(_horizon),
]


class Scorecard(BaseModel):
    state: ScorecardState | None = Field(
        description="when the figures were computed; null before the first time"
    )
    rows: list[ScoreRow]


class StrategyScorecard(BaseModel):
    strategy: str
    state: ScorecardState | None
    rows: list[ScoreRow]
    distributions: list[ReturnDistribution]


@router.get("/api/scorecard", response_model=Scorecard, responses=responses(422, 503))
async def scorecard(
    redis: RedisDep,
    keys: KeysDep,
    strategy: StrategyQuery = None,
    period: PeriodQuery = None,
    market: MarketQuery = None,
    horizon: HorizonQuery = None,
) -> Scorecard:
    """Every figure with its sample size `n`; a figure with too few signals behind it has `value`
    null and a `note` saying so. Rows with strategy or market `*` pool all of them."""
    flt = reads.ScoreFilter(strategy, period, market, horizon)
    return Scorecard(state=await reads.state(redis, keys), rows=await reads.score_rows(redis, keys, flt))


@router.get("/api/scorecard/{strategy}", response_model=StrategyScorecard, responses=responses(404, 422, 503))
async def strategy_scorecard(
    redis: RedisDep,
    keys: KeysDep,
    strategy: Annotated[str, Path(pattern=KEY_PATTERN, description="strategy key, or * for all")],
    period: PeriodQuery = None,
    market: MarketQuery = None,
    horizon: HorizonQuery = None,
) -> StrategyScorecard:
    """One strategy's rows and the distribution of its returns (histogram and quantiles)."""
    flt = reads.ScoreFilter(strategy, period, market, horizon)
    rows = await reads.score_rows(redis, keys, flt)
    if not rows and strategy != "*" and not await redis.hexists(keys.strategies, strategy):
        raise not_found(f"no strategy {strategy!r}")
    return StrategyScorecard(
        strategy=strategy,
        state=await reads.state(redis, keys),
        rows=rows,
        distributions=await reads.distributions(redis, keys, flt),
    )
