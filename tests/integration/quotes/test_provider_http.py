"""The poll feeds and the universe refresh over real HTTP against the provider simulator
(``python -m quotes.providersim``, a subprocess on 127.0.0.1), never a live endpoint.

The market clock is a Tuesday at 12:00 (lunch, real speed): every provider's snapshot is frozen at
11:30:0x for the whole module, so eastmoney, sina and tencent describe the same moment and their
volumes can be compared exactly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from redis.asyncio import Redis

from marketbus.clock import MarketClock, parse_clock, wall_ms
from marketbus.contracts import Security, Tick
from marketbus.keys import Keys
from marketbus.sessions import shanghai_ms as sh
from quotes.feeds.eastmoney import EastMoney
from quotes.feeds.listing import fetch_universe
from quotes.feeds.poll import PollFeed, Provider
from quotes.feeds.sina import Sina
from quotes.feeds.tencent import Tencent
from quotes.providersim.launch import SimProcess, start_simulator
from quotes.universe import replace_universe

CODES = 6500


@pytest.fixture(scope="module")
def spec() -> str:
    return MarketClock(sh(2026, 3, 10, 12, 0), wall_ms(), 1.0).spec()


@pytest.fixture(scope="module")
def sim(spec: str) -> Iterator[SimProcess]:
    process = start_simulator(codes=CODES, seed=7, clock=spec)
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def clean(sim: SimProcess) -> Iterator[SimProcess]:
    sim.control("clear")
    sim.counters(reset=True)
    yield sim
    sim.control("clear")
    sim.control("release")


@pytest.fixture(scope="module")
def universe(sim: SimProcess) -> list[Security]:
    async def fetch() -> list[Security]:
        async with httpx.AsyncClient(timeout=30) as http:
            return await fetch_universe(http, sim.url)

    return asyncio.run(fetch())


def feed_of(
    sim: SimProcess, spec: str, providers: list[Provider], codes: list[str], **kw: object
) -> PollFeed:
    return PollFeed(providers, codes, clock=parse_clock(spec), base_url=sim.url, **kw)  # type: ignore[arg-type]


async def one_poll(feed: PollFeed) -> list[list[Tick]]:
    """The batches of one full poll, in the order they were handed over."""
    batches = []
    async with httpx.AsyncClient(timeout=feed.timeout) as http:
        async for batch in feed.poll(http):
            batches.append(batch)
    return batches


def codes_of(batches: list[list[Tick]]) -> set[str]:
    return {t.code for batch in batches for t in batch}


def stocks(universe: list[Security], market: str, n: int) -> list[str]:
    return sorted(s.code for s in universe if s.market == market)[:n]


async def test_the_universe_from_the_list_endpoint(universe: list[Security]) -> None:
    by_code = {s.code: s for s in universe}
    assert len(by_code) == CODES == len(universe)  # every listed code, once
    indices = [("000001.SH", "上证指数"), ("399001.SZ", "深证成指"), ("399006.SZ", "创业板指"),
               ("000300.SH", "沪深300"), ("000905.SH", "中证500"), ("000688.SH", "科创50")]  # fmt: skip
    for code, name in indices:
        assert (by_code[code].name, by_code[code].market) == (name, "指数")
    assert by_code["000001.SZ"].name == "平安银行" and by_code["000001.SZ"].market == "SZ主板"
    assert by_code["688981.SH"].market == "科创板" and by_code["300750.SZ"].market == "创业板"
    assert by_code["510300.SH"].market == "ETF"
    markets = {s.market for s in universe}
    assert markets == {"指数", "SH主板", "SZ主板", "创业板", "科创板", "北交所", "ETF", "LOF"}
    beijing = [s for s in universe if s.market == "北交所"]
    assert beijing and all(s.code.endswith(".BJ") and s.code.startswith("920") for s in beijing)
    assert by_code["600519.SH"].list_date is not None and by_code["000300.SH"].list_date is None


async def test_refresh_adds_a_new_listing_and_drops_a_delisted_code(
    sim: SimProcess, spec: str, universe: list[Security], client: Redis, keys: Keys
) -> None:
    assert await replace_universe(client, keys, universe) == (sorted(s.code for s in universe), [])
    known = {s.code for s in universe}
    new = next(c for c in (f"920{n:03d}.BJ" for n in range(999, 0, -1)) if c not in known)
    sim.control("list", code=new, name="新上市", price=12.5, list_date="20260310")
    sim.control("delist", code="600036.SH")
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            fresh = await fetch_universe(http, sim.url)
        added, removed = await replace_universe(client, keys, fresh)
        assert (added, removed) == ([new], ["600036.SH"])
        stored = await client.hgetall(keys.universe)
        assert len(stored) == CODES and b"600036.SH" not in stored
        listed = Security.model_validate_json(stored[new.encode()])
        assert (listed.name, listed.market, listed.list_date) == ("新上市", "北交所", "20260310")
        # the running feed polls the new set from its next poll on
        feed = feed_of(sim, spec, [EastMoney()], ["600519.SH", "600036.SH"])
        assert codes_of(await one_poll(feed)) == {"600519.SH"}
        feed.set_codes(s.code for s in fresh if s.code in (new, "600519.SH"))
        assert codes_of(await one_poll(feed)) == {"600519.SH", new}
        with pytest.raises(ValueError, match="empty"):
            await replace_universe(client, keys, [])
        assert len(await client.hkeys(keys.universe)) == CODES  # a failed fetch changes nothing
    finally:
        sim.control("delist", code=new)
        sim.control("list", code="600036.SH", name="招商银行", price=35.0)


async def test_full_poll_concurrent_chunks_each_provider(
    clean: SimProcess, spec: str, universe: list[Security]
) -> None:
    codes = [s.code for s in universe]
    for provider, chunks in ((EastMoney(), 33), (Sina(), 33), (Tencent(), 109)):
        feed = feed_of(clean, spec, [provider], codes)
        batches = await one_poll(feed)
        report = feed.last_report
        assert report is not None
        assert report.providers == {provider.name: chunks} and report.failed_chunks == 0
        # every code but the suspended ones (eastmoney "-", sina price 0, tencent placeholder)
        assert report.codes_requested == CODES and report.codes_covered == len(codes_of(batches))
        assert CODES - 20 < report.codes_covered < CODES
    counters = clean.counters()["served"]
    assert counters["eastmoney"]["/api/qt/ulist.np/get"] == 33
    assert counters["sina"]["/list="] == 33 and counters["tencent"]["/q="] == 109


async def test_a_failed_chunk_fails_over_alone(
    clean: SimProcess, spec: str, universe: list[Security]
) -> None:
    codes = stocks(universe, "SH主板", 600)  # three eastmoney chunks of 200
    victim = codes[250]  # in the second chunk
    clean.control("fault", provider="eastmoney", kind="status", status=502, code=victim)
    feed = feed_of(clean, spec, [EastMoney(), Sina(), Tencent()], codes)
    batches = await one_poll(feed)
    assert feed.last_report is not None
    assert feed.last_report.providers == {"eastmoney": 2, "sina": 1}
    assert feed.last_report.failed_chunks == 0
    assert victim in codes_of(batches)
    assert feed.health["eastmoney"].failures == 0  # it served the other chunks: no backoff
    assert clean.counters()["faults"] == {"eastmoney:status": 1}
    # the failed chunk keeps going to sina for a while; the others stay on eastmoney
    await one_poll(feed)
    assert feed.last_report.providers == {"eastmoney": 2, "sina": 1}
    assert clean.counters()["faults"] == {"eastmoney:status": 1}


async def test_a_timed_out_chunk_fails_over(clean: SimProcess, spec: str, universe: list[Security]) -> None:
    codes = stocks(universe, "SZ主板", 400)
    victim = codes[10]
    clean.control("fault", provider="eastmoney", kind="timeout", code=victim, seconds=120)
    feed = feed_of(clean, spec, [EastMoney(), Sina()], codes, timeout=3.0)
    batches = await one_poll(feed)
    assert feed.last_report is not None and feed.last_report.failed_chunks == 0
    assert feed.last_report.providers.get("sina", 0) >= 1
    assert victim in codes_of(batches)


async def test_a_slow_chunk_does_not_hold_the_others(
    clean: SimProcess, spec: str, universe: list[Security]
) -> None:
    codes = stocks(universe, "创业板", 1000)  # five chunks
    slow_chunk = set(codes[400:600])
    victim = codes[450]
    clean.control("fault", provider="eastmoney", kind="slow", code=victim, seconds=120)
    feed = feed_of(clean, spec, [EastMoney()], codes, timeout=300.0)
    got: list[set[str]] = []
    async with httpx.AsyncClient(timeout=30) as http:
        it = aiter(feed.poll(http))
        while len(got) < 4:  # the four fast chunks come while the slow one is still held
            got.append({t.code for t in await asyncio.wait_for(anext(it), 60)})
        assert not any(batch & slow_chunk for batch in got)
        await http.post(f"{clean.url}/_control/release")
        last = {t.code for t in await asyncio.wait_for(anext(it), 60)}
        assert victim in last and last <= slow_chunk
        with pytest.raises(StopAsyncIteration):
            await anext(it)
    assert feed.last_report is not None and feed.last_report.providers == {"eastmoney": 5}


async def test_tencent_star_volume_matches_the_other_providers(
    clean: SimProcess, spec: str, universe: list[Security]
) -> None:
    codes = ["688981.SH", *stocks(universe, "科创板", 5), "600519.SH", "300750.SZ", "510300.SH"]
    volumes = {}
    for provider in (EastMoney(), Sina(), Tencent()):
        ticks = [t for batch in await one_poll(feed_of(clean, spec, [provider], codes)) for t in batch]
        volumes[provider.name] = {t.code: (t.ts, t.volume) for t in ticks}
    assert set(volumes["tencent"]) == set(codes)
    assert volumes["tencent"] == volumes["sina"]  # shares everywhere, STAR included
    assert {c: v[1] for c, v in volumes["eastmoney"].items()} == {c: v[1] for c, v in volumes["sina"].items()}


async def test_tencent_placeholder_rows_are_not_ticks(
    clean: SimProcess, spec: str, universe: list[Security]
) -> None:
    gone, kept = stocks(universe, "SZ主板", 2)
    clean.control("delist", code=gone)
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            answer = await http.get(f"{clean.url}/q=sz{gone[:6]},sz{kept[:6]},sz000000")
        body = answer.content.decode("gbk")
        assert f'v_sz{gone[:6]}="' in body and "090000" in body  # the simulator sent a placeholder
        assert 'v_pv_none_match="1"' in body  # a code it never knew
        ticks = [
            t for b in await one_poll(feed_of(clean, spec, [Tencent()], [gone, kept, "000000.SZ"])) for t in b
        ]
        assert [t.code for t in ticks] == [kept]
        # sina answers "" for the delisted code; eastmoney leaves it out
        for provider in (Sina(), EastMoney()):
            ticks = [t for b in await one_poll(feed_of(clean, spec, [provider], [gone, kept])) for t in b]
            assert [t.code for t in ticks] == [kept]
    finally:
        clean.control("list", code=gone, price=10.0)


async def test_garbage_and_5xx_fail_over_then_recover(
    clean: SimProcess, spec: str, universe: list[Security]
) -> None:
    codes = stocks(universe, "SH主板", 100)
    clean.control("fault", provider="eastmoney", kind="status", status=500)
    clean.control("fault", provider="sina", kind="garbage", count=1)
    feed = feed_of(clean, spec, [EastMoney(), Sina(), Tencent()], codes, backoff_start=0.05)
    batches = await one_poll(feed)
    assert feed.last_report is not None and feed.last_report.providers == {"tencent": 2}
    assert len(codes_of(batches)) >= 95
    assert feed.health["eastmoney"].failures == 1 and feed.health["sina"].failures == 1
    clean.control("fault", provider="tencent", kind="status", status=503)
    clean.control("fault", provider="sina", kind="status", status=503)
    feed = feed_of(clean, spec, [EastMoney(), Sina(), Tencent()], codes, backoff_start=0.05)
    assert await one_poll(feed) == []  # everything fails: nothing raised, the chunk counted lost
    assert feed.last_report is not None and feed.last_report.failed_chunks == 2  # tencent: 60 + 40
    clean.control("clear")
    got: set[str] = set()
    async for batch in feed_of(clean, spec, [EastMoney(), Sina(), Tencent()], codes, interval=0.1):
        got |= {t.code for t in batch}
        if len(got) >= 95:
            break
    counters = clean.counters()
    assert counters["faults"]["eastmoney:status"] >= 2 and counters["faults"]["sina:garbage"] == 1


async def test_bad_control_input_gets_a_precise_400(clean: SimProcess) -> None:
    async with httpx.AsyncClient(timeout=10, base_url=clean.url) as http:
        bad = await http.post("/_control/fault", json={"provider": "eastmoney", "kind": "explode"})
        assert bad.status_code == 400 and "kind 'explode' is not one of" in bad.json()["error"]
        bad = await http.post("/_control/list", json={"code": "60000X.SH"})
        assert bad.status_code == 400 and "60000X.SH" in bad.json()["error"]
        bad = await http.get("/api/qt/clist/get", params={"fs": "m:1 t:2", "pn": "two"})
        assert bad.status_code == 400 and "pn='two'" in bad.json()["error"]
    assert clean.counters()["faults"] == {}  # nothing was installed
