"""Provisional in-session signals through the gateway over real HTTP: the lists tell them (and their
confirmations and withdrawals) from closed-bar signals and filter on it; version 1 entries still
read; the dashboard feed badges them in a real browser."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import httpx
import pytest
import redis

from marketbus.contracts import Signal
from signals.provisional import as_provisional, withdrawal

from .conftest import DAY, T0, Gateway, add_signal, make_signal, seed_bars, seed_market

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
TODAY = T0 + 10 * DAY


def v1_entry(sig: Signal) -> bytes:
    """A signal as schema version 1 wrote it (before provisional signals existed)."""
    data = json.loads(sig.model_dump_json())
    for field in ("provisional", "status", "confirms", "withdraws"):
        del data[field]
    data["schema_version"] = 1
    return json.dumps(data, ensure_ascii=False).encode()


@pytest.fixture(scope="module")
def seeded(gateway: Gateway, sync_redis: redis.Redis) -> dict[str, Signal]:
    keys = gateway.keys
    seed_market(sync_redis, keys)
    old = make_signal("600519.SH", "ma_cross", "BUY", T0, 0.6)
    sync_redis.xadd(keys.signals, {"data": v1_entry(old)})
    sync_redis.hset(keys.signals_latest, "600519.SH|ma_cross|1d", v1_entry(old))
    # in session: two provisional signals on today's forming bar
    prov_buy = as_provisional(make_signal("510300.SH", "ma_cross", "BUY", TODAY, 0.8, TODAY + 1000))
    prov_sell = as_provisional(make_signal("300750.SZ", "macd_cross", "BUY", TODAY, 0.7, TODAY + 1000))
    add_signal(sync_redis, keys, prov_buy)
    add_signal(sync_redis, keys, prov_sell)
    # the close: the first confirmed, the second withdrawn
    closed = make_signal("510300.SH", "ma_cross", "BUY", TODAY, 0.8, TODAY + 9000)
    confirmed = closed.model_copy(update={"status": "confirmed", "confirms": prov_buy.id})
    withdrawn = withdrawal(prov_sell, None, 9.9, TODAY + 9000)
    add_signal(sync_redis, keys, withdrawn)
    add_signal(sync_redis, keys, confirmed)
    # a provisional signal still open (its bar has not closed)
    open_prov = as_provisional(make_signal("159915.SZ", "rsi_reversal", "BUY", TODAY + DAY, 0.9, TODAY + DAY))
    add_signal(sync_redis, keys, open_prov)
    return {"old": old, "prov_buy": prov_buy, "prov_sell": prov_sell, "confirmed": confirmed,
            "withdrawn": withdrawn, "open": open_prov}  # fmt: skip


@pytest.fixture(scope="module")
def api(gateway: Gateway, seeded: dict[str, Signal]) -> httpx.Client:
    with gateway.client() as c:
        yield c


def _ids(body: dict) -> list[str]:
    return [i["id"] for i in body["items"]]


def test_the_stream_shows_what_each_signal_is(api: httpx.Client, seeded: dict[str, Signal]) -> None:
    items = api.get("/api/signals").json()["items"]
    by_id = {i["id"]: i for i in items}
    assert len(items) == 6
    assert by_id[seeded["open"].id]["provisional"] is True
    assert by_id[seeded["open"].id]["status"] == "provisional"
    assert by_id[seeded["confirmed"].id]["status"] == "confirmed"
    assert by_id[seeded["confirmed"].id]["confirms"] == seeded["prov_buy"].id
    w = by_id[seeded["withdrawn"].id]
    assert w["status"] == "withdrawn" and w["withdraws"] == seeded["prov_sell"].id and w["price"] == 9.9
    old = by_id[seeded["old"].id]  # a version 1 entry: a closed-bar signal
    assert old["schema_version"] == 1 and old["provisional"] is False and old["status"] is None


def test_filter_on_provisional_and_status(api: httpx.Client, seeded: dict[str, Signal]) -> None:
    closed = _ids(api.get("/api/signals?provisional=false").json())
    assert closed == [seeded["confirmed"].id, seeded["old"].id]
    prov = _ids(api.get("/api/signals", params={"provisional": "true"}).json())
    assert prov == [seeded["open"].id, seeded["withdrawn"].id, seeded["prov_sell"].id, seeded["prov_buy"].id]
    assert _ids(api.get("/api/signals?status=withdrawn").json()) == [seeded["withdrawn"].id]
    assert _ids(api.get("/api/signals?status=closed").json()) == [seeded["old"].id]
    one = api.get("/api/signals/510300.SH?provisional=false").json()
    assert _ids(one) == [seeded["confirmed"].id]


@pytest.mark.parametrize(
    ("query", "param"), [("provisional=maybe", "provisional"), ("status=final", "status")]
)
def test_a_bad_provisional_filter_is_422_naming_it(api: httpx.Client, query: str, param: str) -> None:
    for path in ("/api/signals", "/api/signals/latest"):
        r = api.get(f"{path}?{query}")
        assert r.status_code == 422 and r.json()["param"] == param, r.text


def test_latest_per_code_and_strategy(api: httpx.Client, seeded: dict[str, Signal]) -> None:
    items = api.get("/api/signals/latest").json()["items"]
    # newest bar first: the open provisional signal, then today's close (withdrawn, confirmed: written
    # at the same time, by code), then the version 1 entry
    assert [(i["code"], i["status"]) for i in items] == [
        ("159915.SZ", "provisional"),
        ("300750.SZ", "withdrawn"),
        ("510300.SH", "confirmed"),
        ("600519.SH", None),
    ]
    assert _ids(api.get("/api/signals/latest?provisional=false").json()) == [
        seeded["confirmed"].id,
        seeded["old"].id,
    ]
    assert _ids(api.get("/api/signals/latest?code=159915.SZ").json()) == [seeded["open"].id]


def test_the_buy_view_leaves_withdrawn_signals_out(api: httpx.Client, seeded: dict[str, Signal]) -> None:
    codes = [i["code"] for i in api.get("/api/signals/buy").json()["items"]]
    assert "300750.SZ" not in codes  # withdrawn at the close
    assert set(codes) == {"510300.SH", "159915.SZ", "600519.SH"}
    closed_only = [i["code"] for i in api.get("/api/signals/buy?provisional=false").json()["items"]]
    assert set(closed_only) == {"510300.SH", "600519.SH"}


def test_openapi_has_the_latest_route(api: httpx.Client) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    params = {p["name"] for p in paths["/api/signals/latest"]["get"]["parameters"]}
    assert {"provisional", "status", "code", "strategy"} <= params


@pytest.mark.browser
@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="no system Chromium (/usr/bin/chromium)")
def test_the_feed_marks_provisional_and_withdrawn_signals(
    gateway: Gateway, seeded: dict[str, Signal], sync_redis: redis.Redis, tmp_path: Path
) -> None:
    playwright = pytest.importorskip("playwright.sync_api")
    seed_bars(gateway.redis_url, gateway.keys, "159915.SZ", "1d", 5)  # they end before the forming bar
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 860})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(gateway.url + "/")
            item = page.locator(f"#feed li[data-id='{seeded['open'].id}']")
            item.wait_for(timeout=10_000)
            assert "盘中" in item.inner_text() and "prov" in (item.get_attribute("class") or "")
            assert float(item.evaluate("e => getComputedStyle(e).opacity")) < 1  # dimmed
            resolved = page.locator(f"#feed li[data-id='{seeded['prov_sell'].id}']")
            assert resolved.get_attribute("data-resolved") == "withdrawn"
            assert "已撤回" in resolved.inner_text()
            confirmed = page.locator(f"#feed li[data-id='{seeded['prov_buy'].id}']")
            assert confirmed.get_attribute("data-resolved") == "confirmed"
            # clicked, the open provisional signal shows on its forming daily bar (drawn from the
            # latest quote: the stored k-lines end before it)
            item.click()
            page.wait_for_function(
                "() => { const c = document.querySelector('#chart').dataset; return c.code === '159915.SZ'"
                " && c.period === '1d' && c.bars === '6' && c.markers === '1'; }",
                timeout=10_000,
            )
            assert "盘中" in page.locator("#chart-legend").inner_text()
            page.wait_for_function("document.querySelector('#conn').textContent.includes('live')")
            # the close withdraws the open provisional signal, live
            w = withdrawal(seeded["open"], None, 3.1, TODAY + DAY + 9000)
            add_signal(sync_redis, gateway.keys, w)
            live = page.locator(f"#feed li[data-id='{w.id}']")
            live.wait_for(timeout=10_000)
            assert "撤回" in live.inner_text() and live.get_attribute("data-status") == "withdrawn"
            page.wait_for_function(
                f"document.querySelector(\"#feed li[data-id='{seeded['open'].id}']\").dataset.resolved"
                " === 'withdrawn'",
                timeout=10_000,
            )
            out = Path(os.environ.get("MARKETBUS_ARTIFACTS", tmp_path))
            out.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(out / "dashboard-provisional.png"))
            assert not errors, errors
        finally:
            browser.close()
