"""Signals: the stream (newest first, filtered, paged), the latest per code and strategy, the old buy
view, strategies. Every list tells provisional in-session signals (``provisional``, ``status``) from
closed-bar ones, and can be filtered on it."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from gateway import reads
from gateway.deps import KeysDep, RedisDep
from gateway.errors import not_found, responses
from gateway.models import SignalList, StrategyList
from gateway.oldapp.strategies import old_strategies
from gateway.queries import SignalFilter, buy_view, latest_view
from gateway.routes.params import CodePath, CodeQuery, StreamIdQuery
from marketbus.contracts import Period, Side

router = APIRouter(tags=["signals"])

StrategyQuery = Annotated[str | None, Query(max_length=64, description="strategy key, e.g. ma_cross")]
Limit = Annotated[int, Query(ge=1, le=1000, description="at most this many items")]
SideQuery = Annotated[Side | None, Query(description="BUY or SELL")]
MarketQuery = Annotated[str | None, Query(max_length=32, description="ETF or a board")]
PeriodQuery = Annotated[Period | None, Query(description="bar period")]
ProvisionalQuery = Annotated[
    bool | None,
    Query(
        description="true: only provisional signals (in session, on the forming daily bar) and their "
        "withdrawals; false: only closed-bar signals"
    ),
]
StatusQuery = Annotated[
    Literal["provisional", "confirmed", "withdrawn", "closed"] | None,
    Query(
        description="provisional, confirmed (a closed-bar signal confirming a provisional one), "
        "withdrawn (a provisional signal the close did not give), closed (a closed-bar signal with "
        "no provisional one before it)"
    ),
]


@router.get("/api/signals", response_model=SignalList, responses=responses(422, 503))
async def signals(
    redis: RedisDep,
    keys: KeysDep,
    strategy: StrategyQuery = None,
    side: SideQuery = None,
    code: CodeQuery = None,
    market: MarketQuery = None,
    period: PeriodQuery = None,
    since: Annotated[
        int | None, Query(ge=0, le=10**15, description="only signals written at or after (ms)")
    ] = None,
    provisional: ProvisionalQuery = None,
    status: StatusQuery = None,
    cursor: StreamIdQuery = None,
    limit: Limit = 100,
) -> SignalList:
    """Signals newest first (withdrawals of provisional signals included: `status` tells them).
    Page with `cursor` = the previous answer's `next_cursor`."""
    flt = SignalFilter(strategy, side, code, market, period, since, provisional, status)
    items, nxt = await reads.signals_page(redis, keys, flt, limit, cursor)
    return SignalList(items=items, next_cursor=nxt)


@router.get("/api/signals/latest", response_model=SignalList, responses=responses(422, 503))
async def latest_signals(
    redis: RedisDep,
    keys: KeysDep,
    strategy: StrategyQuery = None,
    side: SideQuery = None,
    code: CodeQuery = None,
    market: MarketQuery = None,
    period: PeriodQuery = None,
    provisional: ProvisionalQuery = None,
    status: StatusQuery = None,
    limit: Limit = 100,
) -> SignalList:
    """The latest signal per code, strategy and period (a provisional one until its bar closes,
    then the closed bar's signal, or the withdrawal), newest bar first."""
    latest = await reads.latest_signals(redis, keys)
    flt = SignalFilter(strategy, side, code, market, period, None, provisional, status)
    return SignalList(items=latest_view(s for s in latest if flt.matches(s))[:limit])


@router.get("/api/signals/buy", response_model=SignalList, responses=responses(422, 503))
async def buy_signals(
    redis: RedisDep,
    keys: KeysDep,
    strategy: StrategyQuery = None,
    period: PeriodQuery = None,
    provisional: ProvisionalQuery = None,
    include_indices: Annotated[
        bool, Query(description="also list indices (market 指数), which cannot be bought")
    ] = False,
    limit: Limit = 100,
) -> SignalList:
    """The old system's buy list: the latest BUY per code and strategy, ST names left out, withdrawn
    signals left out (provisional ones kept, marked; `provisional=false` leaves them out), indices
    left out unless `include_indices=true`, stocks before ETFs, then by confidence (highest first),
    then time (newest first)."""
    latest = await reads.latest_signals(redis, keys)
    flt = SignalFilter(strategy=strategy, period=period, provisional=provisional)
    return SignalList(items=buy_view((s for s in latest if flt.matches(s)), include_indices)[:limit])


@router.get("/api/signals/{code}", response_model=SignalList, responses=responses(404, 422, 503))
async def signals_of(
    code: CodePath,
    redis: RedisDep,
    keys: KeysDep,
    strategy: StrategyQuery = None,
    side: SideQuery = None,
    provisional: ProvisionalQuery = None,
    status: StatusQuery = None,
    cursor: StreamIdQuery = None,
    limit: Limit = 100,
) -> SignalList:
    """The signals of one code, newest first (404 for a code nobody knows)."""
    flt = SignalFilter(strategy=strategy, side=side, code=code, provisional=provisional, status=status)
    items, nxt = await reads.signals_page(redis, keys, flt, limit, cursor)
    if not items and not await reads.code_known(redis, keys, code):
        raise not_found(f"unknown code {code}")
    return SignalList(items=items, next_cursor=nxt)


@router.get("/api/strategies", response_model=StrategyList, responses=responses(503))
async def strategies(redis: RedisDep, keys: KeysDep) -> StrategyList:
    """The strategies the signals service runs, with their parameters (`items`, by key).

    The replaced system's app asks the same path (OLD_API.md P1) and reads `strategies`
    (`{code, name, description}`) and `total`: one route and one answer serve both, each client
    reading its own keys beside the other's. The app takes its first strategy as the default, so
    `strategies` starts with volume_wave (then the old backend's other strategies, then the rest
    by key). Open like the rest of the marketbus API: the token the old app sends is not needed."""
    items = await reads.strategies(redis, keys)
    old = old_strategies(items)
    return StrategyList(items=items, strategies=old, total=len(old))
