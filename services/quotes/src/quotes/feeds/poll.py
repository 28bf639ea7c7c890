"""Polling public snapshot endpoints: the machinery shared by eastmoney, sina, tencent and auto.

A :class:`Provider` knows one endpoint: how to ask for a list of codes and how to parse the
answer into ticks (a pure function, tested on sample responses). :class:`PollFeed` polls the whole
code list once per interval: the codes are cut into chunks of the first healthy provider's own
batch size, the chunks are requested concurrently (at most ``concurrency`` requests in flight per
provider) and each chunk's ticks are handed over as soon as they are parsed, so a slow chunk
never holds the others. A chunk that fails or times out is asked of the next provider (``auto`` =
eastmoney, then sina, then tencent) within the same poll, cut to that provider's batch size; the
provider that failed it is skipped for that chunk for a while (exponential, per chunk). A provider
that answers none of its chunks in a poll backs off exponentially as a whole. Nothing here raises
out of the loop: network failure is logged and retried. Outside the trading day it sleeps until
the next session. Time is the market clock (``MARKETBUS_MARKET_CLOCK``), so a test or a demo can
drive any trading day; ``provider_url`` replaces every provider's host (the provider simulator).

After each poll :attr:`PollFeed.last_report` describes it (for ``Keys.poll_stats``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
import orjson

from marketbus.clock import MarketClock, parse_clock
from marketbus.contracts import Tick
from marketbus.sessions import (
    AFTERNOON_CLOSE,
    AUCTION_OPEN,
    DAY_MS,
    SESSION_END_GRACE_MS,
    UTC_OFFSET_MS,
    is_trading_day,
    local_day_start_ms,
    next_session_open,
    shanghai_ms,
    trading_date,
)
from quotes.feeds.base import Feed, FeedContext

log = logging.getLogger("quotes.poll")

LATENESS_MS = 5_000  # bars close this long after their end: polled ticks arrive late
CLOSING_POLL_MS = 5_000  # the day's closing poll starts this long after 15:00 (the close's stamps)
BACKOFF_START = 1.0
BACKOFF_MAX = 60.0
TIMEOUT = 5.0
USER_AGENT = "Mozilla/5.0 (marketbus quotes)"


@dataclass(frozen=True, slots=True)
class Request:
    url: str
    params: dict[str, str]
    headers: dict[str, str]


class Provider(ABC):
    name: str = "provider"
    max_codes: int = 100  # codes per request

    @abstractmethod
    def request(self, codes: list[str]) -> Request:
        """The request for a chunk of codes (tushare style, 510300.SH)."""

    @abstractmethod
    def parse(self, body: bytes, codes: list[str], day: dt.date | None = None) -> list[Tick]:
        """Ticks from a response body (units converted: shares, yuan). Raises ValueError when
        the body is not in the provider's format. Suspended or untraded codes, placeholder rows
        and, when ``day`` is given, rows dated another day are left out."""


def prefixed(code: str) -> str:
    """510300.SH -> sh510300 (the code form of sina and tencent)."""
    num, _, exchange = code.partition(".")
    return exchange.lower() + num


def unprefixed(symbol: str) -> str:
    """sh510300 -> 510300.SH."""
    return f"{symbol[2:]}.{symbol[:2].upper()}"


def wall_ms(date: str, clock: str) -> int:
    """'2024-05-10' or '20240510', '15:00:03' or '150003' (Asia/Shanghai) -> epoch ms."""
    d = date.replace("-", "")
    t = clock.replace(":", "")
    if len(d) != 8 or len(t) != 6 or not (d.isdigit() and t.isdigit()):
        raise ValueError(f"bad provider time {date!r} {clock!r}")
    return shanghai_ms(int(d[:4]), int(d[4:6]), int(d[6:8]), int(t[:2]), int(t[2:4]), int(t[4:6]))


def rebase(url: str, base_url: str | None) -> str:
    """``url`` on ``base_url``'s scheme and host, keeping its path and query (None: unchanged)."""
    if not base_url:
        return url
    parts = urlsplit(url)
    return base_url.rstrip("/") + parts.path + (f"?{parts.query}" if parts.query else "")


