"""Bars from the aggregator against bars computed here independently (datetime arithmetic)."""

import datetime as dt
import math
from zoneinfo import ZoneInfo

from marketbus.contracts import PERIODS, Bar, Tick
from marketbus.sessions import SESSION_END_GRACE_MS
from marketbus.sessions import shanghai_ms as sh
from quotes.aggregate import BarAggregator
from quotes.feeds.base import make_tick
from quotes.feeds.sim import SimMarket
from quotes.universe import load_universe

SH = ZoneInfo("Asia/Shanghai")
DAY = (2024, 5, 10)
CODES = load_universe()[::27]  # a handful of ETFs and stocks
ONE_DAY = ("1m", "5m", "1d")  # the periods the reference here computes (the others: test_periods_aggregate)


def labels(ts: int) -> dict[str, int]:
    """Independent bucket rules, in plain datetime terms."""
    t = dt.datetime.fromtimestamp(ts / 1000, SH)
    minute = t.replace(second=0, microsecond=0)
    if dt.time(9, 15) <= t.time() < dt.time(9, 30):
        minute = t.replace(hour=9, minute=30, second=0, microsecond=0)
    for end in (dt.time(11, 30), dt.time(15, 0)):
        end_dt = dt.datetime.combine(t.date(), end, SH)
        if end_dt <= t < end_dt + dt.timedelta(seconds=10):
            minute = end_dt - dt.timedelta(minutes=1)
    five = minute.replace(minute=minute.minute - minute.minute % 5)
    midnight = dt.datetime.combine(t.date(), dt.time(0), SH)
    return {p: int(x.timestamp() * 1000) for p, x in (("1m", minute), ("5m", five), ("1d", midnight))}


def reference_bars(ticks: list[Tick]) -> dict[tuple[str, str, int], tuple[float, ...]]:
    groups: dict[tuple[str, str, int], list[Tick]] = {}
    for tick in ticks:
        for period, ts in labels(tick.ts).items():
            groups.setdefault((tick.code, period, ts), []).append(tick)
    out: dict[tuple[str, str, int], tuple[float, ...]] = {}
    previous_cum: dict[tuple[str, str], tuple[float, float]] = {}
    for key in sorted(groups, key=lambda k: (k[0], k[1], k[2])):
        code, period, _ts = key
        g = groups[key]
        prices = [t.price for t in g]
        base_v, base_a = (0.0, 0.0) if period == "1d" else previous_cum.get((code, period), (0, 0))
        out[key] = (
            g[0].price, max(prices), min(prices), g[-1].price,
            g[-1].volume - base_v, g[-1].amount - base_a,
        )  # fmt: skip
        previous_cum[(code, period)] = (g[-1].volume, g[-1].amount)
    return out


def as_dict(bars: list[Bar]) -> dict[tuple[str, str, int], tuple[float, ...]]:
    out = {}
    for b in bars:
        key = (b.code, b.period, b.ts)
        assert key not in out, f"bar emitted twice: {key}"
        out[key] = (b.open, b.high, b.low, b.close, b.volume, b.amount)
    return out


def day_of_ticks() -> list[Tick]:
    """A simulated day plus call-auction ticks and prints exactly at 11:30:00 and 15:00:03."""
    market = SimMarket(CODES, 11, sh(*DAY, 9, 30))
    sim = market.step_until(sh(*DAY, 15))
    auction = {}
    extra: list[Tick] = []
    for item in CODES:
        auction[item.code] = 5_000.0
        extra.append(make_tick(item.code, sh(*DAY, 9, 25), item.ref_price, 5_000.0, 5_000.0))
    ticks: list[Tick] = []
    last: dict[str, Tick] = {}
    for t in sim:
        shifted = make_tick(t.code, t.ts, t.price, t.volume + auction[t.code], t.amount + auction[t.code])
        ticks.append(shifted)
        last[t.code] = shifted
    for stamp, hms in ((sh(*DAY, 11, 30), (11, 30)), (sh(*DAY, 15, 0, 3), (15, 0))):
        for i, item in enumerate(CODES[:3]):
            before = max((t for t in ticks if t.code == item.code and t.ts < stamp),
                         key=lambda t: t.ts)  # fmt: skip
            extra.append(make_tick(item.code, stamp, before.price + item.tick_size * (i - 1),
                                   before.volume + 700 * (hms[0] - 10),
                                   before.amount + 999.0))  # fmt: skip
    return sorted(ticks + extra, key=lambda t: t.ts)


