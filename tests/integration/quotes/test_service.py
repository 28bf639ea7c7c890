"""The service logic against a real server: streams, snapshots, bars, trend series, DLQ."""

import asyncio
import datetime as dt
import math
from collections.abc import AsyncIterator
from zoneinfo import ZoneInfo

import pytest
from redis.asyncio import Redis

from marketbus import wire
from marketbus.contracts import PERIODS, Bar, Quote, Security, Tick
from marketbus.keys import Keys
from marketbus.sessions import SESSION_END_GRACE_MS
from marketbus.sessions import shanghai_ms as sh
from marketbus.settings import Settings
from marketbus.trend import CLOSE, TS, TrendStore
from quotes.feeds.base import Feed, make_tick
from quotes.feeds.replay import recording_end
from quotes.feeds.sim import SimMarket
from quotes.service import QuotesService
from quotes.universe import load_universe

UNIVERSE = load_universe()
SOME = UNIVERSE[::30]
DAY = (2024, 5, 10)
SH = ZoneInfo("Asia/Shanghai")


class ListFeed(Feed):
    name = "list"

    def __init__(self, batches: list[list[Tick]] | None = None, hold: bool = False) -> None:
        self._batches = batches or []
        self.hold = hold  # after the last batch, wait instead of ending
        self.clock = 0

    def now_ms(self) -> int:
        return self.clock

    async def batches(self) -> AsyncIterator[list[Tick]]:
        for batch in self._batches:
            yield batch
            self.clock = max(t.ts for t in batch)
        if self.hold:
            await asyncio.Event().wait()
        self.clock = recording_end(self.clock)  # ends as a recording does: with its last day


def minute_label(ts: int) -> int:
    t = dt.datetime.fromtimestamp(ts / 1000, SH).replace(second=0, microsecond=0)
    if t.time() in (dt.time(11, 30), dt.time(15, 0)):
        t -= dt.timedelta(minutes=1)
    return int(t.timestamp() * 1000)


async def stream_bars(client: Redis, keys: Keys) -> list[Bar]:
    return [wire.decode(Bar, fields) for _id, fields in await client.xrange(keys.bars)]


async def test_ticks_across_lunch_and_close_become_the_expected_bars(
    client: Redis, keys: Keys, settings: Settings
) -> None:
    settings = settings.model_copy(update={"tick_batch": 50})
    service = QuotesService(client, settings, UNIVERSE, ListFeed())
    morning = SimMarket(SOME, 3, sh(*DAY, 11, 27)).step_until(sh(*DAY, 13, 2))
    close = SimMarket(SOME, 4, sh(*DAY, 14, 58)).step_until(sh(*DAY, 15))
    # the afternoon market is another simulation: keep volumes cumulative across both
    offset = {t.code: t.volume for t in morning}
    close = [make_tick(t.code, t.ts, t.price, t.volume + offset[t.code], t.amount) for t in close]
    closing_print = [
        make_tick(item.code, sh(*DAY, 15, 0, 2), 1.0 if item.market == "ETF" else 10.0,
                  10**9, 10**9) for item in SOME
    ]  # fmt: skip
    ticks = morning + close + closing_print
    for start in range(0, len(ticks), 50):
        batch = ticks[start : start + 50]
        await service.close_bars(batch[0].ts)
        await service.process(batch)
    await service.close_bars(sh(*DAY, 15) + SESSION_END_GRACE_MS)
    assert {b.period for b in service.aggregator.open_bars()} == {"1M"}  # only May goes on

    # independent expectation for the 1-minute bars
    expected: dict[tuple[str, int], list[Tick]] = {}
    for tick in ticks:
        expected.setdefault((tick.code, minute_label(tick.ts)), []).append(tick)
    bars = [b for b in await stream_bars(client, keys) if b.period == "1m"]
    got = {(b.code, b.ts): b for b in bars}
    assert len(got) == len(bars)  # no bar published twice
    assert got.keys() == expected.keys()
    assert not [k for k in got if sh(*DAY, 11, 30) <= k[1] < sh(*DAY, 13)]
    previous: dict[str, float] = {}
    for key in sorted(expected, key=lambda k: k[1]):
        group, bar = expected[key], got[key]
        prices = [t.price for t in group]
        assert (bar.open, bar.high, bar.low, bar.close) == (
            prices[0], max(prices), min(prices), prices[-1],
        )  # fmt: skip
        if key[0] in previous:  # the first bar of a code started mid-day: baseline only
            assert math.isclose(bar.volume, group[-1].volume - previous[key[0]])
        previous[key[0]] = group[-1].volume
    # the 15:00:02 print closed the day in the 14:59 bar
    last = [b for b in bars if b.ts == sh(*DAY, 14, 59)]
    assert len(last) == len(SOME) and all(b.close in (1.0, 10.0) for b in last)
    # every published bar is in its trend series
    store = TrendStore(client, keys)
    for item in SOME:
        series = await store.tail(item.code, "1m", 500)
        mine = sorted(b.ts for b in bars if b.code == item.code)
        assert series[:, TS].tolist() == mine
        assert series[-1, CLOSE] == got[(item.code, mine[-1])].close
    daily = [b for b in await stream_bars(client, keys) if b.period == "1d"]
    assert sorted(b.code for b in daily) == sorted(i.code for i in SOME)
    assert all(b.ts == sh(*DAY) and b.volume == 10**9 for b in daily)
    metrics = await client.hgetall(keys.metrics)
    assert int(metrics[b"ticks_accepted"]) == len(ticks)
    assert int(metrics[b"bars_closed"]) == await client.xlen(keys.bars)


