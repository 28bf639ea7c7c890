"""The process: settings, the Redis client (created in the running loop), signals, run, close."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from typing import TYPE_CHECKING

from redis.exceptions import RedisError

from marketbus import calendar
from marketbus.clock import parse_clock
from marketbus.contracts import Security
from marketbus.keys import Keys
from marketbus.redis import connect, redact
from marketbus.sessions import trading_date
from marketbus.settings import Settings, load_settings
from quotes.calendar_watch import watch
from quotes.feeds.poll import PollFeed
from quotes.memory import release_freed_memory
from quotes.service import QuotesService
from quotes.startup import prepare
from quotes.universe_refresh import keep_fresh, listings_of

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("quotes")


def background_tasks(
    client: Redis, settings: Settings, service: QuotesService, stop: asyncio.Event
) -> list[asyncio.Task[object]]:
    """The service's daily chores beside the tick path, as tasks of this loop."""
    feed = service.feed
    clock = parse_clock(settings.market_clock)
    keys = Keys(settings.key_prefix)
    tasks: list[asyncio.Task[object]] = [
        asyncio.create_task(
            calendar.keep_fresh(client, keys, stop, today=lambda: trading_date(clock.now_ms())),
            name="calendar",
        )
    ]
    if isinstance(feed, PollFeed):

        def apply(securities: list[Security]) -> None:
            served = listings_of(securities, settings.codes)
            service.listings.update({item.code: item for item in served})
            for gone in set(service.listings) - {item.code for item in served}:
                del service.listings[gone]
            feed.set_codes([item.code for item in served])

        tasks.append(
            asyncio.create_task(
                watch(
                    client,
                    keys,
                    clock.now_ms,
                    lambda: feed.newest_tick_ms,
                    stop,
                    answered_ms=lambda: feed.answered_ms,
                ),
                name="holidays",
            )
        )
        tasks.append(
            asyncio.create_task(
                keep_fresh(
                    client,
                    keys,
                    settings.provider_url,
                    clock.now_ms,
                    apply,
                    stop,
                    seconds_until=lambda ts: clock.wall_seconds(ts - clock.now_ms()),
                ),
                name="universe",
            )
        )
    return tasks


async def main() -> int:
    """Run the quotes service until SIGTERM/SIGINT; flush the open bars; return the exit code."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per provider request
    settings = load_settings()
    if not settings.redis_url:
        log.error("MARKETBUS_REDIS_URL is not set: point it at a Redis/Valkey server "
                  "(or start everything with `uv run marketbus up`)")  # fmt: skip
        return 2
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    client = connect(settings.redis_url)
    try:
        try:
            await client.ping()
        except (RedisError, OSError) as exc:
            log.error("cannot reach %s: %s", redact(settings.redis_url), exc)
            return 1
        listings, feed = await prepare(client, settings)
        log.info(
            "quotes starting: feed=%s codes=%d redis=%s prefix=%s speed=%s",
            settings.feed, len(listings), redact(settings.redis_url), settings.key_prefix,
            settings.speed,
        )  # fmt: skip
        gc.collect()
        gc.freeze()  # start-up objects (universe, history, calendar) out of every GC pass
        release_freed_memory()  # the start-up's temporaries (the list pages, parsed start-up data)
        service = QuotesService(client, settings, listings, feed)
        tasks = background_tasks(client, settings, service, stop)
        try:
            await service.run(stop)
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await client.aclose()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    return 0
