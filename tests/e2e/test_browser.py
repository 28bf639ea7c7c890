"""The dashboard in the system Chromium (headless) against the running stack.

quotes (sim feed), signals and the gateway run as real subprocesses on the session's server. A user
opens ``/`` and watches: the ETF board fills and moves without a reload; a chart draws candles for a
chosen code in 1m, 5m and 1d; the scan button asks for the token and follows the job to its end;
signals arrive in the live feed and, clicked, show as markers on their bars; a phone-sized window
shows the board without sideways scrolling; when the gateway is stopped (Ctrl-C, its streams open)
it exits at once and cleanly, the page says it is reconnecting and comes back live by itself when a
gateway is up again.
Screenshots go to ``test-artifacts/`` at the repository root (gitignored).
"""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.request
from itertools import pairwise
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TOKEN = "browser-e2e-token"
WAIT_MS = 20_000
POLL = {"polling": 200}  # conditions that read pixels are not evaluated on every frame

# Pixels of the candle colours of app.js (red up, green down) on the chart's canvases.
CANDLE_PIXELS = """() => {
  let n = 0;
  for (const c of document.querySelectorAll('#chart canvas')) {
    if (!c.width || !c.height) continue;
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    for (let i = 0; i < d.length; i += 4) {
      const r = d[i], g = d[i + 1], b = d[i + 2];
      if (d[i + 3] > 200 && ((r > 200 && g < 90 && b < 90) || (r < 60 && g > 140 && b < 130))) n++;
    }
  }
  return n;
}"""
# code -> quote time and shown price of every board row
BOARD_STATE = """() => Object.fromEntries([...document.querySelectorAll('#board tbody tr')].map(
  r => [r.dataset.code, r.dataset.ts + '|' + r.children[2].textContent]))"""
BOARD_CHANGED = f"""(before) => {{
  const now = ({BOARD_STATE})();
  return Object.keys(before).some(code => code in now && now[code] !== before[code]);
}}"""
CHART_SHOWS = """([code, period]) => {
  const c = document.querySelector('#chart');
  return c.dataset.code === code && c.dataset.period === period && Number(c.dataset.bars) > 0;
}"""


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def conn_is(page, state: str, timeout: float = WAIT_MS) -> None:
    page.wait_for_function(
        "(s) => document.querySelector('#conn').dataset.state === s", arg=state, timeout=timeout
    )


