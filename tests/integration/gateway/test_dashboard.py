"""The dashboard in a real browser (system Chromium, headless) against a running gateway: the board
fills and changes live, the chart draws with the selected code's signals, a new signal appears in
the feed. Saves a screenshot (MARKETBUS_ARTIFACTS, default: the test's tmp dir)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import httpx
import pytest
import redis

from marketbus import wire
from marketbus.clock import wall_ms
from marketbus.contracts import Tick

from .conftest import (
    DAY,
    SECURITIES,
    T0,
    Gateway,
    add_signal,
    make_quote,
    make_signal,
    seed_bars,
    seed_market,
)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def test_dashboard_assets_are_served(gateway: Gateway) -> None:
    with gateway.client() as c:
        page = c.get("/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert "/static/vendor/lightweight-charts.js" in page.text
        assert "http://" not in page.text and "https://" not in page.text  # no CDN
        js = c.get("/static/vendor/lightweight-charts.js")
        assert js.status_code == 200 and "Lightweight Charts" in js.text[:400]
        assert c.get("/static/app.js").status_code == 200
        assert c.get("/static/app.css").status_code == 200
        assert c.get("/static/nope.js").status_code == 404


def _tick(r: redis.Redis, gw: Gateway, code: str, price: float) -> None:
    sec = next(s for s in SECURITIES if s.code == code)
    ts = wall_ms()
    r.hset(gw.keys.snapshots, code, make_quote(sec, price, ts).model_dump_json())
    r.xadd(gw.keys.ticks, wire.encode(Tick(code=code, ts=ts, price=price, volume=1, amount=1)))  # type: ignore[arg-type]


@pytest.mark.browser
@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="no system Chromium (/usr/bin/chromium)")
def test_dashboard_live_in_chromium(gateway: Gateway, sync_redis: redis.Redis, tmp_path: Path) -> None:
    playwright = pytest.importorskip("playwright.sync_api")
    keys = gateway.keys
    seed_market(sync_redis, keys)
    seed_bars(gateway.redis_url, keys, "159915.SZ", "1d", 60)
    add_signal(sync_redis, keys, make_signal("159915.SZ", "ma_cross", "BUY", T0 + 40 * DAY, 0.8))
    add_signal(sync_redis, keys, make_signal("159915.SZ", "macd_cross", "SELL", T0 + 50 * DAY))

    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 860})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(gateway.url + "/")
            rows = page.locator("#board tbody tr")
            rows.first.wait_for(timeout=10_000)
            assert rows.count() == 3  # the ETFs
            # the first ETF (159915.SZ) is selected: its chart draws with its two signals
            page.wait_for_function(
                "document.querySelector('#chart-msg').textContent.includes('2 signals')",
                timeout=10_000,
            )
            assert page.locator("#chart canvas").count() > 0
            # the board changes live
            cell = page.locator("#board tbody tr[data-code='510300.SH'] td:nth-child(3)")
            before = cell.inner_text()
            page.wait_for_function("document.querySelector('#conn').textContent.includes('live')")
            _tick(sync_redis, gateway, "510300.SH", 7.777)
            page.wait_for_function(
                "document.querySelector(\"#board tbody tr[data-code='510300.SH'] td:nth-child(3)\")"
                ".textContent === '7.777'",
                timeout=10_000,
            )
            assert before != "7.777"
            # a new signal appears in the feed
            sig = make_signal("518880.SH", "kdj_cross", "BUY", T0 + 99 * DAY)
            add_signal(sync_redis, keys, sig)
            page.locator("#feed li", has_text="518880.SH").first.wait_for(timeout=10_000)
            # a narrow window still shows the board and the chart
            out = Path(os.environ.get("MARKETBUS_ARTIFACTS", tmp_path))
            out.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(out / "dashboard.png"))
            page.set_viewport_size({"width": 420, "height": 900})
            page.wait_for_timeout(300)
            assert page.locator("#chart canvas").first.is_visible()
            page.screenshot(path=str(out / "dashboard-narrow.png"), full_page=True)
            assert not errors, errors
        finally:
            browser.close()
    with httpx.Client(base_url=gateway.url) as c:
        assert c.get("/healthz").status_code == 200
