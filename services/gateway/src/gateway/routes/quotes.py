"""Quotes: the latest snapshot per code, as the quotes service wrote it."""

from __future__ import annotations

import re

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute
from starlette.types import Receive, Scope, Send

from gateway import reads
from gateway.batching import HashFieldLoader
from gateway.deps import KeysDep, RedisDep
from gateway.errors import not_found, responses
from gateway.models import QuoteList
from gateway.queries import ETF, parse_codes
from gateway.routes.params import CODE_PATTERN, MAX_CODES, CodePath, CodesQuery
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
    return await _quote(request.app.state.snapshots, code)


async def _quote(snapshots: HashFieldLoader, code: str) -> Response:
    raw = await snapshots.get(code)
    if raw is None:
        raise not_found(f"no quote for {code}: unknown code, or no tick yet")
    return Response(content=raw, media_type="application/json")


# what CODE_PATTERN accepts, anchored the strict way (`$` of Python's `re` would also accept a
# trailing newline, which pydantic's engine does not)
_VALID_CODE = re.compile(CODE_PATTERN.removeprefix("^").removesuffix("$"))


class QuoteRoute(APIRoute):
    """``GET /api/quotes/{code}`` answered without FastAPI's request handler when the code is
    valid: the endpoint has nothing to solve (one path parameter, the loader on the app state) and
    returns the stored JSON as it is, yet the handler builds a request, two exit stacks, and
    validates the path, query, header and cookie parameters on every request, a large share of
    the route's cost under load. Another method, or a code the pattern refuses, goes to that
    handler, so a 405 or 422 is FastAPI's own; a 404 or a Redis error is raised to the app's
    exception handlers either way. The route is still an APIRoute: OpenAPI documents it from
    ``quote``'s signature."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        code = scope["path_params"]["code"]
        if scope["method"] != "GET" or not _VALID_CODE.fullmatch(code):
            await super().handle(scope, receive, send)  # HEAD, a 405, or FastAPI's 422
            return
        response = await _quote(scope["app"].state.snapshots, code)
        await response(scope, receive, send)


def install(app: FastAPI) -> None:
    """Serve the busiest route, ``GET /api/quotes/{code}``, from the app's own route table: a
    route of an included router is matched twice per request (once to pick the router, once
    inside it), one of the app is matched once. Call before including the routers."""
    app.router.add_api_route(
        "/api/quotes/{code}",
        quote,
        methods=["GET"],
        response_model=Quote,
        responses=responses(404, 422, 503),
        tags=["quotes"],
        route_class_override=QuoteRoute,
    )
