"""The provider simulator's planted snapshots (``POST /_control/plant``), over real HTTP.

The market clock is a Tuesday at 12:00 (lunch, real speed): every snapshot is frozen at 11:30:0x,
so a planted snapshot differs from the market's one only by what was planted.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from marketbus.clock import MarketClock, parse_clock, wall_ms
from marketbus.sessions import shanghai_ms as sh
from quotes.feeds.eastmoney import EastMoney
from quotes.feeds.poll import PollFeed, Provider
from quotes.feeds.sina import Sina
from quotes.feeds.tencent import Tencent
from quotes.providersim.launch import SimProcess, start_simulator

CODE, OTHER = "600519.SH", "000001.SZ"


@pytest.fixture(scope="module")
def spec() -> str:
    return MarketClock(sh(2026, 3, 10, 12, 0), wall_ms(), 1.0).spec()


@pytest.fixture(scope="module")
def sim(spec: str) -> Iterator[SimProcess]:
    process = start_simulator(codes=200, seed=7, clock=spec)
    try:
        yield process
    finally:
        process.stop()


def planted(sim: SimProcess) -> dict[str, list[dict[str, object]]]:
    response = httpx.get(f"{sim.url}/_control/planted", timeout=10)
    response.raise_for_status()
    doc: dict[str, list[dict[str, object]]] = response.json()
    return doc


async def poll(sim: SimProcess, spec: str, provider: Provider) -> dict[str, tuple[int, float, float]]:
    feed = PollFeed([provider], [CODE, OTHER], clock=parse_clock(spec), base_url=sim.url)
    out = {}
    async with httpx.AsyncClient(timeout=10) as http:
        async for batch in feed.poll(http):
            out.update({t.code: (t.ts, t.price, t.volume) for t in batch})
    return out


@pytest.mark.parametrize("provider", [EastMoney(), Sina(), Tencent()], ids=lambda p: p.name)
async def test_a_plant_alters_the_next_snapshot_once_and_is_recorded(
    sim: SimProcess, spec: str, provider: Provider
) -> None:
    before = await poll(sim, spec, provider)
    served_before = len(planted(sim)["served"])
    answer = sim.control("plant", code=CODE, at=0, shift_s=600, price=9999.0)
    assert answer["pending"] == 1
    altered = await poll(sim, spec, provider)
    ts, _price, volume = before[CODE]
    assert altered[CODE] == (ts + 600_000, 9999.0, volume)  # stamp moved, price set, rest kept
    assert altered[OTHER] == before[OTHER]  # another code is untouched
    assert await poll(sim, spec, provider) == before  # served once, then the market again
    doc = planted(sim)
    assert doc["pending"] == []
    (record,) = doc["served"][served_before:]
    assert record["code"] == CODE and record["provider"] == provider.name
    assert record["ts"] == ts + 600_000 and record["price"] == 9999.0 and record["volume"] == volume


async def test_a_plant_waits_for_its_market_time(sim: SimProcess, spec: str) -> None:
    later = parse_clock(spec).now_ms() + 3_600_000
    sim.control("plant", code=OTHER, at=later, price=1.0)
    try:
        assert (await poll(sim, spec, EastMoney()))[OTHER][1] != 1.0
        assert [p["code"] for p in planted(sim)["pending"]] == [OTHER]
    finally:
        # served once the clock is there: a plant at 0 for the same code is served after it
        sim.control("plant", code=OTHER, at=0, price=2.0)
        assert (await poll(sim, spec, EastMoney()))[OTHER][1] == 2.0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"code": "600519", "at": 0, "price": 1.0}, "code '600519' is not like 600000.SH"),
        ({"code": "688888.SH", "at": 0, "price": 1.0}, "688888.SH is not listed"),
        ({"code": CODE, "at": "10:30", "price": 1.0}, "at '10:30' is not YYYY-MM-DDTHH:MM:SS"),
        ({"code": CODE, "price": 1.0}, "at None must be market epoch ms"),
        ({"code": CODE, "at": 0}, "a plant needs shift_s or at least one of price"),
        ({"code": CODE, "at": 0, "price": -1}, "price -1 must be a number from 0"),
        ({"code": CODE, "at": 0, "price": 1.0, "count": 0}, "count 0 must be a positive integer"),
        ({"code": CODE, "at": 0, "colour": "red"}, "unknown plant field(s) colour"),
    ],
)
def test_a_bad_plant_gets_a_precise_400_and_plants_nothing(
    sim: SimProcess, body: dict[str, object], message: str
) -> None:
    pending = planted(sim)["pending"]
    response = httpx.post(f"{sim.url}/_control/plant", json=body, timeout=10)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert planted(sim)["pending"] == pending


def test_the_clock_is_set_once_the_simulator_is_up(sim: SimProcess) -> None:
    before = httpx.get(f"{sim.url}/_control/health", timeout=10).json()["now_ms"]
    try:
        spec = MarketClock(sh(2026, 11, 20, 9, 40), wall_ms(), 1.0).spec()
        now = sim.control("clock", clock=spec)["now_ms"]
        assert abs(now - sh(2026, 11, 20, 9, 40)) < 60_000 and abs(now - before) > 3_600_000
        response = httpx.post(f"{sim.url}/_control/clock", json={"clock": "09:40"}, timeout=10)
        assert response.status_code == 400 and "market clock '09:40' is not like" in response.json()["error"]
    finally:
        sim.control("clock", clock=MarketClock(sh(2026, 3, 10, 12, 0), wall_ms(), 1.0).spec())
