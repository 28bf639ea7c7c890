"""Every Redis read of the gateway: what the services wrote, as the routes serve it. Bad entries are
skipped (and logged), never a 500. (The pure pieces, filters and views, are in gateway.queries; the
SSE hubs read their streams themselves, gateway.sse.)"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from redis.exceptions import ResponseError

from gateway.queries import SignalFilter, parse_stream_id
from gateway.sse import SignalItem, decode_signal
from marketbus import calendar, jobs, streams, wire
from marketbus.contracts import JobStatus, Quote, SchedulerState, Security, Signal, StrategyInfo

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from marketbus.keys import Keys

log = logging.getLogger("gateway")

CATCH_UP_CHUNK = 500
TICKS_CHUNK = 2000
M = TypeVar("M", bound=BaseModel)


def _models(cls: type[M], raws: Iterable[Any], what: str) -> list[M]:
    out = []
    for raw in raws:
        if raw is None:
            continue
        try:
            out.append(cls.model_validate_json(raw))
        except ValidationError as exc:
            log.warning("skipping a bad %s: %s", what, exc.errors()[0]["msg"])
    return out


# quotes and securities ---------------------------------------------------------------------------
async def all_quotes(redis: Redis, keys: Keys) -> list[Quote]:
    quotes = _models(Quote, await redis.hvals(keys.snapshots), "snapshot")
    quotes.sort(key=lambda q: q.code)
    return quotes


async def quotes_of(redis: Redis, keys: Keys, codes: list[str]) -> list[Quote]:
    if not codes:
        return []
    return _models(Quote, await redis.hmget(keys.snapshots, codes), "snapshot")


async def snapshot_codes(redis: Redis, keys: Keys) -> list[str]:
    """Every code with a quote snapshot."""
    return [wire.text(k) for k in await redis.hkeys(keys.snapshots)]


async def universe(redis: Redis, keys: Keys) -> list[Security]:
    """The securities the quotes service knows (falls back to the snapshots' code/name/market)."""
    out = _models(Security, await redis.hvals(keys.universe), "universe entry")
    if not out:
        out = [Security(code=q.code, name=q.name, market=q.market) for q in await all_quotes(redis, keys)]
    out.sort(key=lambda s: s.code)
    return out


async def securities_of(redis: Redis, keys: Keys, codes: list[str]) -> dict[str, Security]:
    """The universe entries of ``codes`` that it has, by code (one HMGET)."""
    if not codes:
        return {}
    return {s.code: s for s in _models(Security, await redis.hmget(keys.universe, codes), "universe entry")}


async def code_known(redis: Redis, keys: Keys, code: str) -> bool:
    pipe = redis.pipeline(transaction=False)
    pipe.hexists(keys.universe, code)
    pipe.hexists(keys.snapshots, code)
    in_universe, in_snapshots = await pipe.execute()
    return bool(in_universe or in_snapshots)


async def ticks_changed_since(
    redis: Redis, keys: Keys, after: str, until: str | None, max_scanned: int
) -> dict[str, str] | None:
    """code -> newest tick id after ``after`` (up to ``until``, or the end); None when more than
    ``max_scanned`` ticks came since."""
    changed: dict[str, str] = {}
    lo, hi = f"({after}", until or "+"
    scanned = 0
    while scanned < max_scanned:
        entries: list[Any] = await redis.xrange(keys.ticks, min=lo, max=hi, count=TICKS_CHUNK) or []
        for raw_id, fields in entries:
            try:
                code = orjson.loads(fields.get(b"data", b"{}")).get("code")
            except (orjson.JSONDecodeError, AttributeError):
                code = None
            if isinstance(code, str):
                changed[code] = wire.text(raw_id)
        scanned += len(entries)
        if len(entries) < TICKS_CHUNK:
            return changed
        lo = f"({wire.text(entries[-1][0])}"
    return None


# signals and strategies --------------------------------------------------------------------------
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
    if cursor is not None and parse_stream_id(cursor) == (0, 0):
        return [], None  # nothing comes before the first id (and Redis refuses the range "(0-0")
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
            last_id = wire.text(raw_id)
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


async def signals_after(redis: Redis, keys: Keys, after: str) -> AsyncIterator[tuple[str, SignalItem]]:
    """(entry id, signal) of every signal written after ``after``, oldest first (the catch-up of an
    SSE client that resumes)."""
    lo = f"({after}"
    while True:
        entries: list[Any] = await redis.xrange(keys.signals, min=lo, max="+", count=CATCH_UP_CHUNK) or []
        for raw_id, fields in entries:
            eid = wire.text(raw_id)
            item = decode_signal(eid, fields)
            if item is not None:
                yield eid, item
        if len(entries) < CATCH_UP_CHUNK:
            return
        lo = f"({wire.text(entries[-1][0])}"


async def signals_last_id(redis: Redis, keys: Keys) -> str | None:
    """The id of the newest entry of the signals stream (None when empty): it moves whenever the
    latest signals do (both are written in one transaction)."""
    newest = await redis.xrevrange(keys.signals, count=1)
    return wire.text(newest[0][0]) if newest else None


async def latest_signals(redis: Redis, keys: Keys) -> list[Signal]:
    return _models(Signal, await redis.hvals(keys.signals_latest), "latest-signal entry")


async def latest_signals_of(
    redis: Redis, keys: Keys, wanted: list[tuple[str, str, str]]
) -> dict[tuple[str, str, str], Signal]:
    """The latest signal of each (code, strategy, period) that has one (one HMGET)."""
    if not wanted:
        return {}
    fields = [f"{code}|{strategy}|{period}" for code, strategy, period in wanted]
    found = _models(Signal, await redis.hmget(keys.signals_latest, fields), "latest-signal entry")
    return {(s.code, s.strategy, s.period): s for s in found}


async def strategies(redis: Redis, keys: Keys) -> list[StrategyInfo]:
    """The strategies the signals service published, by key."""
    items = _models(StrategyInfo, await redis.hvals(keys.strategies), "strategy")
    items.sort(key=lambda s: s.key)
    return items


# jobs and the schedule ---------------------------------------------------------------------------
async def job(redis: Redis, keys: Keys, job_id: str) -> JobStatus | None:
    return jobs.parse(await redis.get(keys.job(job_id)))


async def scheduler_state(redis: Redis, keys: Keys) -> SchedulerState:
    """The schedule's shared state; an unreadable hash counts as empty (logged)."""
    raw = await redis.hgetall(keys.scheduler_state)
    try:
        return SchedulerState.from_hash(raw)
    except ValidationError as exc:
        log.warning("ignoring a bad scheduler state: %s", exc.errors()[0]["msg"])
        return SchedulerState()


# operations --------------------------------------------------------------------------------------
async def market_clock(redis: Redis, keys: Keys) -> bytes | str | None:
    """The market clock the quotes service publishes (raw JSON ``{ts, wall}``), or None."""
    raw: bytes | str | None = await redis.get(keys.market_clock)
    return raw


async def ping(redis: Redis) -> None:
    """Raises when the server does not answer."""
    await redis.ping()


async def groups_of(redis: Redis, stream: str) -> list[dict[str, Any]]:
    """XINFO GROUPS as dicts with str keys and values ([] when the stream does not exist)."""
    try:
        raw = await redis.xinfo_groups(stream)
    except ResponseError:
        return []
    return [{wire.text(k): (wire.text(v) if isinstance(v, bytes) else v) for k, v in g.items()} for g in raw]


async def calendar_checks(redis: Redis, keys: Keys, market_clock: str | None) -> dict[str, str | None]:
    """The trading calendar's part of /readyz (its known last day, and a warning when it ends soon)."""
    raw_last = await redis.hget(keys.calendar, calendar.LAST_DAY_FIELD)
    return calendar.readiness_checks(raw_last, market_clock)


@dataclass(frozen=True)
class BusStats:
    """What /metrics reports of the bus: stream lengths, their groups, the services' counters and
    heartbeats (raw values, as stored)."""

    lengths: dict[str, int]  # stream name (streams.Stream.attr) -> XLEN
    groups: dict[str, list[dict[str, Any]]]  # stream name -> XINFO GROUPS
    counters: dict[str, Any]
    heartbeats: dict[str, Any]


async def bus_stats(redis: Redis, keys: Keys) -> BusStats:
    pipe = redis.pipeline(transaction=False)
    for stream in streams.STREAMS:
        pipe.xlen(stream.key(keys))
    pipe.hgetall(keys.metrics)
    pipe.hgetall(keys.heartbeats)
    *lengths, counters, beats = await pipe.execute()
    names = [s.attr for s in streams.STREAMS]
    groups = {s.attr: await groups_of(redis, s.key(keys)) for s in streams.STREAMS}
    return BusStats(
        lengths=dict(zip(names, lengths, strict=True)),
        groups=groups,
        counters={wire.text(k): v for k, v in counters.items()},
        heartbeats={wire.text(k): v for k, v in beats.items()},
    )
