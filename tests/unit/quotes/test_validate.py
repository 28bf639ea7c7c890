"""Tick validation: the reasons a tick is rejected, each with a precise detail."""

from marketbus.sessions import shanghai_ms as sh
from quotes.feeds.base import make_tick
from quotes.universe import load_universe
from quotes.validate import FUTURE_TOLERANCE_MS, reject_reason

LISTINGS = {item.code: item for item in load_universe()}
NOW = sh(2024, 5, 10, 10, 0)


def test_a_tick_from_the_future_is_rejected_with_the_clock_in_its_detail() -> None:
    tick = make_tick("510300.SH", NOW + FUTURE_TOLERANCE_MS + 1, 4.0, 100, 400)
    rejected = reject_reason(tick, LISTINGS, {}, NOW)
    assert rejected is not None
    reason, detail = rejected
    assert reason == "future"
    assert "10:01:00" in detail and "10:00:00" in detail  # the tick's time and the clock's


def test_a_tick_within_the_tolerance_is_accepted() -> None:
    tick = make_tick("510300.SH", NOW + FUTURE_TOLERANCE_MS, 4.0, 100, 400)
    assert reject_reason(tick, LISTINGS, {}, NOW) is None
    assert reject_reason(tick, LISTINGS, {}) is None  # no clock: no future check


def test_a_rejected_future_tick_leaves_the_last_tick_time_alone() -> None:
    last = {"510300.SH": NOW - 3_000}
    future = make_tick("510300.SH", NOW + 3_600_000, 4.0, 100, 400)
    assert reject_reason(future, LISTINGS, last, NOW) is not None
    assert last == {"510300.SH": NOW - 3_000}
    good = make_tick("510300.SH", NOW, 4.0, 100, 400)
    assert reject_reason(good, LISTINGS, last, NOW) is None


def test_prices_outside_the_band_or_off_the_grid_are_rejected_with_their_reason() -> None:
    def reason(code: str, price: float, pre_close: float | None) -> str | None:
        tick = make_tick(code, NOW, price, 100, 100 * price, pre_close=pre_close)
        rejected = reject_reason(tick, LISTINGS, {}, NOW)
        return None if rejected is None else rejected[0]

    assert reason("600519.SH", 1650.0, 1500.0) is None  # +10%: 1650.00 is the limit-up
    assert reason("600519.SH", 1350.0, 1500.0) is None  # and 1350.00 the limit-down
    assert reason("600519.SH", 1349.99, 1500.0) == "limit_band"
    assert reason("600519.SH", 1650.01, 1500.0) == "limit_band"
    assert reason("600519.SH", 1649.99, 1500.0) is None
    assert reason("600519.SH", 1500.005, 1500.0) == "tick_grid"
    assert reason("510300.SH", 4.001, 4.0) is None  # a fund's tick is 0.001
    assert reason("510300.SH", 4.0005, 4.0) == "tick_grid"
    assert reason("600519.SH", 2000.0, None) is None  # no previous close: no band
