"""The chart pages the old app opens in a WebView (OLD_API.md P8, the index chart of P9), over real
HTTP from a real gateway process with seeded bars and signals: no token needed; the page carries
the bars of the asked period and the markers of the asked strategy's signals, and nothing else;
every period name of the old app; a bad strategy or period is a 400 ``{"detail"}``, a bad theme
dark; provisional signals as the dashboard shows them; the index chart; the page's own assets; a
security name cannot break out of the page. The drawing itself is checked in a browser
(tests/e2e/test_chart_browser.py)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest
import redis

from gateway.chart.params import OLD_PERIODS
from marketbus.contracts import Security, Signal, StrategyInfo, signal_id
from marketbus.sessions import PERIOD_MS
from signals.provisional import as_provisional, withdrawal

from .conftest import SECURITIES, T0, Gateway, add_signal, make_quote, seed_bars, seed_market

CODE = "600519.SH"  # 贵州茅台 (SH主板)
N_BARS = 30
INDEX = Security(code="000001.SH", name="上证指数", market="指数")
NASTY = Security(code="600000.SH", name="浦发</script><script>window.pwned=1</script>", market="SH主板")
DATA_RE = re.compile(r'<script type="application/json" id="chart-data">(.*?)</script>', re.S)


def signal(
    code: str,
    strategy: str,
    side: str,
    period: str,
    bar_ts: int,
    price: float = 10.0,
    created_ts: int | None = None,
) -> Signal:
    sec = next(s for s in [*SECURITIES, INDEX, NASTY] if s.code == code)
    return Signal(
        id=signal_id(code, strategy, period, bar_ts),
        code=code,
        name=sec.name,
        market=sec.market,
        strategy=strategy,
        strategy_name=strategy,
        side=side,  # type: ignore[arg-type]
        price=price,
        period=period,  # type: ignore[arg-type]
        bar_ts=bar_ts,
        confidence=0.7,
        volume_ratio=1.1,
        change_percent=1.0,
        reason=f"{strategy} {side} test",
        created_ts=created_ts if created_ts is not None else bar_ts + 1000,
    )


def bar_ts(period: str, i: int) -> int:
    return T0 + i * PERIOD_MS[period]


@pytest.fixture(scope="module")
def api(gateway: Gateway, sync_redis: redis.Redis) -> Iterator[httpx.Client]:
    keys = gateway.keys
    seed_market(sync_redis, keys)
    for sec in (INDEX, NASTY):
        sync_redis.hset(keys.universe, sec.code, sec.model_dump_json())
    sync_redis.hset(keys.snapshots, NASTY.code, make_quote(NASTY, 8.0).model_dump_json())
    published = [
        StrategyInfo(key="volume_wave", name="动量守恒", min_bars=40),
        StrategyInfo(key="ma_cross", name="均线金叉", min_bars=21),
    ]
    sync_redis.hset(keys.strategies, mapping={s.key: s.model_dump_json() for s in published})
    for mb in OLD_PERIODS.values():
        seed_bars(gateway.redis_url, keys, CODE, mb, N_BARS)  # type: ignore[arg-type]
        add_signal(sync_redis, keys, signal(CODE, "volume_wave", "BUY", mb, bar_ts(mb, 5), 15.5))
        add_signal(sync_redis, keys, signal(CODE, "volume_wave", "SELL", mb, bar_ts(mb, 12), 22.5))
        # not on this chart: another strategy, and a bar the store does not have
        add_signal(sync_redis, keys, signal(CODE, "ma_cross", "BUY", mb, bar_ts(mb, 7)))
        add_signal(sync_redis, keys, signal(CODE, "volume_wave", "BUY", mb, bar_ts(mb, N_BARS + 50)))
    seed_bars(gateway.redis_url, keys, INDEX.code, "1d", 200)
    seed_bars(gateway.redis_url, keys, NASTY.code, "1d", 10)
    with gateway.client() as client:
        yield client


def page_data(resp: httpx.Response) -> dict[str, Any]:
    assert resp.status_code == 200, resp.text[:500]
    assert resp.headers["content-type"].startswith("text/html")
    found = DATA_RE.search(resp.text)
    assert found is not None, resp.text[:500]
    return json.loads(found.group(1))


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.refs += [v for k, v in attrs if k in ("src", "href") and v]


def refs_of(html: str) -> list[str]:
    parser = _Refs()
    parser.feed(html)
    return parser.refs


@pytest.mark.parametrize("old", list(OLD_PERIODS))
def test_a_chart_of_every_old_period_marks_the_strategys_signals_at_their_bars(
    api: httpx.Client, old: str
) -> None:
    mb = OLD_PERIODS[old]
    resp = api.get("/api/chart/600519", params={"strategy": "volume_wave", "period": old, "theme": "light"})
    data = page_data(resp)  # no token, no header: the WebView sends none
    assert (data["code"], data["app_code"], data["name"]) == (CODE, "600519", "贵州茅台")
    assert (data["period"], data["period_name"], data["theme"]) == (mb, old, "light")
    assert data["strategy"] == {"key": "volume_wave", "name": "动量守恒"}  # the published name
    assert [b[0] for b in data["bars"]] == [bar_ts(mb, i) for i in range(N_BARS)]
    assert data["bars"][3] == [bar_ts(mb, 3), 13.0, 14.0, 12.0, 13.5, 1003.0]  # ts, o, h, l, c, v
    markers = [(m["ts"], m["side"], m["price"]) for m in data["markers"]]
    assert markers == [(bar_ts(mb, 5), "BUY", 15.5), (bar_ts(mb, 12), "SELL", 22.5)]
    assert data["forming"] is False
    assert [p["name"] for p in data["periods"]] == list(OLD_PERIODS)  # the period tabs
    assert 'data-theme="light"' in resp.text


def test_the_page_loads_only_the_gateways_own_files(api: httpx.Client) -> None:
    resp = api.get("/api/chart/600519")
    refs = refs_of(resp.text)
    assert "/static/vendor/lightweight-charts.js" in refs and "/static/chart/chart.js" in refs
    assert all((r.startswith("/") and not r.startswith("//")) or r.startswith("data:") for r in refs), refs
    assert "http://" not in resp.text and "https://" not in resp.text
    csp = resp.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "connect-src 'self'" in csp
    assert resp.headers["cache-control"] == "no-store"
    for ref in refs:
        if ref.startswith("/"):
            asset = api.get(ref)
            assert asset.status_code == 200, ref
    assert api.get("/static/chart/chart.js").headers["content-type"].startswith("text/javascript")
    assert api.get("/static/chart/chart.css").headers["content-type"].startswith("text/css")
    missing = api.get("/static/chart/secret.py")
    assert missing.status_code == 404 and "detail" in missing.json()


def test_defaults_are_volume_wave_daily_dark(api: httpx.Client) -> None:
    data = page_data(api.get("/api/chart/600519"))
    assert (data["strategy"]["key"], data["period"], data["theme"]) == ("volume_wave", "1d", "dark")
    assert len(data["markers"]) == 2


@pytest.mark.parametrize("theme", ["purple", "DARK", "", "light;"])
def test_a_bad_theme_is_dark(api: httpx.Client, theme: str) -> None:
    resp = api.get("/api/chart/600519", params={"theme": theme})
    assert page_data(resp)["theme"] == "dark"
    assert 'data-theme="dark"' in resp.text


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"strategy": "nope"}, "strategy"),
        ({"strategy": "volume_wave", "period": "2h"}, "period"),
        ({"period": "DAILY"}, "period"),
    ],
)
def test_a_bad_strategy_or_period_is_a_400_detail(
    api: httpx.Client, params: dict[str, str], field: str
) -> None:
    resp = api.get("/api/chart/600519", params=params)
    assert resp.status_code == 400
    body = resp.json()
    assert list(body) == ["detail"] and body["detail"].startswith(f"{field}:"), body


def test_codes_bad_and_unknown(api: httpx.Client) -> None:
    bad = api.get("/api/chart/60O519")
    assert bad.status_code == 400 and bad.json()["detail"].startswith("code:")
    unknown = api.get("/api/chart/601999")
    assert unknown.status_code == 404 and "601999" in unknown.json()["detail"]
    # the suffixed form works too
    assert page_data(api.get("/api/chart/600519.SH"))["code"] == CODE


def test_the_old_apps_three_strategies_and_any_published_one_are_accepted(api: httpx.Client) -> None:
    for key, name in [("volume_wave_enhanced", "量价进阶"), ("volatility_conservation", "趋势追踪")]:
        data = page_data(api.get("/api/chart/600519", params={"strategy": key}))
        assert data["strategy"] == {"key": key, "name": name} and data["markers"] == []
    ma = page_data(api.get("/api/chart/600519", params={"strategy": "ma_cross"}))
    assert [(m["ts"], m["side"]) for m in ma["markers"]] == [(bar_ts("1d", 7), "BUY")]


def test_provisional_signals_as_the_dashboard_shows_them(gateway: Gateway, sync_redis: redis.Redis) -> None:
    keys = gateway.keys
    code = "300750.SZ"
    seed_bars(gateway.redis_url, keys, code, "1d", 20)
    last = bar_ts("1d", 19)
    today = bar_ts("1d", 20)
    # a provisional BUY the close confirmed, on a stored bar: one marker, the closed one
    prov_old = as_provisional(signal(code, "ma_cross", "BUY", "1d", last, 28.0))
    closed = signal(code, "ma_cross", "BUY", "1d", last, 28.5, created_ts=last + 9000)
    add_signal(sync_redis, keys, prov_old)
    add_signal(sync_redis, keys, closed.model_copy(update={"status": "confirmed", "confirms": prov_old.id}))
    # a provisional SELL withdrawn: no marker
    prov_sell = as_provisional(signal(code, "ma_cross", "SELL", "1d", bar_ts("1d", 15)))
    add_signal(sync_redis, keys, prov_sell)
    add_signal(sync_redis, keys, withdrawal(prov_sell, None, 25.0, bar_ts("1d", 15) + 9000))
    # today, in session: a provisional BUY on the forming bar, drawn from the latest snapshot
    add_signal(sync_redis, keys, as_provisional(signal(code, "ma_cross", "BUY", "1d", today, 31.0)))
    sec = next(s for s in SECURITIES if s.code == code)
    quote = make_quote(sec, 31.2, today + 3_600_000)
    sync_redis.hset(keys.snapshots, code, quote.model_dump_json())

    with gateway.client() as c:
        data = page_data(c.get("/api/chart/300750", params={"strategy": "ma_cross"}))
        weekly = page_data(c.get("/api/chart/300750", params={"strategy": "ma_cross", "period": "weekly"}))
    assert data["forming"] is True and len(data["bars"]) == 21
    assert data["bars"][-1] == [
        today,
        round(quote.open or 0, 4),
        round(quote.high or 0, 4),
        round(quote.low or 0, 4),
        31.2,
        quote.volume,
    ]
    markers = [(m["ts"], m["side"], m["provisional"], m["price"]) for m in data["markers"]]
    assert markers == [(last, "BUY", False, 28.5), (today, "BUY", True, 31.0)]
    assert weekly["bars"] == [] and weekly["markers"] == [] and weekly["forming"] is False


def test_the_index_chart(api: httpx.Client) -> None:
    resp = api.get("/api/index/chart", params={"index_code": "000001.SH", "days": 60, "theme": "light"})
    data = page_data(resp)
    assert (data["code"], data["app_code"], data["name"], data["market"]) == (
        "000001.SH",
        "000001.SH",  # an index keeps its suffix in the app
        "上证指数",
        "指数",
    )
    assert len(data["bars"]) == 60 and data["bars"][-1][0] == bar_ts("1d", 199)
    assert data["strategy"] is None and data["markers"] == [] and data["periods"] == []
    assert (data["period"], data["theme"], data["decimals"]) == ("1d", "light", 2)
    default = page_data(api.get("/api/index/chart"))  # 000001.SH, 180 days, dark
    assert (default["code"], len(default["bars"]), default["theme"]) == ("000001.SH", 180, "dark")
    assert page_data(api.get("/api/index/chart", params={"theme": "neon"}))["theme"] == "dark"
    for days in (10, 5000):
        too = api.get("/api/index/chart", params={"days": days})
        assert too.status_code == 422 and too.json()["detail"][0]["loc"] == ["query", "days"]
    unknown = api.get("/api/index/chart", params={"index_code": "399999.SZ"})
    assert unknown.status_code == 404 and "399999.SZ" in unknown.json()["detail"]
    bad = api.get("/api/index/chart", params={"index_code": "SH000001"})
    assert bad.status_code == 400 and bad.json()["detail"].startswith("index_code:")


def test_a_name_cannot_break_out_of_the_page(api: httpx.Client) -> None:
    resp = api.get("/api/chart/600000")
    data = page_data(resp)  # the data block ends where the page says, and holds the name intact
    assert data["name"] == NASTY.name
    assert "<script>window.pwned" not in resp.text
    assert resp.text.count("</script>") == 3  # the library, the page's script, the data block
    assert "浦发&lt;/script&gt;" in resp.text  # in the title, escaped


def test_an_etf_chart_has_three_decimals(gateway: Gateway, sync_redis: redis.Redis) -> None:
    seed_bars(gateway.redis_url, gateway.keys, "510300.SH", "1d", 5)
    with gateway.client() as c:
        data = page_data(c.get("/api/chart/510300"))
    assert (data["app_code"], data["market"], data["decimals"]) == ("510300", "ETF", 3)


def test_the_openapi_document_lists_the_pages(api: httpx.Client) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    for path in ("/api/chart/{code}", "/api/index/chart"):
        answers = paths[path]["get"]["responses"]
        assert "text/html" in answers["200"]["content"]
        assert "application/json" in answers["400"]["content"]
    assert "/static/chart/{name}" not in paths
