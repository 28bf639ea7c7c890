"""The consumer runtime: what every service that consumes a stream needs, written once.

A service supplies typed handlers (``async def handle(bars: list[Bar]) -> None``) for consumer
groups of :mod:`marketbus.streams`, periodic tasks and start/stop hooks; the runtime does the rest:

- waits for the server, creates each group (from the start of its stream) and creates it again when
  it vanishes (a server restarted empty), starting again the subscriber FastStream stopped then;
- reads in batches through FastStream's batch stream subscribers: a parser that keeps the entries
  as read, a decoder from each entry's ``data`` field to the group's message model (an entry that
  cannot be decoded is dead-lettered at once, the others go on), the handler called with the typed
  list;
- acknowledges after the handler returned (the effect is written); when a batch fails, each entry is
  tried alone, so one poison entry does not hold back the others, and a failing entry stays pending;
- while a handler runs long, keeps its entries claimed (XCLAIM JUSTID resets their idle time
  without counting a delivery) so a live worker's slow batch is never claimed away;
- claims from dead workers (XAUTOCLAIM after ``claim_idle_ms``) and dead-letters an entry delivered
  more than ``max_deliveries`` times (FastStream reads with XREADGROUP only: claims and dead letters
  are added around it, through the same handler path);
- at stop: lets in-flight batches finish and be acknowledged (a handler that is only waiting, for
  another worker's lock say, raises :class:`Released` and its entries stay pending for another
  worker), handles what was delivered to this worker but never handled, cancels its tasks without
  hanging on one, removes its heartbeat;
- publishes a heartbeat and the counters every second.

Everything runs in the service's own loop: the runtime creates its client and broker in
:meth:`Runtime.run`, never at import or construction.
"""

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from faststream.middlewares import AckPolicy
from faststream.redis import RedisBroker, StreamSub
from faststream.redis.annotations import RedisBatchStreamMessage as BatchMessageArg
from faststream.redis.message import RedisBatchStreamMessage
from pydantic import BaseModel
from redis.exceptions import RedisError, ResponseError

from marketbus.clock import wall_ms
from marketbus.dlq import dead_letter
from marketbus.keys import Keys
from marketbus.layout import adopt_legacy_keys
from marketbus.redis import broker as make_broker
from marketbus.redis import connect, redact
from marketbus.settings import Settings
from marketbus.streams import Group
from marketbus.tasks import cancel_and_wait, every
from marketbus.wire import BadMessage, decode, text

log = logging.getLogger("marketbus.consumer")

M = TypeVar("M", bound=BaseModel)
Entry = tuple[bytes, dict[bytes, bytes]]
Dead = tuple[bytes, Mapping[bytes, bytes], str]  # (entry id, its fields, why)
Handler = Callable[[list[M]], Awaitable[None]]
DeadLetterHook = Callable[[Any, Sequence[Dead]], None]

STOP_TASKS_S = 5.0  # a task that does not end within this after its cancel is logged, not awaited
KEEPER_STOP_S = 1.0  # a slow batch's keeper not stopped by then is left to end by itself
DRAIN_S = 3.0  # at stop, at most this long to handle what was delivered just before


class Released(Exception):
    """Raised by a handler that gives its entries back because the worker is stopping (it had not
    started their work: it was waiting for another worker's lock). They stay pending, not counted as
    a failure, for another worker's claim or this worker's restart."""