async def test_snapshots_are_quotes_with_names(client: Redis, keys: Keys, settings: Settings) -> None:
    service = QuotesService(client, settings, UNIVERSE, ListFeed())
    ticks = SimMarket(SOME, 3, sh(*DAY, 9, 30)).step_until(sh(*DAY, 9, 31))
    await service.process(ticks)
    raw = await client.hgetall(keys.snapshots)
    assert {k.decode() for k in raw} == {item.code for item in SOME}
    last = {t.code: t for t in ticks}
    for item in SOME:
        quote = Quote.model_validate_json(raw[item.code.encode()])
        tick = last[item.code]
        assert (quote.name, quote.market, quote.price, quote.ts) == (
            item.name, item.market, tick.price, tick.ts,
        )  # fmt: skip
        assert quote.pre_close == item.ref_price and quote.volume == tick.volume
        assert math.isclose(quote.change_percent or 0, (tick.price / item.ref_price - 1) * 100,
                            abs_tol=1e-3)  # fmt: skip
    entries = await client.xrange(keys.ticks)
    assert [wire.decode(Tick, f) for _i, f in entries] == ticks


async def test_invalid_ticks_go_to_the_dlq_counted_and_the_feed_goes_on(
    client: Redis, keys: Keys, settings: Settings
) -> None:
    service = QuotesService(client, settings, UNIVERSE, ListFeed())
    ok = sh(*DAY, 10, 0, 5)
    batch = [
        make_tick("510300.SH", ok, 4.0, 100, 400),
        make_tick("510300.SH", ok + 1, float("nan"), 200, 800),
        make_tick("510300.SH", ok + 2, -1.0, 200, 800),
        make_tick("510300.SH", ok + 3, 4.0, -5, 800),
        make_tick("999999.SH", ok, 4.0, 100, 400),
        make_tick("510300.SH", sh(*DAY, 12, 0), 4.0, 300, 1200),
        make_tick("510300.SH", sh(2024, 5, 11, 10, 0), 4.0, 300, 1200),  # Saturday
        make_tick("510300.SH", ok - 1000, 4.0, 300, 1200),  # older than the last tick
        make_tick("510300.SH", ok + 5, 4.01, 300, 1203),
    ]
    await service.process(batch)
    metrics = {k.decode(): int(v) for k, v in (await client.hgetall(keys.metrics)).items()}
    assert metrics == {
        "ticks_accepted": 2,
        "ticks_rejected:bad_price": 2,
        "ticks_rejected:bad_volume": 1,
        "ticks_rejected:unknown_code": 1,
        "ticks_rejected:out_of_session": 2,
        "ticks_rejected:stale": 1,
    }
    dlq = await client.xrange(keys.dlq)
    reasons = [f[b"error"].decode().split(":")[0] for _i, f in dlq]
    assert reasons == ["bad_price", "bad_price", "bad_volume", "unknown_code",
                       "out_of_session", "out_of_session", "stale"]  # fmt: skip
    first = dlq[0][1]
    assert first[b"stream"].decode() == keys.ticks
    assert wire.loads(first[b"data"])["price"] is None  # NaN as JSON null  # type: ignore[index]
    assert await client.xlen(keys.ticks) == 2
    snapshot = Quote.model_validate_json(await client.hget(keys.snapshots, "510300.SH"))
    assert snapshot.price == 4.01


async def test_run_flushes_open_bars_on_stop(client: Redis, keys: Keys, settings: Settings) -> None:
    ticks = SimMarket(SOME, 3, sh(*DAY, 10, 0)).step_until(sh(*DAY, 10, 0, 30))
    feed = ListFeed([ticks[i : i + 20] for i in range(0, len(ticks), 20)], hold=True)
    service = QuotesService(client, settings, UNIVERSE, feed)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    for _ in range(100):
        if await client.xlen(keys.ticks) == len(ticks):
            break
        await asyncio.sleep(0.02)
    assert await client.xlen(keys.bars) == 0  # every bar is still open
    assert await client.hexists(keys.heartbeats, "quotes")
    stop.set()
    await asyncio.wait_for(task, 5)
    # the bars still being built are kept in the trend series (not lost) but not published:
    # no signal may be taken from half a bar; the complete bar replaces them after a restart
    assert await stream_bars(client, keys) == []
    store = TrendStore(client, keys)
    for item in SOME:
        for period in ("1m", "5m", "1d"):
            rows = await store.tail(item.code, period, 5)
            assert len(rows) == 1, (item.code, period)
            want = sh(*DAY) if period == "1d" else sh(*DAY, 10, 0)
            assert rows[-1, TS] == want


