"""Reading what the services wrote. Bad entries are skipped (and logged), never a 500."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from gateway.queries import SignalFilter, parse_stream_id, stream_id_str
from gateway.sse import decode_signal
from marketbus.contracts import Quote, Security, Signal

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from marketbus.keys import Keys

log = logging.getLogger("gateway")


def _quotes(raws: Iterable[Any]) -> list[Quote]:
    out = []
    for raw in raws:
        if raw is None:
            continue
        try:
            out.append(Quote.model_validate_json(raw))
        except ValidationError as exc:
            log.warning("skipping a bad snapshot: %s", exc.errors()[0]["msg"])
    return out


async def all_quotes(redis: Redis, keys: Keys) -> list[Quote]:
    quotes = _quotes(await redis.hvals(keys.snapshots))
    quotes.sort(key=lambda q: q.code)
    return quotes


async def quotes_of(redis: Redis, keys: Keys, codes: list[str]) -> list[Quote]:
    if not codes:
        return []
    return _quotes(await redis.hmget(keys.snapshots, codes))


async def universe(redis: Redis, keys: Keys) -> list[Security]:
    """The securities the quotes service knows (falls back to the snapshots' code/name/market)."""
    out: list[Security] = []
    for raw in await redis.hvals(keys.universe):
        try:
            out.append(Security.model_validate_json(raw))
        except ValidationError:
            log.warning("skipping a bad universe entry")
    if not out:
        out = [Security(code=q.code, name=q.name, market=q.market) for q in await all_quotes(redis, keys)]
    out.sort(key=lambda s: s.code)
    return out


async def code_known(redis: Redis, keys: Keys, code: str) -> bool:
    pipe = redis.pipeline(transaction=False)
    pipe.hexists(keys.universe, code)
    pipe.hexists(keys.snapshots, code)
    in_universe, in_snapshots = await pipe.execute()
    return bool(in_universe or in_snapshots)


async def signals_page(
    redis: Redis,
    keys: Keys,
    flt: SignalFilter,
    limit: int,
    cursor: str | None = None,
    chunk: int = 500,
    max_scan: int = 100_000,
) -> tuple[list[Signal], str | None]:
    """Newest first, from the signals stream. Returns (items, cursor of the next page or None)."""
    hi = f"({cursor}" if cursor else "+"
    lo = f"{flt.since}-0" if flt.since is not None else "-"
    items: list[Signal] = []
    scanned = 0
    last_id: str | None = None
    while len(items) < limit and scanned < max_scan:
        entries = await redis.xrevrange(keys.signals, max=hi, min=lo, count=chunk)
        if not entries:
            return items, None
        for raw_id, fields in entries:
            last_id = stream_id_str(raw_id)
            scanned += 1
            item = decode_signal(last_id, fields)
            if item is not None and flt.matches(item[0]):
                items.append(item[0])
                if len(items) >= limit:
                    return items, last_id
        if len(entries) < chunk:
            return items, None
        hi = f"({last_id}"
    return items, last_id


async def latest_signals(redis: Redis, keys: Keys) -> list[Signal]:
    out = []
    for raw in await redis.hvals(keys.signals_latest):
        try:
            out.append(Signal.model_validate_json(raw))
        except ValidationError:
            log.warning("skipping a bad latest-signal entry")
    return out


def valid_cursor(cursor: str) -> str:
    ms, seq = parse_stream_id(cursor)
    return f"{ms}-{seq}"


def text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def integer(value: Any) -> int | None:
    s = text(value)
    if s is None or s == "":
        return None
    try:
        return int(float(s))
    except ValueError:
        return None