def in_trading_window(now: int) -> bool:
    """From the 09:15 auction to 15:00 plus grace on a trading day (lunch included: cheap)."""
    tod = (now + UTC_OFFSET_MS) % DAY_MS
    return (
        AUCTION_OPEN - 60_000 <= tod <= 15 * 3_600_000 + SESSION_END_GRACE_MS + LATENESS_MS
        and is_trading_day(trading_date(now))
    )


@dataclass(frozen=True, slots=True)
class PollReport:
    """One full poll: when it started (market epoch ms), how long it took (wall ms), the codes
    asked for and those some provider answered, chunks served per provider, chunks lost."""

    started_ts: int
    duration_ms: float
    codes_requested: int
    codes_covered: int
    providers: dict[str, int] = field(default_factory=dict)
    failed_chunks: int = 0

    def to_json(self) -> str:
        return orjson.dumps(
            {
                "started_ts": self.started_ts,
                "duration_ms": round(self.duration_ms, 1),
                "codes_requested": self.codes_requested,
                "codes_covered": self.codes_covered,
                "providers": self.providers,
                "failed_chunks": self.failed_chunks,
            }
        ).decode()


class _Health:
    def __init__(self) -> None:
        self.failures = 0
        self.retry_at = 0.0


def chunks(codes: list[str], size: int) -> list[list[str]]:
    return [codes[i : i + size] for i in range(0, len(codes), size)]


