"""Commands from ``mb:commands`` (published by the gateway, the CLI or the schedule).

Commands that arrive while a scan runs queue up in the stream and are served together by the next
scan, one per period: a scan is never started twice at once, and every job gets an answer.
A command is acknowledged after its job reached ``done`` or ``failed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from marketbus.contracts import Command, JobStatus
from marketbus.dlq import dead_letter
from marketbus.keys import COMMANDS_GROUP, JOB_TTL_S, Keys
from marketbus.wire import BadMessage, decode
from signals.scan import Scanner
from signals.store import SignalStore, now_ms

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("signals.commands")

Entry = tuple[bytes, dict[bytes, bytes]]


def queued_job(cmd: Command) -> JobStatus:
    return JobStatus(
        job_id=cmd.id,
        task_type=cmd.type,
        state="queued",
        period=cmd.period,
        created_ts=cmd.issued_ts,
    )


class CommandHandler:
    def __init__(
        self,
        client: Redis,
        keys: Keys,
        store: SignalStore,
        scanner: Scanner,
        dlq_maxlen: int,
        consumer: str,
        claim_idle_ms: int,
    ) -> None:
        self.client = client
        self.keys = keys
        self.store = store
        self.scanner = scanner
        self.dlq_maxlen = dlq_maxlen
        self.consumer = consumer
        self.claim_idle_ms = claim_idle_ms

    async def _keep_claimed(self, ids: Sequence[bytes]) -> None:
        """While a scan runs (or waits for another worker's), reset the idle time of its commands
        (XCLAIM JUSTID: no delivery counted) so a live worker's slow scan is never claimed away."""
        while True:
            await asyncio.sleep(self.claim_idle_ms / 3000)
            await self.client.xclaim(
                self.keys.commands, COMMANDS_GROUP, self.consumer, 0, list(ids), justid=True
            )

    async def handle(self, entries: Sequence[Entry]) -> None:
        """Serve a batch of commands. Unparseable entries go to the DLQ at once; an entry whose
        processing fails is left pending (the reclaimer redelivers it, then dead-letters it after
        ``max_deliveries``) and does not hold back the others, which are acknowledged."""
        by_period: dict[str, list[tuple[bytes, JobStatus]]] = {}
        bad = []
        failed: set[bytes] = set()
        for entry_id, fields in entries:
            try:
                cmd = decode(Command, fields)
            except BadMessage as exc:
                bad.append((entry_id, fields, str(exc)))
                continue
            try:
                job = await self.store.get_job(cmd.id) or queued_job(cmd)
            except Exception as exc:
                failed.add(entry_id)
                log.error("command %s failed, left pending for retry: %r", entry_id.decode(), exc)
                continue
            if job.state in ("done", "failed"):
                continue  # redelivered after it finished: nothing to do
            by_period.setdefault(cmd.period, []).append((entry_id, job))
        await self.dead_letter(bad)
        held = [i for items in by_period.values() for i, _ in items]
        keeper = asyncio.create_task(self._keep_claimed(held)) if held else None
        try:
            for period, items in by_period.items():
                try:
                    await self.scanner.run([job for _, job in items], period)
                except Exception as exc:
                    failed.update(i for i, _ in items)
                    log.error("scan of %d job(s) failed, left pending for retry: %r", len(items), exc)
        finally:
            if keeper is not None:
                keeper.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await keeper
        done = {i for i, _ in entries} - failed - {i for i, _, _ in bad}
        if done:
            await self.client.xack(self.keys.commands, COMMANDS_GROUP, *sorted(done))

    async def dead_letter(self, entries: Sequence[tuple[bytes, dict[bytes, bytes], str]]) -> None:
        """Move entries to the DLQ with their error and acknowledge them, in one round trip.
        A command that could be read but kept failing also fails its job, so nobody waits on it
        (and the schedule, which skips while its last job is pending, goes on)."""
        if not entries:
            return
        pipe = self.client.pipeline(transaction=True)
        for entry_id, fields, error in entries:
            dead_letter(pipe, self.keys.dlq, self.dlq_maxlen, self.keys.commands, entry_id, fields, error)
            try:
                cmd = decode(Command, fields)
            except BadMessage:
                continue
            job = queued_job(cmd).model_copy(
                update={"state": "failed", "error": f"dead-lettered: {error}", "finished_ts": now_ms()}
            )
            pipe.set(self.keys.job(cmd.id), job.model_dump_json(), ex=JOB_TTL_S)
        pipe.xack(self.keys.commands, COMMANDS_GROUP, *[e[0] for e in entries])
        await pipe.execute()
        for entry_id, _, error in entries:
            log.warning("command entry %s dead-lettered: %s", entry_id.decode(), error)
