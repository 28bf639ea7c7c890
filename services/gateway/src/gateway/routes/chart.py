"""Chart pages (OLD_API.md P8, the index chart of P9): the page the old app loads in a WebView
iframe, with no header and no token.

The page is served directly (200), not by a redirect: the old backend wrote one HTML file per
request and sent a 307 to it; here the page is rendered from the stored bars and signals as it is
asked for, so there is no file to redirect to, and the WebView is spared a round trip. Its data is
embedded in it (no request after the page; a chart opened in a WebView works as soon as it is
loaded), its script and style are the gateway's own (``/static/chart/``), the drawing library the
one the dashboard serves. A bad strategy or period is a 400 ``{"detail": ...}`` (the old shape); a
bad theme is dark."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import HTMLResponse, Response

from gateway import reads
from gateway.chart.params import (
    OLD_PERIODS,
    ChartParamError,
    ChartPeriod,
    parse_period,
    parse_strategy,
    parse_theme,
)
from gateway.chart.payload import ChartSubject, chart_payload
from gateway.chart.render import ASSETS, CSP, asset, render_page
from gateway.deps import KeysDep, RedisDep, SettingsDep, TrendDep
from gateway.models import ErrorBody
from gateway.oldapp.codes import from_old, to_old
from gateway.oldapp.models import Detail
from gateway.oldapp.route import OldAppRoute, detail
from gateway.queries import SignalFilter
from marketbus.contracts import PERIODS, Quote

# errors in the old backend's shape ({"detail": ...}), as on the old app's other routes
router = APIRouter(tags=["chart"], route_class=OldAppRoute)

MAX_SIGNALS = 1000  # signals of one code, strategy and period looked at (newest first)
DAYS_MIN, DAYS_MAX = 30, 1000  # the index chart's range, as the old backend had it
DEFAULT_INDEX = "000001.SH"
PERIOD_NAMES = [*OLD_PERIODS, *(p for p in PERIODS if p not in OLD_PERIODS.values())]
PAGE_HEADERS = {"Cache-Control": "no-store", "Content-Security-Policy": CSP}


def _json(*schemas: dict[str, Any], description: str) -> dict[str, Any]:
    schema = schemas[0] if len(schemas) == 1 else {"anyOf": list(schemas)}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


DETAIL = Detail.model_json_schema()
VALIDATION = {  # FastAPI's own 422 body, as the old backend answered it
    "type": "object",
    "properties": {"detail": {"type": "array", "items": {"type": "object"}}},
    "required": ["detail"],
}


PAGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "the chart page", "content": {"text/html": {"schema": {"type": "string"}}}},
    400: _json(DETAIL, description="a bad code, strategy or period"),
    404: _json(DETAIL, ErrorBody.model_json_schema(), description="a code nobody knows"),
    422: _json(VALIDATION, description="a bad days value"),
    503: _json(DETAIL, description="the data store cannot be reached"),
}


def _page(data: dict[str, Any]) -> HTMLResponse:
    return HTMLResponse(render_page(data), headers=PAGE_HEADERS)


async def _subject(
    redis: RedisDep, keys: KeysDep, code: str, quote: Quote | None, has_bars: bool
) -> ChartSubject | None:
    """Name and market of ``code`` from its latest snapshot, else the universe; None for a code
    nobody knows (no bars, no snapshot, not in the universe)."""
    if quote is not None:
        return ChartSubject(code, to_old(code, quote.market), quote.name, quote.market)
    if not has_bars and not await reads.code_known(redis, keys, code):
        return None
    sec = next((s for s in await reads.universe(redis, keys) if s.code == code), None)
    market = sec.market if sec else ""
    return ChartSubject(code, to_old(code, market), sec.name if sec else "", market)


async def _quote(redis: RedisDep, keys: KeysDep, code: str) -> Quote | None:
    quotes = await reads.quotes_of(redis, keys, [code])
    return quotes[0] if quotes else None


@router.get(
    "/api/chart/{code}",
    response_class=HTMLResponse,
    responses=PAGE_RESPONSES,
    summary="The chart page of one code (the old app's WebView)",
)
async def stock_chart(
    code: Annotated[
        str,
        Path(
            description="the old app's code: 6 digits (600519), an index with its suffix (000001.SH)",
            examples=["600519"],
        ),
    ],
    redis: RedisDep,
    keys: KeysDep,
    trend: TrendDep,
    settings: SettingsDep,
    strategy: Annotated[
        str | None,
        Query(description="whose signals are marked (default volume_wave)", examples=["volume_wave"]),
    ] = None,
    theme: Annotated[
        str | None, Query(description="light or dark (anything else: dark)", examples=["light", "dark"])
    ] = None,
    period: Annotated[
        str | None,
        # documented, checked by parse_period (another value is the old backend's 400, not a 422)
        Query(description="the old app's period (default daily)", json_schema_extra={"enum": PERIOD_NAMES}),
    ] = None,
) -> Response:
    """Candles, volume and the strategy's BUY/SELL markers at their bars, from the stored bars and
    signals of that code, strategy and period; a tap or the crosshair shows a bar's OHLCV."""
    try:
        mb_code = from_old(code)
        chosen = parse_strategy(strategy, await reads.strategies(redis, keys))
        span = parse_period(period)
    except ChartParamError as exc:
        return detail(exc.status, str(exc))
    except ValueError as exc:
        return detail(400, f"code: {exc}")
    rows = await trend.tail(mb_code, span.period, settings.trend_max_bars)
    quote = await _quote(redis, keys, mb_code)
    subject = await _subject(redis, keys, mb_code, quote, len(rows) > 0)
    if subject is None:
        return detail(404, f"unknown code {code}")
    flt = SignalFilter(code=mb_code, strategy=chosen.key, period=span.period)
    signals, _ = await reads.signals_page(redis, keys, flt, MAX_SIGNALS)
    data = chart_payload(
        subject=subject,
        period=span,
        strategy=chosen,
        theme=parse_theme(theme),
        rows=rows,
        signals=signals,
        quote=quote,
    )
    return _page(data)