def test_a_user_watches_the_running_stack_in_chromium(stack) -> None:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no system Chromium at {CHROMIUM} (.ci/run installs the `chromium` package)")
    sync_api = pytest.importorskip("playwright.sync_api")
    ARTIFACTS.mkdir(exist_ok=True)

    s = stack(MARKETBUS_API_TOKEN=TOKEN)
    s.start("quotes")
    s.start("signals")
    gateway = s.start_gateway()

    phases: list[tuple[str, float]] = [("start", time.monotonic())]

    def mark(name: str) -> None:
        phases.append((name, time.monotonic()))

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900}, locale="zh-CN")
            page.set_default_timeout(WAIT_MS)
            problems: list[str] = []
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on(
                "console",
                lambda m: problems.append(f"console: {m.text} {m.location}") if m.type == "error" else None,
            )
            page.on(
                "request",
                lambda r: (
                    None if r.url.startswith((s.base, "data:")) else problems.append(f"fetched {r.url}")
                ),
            )

            mark("board")
            # -- the board fills with the ETFs and goes live
            page.goto(s.base + "/")
            page.wait_for_function("document.querySelectorAll('#board tbody tr').length >= 50")
            row = page.locator("#board tbody tr[data-code='510300.SH']")
            assert "沪深300ETF" in row.inner_text()
            conn_is(page, "live")

            mark("moves")
            # -- ... and moves without a reload: a price or its quote time changes in place
            page.evaluate("window.__sameDocument = true")
            page.wait_for_function(BOARD_CHANGED, arg=page.evaluate(BOARD_STATE))
            assert page.evaluate("window.__sameDocument === true")

            mark("chart")
            # -- a chart for a chosen code: candles in 1d, 1m and 5m
            row.click()
            assert "510300.SH" in page.locator("#chart-title").inner_text()
            for period in ("1d", "1m", "5m", "1d"):
                page.locator(f"#period-tabs button[data-period='{period}']").click()
                page.wait_for_function(CHART_SHOWS, arg=["510300.SH", period])
                page.wait_for_function(f"({CANDLE_PIXELS})() > 100", **POLL)
            assert "bars" in page.locator("#chart-msg").inner_text()
            page.screenshot(path=str(ARTIFACTS / "dashboard-chart.png"))

            mark("scan")
            # -- the scan button asks for the token and follows the job to its end
            page.locator("#scan-btn").click()
            page.locator("#scan-token").fill(TOKEN)
            page.locator("#scan-submit").click()
            page.wait_for_function(
                "document.querySelector('#scan-job').dataset.state === 'done'", timeout=30_000
            )
            job_id = page.locator("#scan-job").get_attribute("data-job")
            job = get_json(f"{s.base}/api/scheduler/jobs/{job_id}")
            assert job["state"] == "done" and job["codes"] >= 50, job
            shown = page.locator("#scan-text").inner_text()
            assert f"{job['codes']} 只 codes" in shown and f"{job['signals']} 个信号 signals" in shown, shown
            assert page.locator("#scan-progress").evaluate("e => e.style.width") == "100%"

            mark("feed")
            # -- signals arrive in the live feed (from the stream or the scan just run) ...
            page.locator("#feed li.live").first.wait_for()
            # ... and one, clicked, is marked on its bar in the chart of its code and period. The
            # feed keeps growing (past 300 items the oldest leave: a sim at speed 60 closes bars of
            # every code each second): the newest live item is read and clicked in one turn of the
            # page, so it cannot leave between the two
            picked = page.evaluate(
                "() => { const li = document.querySelector('#feed li.live'); li.click();"
                " return {text: li.innerText, ...li.dataset}; }"
            )
            text = picked["text"]
            assert ("BUY" in text or "SELL" in text) and "置信" in text, text
            code, period = picked["code"], picked["period"]
            page.wait_for_function(CHART_SHOWS, arg=[code, period])
            page.wait_for_function(
                "() => Number(document.querySelector('#chart').dataset.markers) >= 1", **POLL
            )
            # the strategy filter narrows the feed to one strategy
            strategy = picked["strategy"]
            page.locator("#feed-filter").select_option(strategy)
            page.wait_for_function(
                "(k) => [...document.querySelectorAll('#feed li')].every("
                "li => li.hidden === (li.dataset.strategy !== k))",
                arg=strategy,
            )
            page.locator("#feed-filter").select_option("")
            page.screenshot(path=str(ARTIFACTS / "dashboard.png"))

            mark("phone")
            # -- a phone: the board is there and nothing scrolls sideways
            page.set_viewport_size({"width": 390, "height": 844})
            page.wait_for_function(
                "() => document.documentElement.scrollWidth <= window.innerWidth"
                " && document.querySelector('#board').getBoundingClientRect().right <= window.innerWidth"
                " && document.querySelector('.board .scroll').scrollWidth"
                " <= document.querySelector('.board .scroll').clientWidth"
            )
            assert page.locator("#board tbody tr[data-code='510300.SH']").is_visible()
            page.screenshot(path=str(ARTIFACTS / "dashboard-narrow.png"), full_page=True)
            page.set_viewport_size({"width": 1440, "height": 900})
            assert problems == [], problems

            mark("reconnect")
            # -- the gateway is stopped (Ctrl-C) while the page holds its streams: it ends them and
            # exits at once, cleanly (no wait for uvicorn's graceful timeout, no traceback); the
            # page says so, and comes back by itself when a gateway is up again
            gateway.proc.send_signal(signal.SIGINT)
            assert gateway.proc.wait(20) == 0, gateway.log()[-3000:]
            stopped = gateway.log()
            assert "Traceback" not in stopped and "graceful shutdown exceeded" not in stopped, stopped[-3000:]
            conn_is(page, "reconnecting")
            assert page.evaluate("document.body.classList.contains('stale')")  # old data is dimmed
            page.screenshot(path=str(ARTIFACTS / "dashboard-reconnecting.png"))
            problems.clear()  # failed reconnects are expected console noise while it is down
            s.start("gateway", name="gateway-again", MARKETBUS_PORT=str(s.port))
            conn_is(page, "live", timeout=30_000)
            page.wait_for_function(BOARD_CHANGED, arg=page.evaluate(BOARD_STATE))
            assert page.evaluate("window.__sameDocument === true")
            noise = ("ERR_CONNECTION_REFUSED", "ERR_EMPTY_RESPONSE", "ERR_INCOMPLETE_CHUNKED_ENCODING")
            assert [m for m in problems if not any(n in m for n in noise)] == []
        finally:
            browser.close()
    mark("end")
    print(" · ".join(f"{a[0]} {b[1] - a[1]:.1f}s" for a, b in pairwise(phases)))
    for svc in s.services[:2]:
        assert svc.proc.poll() is None, f"{svc.name} died: {svc.log()[-2000:]}"
