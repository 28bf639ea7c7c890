"""The live universe: taken from the provider's list endpoint at start and every trading morning.

At start and at 09:00 (market clock, Asia/Shanghai) of every trading day, before the 09:15 call
auction, the quotes service asks the provider's list endpoint for every listed A-share, ETF, LOF
and the main indices and stores it (:func:`quotes.universe.replace_universe`): new listings join,
delisted codes leave, and the running service polls and accepts the new set from then on. A failed
refresh keeps the universe it had and is retried with backoff until the auction opens.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import httpx
from redis.exceptions import RedisError

from marketbus.contracts import Security
from marketbus.sessions import AUCTION_OPEN, DAY_MS, MINUTE_MS, UTC_OFFSET_MS, is_trading_day, trading_date
from quotes.feeds.listing import fetch_universe
from quotes.feeds.poll import TIMEOUT, USER_AGENT
from quotes.universe import Listing, replace_universe

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from marketbus.keys import Keys

log = logging.getLogger("quotes.universe")

REFRESH_AT = 9 * 60 * MINUTE_MS  # 09:00, a quarter of an hour before the call auction
RETRY_S = (5.0, 15.0, 60.0, 120.0)


def next_refresh_ms(now_ms: int) -> int:
    """The first 09:00 Asia/Shanghai of a trading day strictly after ``now_ms``."""
    local = now_ms + UTC_OFFSET_MS
    day, tod = divmod(local, DAY_MS)
    if tod >= REFRESH_AT:
        day += 1
    while True:
        at = day * DAY_MS + REFRESH_AT - UTC_OFFSET_MS
        if is_trading_day(trading_date(at)):
            return at
        day += 1


def listings_of(securities: list[Security], codes: str | None = None) -> list[Listing]:
    """The listings to serve: every security, or those named in ``MARKETBUS_CODES``."""
    if codes:
        wanted = {c.strip().upper() for c in codes.split(",") if c.strip()}
        securities = [s for s in securities if s.code in wanted]
    return [Listing(security, 0.0) for security in securities]


async def fetch_and_store(client: Redis, keys: Keys, provider_url: str | None) -> list[Security] | None:
    """Fetch the whole market from the list endpoint and store it; None when the endpoint failed
    (the stored universe is left as it was)."""
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT, headers={"User-Agent": USER_AGENT}) as http:
            securities = await fetch_universe(http, provider_url)
    except (httpx.HTTPError, ValueError) as exc:
        log.warning("universe refresh failed: %s: %s", type(exc).__name__, exc)
        return None
    if not securities:
        log.warning("universe refresh: the list endpoint answered no security; keeping the stored one")
        return None
    added, removed = await replace_universe(client, keys, securities)
    log.info(
        "universe: %d securities from the list endpoint (%d new: %s; %d delisted: %s)",
        len(securities), len(added), ", ".join(added[:10]), len(removed), ", ".join(removed[:10]),
    )  # fmt: skip
    return securities


async def keep_fresh(
    client: Redis,
    keys: Keys,
    provider_url: str | None,
    now_ms: Callable[[], int],
    apply: Callable[[list[Security]], None],
    stop: asyncio.Event,
    seconds_until: Callable[[int], float] | None = None,
) -> None:
    """Refresh the universe every trading morning at 09:00 (market clock) until ``stop``; ``apply``
    hands each new universe to the running service. ``seconds_until(ts)`` converts a market time
    to wall seconds from now (an accelerated clock runs faster than the wall)."""

    def wait_s(target: int) -> float:
        if seconds_until is not None:
            return seconds_until(target)
        return (target - now_ms()) / 1000

    while not stop.is_set():
        target = next_refresh_ms(now_ms())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max(wait_s(target), 0.0))
            return
        for attempt, delay in enumerate((*RETRY_S, None)):
            try:
                fetched = await fetch_and_store(client, keys, provider_url)
            except RedisError as exc:
                log.warning("universe refresh: cannot store it (%s)", exc)
                fetched = None
            if fetched is not None:
                apply(fetched)
                break
            auction = target - REFRESH_AT + AUCTION_OPEN
            if delay is None or now_ms() >= auction:
                log.error("universe refresh failed %d times; keeping yesterday's universe", attempt + 1)
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
                return