@router.get(
    "/api/index/chart",
    response_class=HTMLResponse,
    responses=PAGE_RESPONSES,
    summary="The daily chart page of an index (the old app's index screen)",
)
async def index_chart(
    redis: RedisDep,
    keys: KeysDep,
    trend: TrendDep,
    index_code: Annotated[
        str,
        Query(description="an index with its suffix (000001.SH), or a 6-digit code", examples=["000001.SH"]),
    ] = DEFAULT_INDEX,
    days: Annotated[int, Query(ge=DAYS_MIN, le=DAYS_MAX, description="daily bars shown")] = 180,
    theme: Annotated[
        str | None, Query(description="light or dark (anything else: dark)", examples=["light", "dark"])
    ] = None,
) -> Response:
    """The same page for the last ``days`` daily bars of an index (no strategy, no marker)."""
    try:
        mb_code = from_old(index_code)
    except ValueError as exc:
        return detail(400, f"index_code: {exc}")
    rows = await trend.tail(mb_code, "1d", days)
    subject = await _subject(redis, keys, mb_code, await _quote(redis, keys, mb_code), len(rows) > 0)
    if subject is None:
        return detail(404, f"unknown index {index_code}")
    data = chart_payload(
        subject=subject,
        period=ChartPeriod("1d", "daily"),
        strategy=None,
        theme=parse_theme(theme),
        rows=rows,
        tabs=False,
    )
    return _page(data)


@router.get("/static/chart/{name}", include_in_schema=False)
async def chart_asset(name: str) -> Response:
    if name not in ASSETS:
        return detail(404, f"no asset {name}")
    return Response(asset(name), media_type=ASSETS[name], headers={"Cache-Control": "no-cache"})
