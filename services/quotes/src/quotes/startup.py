"""Start-up: publish the universe, decide where the sim starts, seed history, build the feed."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from marketbus import calendar, sessions
from marketbus.clock import parse_clock
from marketbus.contracts import Quote, Security
from marketbus.feeds import POLL_FEEDS
from marketbus.keys import Keys
from marketbus.layout import adopt_legacy_keys
from marketbus.sessions import (
    MINUTE_MS,
    is_in_session,
    last_session_open,
    local_day_start_ms,
    next_session_open,
)
from marketbus.settings import Settings
from marketbus.trend import TrendStore
from marketbus.wire import text
from quotes.feeds import DayState, Feed, FeedContext, create_feed
from quotes.feeds.base import WallClock
from quotes.history import seed_history
from quotes.universe import Listing, add_to_universe, load_universe, publish, select
from quotes.universe_refresh import fetch_and_store, listings_of

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("quotes")


async def known_listings(client: Redis, keys: Keys, bundled: list[Listing]) -> list[Listing]:
    """The bundled universe plus every code already published (e.g. by a history import)."""
    by_code = {item.code: item for item in bundled}
    for code, raw in (await client.hgetall(keys.universe)).items():
        code_s = text(code)
        if code_s not in by_code:
            try:
                by_code[code_s] = Listing(Security.model_validate_json(raw), 0.0)
            except ValueError:
                log.warning("ignoring a bad universe entry for %r", code_s)
    return list(by_code.values())


async def resume_states(
    client: Redis, keys: Keys, codes: list[str]
) -> tuple[int | None, dict[str, DayState]]:
    """From the stored snapshots: the latest tick time and where each code stood that day."""
    raws = await client.hmget(keys.snapshots, codes) if codes else []
    latest: int | None = None
    states: dict[str, DayState] = {}
    for code, raw in zip(codes, raws, strict=True):
        if raw is None:
            continue
        try:
            quote = Quote.model_validate_json(raw)
        except ValueError:
            continue
        latest = quote.ts if latest is None else max(latest, quote.ts)
        states[code] = DayState(
            day_ms=local_day_start_ms(quote.ts),
            pre_close=quote.pre_close or quote.price,
            price=quote.price,
            open=quote.open,
            high=quote.high,
            low=quote.low,
            volume=quote.volume,
            amount=quote.amount,
        )
    return latest, states


async def live_universe(
    client: Redis, keys: Keys, settings: Settings, bundled: list[Listing]
) -> list[Listing]:
    """The whole market from the provider's list endpoint (stored); when it cannot be reached, the
    universe stored by an earlier run or an import; on a first run offline, the bundled list."""
    fetched = await fetch_and_store(client, keys, settings.provider_url)
    if fetched is not None:
        return listings_of(fetched)
    stored = await known_listings(client, keys, [])
    if stored:
        log.warning("the list endpoint is unreachable: serving the stored universe (%d codes)", len(stored))
        return stored
    log.warning(
        "the list endpoint is unreachable and no universe is stored: serving the bundled list "
        "(%d codes, the offline fallback; `marketbus import-universe` loads a Tushare stock_basic)",
        len(bundled),
    )
    await publish(client, keys, bundled)
    return bundled


def sim_start(now: int, last_tick: int | None) -> int:
    """The latest session open at or before now, or right after the last stored tick if later
    (a restarted accelerated sim carries on instead of rewriting bars it already published)."""
    start = last_session_open(now)
    if last_tick is not None:
        after = last_tick - last_tick % MINUTE_MS + MINUTE_MS
        if not is_in_session(after):
            after = next_session_open(after)
        start = max(start, after)
    return start


async def prepare(client: Redis, settings: Settings) -> tuple[list[Listing], Feed]:
    """Publish the universe, prepare the chosen feed (seeding sim history); return the codes the
    service accepts and the feed."""
    keys = Keys(settings.key_prefix)
    await adopt_legacy_keys(client, keys)  # a deployment upgraded in place keeps its day state
    clock = parse_clock(settings.market_clock)
    # the one calendar: the package's sessions with the imported and learned days over them
    await calendar.load(client, keys, today=sessions.trading_date(clock.now_ms()))
    bundled = load_universe()
    served = bundled
    if settings.feed in POLL_FEEDS:
        served = select(await live_universe(client, keys, settings, bundled), settings.codes)
        known = {text(code) for code in await client.hkeys(keys.universe)}
        await publish(client, keys, [s for s in served if s.code not in known])  # MARKETBUS_CODES extras
    else:
        await publish(client, keys, bundled)
    listings = await known_listings(client, keys, served)
    ctx = FeedContext(settings=settings, universe=served)
    if settings.feed == "sim":
        last_tick, states = await resume_states(client, keys, [u.code for u in bundled])
        ctx.start_ms = sim_start(WallClock().now_ms(), last_tick)
        ctx.resume = states
        if settings.seed_history:
            store = TrendStore(client, keys, settings.trend_max_bars)
            seeded = await seed_history(store, bundled, settings.seed, ctx.start_ms)
            for code, state in seeded.items():
                ctx.resume.setdefault(code, state)
            if seeded:
                log.info("seeded history for %d codes", len(seeded))
    feed = create_feed(settings.feed, ctx)
    extra = getattr(feed, "codes", None)  # a replay file may bring codes of its own
    if settings.feed == "replay" and extra:
        known = {item.code for item in listings}
        await add_to_universe(client, keys, [c for c in extra if c not in known])
        listings = await known_listings(client, keys, listings)
    return listings, feed