@pytest.mark.parametrize(
    ("day", "still_open"),
    [((2024, 5, 10), {"1M"}), ((2024, 5, 7), {"1w", "1M"})],
    ids=["friday", "tuesday"],
)
async def test_a_finite_feed_closes_its_last_days_bars_when_it_ends(
    client: Redis, keys: Keys, settings: Settings, day: tuple[int, int, int], still_open: set[str]
) -> None:
    """A recording that ends closes its last day's bars: intraday and daily, the week's on the
    week's last trading day (a Friday), never a month (or a week) that goes on after that day."""
    ticks = SimMarket(SOME, 3, sh(*day, 10, 0)).step_until(sh(*day, 10, 0, 30))
    service = QuotesService(client, settings, UNIVERSE, ListFeed([ticks]))
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    closing = [p for p in PERIODS if p not in still_open]

    async def published() -> dict[str, int]:
        bars = [wire.decode(Bar, f) for _, f in await client.xrange(keys.bars)]
        return {p: sum(b.period == p for b in bars) for p in PERIODS}

    for _ in range(1500):  # a bound against a hang, not a timing: the loop ends once they are in
        if sum((await published()).values()) == len(closing) * len(SOME):
            break
        await asyncio.sleep(0.02)
    assert not task.done()  # still alive (heartbeat) after the feed ended
    assert await published() == {p: len(SOME) if p in closing else 0 for p in PERIODS}
    stop.set()
    await asyncio.wait_for(task, 5)
    # at stop the week or month still being built is kept in its series, not published
    assert await published() == {p: len(SOME) if p in closing else 0 for p in PERIODS}
    store = TrendStore(client, keys)
    for period in still_open:
        assert all(len(t) == 1 for t in await store.tails([s.code for s in SOME], period, 5))


async def test_prepare_seeds_history_and_a_restart_resumes(
    client: Redis, keys: Keys, settings: Settings
) -> None:
    from quotes.feeds.sim import SimFeed
    from quotes.startup import prepare

    listings, feed = await prepare(client, settings)
    assert isinstance(feed, SimFeed)
    assert len(listings) == len(UNIVERSE)
    universe = await client.hgetall(keys.universe)
    assert len(universe) == len(UNIVERSE)
    assert Security.model_validate_json(universe[b"510300.SH"]).name == "沪深300ETF"
    store = TrendStore(client, keys)
    for period in ("1d", "1m"):
        tails = await store.tails([u.code for u in UNIVERSE], period, 1000)
        assert all(len(t) >= 250 for t in tails)
    minute = await store.tail("510300.SH", "1m", 1)
    assert minute[0, TS] < feed.market.t  # history ends before the sim starts
    first_ts = feed.market.t
    # a restart after ticks were published starts after them, from the stored snapshot
    service = QuotesService(client, settings, listings, feed)
    await service.process(feed.market.step_until(first_ts + 120_000))
    before = await client.strlen(keys.trend("510300.SH", "1d"))
    _, feed2 = await prepare(client, settings)
    assert isinstance(feed2, SimFeed)
    assert feed2.market.t >= first_ts + 120_000
    assert await client.strlen(keys.trend("510300.SH", "1d")) == before  # not seeded again
    snap = Quote.model_validate_json(await client.hget(keys.snapshots, "510300.SH"))
    i = feed2.market.codes.index("510300.SH")
    assert feed2.market.price[i] == snap.price and feed2.market.volume[i] == snap.volume


