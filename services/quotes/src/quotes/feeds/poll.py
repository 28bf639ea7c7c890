"""Polling public snapshot endpoints: the machinery shared by eastmoney, sina, tencent and auto.

A :class:`Provider` knows one endpoint: how to ask for a list of codes and how to parse the
answer into ticks (a pure function, tested on sample responses). :class:`PollFeed` polls one
provider at a time, never more often than the minimum interval per provider, skips unchanged
snapshots, and on an error or timeout backs that provider off exponentially and fails over to the
next one (``auto`` = eastmoney, then sina, then tencent). Nothing here raises out of the loop:
network failure is logged and retried. Outside the trading day it sleeps until the next session.
"""

from __future__ import annotations

import asyncio
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import httpx

from marketbus.contracts import Tick
from marketbus.sessions import (
    AUCTION_OPEN,
    DAY_MS,
    SESSION_END_GRACE_MS,
    UTC_OFFSET_MS,
    is_trading_day,
    next_session_open,
    shanghai_ms,
    trading_date,
)
from quotes.feeds.base import Feed, FeedContext, WallClock

log = logging.getLogger("quotes.poll")

LATENESS_MS = 5_000  # bars close this long after their end: polled ticks arrive late
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
    def parse(self, body: bytes, codes: list[str]) -> list[Tick]:
        """Ticks from a response body (units converted: shares, yuan). Raises ValueError when
        the body is not in the provider's format. Suspended or untraded codes are left out."""


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
    return shanghai_ms(int(d[:4]), int(d[4:6]), int(d[6:8]), int(t[:2]), int(t[2:4]), int(t[4:6]))


def in_trading_window(now: int) -> bool:
    """From the 09:15 auction to 15:00 plus grace on a trading day (lunch included: cheap)."""
    tod = (now + UTC_OFFSET_MS) % DAY_MS
    return (
        AUCTION_OPEN - 60_000 <= tod <= 15 * 3_600_000 + SESSION_END_GRACE_MS + LATENESS_MS
        and is_trading_day(trading_date(now))
    )


class _Health:
    def __init__(self) -> None:
        self.failures = 0
        self.retry_at = 0.0
        self.last_request = -1e9


class PollFeed(Feed):
    name = "poll"

    def __init__(
        self,
        providers: list[Provider],
        codes: list[str],
        interval: float = 3.0,
        timeout: float = TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], int] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        always_open: bool = False,
    ) -> None:
        self.providers = providers
        self.codes = codes
        self.interval = interval
        self.timeout = timeout
        self.transport = transport
        self.clock = clock or WallClock().now_ms
        self.monotonic = monotonic
        self.always_open = always_open  # tests: poll whatever the time
        self.health = {p.name: _Health() for p in providers}
        self.name = providers[0].name if len(providers) == 1 else "auto"
        self._last: dict[str, tuple[int, float]] = {}
        self.current: Provider | None = None

    def now_ms(self) -> int:
        return self.clock() - LATENESS_MS

    def pick(self) -> Provider | None:
        """The first provider (in failover order) that is not backing off."""
        now = self.monotonic()
        for provider in self.providers:
            if self.health[provider.name].retry_at <= now:
                return provider
        return None

    def fresh(self, ticks: list[Tick]) -> list[Tick]:
        """Ticks that differ from the last one sent for their code (time or volume)."""
        out = []
        for tick in ticks:
            key = (tick.ts, tick.volume)
            if self._last.get(tick.code) != key:
                self._last[tick.code] = key
                out.append(tick)
        return out

    async def poll_once(self, http: httpx.AsyncClient, provider: Provider) -> list[Tick]:
        ticks: list[Tick] = []
        for start in range(0, len(self.codes), provider.max_codes):
            chunk = self.codes[start : start + provider.max_codes]
            req = provider.request(chunk)
            response = await http.get(req.url, params=req.params, headers=req.headers)
            response.raise_for_status()
            ticks.extend(provider.parse(response.content, chunk))
        return ticks

    def failed(self, provider: Provider, exc: Exception) -> None:
        health = self.health[provider.name]
        health.failures += 1
        delay = min(BACKOFF_START * 2 ** (health.failures - 1), BACKOFF_MAX)
        health.retry_at = self.monotonic() + delay
        log.warning("%s failed (%s: %s); backing off %.0fs", provider.name,
                    type(exc).__name__, exc, delay)  # fmt: skip

    async def _wait_for_session(self) -> None:
        while not self.always_open and not in_trading_window(self.clock()):
            opens = next_session_open(self.clock()) - 15 * 60_000
            await asyncio.sleep(min(max((opens - self.clock()) / 1000, 1.0), 60.0))

    async def batches(self) -> AsyncIterator[list[Tick]]:
        async with httpx.AsyncClient(
            transport=self.transport, timeout=self.timeout, headers={"User-Agent": USER_AGENT}
        ) as http:
            while True:
                await self._wait_for_session()
                provider = self.pick()
                if provider is None:
                    soonest = min(h.retry_at for h in self.health.values())
                    await asyncio.sleep(max(soonest - self.monotonic(), 0.05))
                    continue
                health = self.health[provider.name]
                wait = health.last_request + self.interval - self.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                health.last_request = self.monotonic()
                if provider is not self.current:
                    log.info("polling %s for %d codes", provider.name, len(self.codes))
                    self.current = provider
                try:
                    ticks = await self.poll_once(http, provider)
                except (httpx.HTTPError, ValueError) as exc:
                    self.failed(provider, exc)
                    continue
                health.failures = 0
                fresh = self.fresh(ticks)
                if fresh:
                    yield fresh


def create_poll_feed(ctx: FeedContext, providers: list[Provider]) -> PollFeed:
    codes = [item.code for item in ctx.universe]
    return PollFeed(providers, codes, interval=ctx.settings.poll_interval)
