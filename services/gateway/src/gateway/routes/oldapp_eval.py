"""The old app's evaluating routes: batch-check (OLD_API.md P4) and the index screen (P9).

What is evaluated is the signals service's answer to a query (marketbus.queries): the gateway
publishes the question on ``{mb}:queries`` and waits for the answer on its reply key, for at most
MARKETBUS_QUERY_TIMEOUT seconds (then 504). The waits block connections, so they run on a client of
their own, created (and closed) by this router's lifespan inside the server's loop.

- ``POST /api/stocks/signal/batch-check`` (token): each entry's signal on the code's last daily bar.
  A stored closed-bar signal of that bar answers at once; the other entries are evaluated by the
  signals service (one query for all of them). An entry that is not a code, or names an unknown
  code or strategy, says so in ``error`` (``signal`` null) and the others are answered.
- ``GET /api/index/list`` and ``GET /api/index/analysis`` (no token, as the old WebView screen).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse

from gateway import reads
from gateway.deps import KeysDep, RedisDep, TrendDep
from gateway.errors import responses
from gateway.oldapp import eval_shapes as shapes
from gateway.oldapp.auth import require_app_token
from gateway.oldapp.codes import from_old
from gateway.oldapp.eval_models import (
    BatchCheck,
    BatchCheckRequest,
    CheckResult,
    IndexAnalysisAnswer,
    IndexFailure,
    IndexList,
    ValidationErrors,
)
from gateway.oldapp.models import old_responses
from gateway.oldapp.route import OldAppRoute
from marketbus import streams
from marketbus.contracts import EvaluateItem
from marketbus.queries import MAX_WAITING, Asker, QueryFailed, QueryRejected, QueryTimeout
from marketbus.redis import connect
from marketbus.securities import INDEX


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Runs inside the app's lifespan (its client and settings exist): the query asker, with a
    client of its own for the blocking waits."""
    state = app.state
    settings = state.settings
    waiter = connect(settings.redis_url, max_connections=MAX_WAITING)
    publisher = streams.Publisher.of(streams.QUERIES, state.keys, settings, state.redis)
    state.query_asker = Asker(publisher, waiter, state.keys, settings.query_timeout)
    try:
        yield
    finally:
        await waiter.aclose()


router = APIRouter(tags=["oldapp"], route_class=OldAppRoute, lifespan=lifespan)


async def _asker(request: Request) -> Asker:
    asker: Asker = request.app.state.query_asker
    return asker


