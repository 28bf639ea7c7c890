import asyncio
import math
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pytest

from marketbus.contracts import Tick
from marketbus.sessions import accepts_tick, is_in_session
from marketbus.sessions import shanghai_ms as sh
from quotes.feeds.base import DayState, SessionClock
from quotes.feeds.sim import SimFeed, SimMarket
from quotes.universe import load_universe

UNIVERSE = load_universe()
BY_CODE = {item.code: item for item in UNIVERSE}
FRI = (2024, 5, 10)


def run(seed: int = 7, start: int = sh(*FRI, 9, 30), end: int = sh(*FRI, 9, 40)) -> list[Tick]:
    return SimMarket(UNIVERSE, seed, start).step_until(end)


def test_reproducible_from_the_seed() -> None:
    a, b = run(), run()
    assert [t.model_dump() for t in a] == [t.model_dump() for t in b]
    c = run(seed=8)
    assert [t.price for t in a[:500]] != [t.price for t in c[:500]]


def test_ticks_are_valid_contracts_in_session_with_tick_sizes_and_lots() -> None:
    ticks = run()
    per_code: dict[str, list[Tick]] = defaultdict(list)
    for tick in ticks:
        Tick.model_validate(tick.model_dump())  # a real, valid contract
        assert is_in_session(tick.ts)
        per_code[tick.code].append(tick)
    assert set(per_code) == set(BY_CODE)
    for code, series in per_code.items():
        size = BY_CODE[code].tick_size
        assert 120 <= len(series) <= 280  # about one tick every 3 market seconds
        last_volume = 0.0
        for tick in series:
            steps = tick.price / size
            assert math.isclose(steps, round(steps), abs_tol=1e-6), (code, tick.price)
            assert tick.volume % 100 == 0 and tick.volume > last_volume
            last_volume = tick.volume
            assert tick.low <= tick.price <= tick.high  # type: ignore[operator]
        assert [t.ts for t in series] == sorted(t.ts for t in series)


def test_no_ticks_at_lunch_and_overnight() -> None:
    ticks = run(start=sh(*FRI, 11, 28), end=sh(*FRI, 13, 2))
    ticks += run(start=sh(*FRI, 14, 58), end=sh(2024, 5, 13, 9, 31))
    assert all(accepts_tick(t.ts) and is_in_session(t.ts) for t in ticks)
    hours = {(t.ts - sh(*FRI)) // 3_600_000 for t in ticks if t.ts < sh(2024, 5, 11)}
    assert hours == {11, 13, 14}
    monday = [t for t in ticks if t.ts >= sh(2024, 5, 13)]
    assert monday and monday[0].ts >= sh(2024, 5, 13, 9, 30)


def test_new_day_resets_volume_and_sets_pre_close() -> None:
    market = SimMarket(UNIVERSE, 7, sh(*FRI, 14, 55))
    friday = market.step_until(sh(*FRI, 15))
    last = {t.code: t for t in friday}
    monday = market.step_until(sh(2024, 5, 13, 9, 32))
    first: dict[str, Tick] = {}
    for t in monday:
        first.setdefault(t.code, t)
    for code, tick in first.items():
        assert tick.pre_close == market.day_states()[code].pre_close
        assert tick.pre_close == last[code].price
        assert tick.volume < last[code].volume or tick.volume <= 100 * 100_000


def test_price_limits_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("quotes.feeds.sim.REGIME_SWITCH", 0.0)  # keep the rally going
    monkeypatch.setattr("quotes.feeds.sim.SURGE_START", 0.0)
    market = SimMarket(UNIVERSE, 7, sh(*FRI, 9, 30))
    market.mu[:] = 0.02  # a violent rally everywhere: every code must stop at its limit
    ticks = market.step_until(sh(*FRI, 9, 40))
    last = {t.code: t for t in ticks}
    pct = dict(zip(market.codes, market.limit_pct, strict=True))  # the day's dated limits
    for code, tick in last.items():
        item = BY_CODE[code]
        exact = Decimal(str(item.ref_price)) * (1 + Decimal(str(pct[code])))
        limit = float(exact.quantize(Decimal(str(item.tick_size)), ROUND_HALF_UP))
        assert math.isclose(tick.high, limit, abs_tol=item.tick_size / 2), code  # type: ignore[arg-type]
    assert all(t.price <= t.high for t in ticks)  # type: ignore[operator]
    assert math.isclose(last["300750.SZ"].high, 458.40)  # type: ignore[arg-type]  # 382.00 * 1.2
    assert math.isclose(last["600519.SH"].high, 1647.80)  # type: ignore[arg-type]  # 1498.00 * 1.1
    assert math.isclose(last["000656.SZ"].high, 1.60)  # type: ignore[arg-type]  # ST: 5%


def test_resume_continues_the_day() -> None:
    state = DayState(
        day_ms=sh(*FRI), pre_close=4.0, price=4.1, open=4.0, high=4.2, low=3.9,
        volume=1_000_000, amount=4_000_000,
    )  # fmt: skip
    market = SimMarket(UNIVERSE, 7, sh(*FRI, 13), {"510300.SH": state})
    ticks = [t for t in market.step_until(sh(*FRI, 13, 5)) if t.code == "510300.SH"]
    assert ticks[0].pre_close == 4.0 and ticks[0].open == 4.0
    assert ticks[0].volume > 1_000_000 and abs(ticks[0].price - 4.1) < 0.05


def test_trends_cross_moving_averages_regularly() -> None:
    ticks = SimMarket(UNIVERSE[::6], 7, sh(*FRI, 9, 30)).step_until(sh(*FRI, 15))
    closes: dict[str, dict[int, float]] = defaultdict(dict)
    for t in ticks:
        closes[t.code][t.ts // 60_000] = t.price
    crossings = 0
    for series in closes.values():
        c = np.array(list(series.values()))
        fast = np.convolve(c, np.ones(5) / 5, "valid")[15:]
        slow = np.convolve(c, np.ones(20) / 20, "valid")
        diff = np.sign(fast - slow)
        crossings += int((diff[1:] * diff[:-1] < 0).sum())
    assert crossings / len(closes) >= 3  # several MA5/MA20 crossings per code and day


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_feed_hands_over_ticks_before_advancing_its_clock() -> None:
    fake = FakeTime()
    start = sh(*FRI, 11, 29)
    market = SimMarket(UNIVERSE, 7, start)
    feed = SimFeed(market, SessionClock(start, 60.0, fake), batch=50, interval=0.01)
    it = aiter(feed)
    fake.now = 2.0  # two market minutes later: past the lunch break
    seen: list[Tick] = []
    while True:
        try:
            batch = await asyncio.wait_for(anext(it), 0.2)
        except TimeoutError:
            break
        assert feed.now_ms() <= min(t.ts for t in batch)  # not yet past what it hands over
        seen.extend(batch)
    assert feed.now_ms() == market.t == sh(*FRI, 13, 1)
    assert not [t for t in seen if sh(*FRI, 11, 30) <= t.ts < sh(*FRI, 13)]
    assert max(t.ts for t in seen) >= sh(*FRI, 13)
