"""K-lines from the trend series the quotes service keeps (oldest bar first)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from gateway import reads
from gateway.deps import KeysDep, RedisDep, TrendDep
from gateway.errors import not_found, responses
from gateway.models import KlineBar, KlineList
from gateway.routes.params import CodePath
from marketbus.contracts import Period

router = APIRouter(tags=["kline"])


@router.get("/api/kline/{code}", response_model=KlineList, responses=responses(404, 422, 503))
async def kline(
    code: CodePath,
    trend: TrendDep,
    redis: RedisDep,
    keys: KeysDep,
    period: Annotated[Period, Query(description="bar period")] = "1d",
    limit: Annotated[int, Query(ge=1, le=1000, description="bars, newest kept")] = 250,
) -> KlineList:
    rows = await trend.tail(code, period, limit)
    if len(rows) == 0 and not await reads.code_known(redis, keys, code):
        raise not_found(f"unknown code {code}")
    items = [
        KlineBar(
            ts=int(r[0]),
            open=float(r[1]),
            high=float(r[2]),
            low=float(r[3]),
            close=float(r[4]),
            volume=float(r[5]),
            amount=float(r[6]),
        )
        for r in rows.tolist()
    ]
    return KlineList(code=code, period=period, items=items)
