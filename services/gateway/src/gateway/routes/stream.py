"""Server-Sent Events: live signals and coalesced quotes, resumable with Last-Event-ID."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse

from gateway import reads
from gateway.deps import KeysDep, MetricsDep, QuoteHubDep, RedisDep, SignalHubDep
from gateway.errors import invalid, responses
from gateway.queries import SignalFilter, parse_codes, parse_stream_id
from gateway.routes.params import MAX_CODES, CodeQuery, CodesQuery
from gateway.sse import PING, PING_SECONDS, RETRY_MS, SignalItem, format_event, id_key
from marketbus.contracts import Side

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from gateway.metrics import Metrics
    from gateway.sse import QuoteHub, SignalHub
    from marketbus.keys import Keys

router = APIRouter(tags=["stream"])

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
SSE_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
        "description": "event stream; `id` is the stream entry id",
    }
}
MAX_TICKS_SCANNED = 50_000

LastEventId = Annotated[
    str | None,
    Header(alias="Last-Event-ID", description="resume after this event id", max_length=64),
]


def _last_id(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    try:
        ms, seq = parse_stream_id(value.strip())
    except ValueError as exc:
        raise invalid("Last-Event-ID", str(exc)) from None
    return f"{ms}-{seq}"


@router.get(
    "/api/stream/signals",
    response_class=StreamingResponse,
    responses={**SSE_DOC, **responses(422)},
)
async def stream_signals(
    redis: RedisDep,
    keys: KeysDep,
    hub: SignalHubDep,
    metrics: MetricsDep,
    strategy: Annotated[str | None, Query(max_length=64)] = None,
    side: Side | None = None,
    code: CodeQuery = None,
    last_event_id: LastEventId = None,
) -> StreamingResponse:
    """Every new signal as `event: signal` (JSON of Signal). Filters: strategy, side, code."""
    after = _last_id(last_event_id)
    flt = SignalFilter(strategy=strategy, side=side, code=code)
    events = _signal_events(redis, keys, hub, metrics, flt, after)
    return StreamingResponse(events, media_type="text/event-stream", headers=SSE_HEADERS)


async def _signal_events(
    redis: Redis, keys: Keys, hub: SignalHub, metrics: Metrics, flt: SignalFilter, after: str | None
) -> AsyncIterator[bytes]:
    gauge = metrics.sse_clients.labels("signals")
    gauge.inc()

    def accept(item: SignalItem) -> bool:
        return flt.matches(item[0])

    try:
        async with hub.subscribe(accept) as sub:
            await hub.ready()
            yield f"retry: {RETRY_MS}\n\n".encode()
            if after is not None:
                async for eid, item in reads.signals_after(redis, keys, after):
                    if sub.closed:
                        return
                    after = eid
                    if flt.matches(item[0]):
                        yield format_event("signal", item[1], eid)
            floor = id_key(after) if after is not None else None
            while not sub.closed:
                batch = sub.drain()
                for eid, item in batch:
                    if floor is None or id_key(eid) > floor:
                        yield format_event("signal", item[1], eid)
                if sub.overflowed:
                    return  # the client reconnects with Last-Event-ID and catches up
                if not batch:
                    try:
                        await asyncio.wait_for(sub.wake.wait(), PING_SECONDS)
                    except TimeoutError:
                        yield PING
    finally:
        gauge.dec()


@router.get(
    "/api/stream/quotes",
    response_class=StreamingResponse,
    responses={**SSE_DOC, **responses(422)},
)
async def stream_quotes(
    redis: RedisDep,
    keys: KeysDep,
    hub: QuoteHubDep,
    metrics: MetricsDep,
    codes: CodesQuery = None,
    last_event_id: LastEventId = None,
) -> StreamingResponse:
    """Quote updates as `event: quote` (JSON of Quote), at most `sse_quote_rate` per code and
    second. Without `codes`, every code."""
    # parse_codes cannot fail: `codes` matched its declared pattern
    wanted = frozenset(parse_codes(codes, MAX_CODES)) if codes is not None else None
    after = _last_id(last_event_id)
    events = _quote_events(redis, keys, hub, metrics, wanted, after)
    return StreamingResponse(events, media_type="text/event-stream", headers=SSE_HEADERS)


async def _quote_events(
    redis: Redis,
    keys: Keys,
    hub: QuoteHub,
    metrics: Metrics,
    wanted: frozenset[str] | None,
    after: str | None,
) -> AsyncIterator[bytes]:
    gauge = metrics.sse_clients.labels("quotes")
    gauge.inc()
    try:
        async with hub.subscribe(wanted) as sub:
            await hub.ready()
            yield f"retry: {RETRY_MS}\n\n".encode()
            if after is not None and not sub.closed:
                changed = await reads.ticks_changed_since(redis, keys, after, hub.position, MAX_TICKS_SCANNED)
                if changed is None:  # too far behind: everything it asked for, as of now
                    pos = hub.position or after
                    every = sorted(wanted) if wanted is not None else await reads.snapshot_codes(redis, keys)
                    changed = dict.fromkeys(every, pos)
                codes_now = [c for c in changed if wanted is None or c in wanted]
                snaps = await hub.snapshots_of(codes_now)
                for code in sorted(codes_now, key=lambda c: id_key(changed[c])):
                    if code in snaps:
                        yield format_event("quote", snaps[code], changed[code])
            while not sub.closed:
                try:
                    await asyncio.wait_for(sub.pending.wake.wait(), PING_SECONDS)
                except TimeoutError:
                    yield PING
                    continue
                if sub.closed:
                    return
                for _code, eid, data in sub.pending.drain():
                    yield format_event("quote", data, eid)
    finally:
        gauge.dec()
