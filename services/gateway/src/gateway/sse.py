"""Server-Sent Events: one shared reader task per stream per process, one bounded queue per client.

- ``StreamHub`` reads a stream with ``XREAD BLOCK`` (only while someone listens) and hands every
  entry to each subscriber. A subscriber whose queue is full is marked ``overflowed``: it drains
  what it has, then its response ends and the browser reconnects with ``Last-Event-ID``, which
  resumes exactly after the last event it received. A slow client never holds the others back.
- At shutdown :meth:`StreamHub.close` closes every subscriber at once: each open response ends
  (cleanly, with its last chunk) instead of holding the server until its graceful timeout.
- Quote events are coalesced per code: the hub remembers only the newest tick id of each code and,
  at ``rate`` per second, reads those codes' snapshots in one ``HMGET`` and offers them; each quote
  client keeps at most one pending event per code (``Coalescer``).
- Event id = the stream entry id, so ``Last-Event-ID`` is a position in the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar, cast

import orjson
from redis.asyncio import Redis

from gateway.queries import parse_stream_id
from marketbus import wire
from marketbus.contracts import Signal
from marketbus.tasks import cancel_and_wait

log = logging.getLogger("gateway.sse")

PING_SECONDS = 10.0
RETRY_MS = 2000
READY_WAIT_SECONDS = 5.0
T = TypeVar("T")


def format_event(event: str, data: bytes | str, event_id: str | None = None) -> bytes:
    """One SSE frame. ``data`` is single-line JSON."""
    if isinstance(data, str):
        data = data.encode()
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {event}\ndata: ".encode() + data + b"\n\n"


PING = b": ping\n\n"


SignalItem = tuple[Signal, bytes]


def decode_signal(event_id: str, fields: dict[Any, Any]) -> SignalItem | None:
    """(Signal, its JSON) of a stream entry, or None (logged) when the entry is not a Signal."""
    try:
        sig = wire.decode(Signal, fields)
    except wire.BadMessage as exc:
        log.warning("skipping signal entry %s: %s", event_id, exc)
        return None
    raw = fields.get(b"data", fields.get("data"))
    data = raw if isinstance(raw, bytes) else sig.model_dump_json().encode()
    return sig, data


def id_key(event_id: str) -> tuple[int, int]:
    return parse_stream_id(event_id)


@dataclass(eq=False)
class QueueSubscriber(Generic[T]):
    """A client of a hub: a bounded FIFO of (entry id, item); ``wake`` is set while it holds
    something to send, or once it has overflowed or been closed."""

    accept: Callable[[T], bool]
    maxsize: int = 1000
    items: deque[tuple[str, T]] = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    overflowed: bool = False
    closed: bool = False

    def offer(self, event_id: str, item: T) -> None:
        if self.overflowed or self.closed or not self.accept(item):
            return
        if len(self.items) >= self.maxsize:
            self.overflowed = True
        else:
            self.items.append((event_id, item))
        self.wake.set()

    def drain(self) -> list[tuple[str, T]]:
        """Everything queued, oldest first; empties the queue."""
        out = list(self.items)
        self.items.clear()
        self.wake.clear()
        return out

    def close(self) -> None:
        self.closed = True
        self.wake.set()


class Coalescer(Generic[T]):
    """Pending events keyed by code: a newer event for a code replaces the older one."""

    def __init__(self) -> None:
        self._pending: dict[str, tuple[str, T]] = {}
        self.wake = asyncio.Event()

    def put(self, key: str, event_id: str, item: T) -> None:
        self._pending[key] = (event_id, item)
        self.wake.set()

    def drain(self) -> list[tuple[str, str, T]]:
        """(key, event id, item) of every pending key, oldest event first; empties the buffer."""
        out = [(k, eid, item) for k, (eid, item) in self._pending.items()]
        self._pending.clear()
        self.wake.clear()
        out.sort(key=lambda row: id_key(row[1]))
        return out

    def __len__(self) -> int:
        return len(self._pending)


@dataclass(eq=False)
class QuoteSubscriber:
    codes: frozenset[str] | None
    pending: Coalescer[bytes] = field(default_factory=Coalescer)
    closed: bool = False

    def offer(self, code: str, event_id: str, data: bytes) -> None:
        if not self.closed and (self.codes is None or code in self.codes):
            self.pending.put(code, event_id, data)

    def close(self) -> None:
        self.closed = True
        self.pending.wake.set()


class _Closable(Protocol):
    def close(self) -> None: ...


S = TypeVar("S", bound=_Closable)


class StreamHub(Generic[S]):
    """Reads one stream for every subscriber of this process. Idle while nobody listens."""

    def __init__(self, redis: Redis, stream: str, *, block_ms: int = 1000, count: int = 1000):
        self.redis = redis
        self.stream = stream
        self.block_ms = block_ms
        self.count = count
        self.position: str | None = None
        self.subscribers: set[S] = set()
        self._wake = asyncio.Event()
        self._ready = asyncio.Event()
        self._closed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"hub:{self.stream}")

    async def stop(self) -> None:
        self.close()
        if self._task is not None:
            await cancel_and_wait([self._task])

    def close(self) -> None:
        """Close every subscriber, and each later one as it subscribes: their responses end now
        (the server is shutting down)."""
        self._closed.set()
        for sub in list(self.subscribers):
            sub.close()

    @contextlib.asynccontextmanager
    async def _subscription(self, sub: S) -> AsyncIterator[S]:
        if self._closed.is_set():
            sub.close()
        self.subscribers.add(sub)
        self._wake.set()
        try:
            yield sub
        finally:
            self.subscribers.discard(sub)

    async def ready(self) -> None:
        """Wait (a few seconds at most) until the reader holds a position taken after the
        current subscription, so a catch-up read and the live feed leave no gap; or until the
        hub is closed."""
        waits = [asyncio.ensure_future(self._ready.wait()), asyncio.ensure_future(self._closed.wait())]
        try:
            await asyncio.wait(waits, timeout=READY_WAIT_SECONDS, return_when=asyncio.FIRST_COMPLETED)
        finally:
            await cancel_and_wait(waits)

    # the reader -----------------------------------------------------------------------------
    async def _tip(self) -> str:
        last = await self.redis.xrevrange(self.stream, count=1)
        return wire.text(last[0][0]) if last else "0-0"

    async def _run(self) -> None:
        backoff = 0.1
        while True:
            if not self.subscribers:
                self._ready.clear()
                self.position = None
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                if self.position is None:
                    self.position = await self._tip()
                    self._ready.set()
                reply = await self.redis.xread(
                    {self.stream: self.position}, count=self.count, block=self.block_ms
                )
                backoff = 0.1
                for _name, entries in cast("list[tuple[Any, list[Any]]]", reply or []):
                    for raw_id, fields in entries:
                        self.position = wire.text(raw_id)
                        self.dispatch(self.position, fields)
                    await asyncio.sleep(0)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("reader of %s failed (%s); retrying in %.1fs", self.stream, exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)

    def dispatch(self, event_id: str, fields: dict[Any, Any]) -> None:  # pragma: no cover
        raise NotImplementedError


class SignalHub(StreamHub[QueueSubscriber[SignalItem]]):
    def dispatch(self, event_id: str, fields: dict[Any, Any]) -> None:
        item = decode_signal(event_id, fields)
        if item is None:
            return
        for sub in list(self.subscribers):
            sub.offer(event_id, item)

    def subscribe(
        self, accept: Callable[[SignalItem], bool], maxsize: int = 1000
    ) -> contextlib.AbstractAsyncContextManager[QueueSubscriber[SignalItem]]:
        return self._subscription(QueueSubscriber(accept, maxsize))


class QuoteHub(StreamHub[QuoteSubscriber]):
    """Reads the ticks stream; flushes the snapshots of the codes that moved ``rate`` times/s."""

    def __init__(self, redis: Redis, stream: str, snapshots: str, rate: float, **kw: Any) -> None:
        super().__init__(redis, stream, **kw)
        self.snapshots = snapshots
        self.interval = 1.0 / rate
        self.dirty: dict[str, str] = {}
        self._flusher: asyncio.Task[None] | None = None

    def start(self) -> None:
        super().start()
        self._flusher = asyncio.create_task(self._flush_loop(), name="hub:quotes:flush")

    async def stop(self) -> None:
        if self._flusher is not None:
            await cancel_and_wait([self._flusher])
        await super().stop()

    def dispatch(self, event_id: str, fields: dict[Any, Any]) -> None:
        raw = fields.get(b"data", fields.get("data"))
        try:
            code = orjson.loads(raw)["code"] if raw is not None else None
        except (orjson.JSONDecodeError, TypeError, KeyError):
            code = None
        if isinstance(code, str):
            self.dirty[code] = event_id

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            if not self.dirty or not self.subscribers:
                if not self.subscribers:
                    self.dirty.clear()
                continue
            dirty, self.dirty = self.dirty, {}
            try:
                await self.flush(dirty)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("quote flush failed: %s", exc)
                for code, eid in dirty.items():
                    self.dirty.setdefault(code, eid)

    async def snapshots_of(self, codes: list[str]) -> dict[str, bytes]:
        if not codes:
            return {}
        raws: list[Any] = await self.redis.hmget(self.snapshots, codes)
        return {code: raw for code, raw in zip(codes, raws, strict=True) if raw is not None}

    async def flush(self, dirty: dict[str, str]) -> None:
        snaps = await self.snapshots_of(list(dirty))
        for code, eid in sorted(dirty.items(), key=lambda kv: id_key(kv[1])):
            data = snaps.get(code)
            if data is None:
                continue
            for sub in list(self.subscribers):
                sub.offer(code, eid, data)

    def subscribe(
        self, codes: frozenset[str] | None
    ) -> contextlib.AbstractAsyncContextManager[QuoteSubscriber]:
        return self._subscription(QuoteSubscriber(codes))