def test_bars_match_independent_computation_across_lunch_and_close() -> None:
    ticks = day_of_ticks()
    agg = BarAggregator(ONE_DAY)
    bars: list[Bar] = []
    for tick in ticks:
        bars.extend(agg.advance(tick.ts))  # the timer runs as time passes
        bars.extend(agg.add(tick))
    assert agg.advance(sh(*DAY, 15) + SESSION_END_GRACE_MS - 1) == []
    bars.extend(agg.advance(sh(*DAY, 15) + SESSION_END_GRACE_MS))
    assert agg.open_bars() == [] and agg.flush() == []
    got, want = as_dict(bars), reference_bars(ticks)
    assert got.keys() == want.keys()
    for key, values in want.items():
        assert all(math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)
                   for a, b in zip(got[key], values, strict=True)), (key, got[key], values)  # fmt: skip
    minutes = sorted({k[2] for k in got if k[1] == "1m"})
    assert len(minutes) == 240  # 120 + 120: nothing at lunch, nothing after 14:59
    assert sh(*DAY, 11, 29) in minutes and sh(*DAY, 11, 30) not in minutes
    assert sh(*DAY, 14, 59) in minutes and sh(*DAY, 15) not in minutes
    assert len({k[2] for k in got if k[1] == "5m"}) == 48
    # the auction volume is in the 09:30 bar; the day's total is the last cumulative figure
    first = [b for b in bars if b.period == "1m" and b.ts == sh(*DAY, 9, 30)]
    assert all(b.volume >= 5_000 for b in first)
    for item in CODES:
        day_bar = got[(item.code, "1d", sh(*DAY))]
        minute_sum = sum(v[4] for k, v in got.items() if k[0] == item.code and k[1] == "1m")
        assert math.isclose(day_bar[4], minute_sum)


def tick(ts: int, price: float, volume: float, code: str = "510300.SH") -> Tick:
    return make_tick(code, ts, price, volume, volume * price)


def test_lunch_bar_closes_on_time_without_a_later_tick() -> None:
    agg = BarAggregator(("1m", "5m"))
    agg.add(tick(sh(*DAY, 11, 29, 30), 4.0, 1000))
    agg.add(tick(sh(*DAY, 11, 29, 50), 4.1, 1500))
    assert agg.advance(sh(*DAY, 11, 30, 9)) == []
    closed = agg.advance(sh(*DAY, 11, 30, 10))
    assert [(b.period, b.ts) for b in closed] == [("1m", sh(*DAY, 11, 29)), ("5m", sh(*DAY, 11, 25))]
    assert closed[0].volume == 500  # first tick mid-day: only the baseline


def test_flush_closes_open_bars() -> None:
    agg = BarAggregator()
    agg.add(tick(sh(*DAY, 10, 0, 1), 4.0, 1000))
    agg.add(tick(sh(*DAY, 10, 0, 2), 4.2, 1300))
    bars = agg.flush()
    assert sorted(b.period for b in bars) == sorted(PERIODS)
    one = next(b for b in bars if b.period == "1m")
    assert (one.open, one.high, one.close, one.volume) == (4.0, 4.2, 4.2, 300)
    daily = next(b for b in bars if b.period == "1d")
    assert daily.volume == 1300 and daily.ts == sh(*DAY)
    assert agg.flush() == [] and agg.open_bars() == []


def test_late_tick_does_not_reopen_a_closed_bar() -> None:
    agg = BarAggregator(("1m",))
    agg.add(tick(sh(*DAY, 9, 30, 1), 4.0, 100))
    assert len(agg.advance(sh(*DAY, 9, 31))) == 1
    assert agg.add(tick(sh(*DAY, 9, 30, 59), 9.9, 400)) == []  # late: its bar is gone
    agg.add(tick(sh(*DAY, 9, 31, 5), 4.1, 500))
    (bar,) = agg.flush()
    assert bar.ts == sh(*DAY, 9, 31) and bar.high == 4.1 and bar.volume == 400


def test_a_new_day_closes_the_previous_days_bars_and_resets_volume() -> None:
    agg = BarAggregator(ONE_DAY)
    agg.add(tick(sh(*DAY, 14, 59, 50), 4.0, 9_000_000))
    bars = agg.add(tick(sh(2024, 5, 13, 9, 25), 4.1, 2000))
    assert sorted(b.period for b in bars) == ["1d", "1m", "5m"]
    monday = agg.flush()
    assert {b.volume for b in monday} == {2000}
    assert {b.ts for b in monday if b.period != "1d"} == {sh(2024, 5, 13, 9, 30)}


def test_daily_bar_uses_provider_open_high_low() -> None:
    agg = BarAggregator(("1d",))
    agg.add(make_tick("510300.SH", sh(*DAY, 10), 4.0, 100, 400, open=3.9, high=4.3, low=3.8))
    (bar,) = agg.flush()
    assert (bar.open, bar.high, bar.low, bar.close) == (3.9, 4.3, 3.8, 4.0)


# --- the call auction ------------------------------------------------------------------------


