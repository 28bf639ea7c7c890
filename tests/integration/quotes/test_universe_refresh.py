"""The trading-morning universe refresh, against the provider simulator over real HTTP."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from redis.asyncio import Redis

from marketbus.clock import MarketClock
from marketbus.contracts import Security
from marketbus.keys import Keys
from marketbus.sessions import shanghai_ms
from quotes.providersim.launch import SimProcess, running_simulator
from quotes.universe_refresh import keep_fresh, listings_of, next_refresh_ms


def test_the_refresh_is_at_nine_on_trading_days() -> None:
    friday = shanghai_ms(2026, 11, 20, 8, 0)
    assert next_refresh_ms(friday) == shanghai_ms(2026, 11, 20, 9, 0)
    assert next_refresh_ms(shanghai_ms(2026, 11, 20, 9, 0)) == shanghai_ms(2026, 11, 23, 9, 0)
    assert next_refresh_ms(shanghai_ms(2026, 11, 21, 8, 0)) == shanghai_ms(2026, 11, 23, 9, 0)
    # National Day week 2026: closed from 1 to 7 October
    assert next_refresh_ms(shanghai_ms(2026, 9, 30, 10, 0)) == shanghai_ms(2026, 10, 8, 9, 0)


def test_codes_setting_selects_from_the_universe() -> None:
    securities = [Security(code="600519.SH", name="贵州茅台", market="SH主板"),
                  Security(code="000300.SH", name="沪深300", market="指数")]  # fmt: skip
    assert [item.code for item in listings_of(securities, " 000300.sh ,")] == ["000300.SH"]
    assert len(listings_of(securities)) == 2


@pytest.fixture(scope="module")
def sim() -> Iterator[SimProcess]:
    with running_simulator(codes=800) as process:
        yield process


async def test_a_morning_refresh_brings_new_listings_and_drops_delisted_ones(
    sim: SimProcess, client: Redis, keys: Keys
) -> None:
    listed = [row["code"] for row in sim.listing()["securities"]]
    gone = next(code for code in listed if code.endswith(".SZ") and code.startswith("00"))
    await client.hset(
        keys.universe, mapping={gone: Security(code=gone, name="x", market="SZ主板").model_dump_json()}
    )
    sim.control("list", code="603999.SH", name="新上市", price=12.5, list_date="20261123")
    sim.control("delist", code=gone)
    # a market clock two market seconds before 09:00 of a trading day, 60x real time
    clock = MarketClock(shanghai_ms(2026, 11, 23, 8, 59, 58), time.time_ns() // 1_000_000, 60.0)
    applied: list[list[Security]] = []
    stop = asyncio.Event()

    def apply(securities: list[Security]) -> None:
        applied.append(securities)
        stop.set()

    await asyncio.wait_for(
        keep_fresh(
            client, keys, sim.url, clock.now_ms, apply, stop,
            seconds_until=lambda ts: clock.wall_seconds(ts - clock.now_ms()),
        ),
        timeout=60,
    )  # fmt: skip
    assert len(applied) == 1
    codes = {s.code for s in applied[0]}
    assert "603999.SH" in codes and gone not in codes
    stored = {k.decode() for k in await client.hkeys(keys.universe)}
    assert stored == codes
    assert Security.model_validate_json(await client.hget(keys.universe, "603999.SH")).list_date == "20261123"
