"""The dashboard page and its assets; the chart library is served from its installed package."""

from __future__ import annotations

from functools import cache
from importlib import resources
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse, Response

from gateway.errors import not_found

router = APIRouter(include_in_schema=False)

CHART_DIST = "lightweight-charts"
CHART_FILE = "lightweight_charts/js/lightweight-charts.js"
STATIC = {"app.js": "text/javascript", "app.css": "text/css"}


@cache
def chart_js_path() -> Path | None:
    """The TradingView Lightweight Charts build shipped inside the `lightweight-charts` wheel."""
    try:
        path = Path(str(distribution(CHART_DIST).locate_file(CHART_FILE)))
    except PackageNotFoundError:
        return None
    return path if path.is_file() else None


@cache
def _asset(name: str) -> bytes:
    return resources.files("gateway.dashboard").joinpath("static", name).read_bytes()


@router.get("/", response_class=HTMLResponse)
async def index() -> HTMLResponse:
    return HTMLResponse(_asset("index.html"), headers={"Cache-Control": "no-cache"})


@router.get("/static/vendor/lightweight-charts.js")
async def chart_js() -> FileResponse:
    path = chart_js_path()
    if path is None:
        raise not_found(f"the {CHART_DIST} package is not installed")
    return FileResponse(path, media_type="text/javascript", headers={"Cache-Control": "max-age=3600"})


@router.get("/static/{name}")
async def static(name: str) -> Response:
    if name not in STATIC:
        raise not_found(f"no asset {name}")
    return Response(_asset(name), media_type=STATIC[name], headers={"Cache-Control": "no-cache"})
