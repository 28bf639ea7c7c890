"""The process: settings, the Redis client (created in the running loop), signals, run, close."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal

from redis.exceptions import RedisError

from marketbus.redis import connect, redact
from marketbus.settings import load_settings
from quotes.service import QuotesService
from quotes.startup import prepare

log = logging.getLogger("quotes")


async def main() -> int:
    """Run the quotes service until SIGTERM/SIGINT; flush the open bars; return the exit code."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
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
        gc.freeze()  # start-up objects (universe, history, calendar) out of every GC pass
        await QuotesService(client, settings, listings, feed).run(stop)
    finally:
        await client.aclose()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    return 0
