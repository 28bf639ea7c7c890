"""The old app's routes (OLD_API.md P2, P3, P5, P6, P7; P1 is GET /api/strategies, in
gateway.routes.signals): its paths, envelopes, field names, 6-digit codes and error shapes
(``{"detail": ...}``, gateway.oldapp.route), shaped in gateway.oldapp from the same data as the rest
of the API. Every route here asks for the token when MARKETBUS_API_TOKEN is set (X-API-Token, or
Authorization: Bearer; gateway.oldapp.auth)."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query

from gateway import reads
from gateway.deps import KeysDep, RedisDep, TrendDep
from gateway.oldapp import buylist, history, markets, prices, stocks
from gateway.oldapp.auth import require_app_token
from gateway.oldapp.codes import from_old
from gateway.oldapp.models import (
    BatchPrices,
    BuySignals,
    History,
    MarketTypes,
    MarketTypesData,
    Stocks,
    old_responses,
)
from gateway.oldapp.route import OldAppRoute
from gateway.oldapp.times import day_range, local_time
from marketbus.clock import wall_ms

log = logging.getLogger("gateway")

router = APIRouter(tags=["oldapp"], route_class=OldAppRoute, dependencies=[Depends(require_app_token)])


@router.get("/api/market-types", response_model=MarketTypes, responses=old_responses(401))
@router.get("/market-types", response_model=MarketTypes, responses=old_responses(401))
async def market_types(redis: RedisDep, keys: KeysDep) -> MarketTypes:
    """全部, then the markets the universe has, in the old order (main_board 主板, gem 创业板,
    star 科创板, bse 北交所, etf ETF, other 其他). Always 200 with `code` 200: when the universe
    cannot be read (or is empty) the old default list (全部 and five markets)."""
    try:
        types = markets.market_types(s.market for s in await reads.universe(redis, keys))
        message = "获取市场类型成功"
    except Exception as exc:  # the old backend answered its default list on any failure
        log.warning("market types: the universe cannot be read (%s); answering the default list", exc)
        types = []
    if len(types) <= 1:
        types, message = list(markets.DEFAULT_TYPES), "使用默认市场类型"
    return MarketTypes(code=200, message=message, data=MarketTypesData(market_types=types, count=len(types)))


@router.get("/api/stocks/signal/buy", response_model=BuySignals, responses=old_responses(401))
async def buy_signals(
    redis: RedisDep,
    keys: KeysDep,
    trend: TrendDep,
    strategy: Annotated[
        str | None, Query(max_length=64, description="strategy key (volume_wave); absent: all")
    ] = None,
) -> BuySignals:
    """The buy list (gateway.oldapp.buylist): the latest daily BUY per code and strategy on the
    code's last bar, no ST, no index, stocks before ETFs, then confidence, then time. An internal
    error is still HTTP 200, with `code` 500 and no signal (the old backend's answer)."""
    try:
        listed = buylist.candidates(await reads.latest_signals(redis, keys), strategy)
        codes = sorted({s.code for s in listed})
        last_bars = dict(zip(codes, await trend.tails(codes, buylist.PERIOD, 1), strict=True))
        securities = await reads.securities_of(redis, keys, codes)
        forming = sorted({s.code for s in listed if s.provisional})
        quotes = {q.code: q for q in await reads.quotes_of(redis, keys, forming)}
        items = buylist.buy_list(listed, last_bars, securities, quotes)
    except Exception:
        log.exception("the old app's buy list failed")
        return buylist.failure(strategy)
    return buylist.answer(strategy, items)


@router.get("/api/stocks/batch-price", response_model=BatchPrices, responses=old_responses(400, 401, 503))
async def batch_price(
    redis: RedisDep,
    keys: KeysDep,
    codes: Annotated[
        str,
        Query(max_length=4096, description="6-digit codes (index codes with suffix), comma-separated, 1-100"),
    ],
) -> BatchPrices:
    """The latest price of each code, in the order sent; a code without a quote (or not a code)
    has its `error` and nulls. 400 for no code or more than 100."""
    try:
        wanted = prices.wanted_codes(codes)
    except ValueError as exc:
        raise HTTPException(400, detail=str(exc)) from None
    found = await reads.quotes_of(redis, keys, [w.code for w in wanted if w.code is not None])
    items = prices.prices(wanted, {q.code: q for q in found})
    return BatchPrices(success=True, total=len(items), data=items, timestamp=local_time(wall_ms()))


@router.get("/api/stocks/history", response_model=History, responses=old_responses(400, 401, 404, 503))
async def stock_history(
    redis: RedisDep,
    keys: KeysDep,
    trend: TrendDep,
    stock_code: Annotated[str, Query(max_length=16, description="6-digit code (index: 000001.SH)")],
    start_date: Annotated[str | None, Query(max_length=16, description="YYYYMMDD, included")] = None,
    end_date: Annotated[str | None, Query(max_length=16, description="YYYYMMDD, included")] = None,
) -> History:
    """The stored daily bars of a code, oldest first, from `start_date` to `end_date` (each
    optional). 400 for a bad code or date, 404 for a code nobody knows."""
    try:
        code = from_old(stock_code)
    except ValueError as exc:
        raise HTTPException(400, detail=f"stock_code: {exc}") from None
    try:
        start, end = day_range(start_date, end_date)
    except ValueError as exc:
        raise HTTPException(400, detail=str(exc)) from None
    rows = await trend.tail(code, history.PERIOD, 2 * trend.max_bars)  # the whole stored series
    if len(rows) == 0 and not await reads.code_known(redis, keys, code):
        raise HTTPException(404, detail=f"unknown code {stock_code.strip()}")
    bars = history.history_bars(rows, start, end)
    return History(stock_code=stock_code.strip(), total=len(bars), data=bars)


@router.get("/api/stocks", response_model=Stocks, responses=old_responses(401, 503))
async def stock_list(redis: RedisDep, keys: KeysDep) -> Stocks:
    """Every stock and fund of the universe, for the app's search table (no index). 503 while no
    universe is stored yet."""
    items = stocks.stock_list(await reads.universe(redis, keys))
    if not items:
        raise HTTPException(503, detail=stocks.UNAVAILABLE, headers={"Retry-After": "2"})
    return Stocks(total=len(items), returned=len(items), stocks=items, timestamp=local_time(wall_ms()))
