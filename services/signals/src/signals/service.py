"""The signals service process: handlers of the bars and the commands on the library's consumer
runtime, and the scan schedule; one asyncio loop owning its clients."""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import logging
import signal
from typing import Any

from marketbus import calendar, jobs, sessions
from marketbus.clock import parse_clock
from marketbus.consumer import Runtime
from marketbus.contracts import Bar, Command, SchedulerState
from marketbus.settings import Settings, load_settings
from marketbus.streams import BAR_SIGNALS, COMMAND_JOBS, COMMANDS, Publisher
from marketbus.wire import text
from signals import backfill
from signals.commands import CommandHandler
from signals.consumer import SLACK_BARS, BarProcessor
from signals.evaluate import warm_up
from signals.market_time import MarketTime
from signals.queries import register as register_queries
from signals.scan import Scanner
from signals.scheduler import Calendar, Planner, Schedule, parse_schedule
from signals.store import SignalStore
from signals.strategies import WINDOW_BARS, build_strategies
from signals.windows import WindowCache

log = logging.getLogger("signals")

DESCRIBE_EVERY_S = 2.0  # how soon the strategy descriptions return after a server restarted empty
MIN_FIRE_GAP_S = 1.0  # wall seconds between two scheduled scans, whatever the market clock's speed


class SignalsService:
    """The bar handler and the command handler on one consumer runtime, plus the schedule."""

    def __init__(self, settings: Settings) -> None:
        self.runtime = rt = Runtime(settings, "signals")
        self.settings = settings
        self.keys = rt.keys
        self.consumer = rt.consumer
        self.schedule: Schedule = parse_schedule(settings.signal_schedule)
        try:  # a bad clock setting stops the service at start, with its reason
            self.fallback_clock = parse_clock(settings.market_clock)
        except ValueError as exc:
            raise SystemExit(f"MARKETBUS_MARKET_CLOCK: {exc}") from exc
        self.strategies = build_strategies(settings.strategy_params)  # bad names fail at start
        rt.on_start(self._start)
        rt.consume(BAR_SIGNALS, self._on_bars)
        rt.consume(COMMAND_JOBS, self._on_commands, batch=100, on_dead_letter=self._fail_jobs)
        self.queries = register_queries(rt, self.strategies, self.fallback_clock)  # {mb}:queries
        rt.stats(self._stats)
        rt.background(self._keep_calendar, "calendar")
        rt.every(DESCRIBE_EVERY_S, self._describe_strategies_if_gone, "strategies")
        if settings.auto_calculate_signals:
            rt.background(self._schedule_loop, "schedule")
        rt.on_stop(self._stop)
        backfill.attach(self)  # the history run, for the scorecard (signals.backfill)

    @property
    def consuming(self) -> bool:
        return self.runtime.consuming

    async def run(self) -> None:
        await self.runtime.run()

    def stop(self) -> None:
        self.runtime.stop()

    async def _start(self) -> None:
        s, keys = self.settings, self.keys
        self.client = client = self.runtime.client
        # the one calendar (package sessions, imported and learned days), before the first check
        await calendar.load(client, keys, today=self._market_today())
        # the windows of both paths, kept between batches and scans (signals.windows)
        self.windows = trend = WindowCache(
            client, keys, s.trend_max_bars, WINDOW_BARS + SLACK_BARS, s.window_cache
        )
        store = SignalStore(client, keys, s.signals_maxlen)
        self.processor = BarProcessor(trend, store, self.strategies, s.signal_periods)
        self.market = MarketTime(client, keys, self.fallback_clock)
        self.scanner = Scanner(
            client,
            keys.scan_lock,
            trend,
            store,
            self.strategies,
            self.consumer,
            self.market.now,
            stopping=self.runtime.stop_event,
        )
        self.commands_handler = CommandHandler(keys, store, self.scanner)
        self.commands = Publisher.of(COMMANDS, keys, s, client)
        await self._describe_strategies()
        warm_up(self.strategies)  # the compiled indicator loops, before the first batch
        gc.freeze()  # start-up objects (strategies, schemas, calendar) out of every GC pass
        log.info(
            "signals worker %s: %d strategies, schedule %r (auto=%s)",
            self.consumer,
            len(self.strategies),
            self.schedule.text,
            s.auto_calculate_signals,
        )

    async def _describe_strategies(self) -> None:
        descriptions = {st.key: st.describe().model_dump_json() for st in self.strategies}
        await self.client.hset(self.keys.strategies, mapping=descriptions)

    async def _describe_strategies_if_gone(self) -> None:
        """A server restarted empty lost the descriptions the gateway serves: write them again."""
        if not await self.client.exists(self.keys.strategies):
            log.warning("the strategy descriptions were gone (a server restarted empty?); writing them again")
            await self._describe_strategies()

    async def _on_bars(self, bars: list[Bar]) -> None:
        await self.processor.handle(bars)

    async def _on_commands(self, commands: list[Command]) -> None:
        await self.commands_handler.handle(commands)

    def _fail_jobs(self, pipe: Any, dead: Any) -> None:
        self.commands_handler.fail_jobs(pipe, dead)

    def _stats(self) -> dict[str, int]:
        st, cache = self.processor.stats, self.windows.stats
        return {
            "bars": st.bars,
            "signals": st.signals,
            "missing_window": st.missing_window,
            "window_hits": cache.hits,
            "window_misses": cache.misses,
            "windows_kept": len(self.windows),
        }

    async def _keep_calendar(self) -> None:
        await calendar.keep_fresh(self.client, self.keys, self.runtime.stop_event, today=self._market_today)

    def _stop(self) -> None:
        self.scanner.close()

    def _market_today(self) -> dt.date:
        return sessions.trading_date(self.fallback_clock.now_ms())

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
                    fields = SchedulerState(schedule=self.schedule.text, next_run_ts=published).to_hash()
                    await self.client.hset(state, mapping=fields)
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
        job = jobs.parse(await c.get(keys.job(text(last)))) if last else None
        if job is not None and job.state in ("queued", "running"):
            log.info("scheduled scan skipped: job %s is still %s", job.job_id, job.state)
            return
        cmd = jobs.new_command(source="schedule")
        pipe = c.pipeline(transaction=True)
        jobs.queue(pipe, keys, self.commands, cmd)
        pipe.hset(
            keys.scheduler_state, mapping=SchedulerState(last_run_ts=slot_ms, last_job_id=cmd.id).to_hash()
        )
        await pipe.execute()


async def main() -> None:
    settings = load_settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    service = SignalsService(settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, service.stop)
    await service.run()
