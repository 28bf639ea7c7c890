"""Quotes: the latest snapshot per code, as the quotes service wrote it."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response

from gateway import reads
from gateway.batching import HashFieldLoader
from gateway.deps import KeysDep, RedisDep
from gateway.errors import not_found, responses
from gateway.models import QuoteList
from gateway.queries import ETF, parse_codes
from gateway.routes.params import MAX_CODES, CodePath, CodesQuery
from marketbus.contracts import Quote

router = APIRouter(tags=["quotes"])


@router.get("/api/etf/quotes", response_model=QuoteList, responses=responses(503))
async def etf_quotes(redis: RedisDep, keys: KeysDep) -> QuoteList:
    """Every ETF's latest quote, ordered by code."""
    quotes = await reads.all_quotes(redis, keys)
    return QuoteList(items=[q for q in quotes if q.market == ETF])


@router.get("/api/stocks/quotes", response_model=QuoteList, responses=responses(422, 503))
async def stock_quotes(redis: RedisDep, keys: KeysDep, codes: CodesQuery = None) -> QuoteList:
    """The quotes of the given codes (any market); without `codes`, every stock (not ETFs)."""
    if codes is None:
        quotes = await reads.all_quotes(redis, keys)
        return QuoteList(items=[q for q in quotes if q.market != ETF])
    wanted = parse_codes(codes, MAX_CODES)  # cannot fail: `codes` matched its declared pattern
    found = await reads.quotes_of(redis, keys, wanted)
    have = {q.code for q in found}
    return QuoteList(items=found, missing=[c for c in wanted if c not in have])


async def quote(code: CodePath, request: Request) -> Response:
    """The latest quote of one code (404 when the code has no quote)."""
    # the loader straight from the app state (what SnapshotsDep returns), without a dependency
    # to solve on the busiest route
    snapshots: HashFieldLoader = request.app.state.snapshots
    raw = await snapshots.get(code)
    if raw is None:
        raise not_found(f"no quote for {code}: unknown code, or no tick yet")
    return Response(content=raw, media_type="application/json")


def install(app: FastAPI) -> None:
    """Serve the busiest route, ``GET /api/quotes/{code}``, from the app's own route table: a
    route of an included router is matched twice per request (once to pick the router, once
    inside it), one of the app is matched once. Call before including the routers."""
    app.add_api_route(
        "/api/quotes/{code}",
        quote,
        methods=["GET"],
        response_model=Quote,
        responses=responses(404, 422, 503),
        tags=["quotes"],
    )
