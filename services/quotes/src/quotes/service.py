"""The quotes service: feed -> validate -> ticks stream, snapshots, bars, trend series.

A thin I/O shell around pure parts (validation, aggregation). Each batch of ticks becomes one
:class:`WritePlan` (pure), written in one pipeline: accepted ticks to ``keys.ticks``, rejected
ones to ``keys.dlq`` with their reason, latest snapshot per code, every closed bar appended to its
trend series *before* it is published on ``keys.bars`` (a consumer always finds the bar in the
series), the day state of every code the batch changed to ``keys.daystate`` (last, so a batch cut
short never stores a state ahead of its bars), counters in ``keys.metrics``. A timer closes bars
on time; a heartbeat marks liveness and publishes the market clock (``keys.market_clock``) and
the feed's last poll report (``keys.poll_stats``).

Restarts: :meth:`QuotesService.run` first builds the aggregator from the stored day states
(:meth:`QuotesService.restore`), so the forming bars, the cumulative volumes and each code's last
tick time are where the last written batch left them. A snapshot that repeats the state (same
time and cumulative volume: the last snapshot seen again after a restart) is counted as
``ticks_duplicate`` and changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import orjson
from redis.exceptions import RedisError

from marketbus import wire
from marketbus.clock import parse_clock, wall_ms
from marketbus.contracts import Bar, Tick
from marketbus.feeds import POLL_FEEDS
from marketbus.keys import Keys
from marketbus.settings import Settings
from marketbus.streams import BARS, TICKS, Publisher
from marketbus.trend import TrendStore
from quotes import daystate
from quotes.aggregate import BarAggregator, prior_days_state
from quotes.feeds.base import Feed
from quotes.feeds.poll import PollFeed
from quotes.memory import release_freed_memory
from quotes.universe import Listing, publish
from quotes.validate import quote_json, reject_reason, tick_json

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("quotes")

ADVANCE_EVERY = 0.1  # seconds between bar-closing checks
HEARTBEAT_EVERY = 1.0
DAYS_IN_A_MONTH_BAR = 25  # daily bars read to rebuild a forming month (23 trading days at most)
STATS_EVERY = 10.0
TRIM_EVERY = 10.0  # seconds between returns of freed heap pages to the OS (quotes.memory)
SERVICE_NAME = "quotes"


@dataclass
class WritePlan:
    """Everything one batch writes, computed without I/O."""

    ticks: list[bytes] = field(default_factory=list)  # each accepted tick's wire payload
    rejects: list[dict[str, bytes | str]] = field(default_factory=list)
    snapshots: dict[str, bytes] = field(default_factory=dict)
    bars: list[Bar] = field(default_factory=list)
    unfinished: list[Bar] = field(default_factory=list)  # stored, not published (shutdown)
    daystate: dict[str, bytes] = field(default_factory=dict)  # code -> encoded aggregator state
    counters: Counter[str] = field(default_factory=Counter)

    def __bool__(self) -> bool:
        return bool(
            self.ticks or self.rejects or self.bars or self.unfinished or self.daystate or self.counters
        )


@dataclass
class Stats:
    """What the service wrote since it started (logged every STATS_EVERY seconds and at stop)."""

    accepted: int = 0
    rejected: int = 0
    bars: int = 0


def market_clock_of(feed: Feed, settings: Settings) -> Callable[[], int] | None:
    """The clock future-dated ticks are judged by: the feed's own ``market_now_ms()`` when it has
    one; for the poll feeds their market clock (``MARKETBUS_MARKET_CLOCK``, real time when unset); else none
    (a sim or replay stamps ticks by its own clock, so they cannot be ahead of it)."""
    own = getattr(feed, "market_now_ms", None)
    if callable(own):
        return own
    if isinstance(feed, PollFeed):
        return feed.clock.now_ms
    if settings.feed in POLL_FEEDS:
        return parse_clock(settings.market_clock).now_ms
    return None


class QuotesService:
    def __init__(
        self,
        client: Redis,
        settings: Settings,
        listings: list[Listing],
        feed: Feed,
        market_now: Callable[[], int] | None = None,
    ) -> None:
        self.client = client
        self.settings = settings
        self.keys = Keys(settings.key_prefix)
        self.store = TrendStore(client, self.keys, settings.trend_max_bars)
        self.tick_publisher = Publisher.of(TICKS, self.keys, settings)
        self.bar_publisher = Publisher.of(BARS, self.keys, settings)
        self.feed = feed
        self.listings = {item.code: item for item in listings}
        self.aggregator = BarAggregator()
        self.last_ts: dict[str, int] = {}
        self.market_now = market_now or market_clock_of(feed, settings)
        self.restored = False
        self.stats = Stats()
        self._lock = asyncio.Lock()
        self._stats_t0 = time.monotonic()
        self._stats_last = 0
        self.stopping = asyncio.Event()  # set on shutdown: stop retrying writes
        self.pending_counters: Counter[str] = Counter()  # counts not yet written (outage)

    # --- pure part ----------------------------------------------------------------------------

    def plan(self, ticks: list[Tick]) -> WritePlan:
        """Validate and aggregate a batch; what to write for it."""
        plan = WritePlan()
        listings, last_ts, aggregator = self.listings, self.last_ts, self.aggregator
        latest: dict[str, Tick] = {}
        stream = self.keys.ticks
        now = self.market_now() if self.market_now is not None else None
        for tick in ticks:
            rejected = reject_reason(tick, listings, last_ts, now)
            if rejected is not None:
                reason, detail = rejected
                plan.counters[f"ticks_rejected:{reason}"] += 1
                plan.rejects.append(
                    {"error": f"{reason}: {detail}", "stream": stream, "data": tick_json(tick)}
                )
                continue
            if aggregator.adds_nothing(tick):
                plan.counters["ticks_duplicate"] += 1
                continue
            last_ts[tick.code] = tick.ts
            latest[tick.code] = tick
            plan.ticks.append(wire.payload(tick))
            plan.bars.extend(aggregator.add(tick))
        for code, tick in latest.items():
            plan.snapshots[code] = quote_json(tick, listings[code])
        if plan.ticks:
            plan.counters["ticks_accepted"] += len(plan.ticks)
        if plan.bars:
            plan.counters["bars_closed"] += len(plan.bars)
        plan.daystate = aggregator.take_changed()
        return plan

    # --- I/O ----------------------------------------------------------------------------------

    async def write(self, plan: WritePlan) -> None:
        """One pipeline for the whole plan. While the server is unreachable the write is retried
        with backoff and the feed waits (nothing is lost: the batch is written after the outage).
        Only when the service is stopping during an outage is the batch given up, and then it is
        counted (``ticks_dropped:server_unavailable``) and logged, never silently lost."""
        delay = 0.2
        while True:
            try:
                await self._execute(plan)
                break
            except RedisError as exc:
                if self.stopping.is_set():
                    self.pending_counters["ticks_dropped:server_unavailable"] += len(plan.ticks)
                    log.error(
                        "stopping with the server unreachable: %d ticks and %d bars dropped (%s)",
                        len(plan.ticks), len(plan.bars), exc,
                    )  # fmt: skip
                    return
                log.warning("write failed (%s); retrying in %.1fs", exc, delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), delay)
                delay = min(delay * 2, 5.0)
        self.stats.accepted += len(plan.ticks)
        self.stats.rejected += len(plan.rejects)
        self.stats.bars += len(plan.bars)

    async def _execute(self, plan: WritePlan) -> None:
        s, k = self.settings, self.keys
        stored = [*plan.bars, *plan.unfinished]
        if stored:  # the trend series first: a bar is stored before it is published
            await self.store.append(stored)
        # MULTI/EXEC on the bus keys (one slot on a Cluster, see marketbus.keys): a batch is
        # published whole or not at all (a server lost or a process killed mid-send applies
        # nothing, and the retry writes it once), so the stored day state always matches the
        # ticks and bars published with it. The trend appends before it are idempotent (a bar
        # time already stored is replaced), so a batch written again after a failure changes
        # nothing there, and a bar the day state does not hold yet is rebuilt from it, with at
        # least its volume, after a restart.
        pipe = self.client.pipeline(transaction=True)
        if plan.ticks:  # one command for the batch's ticks (a server-side XADD loop)
            self.tick_publisher.add_many_encoded(pipe, plan.ticks)
        for entry in plan.rejects:
            pipe.xadd(k.dlq, entry, maxlen=s.dlq_maxlen, approximate=True)  # type: ignore[arg-type]
        if plan.snapshots:
            pipe.hset(k.snapshots, mapping=plan.snapshots)  # type: ignore[arg-type]
        for bar in plan.bars:
            self.bar_publisher.add(pipe, bar)
        if plan.daystate:
            pipe.hset(k.daystate, mapping=plan.daystate)  # type: ignore[arg-type]
        counters = plan.counters + self.pending_counters
        for name, count in counters.items():
            pipe.hincrby(k.metrics, name, count)
        await pipe.execute()
        self.pending_counters.clear()

    async def process(self, ticks: list[Tick]) -> WritePlan:
        """Handle one batch of ticks end to end."""
        async with self._lock:
            plan = self.plan(ticks)
            await self.write(plan)
        return plan

    async def close_bars(self, now: int | None = None) -> list[Bar]:
        """Close the bars due at the feed's clock (or ``now``) and write them."""
        async with self._lock:
            bars = self.aggregator.advance(self.feed.now_ms() if now is None else now)
            if bars:
                plan = bars_plan(bars)
                plan.daystate = self.aggregator.take_changed()
                await self.write(plan)
        return bars

    async def flush(self) -> list[Bar]:
        """Shutdown: bars already due are closed and published as usual; the bars still being
        built are kept in the trend series (not lost) but not published, so no signal is ever
        taken from half a bar. They stay open in the stored day state: after a restart the
        aggregator goes on building them from that state, with the same start figures and a
        cumulative volume that never decreases, so the bar that replaces a stored partial one
        (same bar time: the trend script overwrites the last record) always holds at least its
        volume, and a snapshot that adds nothing changes no bar at all."""
        async with self._lock:
            due = self.aggregator.advance(self.feed.now_ms())
            unfinished = self.aggregator.open_bars()
            if due or unfinished:
                plan = bars_plan(due)
                plan.unfinished = unfinished
                plan.daystate = self.aggregator.take_changed()
                await self.write(plan)
        return due + unfinished

    async def restore(self) -> int:
        """Build the aggregator and the last tick times from the stored day states (start-up).
        An unreadable entry is logged and counted (``daystate_unreadable``); that code starts
        afresh, the others are restored. Returns the number of codes restored."""
        states, bad = await daystate.load(self.client, self.keys)
        for code, error in bad:
            log.error("ignoring the stored day state of %s: %s", code, error)
        if bad:
            self.pending_counters["daystate_unreadable"] += len(bad)
        built = await self._states_from_daily_bars([c for c in self.listings if c not in states])
        states.update(built)
        async with self._lock:
            self.aggregator = BarAggregator(self.aggregator.periods, states)
            self.last_ts = self.aggregator.last_ts()
            self.restored = True
        if states:
            log.info("restored the day state of %d codes", len(states))
        return len(states)

    async def _states_from_daily_bars(self, codes: list[str]) -> dict[str, daystate.CodeState]:
        """For codes with no stored day state (a first start, mid-week, after an import): the week
        and month bars forming now, holding the stored daily bars of their days before today, so
        the live path does not start a week or a month at its first tick."""
        if not codes:
            return {}
        now = self.feed.now_ms()
        tails = await self.store.tails(codes, "1d", DAYS_IN_A_MONTH_BAR)
        out: dict[str, daystate.CodeState] = {}
        for code, daily in zip(codes, tails, strict=True):
            state = prior_days_state(now, daily, self.aggregator.periods)
            if state is not None:
                out[code] = state
        if out:
            log.info("the forming week and month bars of %d codes built from their daily bars", len(out))
        return out

    async def heartbeat(self) -> None:
        """Liveness, the market clock (the feed's time up to which every tick was handed over,
        beside the wall time) and, when the feed has one, its last poll report."""
        wall = wall_ms()
        pipe = self.client.pipeline(transaction=False)
        pipe.hset(self.keys.heartbeats, SERVICE_NAME, wall)
        pipe.set(self.keys.market_clock, orjson.dumps({"ts": self.feed.now_ms(), "wall": wall}))
        report = getattr(self.feed, "last_report", None)
        if report is not None:
            pipe.set(self.keys.poll_stats, report.to_json())
        pipe.exists(self.keys.universe)
        *_, universe_kept = await pipe.execute()
        if not universe_kept and self.listings:
            # a server restarted empty: the universe the gateway and the scan read comes back
            log.warning("the universe was gone (a server restarted empty?); publishing it again")
            await publish(self.client, self.keys, list(self.listings.values()))

    # --- loops --------------------------------------------------------------------------------

    async def ingest(self, stop: asyncio.Event) -> None:
        """Consume the feed until it ends or ``stop`` is set (never inside a write)."""
        batches = aiter(self.feed)
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                nxt = asyncio.ensure_future(anext(batches))
                done, _ = await asyncio.wait({nxt, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if nxt not in done:
                    nxt.cancel()
                    with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                        await nxt
                    break
                try:
                    batch = nxt.result()
                except StopAsyncIteration:
                    # what is due at the feed's last clock closes (a recording's clock ends with
                    # its last trading day); a bar whose period goes on past it stays open
                    log.info("feed %s ended at %s", self.feed.name, _fmt_ms(self.feed.now_ms()))
                    await self.close_bars()
                    break
                if batch:
                    await self.process(batch)
        finally:
            stopping.cancel()
            aclose = getattr(batches, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()

    async def _restore_until_done(self, stop: asyncio.Event) -> None:
        """Restore the day states before the first tick, retrying while the server is away."""
        delay = 0.2
        while not self.restored and not stop.is_set():
            try:
                await self.restore()
            except RedisError as exc:
                log.warning("cannot read the stored day states (%s); retrying in %.1fs", exc, delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                delay = min(delay * 2, 5.0)

    async def _every(self, seconds: float, action: str, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await getattr(self, action)()
            except RedisError as exc:
                log.warning("%s failed: %s", action, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), seconds)

    async def release_memory(self) -> None:
        """Hand the heap pages freed since the last call (parsed polls, written plans) back."""
        release_freed_memory()

    async def log_stats(self) -> None:
        s = self.stats
        elapsed = max(time.monotonic() - self._stats_t0, 1e-9)
        rate = (s.accepted - self._stats_last) / elapsed
        self._stats_t0, self._stats_last = time.monotonic(), s.accepted
        log.info(
            "ticks accepted=%d rejected=%d (%.0f/s) bars=%d open=%d market=%s",
            s.accepted, s.rejected, rate, s.bars, len(self.aggregator.open_bars()),
            _fmt_ms(self.feed.now_ms()),
        )  # fmt: skip

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop``; then flush the open bars, as closed bars, and return."""
        self.stopping = stop  # a write stuck in an outage gives up (counted) once we stop
        self._stats_t0, self._stats_last = time.monotonic(), 0
        await self._restore_until_done(stop)
        with contextlib.suppress(RedisError):  # a server gone at this moment: the timer retries
            await self.heartbeat()
        tasks = [
            asyncio.create_task(self._every(ADVANCE_EVERY, "close_bars", stop), name="bars"),
            asyncio.create_task(self._every(HEARTBEAT_EVERY, "heartbeat", stop), name="hb"),
            asyncio.create_task(self._every(STATS_EVERY, "log_stats", stop), name="stats"),
            asyncio.create_task(self._every(TRIM_EVERY, "release_memory", stop), name="trim"),
        ]
        try:
            await self.ingest(stop)
            await stop.wait()  # a finite feed ended: keep the heartbeat going until told to stop
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            bars = await self.flush()
            with contextlib.suppress(RedisError):
                await self.heartbeat()
            await self.feed.aclose()
            log.info(
                "stopped: %d ticks accepted, %d rejected, %d bars (%d flushed at shutdown)",
                self.stats.accepted, self.stats.rejected, self.stats.bars, len(bars),
            )  # fmt: skip


def bars_plan(bars: list[Bar]) -> WritePlan:
    return WritePlan(bars=bars, counters=Counter(bars_closed=len(bars)))


def _fmt_ms(ts: int) -> str:
    from marketbus.sessions import from_ms

    return from_ms(ts).strftime("%Y-%m-%d %H:%M:%S") if 0 < ts < 2**42 else "-"