def test_indicative_auction_prices_make_no_bar() -> None:
    agg = BarAggregator()
    agg.add(make_tick("510300.SH", sh(*DAY, 9, 15, 5), 5.0, 0, 0))  # indicative, far too high
    agg.add(make_tick("510300.SH", sh(*DAY, 9, 20), 3.0, 0, 0))  # indicative, far too low
    assert agg.open_bars() == []  # the snapshot changes, no bar does
    agg.add(make_tick("510300.SH", sh(*DAY, 9, 26), 3.5, 0, 0))  # after 09:25, nothing matched
    assert agg.open_bars() == []
    agg.add(make_tick("510300.SH", sh(*DAY, 9, 25, 0), 4.0, 1000, 4000, open=4.0))  # the result
    agg.add(make_tick("510300.SH", sh(*DAY, 9, 30, 10), 4.1, 1500, 6050, open=4.0))
    bars = {b.period: b for b in agg.flush()}
    one = bars["1m"]
    assert one.ts == sh(*DAY, 9, 30)  # the 09:25 result folds into the 09:30 bar
    assert (one.open, one.high, one.low, one.close, one.volume) == (4.0, 4.1, 4.0, 4.1, 1500)
    daily = bars["1d"]
    assert (daily.open, daily.high, daily.low, daily.volume) == (4.0, 4.1, 4.0, 1500)


def test_an_indicative_tick_alone_makes_no_bar() -> None:
    agg = BarAggregator()
    agg.add(make_tick("510300.SH", sh(*DAY, 9, 24, 59), 4.0, 0, 0))
    assert agg.flush() == []


def test_the_days_open_is_the_providers_open() -> None:
    agg = BarAggregator(("1d",))
    agg.add(make_tick("510300.SH", sh(*DAY, 9, 31), 4.0, 100, 400))  # no open field yet
    agg.add(make_tick("510300.SH", sh(*DAY, 9, 32), 4.1, 200, 810, open=3.95))
    (daily,) = agg.flush()
    assert daily.open == 3.95


# --- day state: a restart resumes exactly where it was ---------------------------------------


def restarted(agg: BarAggregator, states: dict[str, bytes]) -> BarAggregator:
    """A new aggregator built from the encoded states a previous one exported."""
    from quotes.daystate import decode

    states |= agg.take_changed()
    return BarAggregator(agg.periods, {code: decode(raw, code) for code, raw in states.items()})


def test_restarts_anywhere_in_the_day_give_the_same_bars() -> None:
    ticks = day_of_ticks()
    whole = BarAggregator()
    want: list[Bar] = []
    for t in ticks:
        want.extend(whole.advance(t.ts))
        want.extend(whole.add(t))
    want.extend(whole.flush())
    agg = BarAggregator()
    states: dict[str, bytes] = {}
    got: list[Bar] = []
    for i, t in enumerate(ticks):
        if i % 997 == 0:  # restart: only what was stored survives
            agg = restarted(agg, states)
        got.extend(agg.advance(t.ts))
        got.extend(agg.add(t))
    got.extend(restarted(agg, states).flush())
    assert as_dict(got) == as_dict(want)


def test_a_restart_mid_bar_continues_the_partial_bar() -> None:
    agg = BarAggregator(("1m",))
    agg.add(tick(sh(*DAY, 9, 59, 50), 4.0, 100_000))
    assert len(agg.add(tick(sh(*DAY, 10, 0, 1), 4.0, 120_000))) == 1
    agg.add(tick(sh(*DAY, 10, 0, 30), 4.2, 180_000))
    (partial,) = agg.open_bars()
    assert partial.volume == 80_000
    agg = restarted(agg, {})
    agg.add(tick(sh(*DAY, 10, 0, 45), 4.1, 190_000))
    (bar,) = agg.flush()
    assert (bar.ts, bar.open, bar.high, bar.close, bar.volume) == (sh(*DAY, 10), 4.0, 4.2, 4.1, 90_000)


def test_a_snapshot_that_adds_nothing_is_recognised() -> None:
    agg = BarAggregator(ONE_DAY)
    last = tick(sh(*DAY, 15, 0, 3), 4.0, 5_000)
    agg.add(tick(sh(*DAY, 14, 59, 57), 4.0, 4_000))
    agg.add(last)
    agg.advance(sh(*DAY, 16))
    agg = restarted(agg, {})
    assert agg.adds_nothing(last)
    assert not agg.adds_nothing(tick(sh(*DAY, 15, 0, 3), 4.0, 5_100))
    assert not agg.adds_nothing(tick(sh(*DAY, 15, 0, 3), 4.0, 5_000, code="159915.SZ"))
    assert agg.add(last) == [] and agg.flush() == []  # and it would change no bar anyway


def test_bad_day_state_bytes_raise_a_precise_error() -> None:
    import pytest

    from quotes.daystate import DayStateError, decode

    agg = BarAggregator()
    agg.add(tick(sh(*DAY, 10, 0, 1), 4.0, 100))
    raw = agg.take_changed()["510300.SH"]
    assert decode(raw, "510300.SH").last_ts == sh(*DAY, 10, 0, 1)
    with pytest.raises(DayStateError, match=r"510300\.SH.*truncated"):
        decode(raw[:-3], "510300.SH")
    with pytest.raises(DayStateError, match="version 9"):
        decode(b"\x09" + raw[1:], "510300.SH")
    with pytest.raises(DayStateError, match="trailing"):
        decode(raw + b"x", "510300.SH")
    assert agg.take_changed() == {}  # exported once, until it changes again
