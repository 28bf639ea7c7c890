"""The gateway's reads of what the scorecard service computed (it computes nothing itself): the
rows and distributions per period, filtered by strategy, market and horizon. Bad entries are
skipped (and logged)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from pydantic import BaseModel, ValidationError

from marketbus.contracts import PERIODS, ReturnDistribution, ScorecardState, ScoreRow
from marketbus.wire import text

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from marketbus.keys import Keys

log = logging.getLogger("gateway")
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class ScoreFilter:
    """None matches everything; ``*`` is the scorecard's own "all strategies" / "all markets" row."""

    strategy: str | None = None
    period: str | None = None
    market: str | None = None
    horizon: int | None = None

    def periods(self) -> Sequence[str]:
        return PERIODS if self.period is None else (self.period,)

    def keeps(self, field: str) -> bool:
        strategy, market, horizon = field.rsplit("|", 2)
        return (
            (self.strategy is None or strategy == self.strategy)
            and (self.market is None or market == self.market)
            and (self.horizon is None or horizon == str(self.horizon))
        )


async def _items(redis: Redis, keys: list[str], flt: ScoreFilter, cls: type[M]) -> list[M]:
    pipe = redis.pipeline(transaction=False)
    for key in keys:
        pipe.hgetall(key)
    out: list[M] = []
    for raw in await pipe.execute():
        for field, value in sorted(raw.items()):
            if not flt.keeps(text(field)):
                continue
            try:
                out.append(cls.model_validate_json(value))
            except ValidationError as exc:
                log.warning("skipping a bad scorecard entry: %s", exc.errors()[0]["msg"])
    return out


async def score_rows(redis: Redis, keys: Keys, flt: ScoreFilter) -> list[ScoreRow]:
    return await _items(redis, [keys.scorecard(p) for p in flt.periods()], flt, ScoreRow)


async def distributions(redis: Redis, keys: Keys, flt: ScoreFilter) -> list[ReturnDistribution]:
    return await _items(
        redis, [keys.scorecard_distribution(p) for p in flt.periods()], flt, ReturnDistribution
    )


async def state(redis: Redis, keys: Keys) -> ScorecardState | None:
    raw = await redis.hget(keys.scorecard_meta, "state")
    if raw is None:
        return None
    try:
        return ScorecardState.model_validate_json(raw)
    except ValidationError as exc:
        log.warning("skipping a bad scorecard state: %s", exc.errors()[0]["msg"])
        return None
