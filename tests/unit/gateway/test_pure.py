"""Pure pieces of the gateway: filters, the buy view's order, search, ids, coalescing, limits."""

from __future__ import annotations

import pytest

from gateway.queries import (
    SignalFilter,
    buy_view,
    parse_codes,
    parse_stream_id,
    search_securities,
)
from gateway.ratelimit import RateLimiter
from gateway.sse import Coalescer, QueueSubscriber, QuoteSubscriber, format_event
from marketbus.contracts import Security, Signal, signal_id

T0 = 1_700_000_000_000


def sig(
    code: str = "510300.SH",
    name: str = "沪深300ETF",
    market: str = "ETF",
    side: str = "BUY",
    confidence: float = 0.5,
    bar_ts: int = T0,
    strategy: str = "ma_cross",
    created_ts: int | None = None,
) -> Signal:
    return Signal(
        id=signal_id(code, strategy, "1d", bar_ts),
        code=code,
        name=name,
        market=market,
        strategy=strategy,
        strategy_name=strategy,
        side=side,  # type: ignore[arg-type]
        price=1.0,
        period="1d",
        bar_ts=bar_ts,
        confidence=confidence,
        volume_ratio=None,
        change_percent=None,
        reason="r",
        created_ts=created_ts if created_ts is not None else bar_ts,
    )


def test_filter_each_field() -> None:
    s = sig()
    assert SignalFilter().matches(s)
    assert SignalFilter(strategy="ma_cross", side="BUY", code="510300.SH", market="ETF").matches(s)
    assert not SignalFilter(strategy="macd_cross").matches(s)
    assert not SignalFilter(side="SELL").matches(s)
    assert not SignalFilter(code="159915.SZ").matches(s)
    assert not SignalFilter(market="创业板").matches(s)
    assert not SignalFilter(period="1m").matches(s)
    assert SignalFilter(since=T0).matches(s)
    assert not SignalFilter(since=T0 + 1).matches(s)


def test_buy_view_rules() -> None:
    etf_hi = sig("510300.SH", confidence=0.99)
    stock_lo = sig("600519.SH", "贵州茅台", "SH主板", confidence=0.2)
    stock_hi_old = sig("300750.SZ", "宁德时代", "创业板", confidence=0.8, bar_ts=T0)
    stock_hi_new = sig("000001.SZ", "平安银行", "SZ主板", confidence=0.8, bar_ts=T0 + 1)
    st = sig("600234.SH", "*ST科创", "SH主板", confidence=1.0)
    sell = sig("600000.SH", "浦发银行", "SH主板", side="SELL", confidence=1.0)
    index = sig("000300.SH", "沪深300", "指数", confidence=1.0)
    full_width_st = sig("600777.SH", "ＳＴ 新潮", "SH主板", confidence=1.0)
    out = buy_view([etf_hi, stock_lo, stock_hi_old, st, sell, stock_hi_new, index, full_width_st])
    assert [s.code for s in out] == ["000001.SZ", "300750.SZ", "600519.SH", "510300.SH"]
    with_indices = buy_view([etf_hi, index], include_indices=True)
    assert [s.code for s in with_indices] == ["000300.SH", "510300.SH"]


SECS = [
    Security(code="510300.SH", name="沪深300ETF", market="ETF"),
    Security(code="510500.SH", name="中证500ETF", market="ETF"),
    Security(code="159919.SZ", name="沪深300ETF易方达", market="ETF"),
    Security(code="600519.SH", name="贵州茅台", market="SH主板"),
]


@pytest.mark.parametrize(
    ("q", "codes"),
    [
        ("510", ["510300.SH", "510500.SH"]),
        ("510300.s", ["510300.SH"]),
        ("沪深300", ["159919.SZ", "510300.SH"]),
        ("etf", ["159919.SZ", "510300.SH", "510500.SH"]),
        ("茅台", ["600519.SH"]),
        ("  ", []),
        ("xyz", []),
    ],
)
def test_search(q: str, codes: list[str]) -> None:
    assert [s.code for s in search_securities(SECS, q, 10)] == codes


