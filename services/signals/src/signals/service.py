"""The signals service process: one asyncio loop owning its clients, subscribers and schedule."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
import logging
import os
import signal
import socket
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from faststream.middlewares import AckPolicy
from faststream.redis import RedisBroker, StreamSub
from faststream.redis.annotations import RedisBatchStreamMessage
from faststream.redis.message import FAKE_CONSUMER
from faststream.redis.message import RedisBatchStreamMessage as BatchMessage
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from marketbus import calendar, sessions
from marketbus.clock import parse_clock
from marketbus.contracts import Command
from marketbus.keys import COMMANDS_GROUP, JOB_TTL_S, SIGNALS_GROUP, Keys
from marketbus.redis import connect, redact
from marketbus.settings import Settings, load_settings
from marketbus.trend import TrendStore
from marketbus.wire import encode
from signals.commands import CommandHandler, queued_job
from signals.consumer import BarProcessor, Reclaimer
from signals.market_time import MarketTime
from signals.scan import Scanner
from signals.scheduler import Calendar, Planner, Schedule, parse_schedule
from signals.store import SignalStore, now_ms
from signals.strategies import build_strategies

log = logging.getLogger("signals")

MIN_FIRE_GAP_S = 1.0  # wall seconds between two scheduled scans, whatever the market clock's speed


async def ensure_group(client: Redis, stream: str, group: str) -> bool:
    """Create the consumer group (from the start of the stream) if missing. True if created."""
    try:
        await client.xgroup_create(stream, group, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise
        return False
    return True


async def wait_for_server(client: Redis, url: str) -> None:
    delay = 0.2
    while True:
        try:
            await client.ping()
            return
        except Exception as exc:
            log.warning("server %s not reachable (%s); retrying in %.1f s", redact(url), exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


async def raw_batch(message: Any) -> BatchMessage:
    """The batch as read, undecoded. FastStream's own parser JSON-dumps every entry's fields before
    the handler runs and raises on bytes that are not UTF-8, so one such entry failed its whole
    batch, unacknowledged and out of the handler's (and the DLQ's) reach. The handlers read
    ``raw_message`` only, decode each entry themselves and acknowledge it (MANUAL ack policy: the
    message's own consumer is never used)."""
    return BatchMessage(raw_message=message, body=b"", consumer=FAKE_CONSUMER, group=None)


class SignalsService:
    def __init__(self, settings: Settings) -> None:
        if not settings.redis_url:
            raise SystemExit("MARKETBUS_REDIS_URL is not set (run `marketbus up`, or set it)")
        self.settings = settings
        self.url: str = settings.redis_url
        self.keys = Keys(settings.key_prefix)
        self.consumer = settings.consumer_name or f"{socket.gethostname()}-{os.getpid()}"
        self.schedule: Schedule = parse_schedule(settings.signal_schedule)
        try:  # a bad clock setting stops the service at start, with its reason
            self.fallback_clock = parse_clock(settings.market_clock)
        except ValueError as exc:
            raise SystemExit(f"MARKETBUS_MARKET_CLOCK: {exc}") from exc
        self.strategies = build_strategies(settings.strategy_params)  # bad names fail at start
        self.stop_event = asyncio.Event()
        self.inflight: set[asyncio.Task[None]] = set()
        self.subscribers: list[Any] = []
        self.consuming = False  # the broker has started its subscribers

    async def run(self) -> None:
        s, keys = self.settings, self.keys
        client = connect(self.url)
        await wait_for_server(client, self.url)
        # the one calendar (package sessions, imported and learned days), before the first check
        await calendar.load(client, keys, today=self._market_today())
        strategies = self.strategies
        trend = TrendStore(client, keys, s.trend_max_bars)
        store = SignalStore(client, keys, s.signals_maxlen)
        self.processor = BarProcessor(client, keys, trend, store, strategies, s.dlq_maxlen)
        reclaimer = Reclaimer(self.processor, self.consumer, s.claim_idle_ms, s.max_deliveries, s.batch_size)
        self.market = MarketTime(client, keys, self.fallback_clock)
        scanner = Scanner(client, keys.scan_lock, trend, store, strategies, self.consumer, self.market.now)
        commands = CommandHandler(client, keys, store, scanner, s.dlq_maxlen, self.consumer, s.claim_idle_ms)
        command_reclaimer = Reclaimer(
            commands,
            self.consumer,
            s.claim_idle_ms,
            s.max_deliveries,
            100,
            stream=keys.commands,
            group=COMMANDS_GROUP,
        )
        self.client = client
        await self._setup(strategies)

        fs_log = logging.getLogger("faststream")
        fs_log.setLevel(logging.WARNING)  # per-batch INFO lines would drown the service's own log
        broker = RedisBroker(self.url, logger=fs_log)
        self.subscribers = [
            self._subscribe(broker, keys.bars, SIGNALS_GROUP, self.processor.handle),
            self._subscribe(broker, keys.commands, COMMANDS_GROUP, commands.handle, max_records=100),
        ]
        gc.freeze()  # start-up objects (strategies, schemas, calendar) out of every GC pass
        await self._start_broker(broker)
        self.consuming = True
        log.info(
            "signals worker %s up: %d strategies, server %s, schedule %r (auto=%s)",
            self.consumer,
            len(strategies),
            redact(self.url),
            self.schedule.text,
            s.auto_calculate_signals,
        )
        tasks = [
            asyncio.create_task(self._every(max(0.2, s.claim_idle_ms / 2000), reclaimer.run_once)),
            asyncio.create_task(self._every(max(0.2, s.claim_idle_ms / 2000), command_reclaimer.run_once)),
            asyncio.create_task(self._every(1.0, self._heartbeat)),
            asyncio.create_task(self._every(2.0, self._ensure_groups)),
            asyncio.create_task(calendar.keep_fresh(client, keys, self.stop_event, today=self._market_today)),
        ]
        if s.auto_calculate_signals:
            tasks.append(asyncio.create_task(self._schedule_loop()))
        await self.stop_event.wait()
        log.info("stopping: finishing %d in-flight batch(es)", len(self.inflight))
        self.consuming = False
        await broker.stop()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*self.inflight, return_exceptions=True)
        await self._drain_own_pending(deadline_s=3.0)
        scanner.close()
        await client.hdel(keys.heartbeats, f"signals:{self.consumer}")
        await client.aclose()
        log.info("stopped")

    def _market_today(self) -> dt.date:
        return sessions.trading_date(self.fallback_clock.now_ms())

    async def _drain_own_pending(self, deadline_s: float) -> None:
        """At stop: bars delivered to this worker but never handled (a blocking read cancelled
        after the server had already delivered its reply) are handled and acknowledged now,
        instead of waiting for another worker to claim them after the idle time. Bounded in time:
        with the server gone they stay pending for a claim, and the process still exits."""
        try:
            async with asyncio.timeout(deadline_s):
                while True:
                    reply = await self.client.xreadgroup(
                        SIGNALS_GROUP,
                        self.consumer,
                        {self.keys.bars: "0"},
                        count=self.settings.batch_size,
                    )
                    entries = [(i, f) for i, f in (reply[0][1] if reply else []) if f]
                    if not entries:
                        return
                    log.info("handling %d bar(s) delivered just before the stop", len(entries))
                    await self.processor.handle(entries)
        except (TimeoutError, RedisError) as exc:
            log.warning("left this worker's pending bars for a claim: %r", exc)

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

    def _subscribe(
        self,
        broker: RedisBroker,
        stream: str,
        group: str,
        handler: Callable[[list[tuple[bytes, dict[bytes, bytes]]]], Awaitable[None]],
        max_records: int | None = None,
    ) -> Any:
        sub = StreamSub(
            stream,
            group=group,
            consumer=self.consumer,
            batch=True,
            max_records=max_records or self.settings.batch_size,
            polling_interval=100,
        )

        async def on_batch(msg: RedisBatchStreamMessage) -> None:
            entries = list(zip(msg.raw_message["message_ids"], msg.raw_message["data"], strict=True))
            # shielded: a stop lets the batch finish and be acknowledged
            task = asyncio.ensure_future(handler(entries))
            self.inflight.add(task)
            task.add_done_callback(self.inflight.discard)
            await asyncio.shield(task)

        subscriber = broker.subscriber(stream=sub, ack_policy=AckPolicy.MANUAL, parser=raw_batch)
        subscriber(on_batch)
        return subscriber

    async def _setup(self, strategies: Any) -> None:
        await self._ensure_groups()
        descriptions = {st.key: orjson.dumps(st.describe()) for st in strategies}
        await self.client.hset(self.keys.strategies, mapping=descriptions)

    async def _ensure_groups(self) -> None:
        for stream, group in (
            (self.keys.bars, SIGNALS_GROUP),
            (self.keys.commands, COMMANDS_GROUP),
        ):
            if await ensure_group(self.client, stream, group):
                log.warning("consumer group %s on %s created", group, stream)
        if not self.consuming:
            return
        for subscriber in self.subscribers:
            # FastStream stops a subscriber for good when its group vanishes under it (the stream
            # deleted, or a server restarted empty): once the group exists again, start it again
            if not subscriber.running and not self.stop_event.is_set():
                log.warning("the subscriber of %s had stopped (its group was gone); starting it again",
                            subscriber.stream_sub.name)  # fmt: skip
                await subscriber.start()

    async def _heartbeat(self) -> None:
        st = self.processor.stats
        await self.client.hset(self.keys.heartbeats, f"signals:{self.consumer}", now_ms())
        await self.client.hset(
            self.keys.metrics,
            mapping={
                f"signals:{self.consumer}:bars": st.bars,
                f"signals:{self.consumer}:signals": st.signals,
                f"signals:{self.consumer}:dead_letters": st.dead_letters,
                f"signals:{self.consumer}:missing_window": st.missing_window,
                f"signals:{self.consumer}:failures": st.failures,
            },
        )

    async def _every(self, seconds: float, fn: Callable[[], Awaitable[Any]]) -> None:
        while True:
            try:
                await fn()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("%s failed: %r", getattr(fn, "__name__", fn), exc)
            await asyncio.sleep(seconds)

    async def _schedule_loop(self) -> None:
        """Follow the schedule on the market clock (read at least every second: it may run faster
        than the wall clock, or appear in the past when the quotes service starts)."""
        cal: Calendar = sessions
        state = self.keys.scheduler_state
        planner = Planner(self.schedule, cal)
        published: int | None = None
        fired_at = -MIN_FIRE_GAP_S
        while True:
            try:
                now = await self.market.now()
                slot = planner.step(now)
                if slot is not None:
                    await self._fire_scheduled(slot)
                    fired_at = asyncio.get_running_loop().time()
                if planner.planned != published:
                    published = planner.planned
                    await self.client.hset(
                        state, mapping={"schedule": self.schedule.text, "next_run_ts": str(published)}
                    )
                wait_ms = (planner.planned or now) - now
                wait = min(1.0, max(0.05, wait_ms / 1000))
                # on a fast market clock, at most one scheduled scan per wall second
                wait = max(wait, fired_at + MIN_FIRE_GAP_S - asyncio.get_running_loop().time())
                await asyncio.sleep(wait)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("schedule tick failed: %r", exc)
                await asyncio.sleep(1.0)

    async def _fire_scheduled(self, slot_ms: int) -> None:
        """Publish one scheduled scan per slot across all workers, unless one is still pending."""
        c, keys = self.client, self.keys
        if not await c.set(f"{keys.scheduler_state}:slot:{slot_ms}", 1, nx=True, px=3_600_000):
            return
        last = await c.hget(keys.scheduler_state, "last_job_id")
        if last:
            job = await c.get(keys.job(last.decode()))
            if job and orjson.loads(job)["state"] in ("queued", "running"):
                log.info(
                    "scheduled scan skipped: job %s is still %s",
                    last.decode(),
                    orjson.loads(job)["state"],
                )
                return
        cmd = Command(id=uuid.uuid4().hex, type="calc_signals", issued_ts=now_ms(), source="schedule")
        await c.set(keys.job(cmd.id), queued_job(cmd).model_dump_json(), ex=JOB_TTL_S)
        await c.xadd(keys.commands, encode(cmd), maxlen=self.settings.commands_maxlen, approximate=True)
        await c.hset(keys.scheduler_state, mapping={"last_run_ts": slot_ms, "last_job_id": cmd.id})

    def stop(self) -> None:
        self.stop_event.set()


async def main() -> None:
    settings = load_settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    service = SignalsService(settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, service.stop)
    await service.run()
