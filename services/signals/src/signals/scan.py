"""The full-market scan (``calc_signals``): every code's last closed bar, every strategy.

Reads every code's trend window in pipelined chunks, evaluates all codes at once (time-major arrays,
the same evaluation as the streaming path), writes the signals idempotently and reports progress in
the JobStatus of every job it serves.

"Closed" is decided on the market's clock (:mod:`signals.market_time`: the clock the quotes service
publishes, so an accelerated simulated market is scanned at its own time). A daily scan while the
market is in session also evaluates the day's forming bar and writes what it finds as provisional
signals (:mod:`signals.provisional`); a scan over closed daily bars resolves them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np

from marketbus.clock import wall_ms
from marketbus.consumer import Released
from marketbus.contracts import JobStatus, Quote, SchedulerState, Security, Signal
from marketbus.jobs import save as save_job
from marketbus.sessions import bar_close_ms
from marketbus.trend import TS, TrendStore
from signals.evaluate import Target, evaluate_windows
from signals.provisional import as_provisional, forming_day_ts, forming_window, snapshot_row
from signals.store import PROVISIONAL_PERIODS, SignalStore
from signals.strategies import WINDOW_BARS, Strategy

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("signals.scan")

READ_CHUNK = 500
# bars read beyond the window: the newest stored bars may not have closed yet (a bar being built),
# and the window of the last CLOSED bar must start where the streaming path's starts (strategies
# that replay from the first bar of the window depend on it)
UNCLOSED_SLACK = 8
LOCK_TTL_MS = 60_000


def closed_only(rows: np.ndarray, period: str, now: int) -> np.ndarray:
    """The rows without the last bars that have not closed by market time ``now`` (a bar still
    being built, stored when the quotes service stopped mid-bar; or bars after a market clock set in
    the past): the scan answers for the last bar *closed* at ``now``."""
    end = len(rows)
    while end and bar_close_ms(int(rows[end - 1, TS]), period) > now:
        end -= 1
    return rows[:end]


def closed_targets(
    codes: Sequence[str], windows: Sequence[np.ndarray], period: str, now: int
) -> list[Target]:
    """The window of each code's last bar closed at ``now``: the ``WINDOW_BARS`` rows ending with
    it, the very window the streaming path evaluates when that bar arrives."""
    # most codes' newest bars share a few bar times: whether one has closed is decided once
    closed_at: dict[float, bool] = {}
    out = []
    for code, rows in zip(codes, windows, strict=True):
        if not len(rows):
            continue
        last = float(rows[-1, TS])
        closed = closed_at.get(last)
        if closed is None:
            closed = closed_at[last] = bar_close_ms(int(last), period) <= now
        if not closed and not len(rows := closed_only(rows, period, now)):
            continue
        out.append(Target(code, period, rows[-WINDOW_BARS:]))
    return out


def provisional_targets(
    codes: Sequence[str],
    windows: Sequence[np.ndarray],
    snapshots: Mapping[str, Quote],
    period: str,
    day_ts: int,
    length: int = WINDOW_BARS,
) -> list[Target]:
    """The windows ending with the forming bar of ``day_ts``, for the codes that have one."""
    out = []
    for code, rows in zip(codes, windows, strict=True):
        quote = snapshots.get(code)
        snap = snapshot_row(quote, day_ts) if quote is not None else None
        window = forming_window(rows, day_ts, snap, length)
        if window is not None:
            out.append(Target(code, period, window))
    return out


def evaluate_scan(
    closed: Sequence[Target],
    forming: Sequence[Target],
    strategies: Sequence[Strategy],
    universe: Mapping[str, Security],
    now: int,
) -> tuple[list[Signal], list[Signal]]:
    """(closed-bar signals, provisional signals) of one scan: the CPU part, run off the loop."""
    provisional = [as_provisional(s) for s in evaluate_windows(forming, strategies, universe, now)]
    return evaluate_windows(closed, strategies, universe, now), provisional


async def _wall_now() -> int:
    return wall_ms()


class Scanner:
    def __init__(
        self,
        client: Redis,
        lock_key: str,
        trend: TrendStore,
        store: SignalStore,
        strategies: Sequence[Strategy],
        owner: str,
        market_now: Callable[[], Awaitable[int]] | None = None,
        stopping: asyncio.Event | None = None,
    ) -> None:
        self.client = client
        # set when the worker stops: a scan still waiting for the lock then gives its jobs back
        self.stopping = stopping or asyncio.Event()
        # market epoch ms (the service passes signals.market_time.MarketTime.now); the wall clock
        self.market_now = market_now or _wall_now
        self.lock_key = lock_key
        self.trend = trend
        self.store = store
        self.strategies = strategies
        self.owner = owner
        # One thread for the CPU part, so the loop keeps serving bars while a scan evaluates and
        # the indicator array pool (one per thread) exists once.
        self._cpu = ThreadPoolExecutor(max_workers=1, thread_name_prefix="scan-eval")

    def close(self) -> None:
        self._cpu.shutdown(wait=True)

    async def run(self, jobs: Sequence[JobStatus], period: str) -> list[JobStatus]:
        """Run one scan for all these jobs (they asked for the same thing while it was queued).

        Only one scan runs at a time across all workers: the others wait for the lock.
        """
        await self._acquire()
        refresher = asyncio.create_task(self._keep_lock())
        try:
            return await self._scan(jobs, period)
        finally:
            refresher.cancel()
            await self.client.eval(
                "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end"
                " return 0",
                1,
                self.lock_key,
                self.owner,
            )

    async def _acquire(self) -> None:
        # another worker's scan holds the lock in Redis: poll it (an Event cannot cross processes)
        # (a worker stopping meanwhile leaves the jobs queued and their commands pending for another
        # worker, instead of waiting, maybe minutes, to run a scan at its stop)
        while not await self.client.set(self.lock_key, self.owner, nx=True, px=LOCK_TTL_MS):
            if self.stopping.is_set():
                raise Released("the scan was still waiting for another worker's scan")
            await asyncio.sleep(0.05)

    async def _keep_lock(self) -> None:
        while True:
            await asyncio.sleep(LOCK_TTL_MS / 3000)
            await self.client.pexpire(self.lock_key, LOCK_TTL_MS)

    async def _report(self, jobs: Sequence[JobStatus], **update: object) -> list[JobStatus]:
        updated = [j.model_copy(update=update) for j in jobs]
        pipe = self.client.pipeline(transaction=False)
        for job in updated:
            save_job(pipe, self.store.keys, job)
        await pipe.execute()
        return updated

    async def _scan(self, jobs: Sequence[JobStatus], period: str) -> list[JobStatus]:
        started = time.perf_counter()
        jobs = await self._report(jobs, state="running", percent=0.0, started_ts=wall_ms())
        state_key = self.store.keys.scheduler_state
        await self.client.hset(state_key, mapping=SchedulerState(running_job=jobs[0].job_id).to_hash())
        try:
            codes = await self.store.codes()
            windows = []
            for start in range(0, len(codes), READ_CHUNK):
                chunk = codes[start : start + READ_CHUNK]
                windows.extend(await self.trend.tails(chunk, period, WINDOW_BARS + UNCLOSED_SLACK))
                done = min(len(codes), start + READ_CHUNK)
                if done < len(codes):
                    jobs = await self._report(jobs, percent=round(70.0 * done / len(codes), 1))
            market_now = await self.market_now()
            targets = closed_targets(codes, windows, period, market_now)
            day_ts = forming_day_ts(market_now) if period in PROVISIONAL_PERIODS else None
            forming: list[Target] = []
            if day_ts is not None:
                snapshots = await self.store.snapshots(codes)
                forming = provisional_targets(codes, windows, snapshots, period, day_ts)
            universe = await self.store.universe()
            # the closed bars are marked closed (and their provisional signals read) on the server
            # while the thread evaluates: the write then resolves them as it would have
            closing = asyncio.ensure_future(self.store.close_bars(targets))
            try:
                closed_signals, provisional = await asyncio.get_running_loop().run_in_executor(
                    self._cpu, evaluate_scan, targets, forming, self.strategies, universe, wall_ms()
                )
            finally:
                resolving = await closing
            signals = closed_signals + provisional
            jobs = await self._report(jobs, percent=90.0)
            written = await self.store.write(closed_signals, targets, resolving)
            written += await self.store.write_provisional(provisional)
        except Exception as exc:
            log.exception("scan failed")
            return await self._report(
                jobs, state="failed", error=f"{type(exc).__name__}: {exc}", finished_ts=wall_ms()
            )
        finally:
            with contextlib.suppress(Exception):
                await self.client.hdel(state_key, "running_job")  # SchedulerState.running_job: None
        log.info(
            "scan %s: %d codes, %d signals (%d provisional, %d new) in %.2f s for %d job(s)",
            period,
            len(targets),
            len(signals),
            len(provisional),
            written,
            time.perf_counter() - started,
            len(jobs),
        )
        return await self._report(
            jobs,
            state="done",
            percent=100.0,
            codes=len({t.code for t in (*targets, *forming)}),
            signals=len(signals),
            new_signals=written,
            finished_ts=wall_ms(),
        )