def test_search_code_matches_come_first_and_limit() -> None:
    secs = [*SECS, Security(code="300001.SZ", name="特锐德510", market="创业板")]
    assert [s.code for s in search_securities(secs, "510", 10)] == [
        "510300.SH",
        "510500.SH",
        "300001.SZ",
    ]
    assert len(search_securities(secs, "510", 1)) == 1


def test_parse_codes() -> None:
    assert parse_codes("510300.sh, 159915.SZ,,510300.SH", 5) == ["510300.SH", "159915.SZ"]
    with pytest.raises(ValueError, match="'nope'"):
        parse_codes("510300.SH,nope", 5)
    with pytest.raises(ValueError, match="at most 1"):
        parse_codes("510300.SH,159915.SZ", 1)


def test_parse_stream_id() -> None:
    assert parse_stream_id("1700000000000-3") == (1700000000000, 3)
    assert parse_stream_id("17") == (17, 0)
    assert parse_stream_id("9-10") > parse_stream_id("9-9")
    for bad in ("", "x", "1-", "-1", "1-2-3", "1 -2"):
        with pytest.raises(ValueError):
            parse_stream_id(bad)


async def test_coalescer_keeps_the_newest_per_code_in_id_order() -> None:
    c: Coalescer[str] = Coalescer()
    c.put("A", "10-0", "a1")
    c.put("B", "11-0", "b1")
    c.put("A", "12-0", "a2")
    assert c.wake.is_set() and len(c) == 2
    assert c.drain() == [("B", "11-0", "b1"), ("A", "12-0", "a2")]
    assert not c.wake.is_set() and c.drain() == []


async def test_queue_subscriber_overflows_instead_of_blocking() -> None:
    sub: QueueSubscriber[int] = QueueSubscriber(lambda x: x % 2 == 0, maxsize=2)
    assert not sub.wake.is_set()
    for i in range(7):
        sub.offer(f"{i}-0", i)
    assert sub.overflowed and sub.wake.is_set()
    assert sub.drain() == [("0-0", 0), ("2-0", 2)]  # in order, then nothing more: the client reconnects
    sub.offer("8-0", 8)
    assert sub.drain() == []


async def test_a_closed_subscriber_wakes_and_takes_nothing_more() -> None:
    sub: QueueSubscriber[int] = QueueSubscriber(lambda _: True)
    sub.offer("1-0", 1)
    assert sub.drain() == [("1-0", 1)] and not sub.wake.is_set()
    sub.close()
    assert sub.closed and sub.wake.is_set()
    sub.offer("2-0", 2)
    assert sub.drain() == []
    quotes = QuoteSubscriber(None)
    quotes.close()
    quotes.offer("510300.SH", "3-0", b"{}")
    assert quotes.closed and quotes.pending.wake.is_set() and len(quotes.pending) == 0


def test_format_event() -> None:
    assert format_event("signal", b'{"a":1}', "5-0") == b'id: 5-0\nevent: signal\ndata: {"a":1}\n\n'
    assert format_event("quote", "{}") == b"event: quote\ndata: {}\n\n"


def test_rate_limiter_bursts_then_refills() -> None:
    now = [0.0]
    rl = RateLimiter(rate=6, per=60, burst=3, clock=lambda: now[0])
    assert [rl.check("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = rl.check("a")
    assert wait == pytest.approx(10.0)
    assert rl.check("b") == 0.0  # per client
    now[0] = 10.0
    assert rl.check("a") == 0.0
    assert rl.check("a") > 0


def test_rate_limiter_forgets_clients_beyond_its_cap() -> None:
    rl = RateLimiter(rate=60, per=60, burst=5, max_clients=4)
    for i in range(20):
        assert rl.check(f"c{i}") == 0.0
    assert len(rl._buckets) <= 4


def test_a_stream_id_part_above_2_to_the_64_is_refused() -> None:
    """Redis refuses such an id with an error; the gateway refuses it first, as a bad parameter."""
    from gateway.queries import STREAM_ID_MAX, parse_stream_id

    parse_stream_id(f"{STREAM_ID_MAX}-{STREAM_ID_MAX}")
    for bad in (f"{STREAM_ID_MAX + 1}-0", f"5-{STREAM_ID_MAX + 1}"):
        with pytest.raises(ValueError):
            parse_stream_id(bad)
