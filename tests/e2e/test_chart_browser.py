"""The old app's chart page (OLD_API.md P8) and index chart (P9) in the system Chromium at phone
size, against a real gateway process with seeded bars and signals.

What a user sees, in both themes: the page fills the phone's width without sideways scrolling; the
background follows the theme (dark or light) and the candles are drawn, red up and green down, in
the theme's colours; the seeded BUY and SELL signals are marked at their bars (amber below the
bar, blue above it); a tap, or the mouse, on a bar shows its OHLCV; the period tabs open the same
chart in another period; the page loads nothing from outside the gateway and logs no error. Also: a
bad theme is dark, a bad strategy a 400, and the index chart.
Screenshots go to ``test-artifacts/`` at the repository root (gitignored).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.asyncio import Redis

from marketbus import wire
from marketbus.contracts import Bar, Quote, Security, Signal, StrategyInfo, signal_id
from marketbus.keys import Keys
from marketbus.sessions import PERIOD_MS
from marketbus.trend import TrendStore

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True,
         "has_touch": True, "locale": "zh-CN"}  # fmt: skip
WAIT_MS = 20_000
T0 = 1_760_000_000_000 - 1_760_000_000_000 % 86_400_000 - 8 * 3_600_000  # a Shanghai midnight
N = 80
BUY_AT, SELL_AT = 60, 70
STOCK = Security(code="600519.SH", name="贵州茅台", market="SH主板")
INDEX = Security(code="000001.SH", name="上证指数", market="指数")

# The chart's canvases composed as the screen shows them, then read: the most common colour (the
# background), pixels of the theme's up and down candle colours, and of the marker colours in a box
# under each BUY bar's low and over each SELL bar's high.
PIXELS = """() => {
  const chart = document.querySelector('#chart');
  const pal = window.marketbusChart.palette;
  const dpr = window.devicePixelRatio;
  const base = chart.getBoundingClientRect();
  const out = document.createElement('canvas');
  out.width = Math.round(base.width * dpr); out.height = Math.round(base.height * dpr);
  const ctx = out.getContext('2d');
  for (const c of chart.querySelectorAll('canvas')) {
    const r = c.getBoundingClientRect();
    if (!r.width || !r.height) continue;
    ctx.drawImage(c, (r.left - base.left) * dpr, (r.top - base.top) * dpr, r.width * dpr, r.height * dpr);
  }
  const img = ctx.getImageData(0, 0, out.width, out.height);
  const d = img.data;
  const rgb = (hex) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  const near = (i, c) =>
    Math.abs(d[i] - c[0]) <= 12 && Math.abs(d[i + 1] - c[1]) <= 12 && Math.abs(d[i + 2] - c[2]) <= 12;
  const up = rgb(pal.up), down = rgb(pal.down), buy = rgb(pal.buy), sell = rgb(pal.sell);
  const freq = new Map();
  let nUp = 0, nDown = 0;
  for (let i = 0; i < d.length; i += 4) {
    const key = (d[i] << 16) | (d[i + 1] << 8) | d[i + 2];
    freq.set(key, (freq.get(key) || 0) + 1);
    if (near(i, up)) nUp++;
    if (near(i, down)) nDown++;
  }
  const top = [...freq.entries()].sort((a, b) => b[1] - a[1])[0][0];
  const bg = [(top >> 16) & 255, (top >> 8) & 255, top & 255];
  const inBox = (x0, y0, x1, y1, c) => {
    let n = 0;
    for (let y = Math.max(0, Math.round(y0 * dpr)); y < Math.min(out.height, Math.round(y1 * dpr)); y++)
      for (let x = Math.max(0, Math.round(x0 * dpr)); x < Math.min(out.width, Math.round(x1 * dpr)); x++)
        if (near((y * out.width + x) * 4, c)) n++;
    return n;
  };
  const markers = [...document.querySelectorAll('#signals li')].map((li) => {
    const x = Number(li.dataset.x), y = Number(li.dataset.y), isBuy = li.dataset.side === 'BUY';
    return { ts: Number(li.dataset.ts), side: li.dataset.side, x, y,
      own: isBuy ? inBox(x - 8, y, x + 8, y + 40, buy) : inBox(x - 8, y - 40, x + 8, y, sell) };
  });
  return { bg, expectedBg: rgb(pal.bg), up: nUp, down: nDown, upRgb: up, downRgb: down, markers };
}"""
READY = "() => document.querySelector('#chart').dataset.ready === '1'"
NO_SIDEWAYS = "() => document.documentElement.scrollWidth <= window.innerWidth"


def bars(code: str, period: str, n: int) -> list[Bar]:
    """Every third bar falls, the others rise, on a slow climb."""
    out = []
    for i in range(n):
        base = 20 + 0.15 * i
        lo_, hi_ = round(base, 2), round(base + 0.6, 2)
        o, c = (hi_, lo_) if i % 3 == 0 else (lo_, hi_)
        out.append(Bar(code=code, period=period, ts=T0 + i * PERIOD_MS[period], open=o, high=hi_ + 0.2,
                       low=lo_ - 0.2, close=c, volume=10_000 + 500 * (i % 7), amount=1e6))  # fmt: skip
    return out


def signal(side: str, at: int) -> Signal:
    ts = T0 + at * PERIOD_MS["1d"]
    return Signal(
        id=signal_id(STOCK.code, "volume_wave", "1d", ts),
        code=STOCK.code,
        name=STOCK.name,
        market=STOCK.market,
        strategy="volume_wave",
        strategy_name="动量守恒",
        side=side,  # type: ignore[arg-type]
        price=20 + 0.15 * at,
        period="1d",
        bar_ts=ts,
        confidence=0.8,
        volume_ratio=1.3,
        change_percent=1.0,
        reason=f"angel crosses devil ({side})",
        created_ts=ts + 1000,
    )


def seed(redis_url: str, keys: Keys) -> None:
    r = redis.Redis.from_url(redis_url)
    try:
        r.hset(keys.universe, mapping={s.code: s.model_dump_json() for s in (STOCK, INDEX)})
        quote = Quote(
            code=STOCK.code,
            name=STOCK.name,
            market=STOCK.market,
            price=32.0,
            change_percent=0.5,
            volume=1e6,
            amount=3e7,
            open=31.8,
            high=32.3,
            low=31.6,
            pre_close=31.84,
            ts=T0 + N * 86_400_000,
        )
        r.hset(keys.snapshots, STOCK.code, quote.model_dump_json())
        info = StrategyInfo(key="volume_wave", name="动量守恒", min_bars=40)
        r.hset(keys.strategies, info.key, info.model_dump_json())
        for sig in (signal("BUY", BUY_AT), signal("SELL", SELL_AT)):
            r.xadd(keys.signals, wire.encode(sig))  # type: ignore[arg-type]
    finally:
        r.close()

    async def store() -> None:
        client = Redis.from_url(redis_url)
        try:
            trend = TrendStore(client, keys)
            await trend.append(
                [*bars(STOCK.code, "1d", N), *bars(STOCK.code, "1w", 20), *bars(INDEX.code, "1d", 100)]
            )
        finally:
            await client.aclose()

    asyncio.run(store())


def luminance(rgb: list[int]) -> float:
    return (0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]) / 255


def same(a: list[int], b: list[int], tol: int = 3) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


def watch(page: Any, base: str, problems: list[str]) -> None:
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("console", lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None)
    page.on(
        "request",
        lambda r: None if r.url.startswith((base, "data:")) else problems.append(f"fetched {r.url}"),
    )


def test_the_chart_page_on_a_phone_in_both_themes(stack: Any, redis_url: str, prefix: str) -> None:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no system Chromium at {CHROMIUM} (.ci/run installs the `chromium` package)")
    sync_api = pytest.importorskip("playwright.sync_api")
    ARTIFACTS.mkdir(exist_ok=True)
    seed(redis_url, Keys(prefix))
    s = stack()
    s.start_gateway()
    chart_url = f"{s.base}/api/chart/600519?strategy=volume_wave&period=daily"
    last_ts = T0 + (N - 1) * PERIOD_MS["1d"]

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            seen: dict[str, dict[str, Any]] = {}
            for theme in ("dark", "light"):
                ctx = browser.new_context(**PHONE)
                page = ctx.new_page()
                page.set_default_timeout(WAIT_MS)
                problems: list[str] = []
                watch(page, s.base, problems)
                page.goto(f"{chart_url}&theme={theme}")
                page.wait_for_function(READY)
                chart = page.locator("#chart")
                assert chart.get_attribute("data-theme") == theme
                assert chart.get_attribute("data-bars") == str(N)
                assert (chart.get_attribute("data-buy"), chart.get_attribute("data-sell")) == ("1", "1")
                page.wait_for_function("() => document.querySelector('#chart').dataset.placed === '2'")
                page.wait_for_function(NO_SIDEWAYS)
                assert "贵州茅台 600519" in page.locator("#title").inner_text()
                assert "动量守恒" in page.locator("#sub").inner_text()

                px = page.evaluate(PIXELS)
                # the background follows the theme
                assert same(px["bg"], px["expectedBg"]), px["bg"]
                assert (luminance(px["bg"]) < 0.2) if theme == "dark" else (luminance(px["bg"]) > 0.8)
                # candles: red up, green down, both drawn
                assert px["up"] > 300 and px["down"] > 150, (px["up"], px["down"])
                up, down = px["upRgb"], px["downRgb"]
                assert up[0] > up[1] + 80 and down[1] > down[0] + 80
                # each seeded signal is marked at its bar, in its own colour
                by_side = {m["side"]: m for m in px["markers"]}
                assert by_side["BUY"]["ts"] == T0 + BUY_AT * PERIOD_MS["1d"]
                assert by_side["SELL"]["ts"] == T0 + SELL_AT * PERIOD_MS["1d"]
                assert by_side["BUY"]["own"] > 20 and by_side["SELL"]["own"] > 20, px["markers"]
                assert by_side["SELL"]["x"] > by_side["BUY"]["x"]
                assert page.locator("#signals li").count() == 2
                page.screenshot(path=str(ARTIFACTS / f"chart-phone-{theme}.png"), full_page=True)

                # the legend shows the last bar; a tap on a bar shows that bar, the mouse another
                legend = page.locator("#legend")
                assert legend.get_attribute("data-ts") == str(last_ts)
                box = chart.bounding_box()
                assert box is not None
                buy, sell = by_side["BUY"], by_side["SELL"]
                page.touchscreen.tap(box["x"] + buy["x"], box["y"] + buy["y"] - 10)
                page.wait_for_function(
                    "(ts) => document.querySelector('#legend').dataset.ts === ts", arg=str(buy["ts"])
                )
                text = legend.inner_text()
                bar = bars(STOCK.code, "1d", N)[BUY_AT]
                for part in (
                    f"开 {bar.open:.2f}",
                    f"高 {bar.high:.2f}",
                    f"低 {bar.low:.2f}",
                    f"收 {bar.close:.2f}",
                    "量 1",
                ):
                    assert part in text, (part, text)
                assert "买" in text
                page.mouse.move(box["x"] + sell["x"], box["y"] + sell["y"] + 10)
                page.wait_for_function(
                    "(ts) => document.querySelector('#legend').dataset.ts === ts", arg=str(sell["ts"])
                )
                assert "卖" in legend.inner_text()
                seen[theme] = px

                # the period tabs open the same chart in another period, the theme kept
                tabs = page.locator("#periods a")
                assert tabs.count() == 6
                assert page.locator("#periods a.on").get_attribute("data-period") == "daily"
                page.locator("#periods a[data-period='weekly']").click()
                page.wait_for_url("**period=weekly**")
                page.wait_for_function(READY)
                assert f"theme={theme}" in page.url and "strategy=volume_wave" in page.url
                assert page.locator("#chart").get_attribute("data-bars") == "20"
                assert page.locator("#chart").get_attribute("data-markers") == "0"
                assert problems == [], problems
                ctx.close()
            # the two themes differ in what is drawn, not only in the page's style
            assert not same(seen["dark"]["bg"], seen["light"]["bg"])
            assert not same(seen["dark"]["upRgb"], seen["light"]["upRgb"], 0)
            assert not same(seen["dark"]["downRgb"], seen["light"]["downRgb"], 0)

            ctx = browser.new_context(**PHONE)
            page = ctx.new_page()
            page.set_default_timeout(WAIT_MS)
            problems = []
            watch(page, s.base, problems)
            # a bad theme is dark
            page.goto(f"{chart_url}&theme=purple")
            page.wait_for_function(READY)
            assert same(page.evaluate(PIXELS)["bg"], seen["dark"]["bg"])
            # the index chart: its daily bars, no strategy and no marker
            page.goto(f"{s.base}/api/index/chart?index_code=000001.SH&days=60&theme=light")
            page.wait_for_function(READY)
            assert page.locator("#chart").get_attribute("data-bars") == "60"
            assert page.locator("#chart").get_attribute("data-markers") == "0"
            assert "上证指数 000001.SH" in page.locator("#title").inner_text()
            assert page.locator("#signals-panel").is_hidden() and page.locator("#periods").is_hidden()
            px = page.evaluate(PIXELS)
            assert same(px["bg"], seen["light"]["bg"]) and px["up"] > 300 and px["down"] > 150
            page.wait_for_function(NO_SIDEWAYS)
            page.screenshot(path=str(ARTIFACTS / "chart-index-light.png"), full_page=True)
            assert problems == [], problems
            # a bad strategy is the old backend's 400
            resp = page.goto(f"{s.base}/api/chart/600519?strategy=nope")
            assert resp is not None and resp.status == 400
            assert resp.json()["detail"].startswith("strategy:")
            ctx.close()
        finally:
            browser.close()
