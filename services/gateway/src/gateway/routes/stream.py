"""Server-Sent Events: live signals and coalesced quotes, resumable with Last-Event-ID."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse

from gateway.deps import Ctx, CtxDep
from gateway.errors import invalid, responses
from gateway.queries import SignalFilter, parse_codes, parse_stream_id, stream_id_str
from gateway.routes.params import MAX_CODES, CodeQuery, CodesQuery
from gateway.sse import PING, PING_SECONDS, RETRY_MS, SignalItem, decode_signal, format_event, id_key
from marketbus.contracts import Side

router = APIRouter(tags=["stream"])

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
SSE_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
        "description": "event stream; `id` is the stream entry id",
    }
}
CATCH_UP_CHUNK = 500
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
    ctx: CtxDep,
    strategy: Annotated[str | None, Query(max_length=64)] = None,
    side: Side | None = None,
    code: CodeQuery = None,
    last_event_id: LastEventId = None,
) -> StreamingResponse:
    """Every new signal as `event: signal` (JSON of Signal). Filters: strategy, side, code."""
    after = _last_id(last_event_id)
    flt = SignalFilter(strategy=strategy, side=side, code=code)
    return StreamingResponse(
        _signal_events(ctx, flt, after), media_type="text/event-stream", headers=SSE_HEADERS
    )


async def _signal_events(ctx: Ctx, flt: SignalFilter, after: str | None) -> AsyncIterator[bytes]:
    hub = ctx.signal_hub
    gauge = ctx.metrics.sse_clients.labels("signals")
    gauge.inc()

    def accept(item: SignalItem) -> bool:
        return flt.matches(item[0])

    try:
        async with hub.subscribe(accept) as sub:
            await hub.ready()
            yield f"retry: {RETRY_MS}\n\n".encode()
            if after is not None:
                lo = f"({after}"
                while True:
                    entries = await ctx.redis.xrange(ctx.keys.signals, min=lo, max="+", count=CATCH_UP_CHUNK)
                    for raw_id, fields in entries:
                        after = stream_id_str(raw_id)
                        item = decode_signal(after, fields)
                        if item is not None and flt.matches(item[0]):
                            yield format_event("signal", item[1], after)
                    if len(entries) < CATCH_UP_CHUNK:
                        break
                    lo = f"({after}"
            floor = id_key(after) if after is not None else None
            while True:
                if sub.overflowed and sub.queue.empty():
                    return  # the client reconnects with Last-Event-ID and catches up
                try:
                    eid, item = await asyncio.wait_for(sub.queue.get(), PING_SECONDS)
                except TimeoutError:
                    yield PING
                    continue
                if floor is not None and id_key(eid) <= floor:
                    continue
                yield format_event("signal", item[1], eid)
    finally:
        gauge.dec()


@router.get(
    "/api/stream/quotes",
    response_class=StreamingResponse,
    responses={**SSE_DOC, **responses(422)},
)
async def stream_quotes(
    ctx: CtxDep, codes: CodesQuery = None, last_event_id: LastEventId = None
) -> StreamingResponse:
    """Quote updates as `event: quote` (JSON of Quote), at most `sse_quote_rate` per code and
    second. Without `codes`, every code."""
    wanted: frozenset[str] | None = None
    if codes is not None:
        try:
            wanted = frozenset(parse_codes(codes, MAX_CODES))
        except ValueError as exc:
            raise invalid("codes", str(exc)) from None
    after = _last_id(last_event_id)
    return StreamingResponse(
        _quote_events(ctx, wanted, after), media_type="text/event-stream", headers=SSE_HEADERS
    )


async def _changed_since(ctx: Ctx, after: str, until: str | None) -> dict[str, str] | None:
    """code -> newest tick id after ``after`` (up to the hub's position); None when too many."""
    changed: dict[str, str] = {}
    lo, hi = f"({after}", until or "+"
    scanned = 0
    while scanned < MAX_TICKS_SCANNED:
        entries = await ctx.redis.xrange(ctx.keys.ticks, min=lo, max=hi, count=2000)
        for raw_id, fields in entries:
            eid = stream_id_str(raw_id)
            try:
                code = orjson.loads(fields.get(b"data", b"{}")).get("code")
            except (orjson.JSONDecodeError, AttributeError):
                code = None
            if isinstance(code, str):
                changed[code] = eid
        scanned += len(entries)
        if len(entries) < 2000:
            return changed
        lo = f"({stream_id_str(entries[-1][0])}"
    return None


async def _quote_events(ctx: Ctx, wanted: frozenset[str] | None, after: str | None) -> AsyncIterator[bytes]:
    hub = ctx.quote_hub
    gauge = ctx.metrics.sse_clients.labels("quotes")
    gauge.inc()
    try:
        async with hub.subscribe(wanted) as sub:
            await hub.ready()
            yield f"retry: {RETRY_MS}\n\n".encode()
            if after is not None:
                changed = await _changed_since(ctx, after, hub.position)
                if changed is None:  # too far behind: everything it asked for, as of now
                    pos = hub.position or after
                    every = (
                        sorted(wanted)
                        if wanted is not None
                        else [stream_id_str(k) for k in await ctx.redis.hkeys(ctx.keys.snapshots)]
                    )
                    changed = dict.fromkeys(every, pos)
                codes_now = [c for c in changed if wanted is None or c in wanted]
                snaps = await hub.snapshots_of(codes_now)
                for code in sorted(codes_now, key=lambda c: id_key(changed[c])):
                    if code in snaps:
                        yield format_event("quote", snaps[code], changed[code])
            while True:
                try:
                    await asyncio.wait_for(sub.pending.wake.wait(), PING_SECONDS)
                except TimeoutError:
                    yield PING
                    continue
                for _code, eid, data in sub.pending.drain():
                    yield format_event("quote", data, eid)
    finally:
        gauge.dec()