class PollFeed(Feed):
    name = "poll"

    def __init__(
        self,
        providers: list[Provider],
        codes: Iterable[str],
        interval: float = 3.0,
        timeout: float = TIMEOUT,
        concurrency: int = 8,
        clock: MarketClock | None = None,
        base_url: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        always_open: bool = False,
        backoff_start: float = BACKOFF_START,
    ) -> None:
        if not providers:
            raise ValueError("a poll feed needs at least one provider")
        self.providers = providers
        self.codes = list(codes)
        self.interval = interval
        self.timeout = timeout
        self.concurrency = concurrency
        self.clock = clock or parse_clock(None)
        self.base_url = base_url
        self.transport = transport
        self.monotonic = monotonic
        self.always_open = always_open  # tests: poll whatever the time
        self.backoff_start = backoff_start
        self.health = {p.name: _Health() for p in providers}
        self.name = providers[0].name if len(providers) == 1 else "auto"
        self._last: dict[str, tuple[int, float]] = {}
        self._chunk_skip: dict[tuple[str, str, int], tuple[int, float]] = {}  # (provider, first, n)
        self._handed_ms = self.clock.now_ms() - LATENESS_MS
        self._last_poll = -1e9
        self._last_poll_ts: int | None = None  # market time the last poll started
        self.current: Provider | None = None
        self.last_report: PollReport | None = None
        self.answered_ms: int | None = None  # market time of the last poll a provider answered
        self.newest_tick_ms: int | None = None  # exchange time of the newest snapshot handed over

    def now_ms(self) -> int:
        """The market time up to which every tick was handed over: the start of the last complete
        poll (less the providers' lateness); the clock itself while no session is on."""
        return self._handed_ms

    def set_codes(self, codes: Iterable[str]) -> None:
        """Poll these codes from the next poll on (the universe refresh)."""
        self.codes = list(dict.fromkeys(codes))
        keep = set(self.codes)
        self._last = {c: v for c, v in self._last.items() if c in keep}

    def available(self) -> list[Provider]:
        """The providers (in failover order) that are not backing off."""
        now = self.monotonic()
        return [p for p in self.providers if self.health[p.name].retry_at <= now]

    def fresh(self, ticks: list[Tick]) -> list[Tick]:
        """Ticks that differ from the last one sent for their code (time or volume)."""
        out = []
        for tick in ticks:
            key = (tick.ts, tick.volume)
            if self._last.get(tick.code) != key:
                self._last[tick.code] = key
                out.append(tick)
        return out

    def failed(self, provider: Provider, exc: Exception | str) -> None:
        health = self.health[provider.name]
        health.failures += 1
        delay = min(self.backoff_start * 2 ** (health.failures - 1), BACKOFF_MAX)
        health.retry_at = self.monotonic() + delay
        log.warning("%s failed (%s); backing off %.1fs", provider.name, exc, delay)

    # --- one poll ---------------------------------------------------------------------------
    async def fetch(
        self, http: httpx.AsyncClient, provider: Provider, codes: list[str], day: dt.date | None,
        limit: asyncio.Semaphore,
    ) -> list[Tick]:  # fmt: skip
        req = provider.request(codes)
        async with limit:
            response = await http.get(
                rebase(req.url, self.base_url), params=req.params or None, headers=req.headers
            )
        response.raise_for_status()
        return provider.parse(response.content, codes, day)

    def _skipped(self, provider: Provider, codes: list[str]) -> bool:
        entry = self._chunk_skip.get((provider.name, codes[0], len(codes)))
        return entry is not None and entry[1] > self.monotonic()

    def _chunk_failed(self, provider: Provider, codes: list[str]) -> None:
        key = (provider.name, codes[0], len(codes))
        failures = self._chunk_skip.get(key, (0, 0.0))[0] + 1
        delay = min(self.backoff_start * 2 ** (failures - 1), BACKOFF_MAX)
        self._chunk_skip[key] = (failures, self.monotonic() + delay)

    async def poll(
        self, http: httpx.AsyncClient, limits: dict[str, asyncio.Semaphore] | None = None
    ) -> AsyncIterator[list[Tick]]:
        """One poll of every code: each chunk's ticks (not deduplicated) as soon as they are
        parsed; :attr:`last_report` describes it once the iteration ends."""
        if limits is None:
            limits = {p.name: asyncio.Semaphore(self.concurrency) for p in self.providers}
        order = self.available()
        codes = list(self.codes)
        started_ts = self.clock.now_ms()
        started = self.monotonic()
        day = trading_date(started_ts)
        if not order or not codes:
            return
        primary = order[0]
        if primary is not self.current:
            log.info("polling %s for %d codes", primary.name, len(codes))
            self.current = primary
        queue: asyncio.Queue[list[Tick] | None] = asyncio.Queue()
        served = dict.fromkeys((p.name for p in order), 0)
        failures = dict.fromkeys((p.name for p in order), 0)
        lost = 0
        covered: set[str] = set()

        async def serve(chunk: list[str], start: int) -> None:
            nonlocal lost
            candidates = [p for p in order[start:] if not self._skipped(p, chunk)] or order[start:]
            for provider in candidates:
                index = order.index(provider)
                if len(chunk) > provider.max_codes:  # a smaller batch size: cut and serve each part
                    parts = chunks(chunk, provider.max_codes)
                    await asyncio.gather(*(serve(part, index) for part in parts))
                    return
                try:
                    ticks = await self.fetch(http, provider, chunk, day, limits[provider.name])
                except (httpx.HTTPError, ValueError) as exc:
                    failures[provider.name] += 1
                    self._chunk_failed(provider, chunk)
                    log.info("%s: chunk %s..(%d codes) failed: %s: %s", provider.name, chunk[0],
                             len(chunk), type(exc).__name__, exc)  # fmt: skip
                    continue
                self._chunk_skip.pop((provider.name, chunk[0], len(chunk)), None)
                served[provider.name] += 1
                self.answered_ms = started_ts  # an answer, whatever the date of its rows
                covered.update(t.code for t in ticks)
                queue.put_nowait(ticks)
                return
            lost += 1

        async def top(chunk: list[str]) -> None:
            try:
                await serve(chunk, 0)
            finally:
                queue.put_nowait(None)

        tasks = [asyncio.create_task(top(chunk)) for chunk in chunks(codes, primary.max_codes)]
        remaining = len(tasks)
        try:
            while remaining:
                item = await queue.get()
                if item is None:
                    remaining -= 1
                elif item:
                    newest = max(t.ts for t in item)
                    if self.newest_tick_ms is None or newest > self.newest_tick_ms:
                        self.newest_tick_ms = newest
                    yield item
        finally:
            for task in tasks:
                task.cancel()
        for provider in order:
            name = provider.name
            if served[name]:
                self.health[name].failures = 0
            elif failures[name]:
                self.failed(provider, f"{failures[name]} chunk(s) failed, none served")
        self._handed_ms = max(self._handed_ms, started_ts - LATENESS_MS)
        self.last_report = PollReport(
            started_ts=started_ts,
            duration_ms=(self.monotonic() - started) * 1000,
            codes_requested=len(codes),
            codes_covered=len(covered),
            providers={name: n for name, n in served.items() if n},
            failed_chunks=lost,
        )
        if lost:
            log.warning("poll: %d chunk(s) answered by no provider", lost)

    def closing_poll_at(self) -> int | None:
        """Market time of the poll still owed for the close, or None.

        When the day's last poll started before the close's snapshot (15:00 plus
        :data:`CLOSING_POLL_MS`), one more poll is owed at that time, inside or outside the trading
        window: with a poll interval longer than the window after the close (or a clock that
        runs faster), the next regular poll would fall after the window and the day's closing
        snapshot would be lost. A feed that never polled that day owes nothing."""
        last = self._last_poll_ts
        if last is None:
            return None
        day = local_day_start_ms(last)
        due = day + AFTERNOON_CLOSE + CLOSING_POLL_MS
        if last >= due or last < day + AUCTION_OPEN - 60_000 or self.clock.now_ms() >= day + DAY_MS:
            return None
        return due

    async def _wait_for_session(self) -> None:
        while not self.always_open and not in_trading_window(self.clock.now_ms()):
            now = self.clock.now_ms()
            self._handed_ms = max(self._handed_ms, now - LATENESS_MS)
            opens = next_session_open(now) - 15 * 60_000
            await asyncio.sleep(min(max(self.clock.wall_seconds(opens - now), 1.0), 60.0))

    async def batches(self) -> AsyncIterator[list[Tick]]:
        limits = {p.name: asyncio.Semaphore(self.concurrency) for p in self.providers}
        pool = httpx.Limits(max_connections=self.concurrency * len(self.providers),
                            max_keepalive_connections=self.concurrency * len(self.providers))  # fmt: skip
        async with httpx.AsyncClient(
            transport=self.transport, timeout=self.timeout, limits=pool,
            headers={"User-Agent": USER_AGENT},
        ) as http:  # fmt: skip
            while True:
                closing = self.closing_poll_at()
                closing_due = closing is not None and self.clock.now_ms() >= closing
                if not closing_due:
                    await self._wait_for_session()
                if not self.available():
                    soonest = min(h.retry_at for h in self.health.values())
                    await asyncio.sleep(max(soonest - self.monotonic(), 0.05))
                    continue
                wait = self._last_poll + self.interval - self.monotonic()
                if closing is not None:  # the closing poll comes at its time, whatever the interval
                    wait = (
                        0.0
                        if closing_due
                        else min(wait, self.clock.wall_seconds(closing - self.clock.now_ms()))
                    )
                if wait > 0:
                    await asyncio.sleep(wait)
                    continue  # a provider may have come back meanwhile
                self._last_poll = self.monotonic()
                self._last_poll_ts = self.clock.now_ms()
                async for ticks in self.poll(http, limits):
                    fresh = self.fresh(ticks)
                    if fresh:
                        yield fresh


def create_poll_feed(ctx: FeedContext, providers: list[Provider]) -> PollFeed:
    settings = ctx.settings
    return PollFeed(
        providers,
        [item.code for item in ctx.universe],
        interval=settings.poll_interval,
        concurrency=settings.poll_concurrency,
        clock=parse_clock(settings.market_clock),
        base_url=settings.provider_url,
    )