async def test_replay_feed_end_to_end(
    client: Redis, keys: Keys, settings: Settings, tmp_path: object
) -> None:
    from pathlib import Path

    from quotes.startup import prepare

    path = Path(str(tmp_path)) / "ticks.csv"
    path.write_text(
        "code,ts,price,volume,amount\n"
        "920111.BJ,2024-05-10 10:00:01,5.00,100,500\n"
        "920111.BJ,2024-05-10 10:00:30,5.10,300,1520\n"
        "920111.BJ,2024-05-10 10:01:02,5.05,400,2025\n"
        "920111.BJ,bad,5.05,400,2025\n"
        "510300.SH,2024-05-10 12:00:00,4.00,100,400\n"  # lunch: to the DLQ
    )
    settings = settings.model_copy(update={"feed": "replay", "replay_file": str(path),
                                           "speed": 600.0})  # fmt: skip
    listings, feed = await prepare(client, settings)
    assert "920111.BJ" in {item.code for item in listings}
    raw = await client.hget(keys.universe, "920111.BJ")
    assert Security.model_validate_json(raw).name == "920111.BJ"  # type: ignore[arg-type]
    service = QuotesService(client, settings, listings, feed)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    for _ in range(200):
        if await client.xlen(keys.bars) >= 4:
            break
        await asyncio.sleep(0.02)
    stop.set()
    await asyncio.wait_for(task, 5)
    bars = await stream_bars(client, keys)
    minute = [(b.ts, b.open, b.close, b.volume) for b in bars if b.period == "1m"]
    assert minute == [(sh(*DAY, 10), 5.0, 5.1, 200.0), (sh(*DAY, 10, 1), 5.05, 5.05, 100.0)]
    metrics = await client.hgetall(keys.metrics)
    assert metrics[b"ticks_rejected:out_of_session"] == b"1"


async def test_prepare_a_poll_feed_for_configured_codes(
    client: Redis, keys: Keys, settings: Settings
) -> None:
    from marketbus.server import free_port
    from quotes.feeds.poll import PollFeed
    from quotes.startup import prepare

    # the list endpoint unreachable (a closed local port: the suite never calls a live provider):
    # the bundled list is the offline fallback, and MARKETBUS_CODES selects from it
    offline = f"http://127.0.0.1:{free_port()}"
    settings = settings.model_copy(
        update={"feed": "auto", "codes": "510300.SH, 920001.BJ", "provider_url": offline}
    )
    listings, feed = await prepare(client, settings)  # builds only: nothing is polled yet
    assert isinstance(feed, PollFeed)
    assert feed.codes == ["510300.SH", "920001.BJ"]
    assert [p.name for p in feed.providers] == ["eastmoney", "sina", "tencent"]
    assert {"510300.SH", "920001.BJ"} <= {item.code for item in listings}
    raw = await client.hget(keys.universe, "920001.BJ")
    assert Security.model_validate_json(raw).market == "北交所"  # type: ignore[arg-type]
    assert await client.hlen(keys.universe) == len(UNIVERSE) + 1  # the bundled list, and the extra code


async def test_an_unreachable_list_endpoint_keeps_the_stored_universe(
    client: Redis, keys: Keys, settings: Settings
) -> None:
    from marketbus.server import free_port
    from quotes.feeds.poll import PollFeed
    from quotes.startup import prepare

    stored = [
        Security(code="603999.SH", name="读者传媒", market="SH主板", list_date="20151210"),
        Security(code="000300.SH", name="沪深300", market="指数"),
    ]
    await client.hset(keys.universe, mapping={s.code: s.model_dump_json() for s in stored})
    offline = f"http://127.0.0.1:{free_port()}"
    settings = settings.model_copy(update={"feed": "eastmoney", "provider_url": offline})
    listings, feed = await prepare(client, settings)
    assert isinstance(feed, PollFeed)
    assert sorted(feed.codes) == ["000300.SH", "603999.SH"]  # not the bundled list
    assert {item.code for item in listings} == {"000300.SH", "603999.SH"}
    assert await client.hlen(keys.universe) == 2


async def test_auction_prices_reach_the_snapshot_but_no_bar(
    client: Redis, keys: Keys, settings: Settings
) -> None:
    service = QuotesService(client, settings, UNIVERSE, ListFeed())
    code = "510300.SH"
    await service.process([
        make_tick(code, sh(*DAY, 9, 15, 3), 3.90, 0, 0, pre_close=3.80),
        make_tick(code, sh(*DAY, 9, 22), 3.70, 0, 0, pre_close=3.80),
    ])  # fmt: skip
    quote = Quote.model_validate_json(await client.hget(keys.snapshots, code))
    assert (quote.price, quote.ts) == (3.70, sh(*DAY, 9, 22))
    assert service.aggregator.open_bars() == []
    await service.process([
        make_tick(code, sh(*DAY, 9, 25, 2), 3.81, 50_000, 190_500, open=3.81, pre_close=3.80),
        make_tick(code, sh(*DAY, 9, 30, 5), 3.82, 60_000, 228_700, open=3.81, pre_close=3.80),
    ])  # fmt: skip
    await service.close_bars(sh(*DAY, 15) + SESSION_END_GRACE_MS)
    bars = {b.period: b for b in await stream_bars(client, keys)}
    minute, daily = bars["1m"], bars["1d"]
    assert minute.ts == sh(*DAY, 9, 30)
    assert (minute.open, minute.high, minute.low, minute.volume) == (3.81, 3.82, 3.81, 60_000)
    assert (daily.open, daily.high, daily.low) == (3.81, 3.82, 3.81)  # 3.90 / 3.70 never traded
