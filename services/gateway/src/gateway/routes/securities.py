"""The universe of securities: codes, names, markets; search by code prefix or name."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from gateway import reads
from gateway.deps import KeysDep, RedisDep
from gateway.errors import responses
from gateway.models import SecurityList
from gateway.queries import search_securities

router = APIRouter(tags=["securities"])


@router.get("/api/stocks/codes", response_model=SecurityList, responses=responses(422, 503))
async def codes(
    redis: RedisDep,
    keys: KeysDep,
    market: Annotated[
        str | None, Query(max_length=32, description="only this market (ETF, 创业板, …)")
    ] = None,
) -> SecurityList:
    """Every known security with its name and market, ordered by code."""
    items = await reads.universe(redis, keys)
    if market is not None:
        items = [s for s in items if s.market == market]
    return SecurityList(items=items)


@router.get("/api/stocks/search", response_model=SecurityList, responses=responses(422, 503))
async def search(
    redis: RedisDep,
    keys: KeysDep,
    q: Annotated[
        str,
        Query(
            min_length=1,
            max_length=32,
            description="code prefix (5103, 510300.S) or part of the name (沪深300, etf)",
        ),
    ],
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> SecurityList:
    """Code prefix matches first, then name matches."""
    items = await reads.universe(redis, keys)
    return SecurityList(items=search_securities(items, q, limit))