AskerDep = Annotated[Asker, Depends(_asker)]


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def _failure_responses(model: type[Any], *codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": model, "description": f"{code}: see `message`/`error`"} for code in codes}


# P4 ------------------------------------------------------------------------------------------------
@router.post(
    "/api/stocks/signal/batch-check",
    response_model=BatchCheck,
    dependencies=[Depends(require_app_token)],
    # 400: a body that is not JSON (the old FastAPI answer); 413: a body over the gateway's limit
    responses={
        **old_responses(400, 401, 503),
        **responses(413),
        **_failure_responses(BatchCheck, 502, 504),
    },
)
async def batch_check(
    body: BatchCheckRequest, redis: RedisDep, keys: KeysDep, trend: TrendDep, asker: AskerDep
) -> BatchCheck | JSONResponse:
    """The signal (`buy`, `sell` or null) of each entry's strategy on the code's last daily bar,
    with that bar's close and change. 504 in the old envelope (`code` 504, no result) when the
    signals service does not answer within MARKETBUS_QUERY_TIMEOUT seconds."""
    wanted = shapes.wanted_items(body.stocks)
    codes = list(dict.fromkeys(w.code for w in wanted if w.code is not None))
    last_bars = dict(zip(codes, await trend.tails(codes, shapes.PERIOD, 1), strict=True))
    stored = await reads.latest_signals_of(
        redis, keys, [(w.code, w.strategy, shapes.PERIOD) for w in wanted if w.code is not None]
    )
    results: list[CheckResult | None] = []
    ask: dict[tuple[str, str], EvaluateItem] = {}
    for w in wanted:
        if w.code is None:
            results.append(shapes.unchecked(w, w.error or "not checked"))
            continue
        sig = stored.get((w.code, w.strategy, shapes.PERIOD))
        if sig is not None and shapes.answers_last_bar(sig, last_bars[w.code]):
            results.append(shapes.from_stored(w, sig, last_bars[w.code]))
        else:
            results.append(None)
            ask.setdefault((w.code, w.strategy), EvaluateItem(code=w.code, strategy=w.strategy))
    if ask:
        try:
            evaluated = await asker.evaluate(list(ask.values()), shapes.PERIOD)
        except QueryTimeout as exc:
            return _json(504, shapes.check_failure(504, str(exc)), {"Retry-After": "2"})
        except (QueryRejected, QueryFailed) as exc:
            return _json(502, shapes.check_failure(502, f"the signals service failed: {exc}"))
        outcomes = {(o.code, o.strategy): o for o in evaluated.items}
        for i, w in enumerate(wanted):
            if results[i] is None and w.code is not None:
                o = outcomes.get((w.code, w.strategy))
                results[i] = (
                    shapes.from_outcome(w, o) if o else shapes.unchecked(w, "the signals service skipped it")
                )
    return shapes.check_answer([r for r in results if r is not None])


# P9 ------------------------------------------------------------------------------------------------
@router.get("/api/index/list", response_model=IndexList, responses=old_responses(503))
async def index_list(redis: RedisDep, keys: KeysDep) -> IndexList:
    """The indices of the universe (market 指数): 上证指数, 深证成指 and 创业板指 first."""
    return shapes.index_list(await reads.universe(redis, keys))


@router.get(
    "/api/index/analysis",
    response_model=IndexAnalysisAnswer,
    responses={
        **old_responses(503),
        **_failure_responses(IndexFailure, 400, 404, 502, 504),
        422: {
            "model": IndexFailure | ValidationErrors,
            "description": "too few bars (`error`), or a bad parameter (`detail`)",
        },
    },
)
async def index_analysis(
    redis: RedisDep,
    keys: KeysDep,
    asker: AskerDep,
    index_code: Annotated[
        str, Query(max_length=16, description="an index code with its suffix")
    ] = "000001.SH",
    days: Annotated[int, Query(ge=30, le=1000, description="daily bars of the analysed period")] = 180,
    theme: Annotated[str, Query(max_length=16, description="light or dark (else dark)")] = "dark",
) -> IndexAnalysisAnswer | JSONResponse:
    """The index's technical analysis, sentiment, key metrics and key levels over its last `days`
    daily bars, computed by the signals service (README "Index analysis fields"). Failures answer
    `success` false with `error`: 400 not a code, 404 not an index, 422 too few bars, 504 no
    answer within MARKETBUS_QUERY_TIMEOUT seconds."""
    raw = index_code.strip()
    try:
        code = from_old(raw)
    except ValueError as exc:
        return _json(400, shapes.index_failure(raw, f"index_code: {exc}"))
    sec = (await reads.securities_of(redis, keys, [code])).get(code)
    if sec is None or sec.market != INDEX:
        return _json(404, shapes.index_failure(raw, f"{code} is not an index this system knows"))
    try:
        analysis = await asker.index_analysis(code, days)
    except QueryTimeout as exc:
        return _json(504, shapes.index_failure(raw, str(exc)), {"Retry-After": "2"})
    except QueryRejected as exc:
        return _json(422, shapes.index_failure(raw, str(exc)))
    except QueryFailed as exc:
        return _json(502, shapes.index_failure(raw, f"the signals service failed: {exc}"))
    return shapes.analysis_answer(analysis, sec.name, days, shapes.theme_of(theme))
