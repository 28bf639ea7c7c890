"""The scorecard on the dashboard, in the system Chromium (headless), against the running stack.

quotes (sim feed, seeded history), signals (its history run), the scorecard and the gateway run as
real subprocesses on the session's server. A user opens ``/`` and scrolls to the scorecard: the
table fills from the history within a minute, each figure with its sample size and "样本不足" where
too few signals stand behind it; the plots are drawn (average return by horizon per strategy, hit
rate by confidence bucket); the horizon, market and strategy controls change what is shown; the
figures agree with ``GET /api/scorecard``. A screenshot goes to ``test-artifacts/``.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
from pathlib import Path

import pytest
import redis

from marketbus.keys import Keys

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]
WAIT_MS = 60_000
MIN_SAMPLES = 150  # high enough that some confidence buckets have too few signals

# pixels of a canvas that are not its background: something was drawn
DRAWN = """(id) => {
  const c = document.getElementById(id);
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0) n++;
  return n;
}"""
TABLE = """() => [...document.querySelectorAll('#sc-table tbody tr')].map(tr => ({
  strategy: tr.dataset.strategy,
  cells: Object.fromEntries([...tr.querySelectorAll('td[data-figure]')].map(
    td => [td.dataset.figure, {n: Number(td.dataset.n), text: td.firstChild.textContent}])),
}))"""


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def history_scored(redis_url: str, prefix: str, within_s: float = 90.0) -> None:
    """Wait until the signals service ran every code's daily history and the scorecard consumed it
    and computed its figures (a condition on the server, not a sleep)."""
    keys = Keys(prefix)
    r = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + within_s
    try:
        while time.monotonic() < deadline:
            codes = r.hlen(keys.universe)
            run = r.hlen(keys.backfill_done("1d"))
            groups = (
                {g["name"]: g for g in r.xinfo_groups(keys.signals_history)}
                if r.exists(keys.signals_history)
                else {}
            )
            g = groups.get(b"scorecard")
            if (
                codes
                and run == codes
                and g is not None
                and g["lag"] == 0
                and g["pending"] == 0
                and not r.sismember(keys.score_dirty, "1d")
                and r.exists(keys.scorecard("1d"))
            ):
                return
            time.sleep(0.2)
    finally:
        r.close()
    raise AssertionError("the daily history was not scored in time")


def test_the_scorecard_fills_from_history_and_is_drawn(stack) -> None:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no system Chromium at {CHROMIUM} (.ci/run installs the `chromium` package)")
    sync_api = pytest.importorskip("playwright.sync_api")
    ARTIFACTS.mkdir(exist_ok=True)

    s = stack(MARKETBUS_SCORECARD_MIN_SAMPLES=str(MIN_SAMPLES), MARKETBUS_AUTO_CALCULATE_SIGNALS="false")
    s.start("quotes")
    s.start("signals")
    s.start("scorecard")
    s.start_gateway()

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900}, locale="zh-CN")
            page.set_default_timeout(WAIT_MS)
            problems: list[str] = []
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("console", lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None)
            page.on(
                "request",
                lambda r: (
                    None if r.url.startswith((s.base, "data:")) else problems.append(f"fetched {r.url}")
                ),
            )
            page.goto(s.base + "/")
            page.locator("#scorecard").scroll_into_view_if_needed()
            # filled from the seeded history: every strategy that fired has its row, plus the total
            page.wait_for_function(
                "() => document.querySelector('#scorecard').dataset.state === 'ready'"
                " && Number(document.querySelector('#scorecard').dataset.rows) >= 5"
            )
            assert page.locator("#scorecard").get_attribute("data-period") == "1d"

            # once the daily history is all scored (no daily bar closes during the test), the table
            # shows the API's figures, and says where a figure has too few signals
            history_scored(s.env["MARKETBUS_REDIS_URL"], s.env["MARKETBUS_KEY_PREFIX"])
            api = get_json(f"{s.base}/api/scorecard?period=1d&market=*&horizon=5")["rows"]
            by_strategy = {r["strategy"]: r for r in api}
            page.wait_for_function(
                "(n) => [...document.querySelectorAll('#sc-table tr.total td[data-figure=hit_rate]')]"
                ".some(td => Number(td.dataset.n) === n)",
                arg=by_strategy["*"]["hit_rate"]["n"],
            )
            shown = page.evaluate(TABLE)
            assert [row["strategy"] for row in shown] == [*sorted(set(by_strategy) - {"*"}), "*"]
            for row in shown:
                for name, cell in row["cells"].items():
                    fig = by_strategy[row["strategy"]][name]
                    assert cell["n"] == fig["n"]
                    if fig["value"] is None:
                        assert cell["text"] == ("样本不足" if fig["n"] else "–")
                    else:
                        assert cell["text"].endswith("%")
            assert any(c["text"] == "样本不足" for row in shown for c in row["cells"].values()) or all(
                c["n"] >= MIN_SAMPLES for row in shown for c in row["cells"].values()
            )

            # the plots are drawn: one line per strategy with enough signals, bars for the buckets
            page.wait_for_function("() => Number(document.querySelector('#sc-returns').dataset.lines) >= 1")
            assert page.evaluate(DRAWN, "sc-returns") > 500
            assert page.evaluate(DRAWN, "sc-buckets") > 500
            buckets = page.locator("#sc-buckets")
            total = api[-1] if api[-1]["strategy"] == "*" else by_strategy["*"]
            enough = sum(1 for b in total["buckets"] if b["hit_rate"]["value"] is not None)
            page.wait_for_function(
                "(n) => Number(document.querySelector('#sc-buckets').dataset.bars) >= n",
                arg=max(1, enough - 1),
            )
            few = int(buckets.get_attribute("data-few") or 0)
            bars = int(buckets.get_attribute("data-bars") or 0)
            assert few + bars == 5
            legend = page.locator("#sc-returns-legend li").all_inner_texts()
            assert "全部 all" in legend
            page.screenshot(path=str(ARTIFACTS / "scorecard.png"), full_page=True)

            # the controls: a longer horizon, one market, one strategy's buckets
            page.click("#sc-horizon button[data-h='20']")
            page.wait_for_function("() => document.querySelector('#sc-horizon').dataset.h === '20'")
            h20 = {
                r["strategy"]: r
                for r in get_json(f"{s.base}/api/scorecard?period=1d&market=*&horizon=20")["rows"]
            }
            total_now = page.evaluate(TABLE)[-1]
            assert total_now["strategy"] == "*"
            assert total_now["cells"]["mean_return"]["n"] <= h20["*"]["signals"]
            market = next(
                r["market"]
                for r in get_json(f"{s.base}/api/scorecard?period=1d")["rows"]
                if r["market"] != "*"
            )
            page.select_option("#sc-market", market)
            page.wait_for_function(
                "(m) => document.querySelector('#sc-market').value === m"
                " && document.querySelectorAll('#sc-table tbody tr').length >= 1",
                arg=market,
            )
            page.select_option("#sc-market", "*")
            strategy = next(r["strategy"] for r in shown if r["strategy"] != "*")
            page.select_option("#sc-strategy", strategy)
            page.wait_for_function("(v) => document.querySelector('#sc-strategy').value === v", arg=strategy)
            assert (
                int(buckets.get_attribute("data-bars") or 0) + int(buckets.get_attribute("data-few") or 0)
                == 5
            )
            page.screenshot(path=str(ARTIFACTS / "scorecard-filtered.png"), full_page=True)
            assert problems == []
        finally:
            browser.close()
