"""The chart page: the HTML template of ``static/`` with the page's data embedded as JSON, and the
page's own assets. The data sits in a ``<script type="application/json">`` block (never executed),
escaped so that no string in it can end the block."""

from __future__ import annotations

import html
import re
from functools import cache
from importlib import resources
from typing import Any

import orjson

TEMPLATE = "chart.html"
ASSETS = {"chart.js": "text/javascript", "chart.css": "text/css"}
LIBRARY = "/static/vendor/lightweight-charts.js"  # served by gateway.routes.dashboard
# the page loads nothing but the gateway's own files (and makes no request at all once loaded)
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'"
)
_JSON_ESCAPES = {ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026"}
_SLOT = re.compile(r"__(THEME|TITLE|LIBRARY|DATA)__")


@cache
def asset(name: str) -> bytes:
    """A file of the page (the template, its script, its style), from the installed package."""
    return resources.files("gateway.chart").joinpath("static", name).read_bytes()


def embed_json(data: Any) -> str:
    """JSON safe inside a script block: ``<``, ``>`` and ``&`` escaped (still the same JSON)."""
    return orjson.dumps(data).decode().translate(_JSON_ESCAPES)


def title_of(data: dict[str, Any]) -> str:
    strategy = data.get("strategy")
    parts = [data["name"], data["app_code"], data["period_name"]]
    if strategy:
        parts.append(strategy["name"])
    return " · ".join(str(p) for p in parts if p)


def render_page(data: dict[str, Any]) -> str:
    """The whole page for ``data`` (see gateway.chart.payload.chart_payload)."""
    values = {
        "THEME": html.escape(data["theme"]),
        "TITLE": html.escape(title_of(data)),
        "LIBRARY": LIBRARY,
        "DATA": embed_json(data),
    }
    # one pass: a value that happens to contain a slot's name is left as it is
    return _SLOT.sub(lambda m: values[m.group(1)], asset(TEMPLATE).decode())
