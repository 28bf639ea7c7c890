"""The full-market scan (``calc_signals``): every code's last closed bar, every strategy.

Reads every code's trend window in pipelined chunks, evaluates all codes at once (time-major arrays,
the same evaluation as the streaming path), writes the signals idempotently and reports progress in
the JobStatus of every job it serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np

from marketbus.contracts import JobStatus
from marketbus.keys import JOB_TTL_S
from marketbus.sessions import bar_close_ms
from marketbus.trend import TS, TrendStore
from signals.evaluate import Target, evaluate_windows
from signals.store import SignalStore, now_ms
from signals.strategies import WINDOW_BARS, Strategy

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("signals.scan")

READ_CHUNK = 500
LOCK_TTL_MS = 60_000


def closed_only(rows: np.ndarray, period: str, now: int) -> np.ndarray:
    """The rows without a last bar that has not closed yet (a bar still being built, stored when
    the quotes service stopped mid-bar): the scan answers for the last *closed* bar."""
    if len(rows) and bar_close_ms(int(rows[-1, TS]), period) > now:
        return rows[:-1]
    return rows


class Scanner:
    def __init__(
        self,
        client: Redis,
        lock_key: str,
        trend: TrendStore,
        store: SignalStore,
        strategies: Sequence[Strategy],
        owner: str,
    ) -> None:
        self.client = client
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
        while not await self.client.set(self.lock_key, self.owner, nx=True, px=LOCK_TTL_MS):  # noqa: ASYNC110
            await asyncio.sleep(0.05)

    async def _keep_lock(self) -> None:
        while True:
            await asyncio.sleep(LOCK_TTL_MS / 3000)
            await self.client.pexpire(self.lock_key, LOCK_TTL_MS)

    async def _report(self, jobs: Sequence[JobStatus], **update: object) -> list[JobStatus]:
        updated = [j.model_copy(update=update) for j in jobs]
        pipe = self.client.pipeline(transaction=False)
        for job in updated:
            pipe.set(self.store.keys.job(job.job_id), job.model_dump_json(), ex=JOB_TTL_S)
        await pipe.execute()
        return updated

    async def _scan(self, jobs: Sequence[JobStatus], period: str) -> list[JobStatus]:
        started = time.perf_counter()
        jobs = await self._report(jobs, state="running", percent=0.0, started_ts=now_ms())
        state_key = self.store.keys.scheduler_state
        await self.client.hset(state_key, "running_job", jobs[0].job_id)
        try:
            codes = await self.store.codes()
            windows = []
            for start in range(0, len(codes), READ_CHUNK):
                chunk = codes[start : start + READ_CHUNK]
                windows.extend(await self.trend.tails(chunk, period, WINDOW_BARS))
                done = min(len(codes), start + READ_CHUNK)
                if done < len(codes):
                    jobs = await self._report(jobs, percent=round(70.0 * done / len(codes), 1))
            now = now_ms()
            targets = [
                Target(c, period, closed)
                for c, w in zip(codes, windows, strict=True)
                if len(closed := closed_only(w, period, now))
            ]
            universe = await self.store.universe()
            signals = await asyncio.get_running_loop().run_in_executor(
                self._cpu, evaluate_windows, targets, self.strategies, universe, now_ms()
            )
            jobs = await self._report(jobs, percent=90.0)
            written = await self.store.write(signals)
        except Exception as exc:
            log.exception("scan failed")
            return await self._report(
                jobs, state="failed", error=f"{type(exc).__name__}: {exc}", finished_ts=now_ms()
            )
        finally:
            with contextlib.suppress(Exception):
                await self.client.hdel(state_key, "running_job")
        log.info(
            "scan %s: %d codes, %d signals (%d new) in %.2f s for %d job(s)",
            period,
            len(targets),
            len(signals),
            written,
            time.perf_counter() - started,
            len(jobs),
        )
        return await self._report(
            jobs,
            state="done",
            percent=100.0,
            codes=len(targets),
            signals=len(signals),
            new_signals=written,
            finished_ts=now_ms(),
        )