async def ensure_group(client: Any, stream: str, group: str) -> bool:
    """Create the consumer group (from the start of the stream) if missing. True if created."""
    try:
        await client.xgroup_create(stream, group, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise
        return False
    return True


async def wait_for_server(client: Any, url: str) -> None:
    """Return once the server answers PING; retry with backoff (logged) until it does."""
    delay = 0.2
    while True:
        try:
            await client.ping()
            return
        except Exception as exc:
            log.warning("server %s not reachable (%s); retrying in %.1f s", redact(url), exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


def decode_entries(model: type[M], entries: Sequence[Entry]) -> tuple[list[bytes], list[M], list[Dead]]:
    """(ids, messages) of the entries that are ``model``s, and the others with their reason."""
    ids: list[bytes] = []
    items: list[M] = []
    bad: list[Dead] = []
    for entry_id, fields in entries:
        try:
            items.append(decode(model, fields))
            ids.append(entry_id)
        except BadMessage as exc:
            bad.append((entry_id, fields, str(exc)))
    return ids, items, bad


class Delivery(RedisBatchStreamMessage):
    """A batch as FastStream delivers it to the runtime; the decoder sets ``ids`` (of the decoded
    messages, in order) and ``bad`` (the entries that are not messages)."""

    ids: list[bytes]
    bad: list[Dead]


async def parse_batch(message: Any) -> Delivery:
    """FastStream's own stream parser reads its ``__data__`` envelope and JSON-dumps every entry's
    fields (one entry of bytes that are not UTF-8 fails the whole batch, out of the DLQ's reach).
    The runtime keeps the entries as read; the decoder makes them messages."""
    return Delivery(raw_message=message, body=b"", consumer=None, group=None)  # type: ignore[arg-type]


def declare_subscriber(
    broker: RedisBroker,
    group: Group[M],
    key: str,
    consumer: str,
    batch: int,
    deliver: Callable[[list[bytes], list[M], list[Dead]], Awaitable[None]],
) -> Any:
    """Declare ``group``'s batch subscriber on ``broker``: entries decoded to the group's model,
    handed to ``deliver(ids, messages, bad)``. The runtime and the AsyncAPI document declare the
    subscribers with this one function, so the document describes what runs."""
    model = group.stream.model

    async def decode_batch(msg: Delivery) -> list[Any]:
        entries = list(zip(msg.raw_message["message_ids"], msg.raw_message["data"], strict=True))
        msg.ids, items, msg.bad = decode_entries(model, entries)
        return items

    # the annotation is the group's model: FastStream types the argument and documents it
    async def on_batch(messages: list[model], msg: BatchMessageArg) -> None:  # type: ignore[valid-type]
        await deliver(msg.ids, messages, msg.bad)  # type: ignore[attr-defined]

    subscriber = broker.subscriber(
        stream=StreamSub(
            key, group=group.name, consumer=consumer, batch=True, max_records=batch, polling_interval=100
        ),
        parser=parse_batch,
        decoder=decode_batch,
        ack_policy=AckPolicy.MANUAL,  # the runtime acknowledges entry by entry, after the effect
        title=f"{key}:{group.name}",
        description=f"consumer group {group.name!r} of the {group.service} service: {group.description}",
    )
    subscriber(on_batch)
    return subscriber


@dataclass
class Counters:
    handled: int = 0
    dead_letters: int = 0
    failures: int = 0
    claimed: int = 0
    sweeps: int = 0  # claim sweeps over the pending entries done


@dataclass
class Consumption(Generic[M]):
    group: Group[M]
    handler: Handler[M]
    batch: int
    key: str
    on_dead_letter: DeadLetterHook | None = None
    subscriber: Any = None
    counters: Counters = field(default_factory=Counters)
    inflight_ids: set[bytes] = field(default_factory=set)

    @property
    def name(self) -> str:
        return self.group.name


class Runtime:
    """One consumer process: its client, its FastStream broker, its groups and tasks."""

    def __init__(self, settings: Settings, service: str) -> None:
        if not settings.redis_url:
            raise SystemExit("MARKETBUS_REDIS_URL is not set (run `marketbus up`, or set it)")
        self.settings = settings
        self.url: str = settings.redis_url
        self.keys = Keys(settings.key_prefix)
        self.service = service
        self.consumer = settings.consumer_name or f"{socket.gethostname()}-{os.getpid()}"
        self.client: Any = None
        self.consumptions: list[Consumption[Any]] = []
        self.consuming = False  # the broker has started the subscribers
        self.stop_event = asyncio.Event()
        self.ready = asyncio.Event()  # set once the groups exist and the subscribers run
        self._periodic: list[tuple[float, Callable[[], Awaitable[Any]], str]] = []
        self._background: list[tuple[Callable[[], Coroutine[Any, Any, Any]], str]] = []
        self._on_start: list[Callable[[], Awaitable[Any]]] = []
        self._on_stop: list[Callable[[], Awaitable[Any] | None]] = []
        self._stats: Callable[[], Mapping[str, int]] | None = None
        self._inflight: set[asyncio.Future[None]] = set()

    # ------------------------------------------------------------------ what a service declares
    def consume(
        self,
        group: Group[M],
        handler: Handler[M],
        *,
        batch: int | None = None,
        on_dead_letter: DeadLetterHook | None = None,
    ) -> Consumption[M]:
        """Handle ``group``'s stream with ``handler``, ``batch`` entries at most per call.
        ``on_dead_letter(pipe, dead)`` may queue more writes on the dead-lettering transaction."""
        c = Consumption(group, handler, batch or self.settings.batch_size, group.stream.key(self.keys))
        c.on_dead_letter = on_dead_letter
        self.consumptions.append(c)
        return c

    def every(self, seconds: float, fn: Callable[[], Awaitable[Any]], name: str | None = None) -> None:
        """Call ``fn`` every ``seconds`` while consuming (a failure is logged; the next comes)."""
        self._periodic.append((seconds, fn, name or str(getattr(fn, "__qualname__", "periodic"))))

    def background(self, fn: Callable[[], Coroutine[Any, Any, Any]], name: str | None = None) -> None:
        """Run ``fn()`` as a task while consuming; it is cancelled at stop."""
        self._background.append((fn, name or str(getattr(fn, "__qualname__", "background"))))

    def on_start(self, fn: Callable[[], Awaitable[Any]]) -> None:
        """Run ``fn()`` once the client is connected, before the groups and subscribers start."""
        self._on_start.append(fn)

    def on_stop(self, fn: Callable[[], Awaitable[Any] | None]) -> None:
        """Run ``fn()`` after consuming stopped and the last batches were handled."""
        self._on_stop.append(fn)

    def stats(self, fn: Callable[[], Mapping[str, int]]) -> None:
        """Counters published with the heartbeat, as ``<service>:<consumer>:<name>`` in {mb}:metrics."""
        self._stats = fn

    def stop(self) -> None:
        self.stop_event.set()

    # ------------------------------------------------------------------ the process
    async def run(self) -> None:
        self.client = client = connect(self.url)
        await wait_for_server(client, self.url)
        await adopt_legacy_keys(client, self.keys)
        for hook in self._on_start:
            await hook()
        await self._ensure_groups()
        fs_log = logging.getLogger("faststream")
        fs_log.setLevel(logging.WARNING)  # per-batch INFO lines would drown the service's own log
        broker = make_broker(self.url, logger=fs_log)  # a Sentinel or Cluster broker by the URL
        for c in self.consumptions:
            c.subscriber = self._subscribe(broker, c)
        await self._start_broker(broker)
        self.consuming = True
        self.ready.set()
        idle_s = max(0.2, self.settings.claim_idle_ms / 2000)
        tasks = [
            asyncio.create_task(
                every(idle_s, lambda c=c: self._reclaim(c), f"claim {c.name}"), name=f"claim:{c.name}"
            )
            for c in self.consumptions
        ]
        tasks.append(asyncio.create_task(every(1.0, self._heartbeat, "heartbeat"), name="heartbeat"))
        tasks.append(asyncio.create_task(every(2.0, self._ensure_groups, "groups"), name="groups"))
        tasks += [asyncio.create_task(every(s, fn, n), name=n) for s, fn, n in self._periodic]
        tasks += [asyncio.create_task(fn(), name=n) for fn, n in self._background]
        log.info(
            "%s worker %s consuming %s on %s",
            self.service,
            self.consumer,
            ", ".join(f"{c.key} ({c.name})" for c in self.consumptions),
            redact(self.url),
        )
        try:
            await self.stop_event.wait()
        finally:
            log.info("stopping: finishing %d in-flight batch(es)", len(self._inflight))
            self.consuming = False
            with contextlib.suppress(Exception):
                await self._stop_subscribers()
                await broker.stop()
            await cancel_and_wait(tasks, within_s=STOP_TASKS_S)
            if self._inflight:
                await asyncio.wait(list(self._inflight))
            await self._drain_own_pending()
            for stop_hook in self._on_stop:
                result = stop_hook()
                if result is not None:
                    await result
            with contextlib.suppress(RedisError, OSError):
                await client.hdel(self.keys.heartbeats, f"{self.service}:{self.consumer}")
            await client.aclose()
            log.info("stopped")

    async def _stop_subscribers(self) -> None:
        """Stop the subscribers and wait until their reading tasks have ended: FastStream's
        ``broker.stop`` cancels them and closes the connections at once, and a read that had not
        seen its cancellation yet failed on the closed connection with a logged traceback."""
        for c in self.consumptions:
            reading = [t for t in getattr(c.subscriber, "tasks", ()) if not t.done()]
            await c.subscriber.stop()
            if reading:
                await asyncio.wait(reading, timeout=STOP_TASKS_S)

    def _subscribe(self, broker: RedisBroker, c: Consumption[M]) -> Any:
        async def deliver(ids: list[bytes], items: list[M], bad: list[Dead]) -> None:
            await self._dispatch(c, ids, items, bad)

        return declare_subscriber(broker, c.group, c.key, self.consumer, c.batch, deliver)

    async def _dispatch(self, c: Consumption[M], ids: list[bytes], items: list[M], bad: list[Dead]) -> None:
        """Handle one batch as an in-flight task, shielded: a stop lets it finish and be acknowledged."""
        task = asyncio.ensure_future(self._handle(c, ids, items, bad))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        await asyncio.shield(task)

    async def _handle(self, c: Consumption[M], ids: list[bytes], items: list[M], bad: Sequence[Dead]) -> None:
        await self._dead_letter(c, bad)
        if not items:
            return
        c.inflight_ids.update(ids)
        handled = asyncio.Event()
        keeper = asyncio.create_task(self._keep_claimed(c, ids, handled))
        try:
            try:
                await c.handler(items)
                await self._ack(c, ids)
                c.counters.handled += len(ids)
                return
            except Released as why:
                log.info("%s: %d entries left pending for another worker: %s", c.key, len(ids), why)
                return
            except Exception as exc:
                if len(items) == 1:
                    c.counters.failures += 1
                    log.error("%s entry %s failed, left pending for retry: %r", c.key, text(ids[0]), exc)
                    return
                log.exception("%s: batch of %d failed; trying each alone", c.key, len(items))
            for entry_id, item in zip(ids, items, strict=True):
                try:
                    await c.handler([item])
                    await self._ack(c, [entry_id])
                    c.counters.handled += 1
                except Released as why:
                    log.info(
                        "%s: entries from %s on left pending for another worker: %s",
                        c.key,
                        text(entry_id),
                        why,
                    )
                    return
                except Exception as exc:
                    c.counters.failures += 1
                    log.error("%s entry %s failed, left pending for retry: %r", c.key, text(entry_id), exc)
        finally:
            c.inflight_ids.difference_update(ids)
            # bounded: a keeper stuck in a command (a connection cancelled mid-reply) must not
            # hold the handler, hence the subscriber; it ends by itself once ``handled`` is set
            handled.set()
            await cancel_and_wait([keeper], within_s=KEEPER_STOP_S)

    async def _ack(self, c: Consumption[Any], ids: Sequence[bytes]) -> None:
        if ids:
            await self.client.xack(c.key, c.name, *ids)

    async def _keep_claimed(self, c: Consumption[Any], ids: Sequence[bytes], handled: asyncio.Event) -> None:
        while not handled.is_set():
            await asyncio.sleep(self.settings.claim_idle_ms / 3000)
            if handled.is_set():
                return
            try:
                await self.client.xclaim(c.key, c.name, self.consumer, 0, list(ids), justid=True)
            except (RedisError, OSError):
                # a cancel landing in redis-py's own timeout comes out as a TimeoutError: it is
                # still a cancel, not a failed claim to retry
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise asyncio.CancelledError from None

    async def _dead_letter(self, c: Consumption[Any], dead: Sequence[Dead]) -> None:
        """Entries to the DLQ with their error, acknowledged, in one transaction."""
        if not dead:
            return
        pipe = self.client.pipeline(transaction=True)
        for entry_id, fields, error in dead:
            dead_letter(pipe, self.keys.dlq, self.settings.dlq_maxlen, c.key, entry_id, fields, error)
        if c.on_dead_letter is not None:
            c.on_dead_letter(pipe, dead)
        pipe.xack(c.key, c.name, *[d[0] for d in dead])
        await pipe.execute()
        c.counters.dead_letters += len(dead)
        for entry_id, _, error in dead:
            log.warning("%s entry %s dead-lettered: %s", c.key, text(entry_id), error)

    # ------------------------------------------------------------------ claims from dead workers
    async def _reclaim(self, c: Consumption[Any]) -> int:
        """One sweep of the group's pending entries idle longer than ``claim_idle_ms``."""
        start: bytes | str = "0-0"
        total = 0
        while True:
            next_id, claimed, *_ = await self.client.xautoclaim(
                c.key, c.name, self.consumer, self.settings.claim_idle_ms, start, count=c.batch
            )
            # entries this worker handles right now (a slow batch) are not handled a second time
            entries = [(i, f) for i, f in claimed if i not in c.inflight_ids]
            if entries:
                total += len(entries)
                c.counters.claimed += len(entries)
                await self._handle_claimed(c, entries)
            if text(next_id) == "0-0":
                c.counters.sweeps += 1
                return total
            start = next_id

    async def _handle_claimed(self, c: Consumption[Any], claimed: Sequence[Entry]) -> None:
        gone = [i for i, f in claimed if not f]  # trimmed from the stream while pending
        if gone:
            await self._ack(c, gone)
        claimed = [(i, f) for i, f in claimed if f]
        if not claimed:
            return
        ids = [i for i, _ in claimed]
        pending = await self.client.xpending_range(
            c.key, c.name, min=ids[0], max=ids[-1], count=len(ids) * 2, consumername=self.consumer
        )
        deliveries = {p["message_id"]: int(p["times_delivered"]) for p in pending}
        limit = self.settings.max_deliveries
        poison: list[Dead] = [
            (i, f, f"processing failed {deliveries[i] - 1} times (max_deliveries {limit})")
            for i, f in claimed
            if deliveries.get(i, 0) > limit
        ]
        await self._dead_letter(c, poison)
        rest = [(i, f) for i, f in claimed if deliveries.get(i, 0) <= limit]
        if rest:
            ok_ids, items, bad = decode_entries(c.group.stream.model, rest)
            await self._dispatch(c, ok_ids, items, bad)

    # ------------------------------------------------------------------ groups, broker, stop
    async def _ensure_groups(self) -> None:
        # FastStream's subscriber start creates a missing group at "$" (the entries already in the
        # stream skipped); the runtime starts a subscriber only after creating its group from "0"
        for c in self.consumptions:
            if await ensure_group(self.client, c.key, c.name):
                log.warning("consumer group %s on %s created", c.name, c.key)
        if not self.consuming:
            return
        for c in self.consumptions:
            # FastStream stops a subscriber for good when its group vanishes under it (the stream
            # deleted, or a server restarted empty): once the group exists again, start it again
            if not c.subscriber.running and not self.stop_event.is_set():
                log.warning("the subscriber of %s had stopped (its group was gone); starting it again", c.key)
                await c.subscriber.start()

    async def _start_broker(self, broker: RedisBroker) -> None:
        """Start the subscribers; a server lost meanwhile means wait for it and try again, not
        exit (FastStream gives up on a subscriber start after a timeout)."""
        delay = 0.5
        while True:
            try:
                await broker.start()
                return
            except (TimeoutError, RedisError, OSError) as exc:
                log.warning("subscribers did not start (%r); retrying in %.1f s", exc, delay)
                with contextlib.suppress(Exception):
                    await broker.stop()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                await wait_for_server(self.client, self.url)
                await self._ensure_groups()

    async def _drain_own_pending(self) -> None:
        """At stop: entries delivered to this worker but never handled (a blocking read cancelled
        after the server had already sent its reply) are handled and acknowledged now, instead of
        waiting for another worker's claim. Each pending entry is tried once (one that fails or is
        released stays pending). Bounded in time: with the server gone they stay pending for a
        claim, and the process still exits."""
        try:
            async with asyncio.timeout(DRAIN_S):
                for c in self.consumptions:
                    after = b"0"
                    while True:
                        reply = await self.client.xreadgroup(
                            c.name, self.consumer, {c.key: after}, count=c.batch
                        )
                        raw = reply[0][1] if reply else []
                        if not raw:
                            break
                        after = raw[-1][0]
                        entries = [(i, f) for i, f in raw if f]
                        if not entries:
                            continue
                        log.info(
                            "handling %d entries of %s delivered just before the stop", len(entries), c.key
                        )
                        ids, items, bad = decode_entries(c.group.stream.model, entries)
                        await self._handle(c, ids, items, bad)
        except (TimeoutError, RedisError, OSError) as exc:
            log.warning("left this worker's pending entries for a claim: %r", exc)

    async def _heartbeat(self) -> None:
        prefix = f"{self.service}:{self.consumer}"
        counters: dict[str, int] = {
            "dead_letters": sum(c.counters.dead_letters for c in self.consumptions),
            "failures": sum(c.counters.failures for c in self.consumptions),
            "claimed": sum(c.counters.claimed for c in self.consumptions),
        }
        if self._stats is not None:
            counters.update(self._stats())
        pipe = self.client.pipeline(transaction=False)
        pipe.hset(self.keys.heartbeats, prefix, wall_ms())
        pipe.hset(self.keys.metrics, mapping={f"{prefix}:{k}": v for k, v in counters.items()})
        await pipe.execute()
