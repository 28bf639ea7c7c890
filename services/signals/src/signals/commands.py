"""Commands from ``{mb}:commands`` (published by the gateway, the CLI or the schedule).

Commands that arrive while a scan runs queue up in the stream and are served together by the next
scan, one per period: a scan is never started twice at once, and every job gets an answer. The
consumer runtime acknowledges a command after its job reached ``done`` or ``failed`` (and keeps a
long scan's commands claimed while it runs).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from marketbus import jobs
from marketbus.clock import wall_ms
from marketbus.consumer import Dead
from marketbus.contracts import Command, JobStatus
from marketbus.keys import Keys
from marketbus.wire import BadMessage, decode
from signals.scan import Scanner
from signals.store import SignalStore

log = logging.getLogger("signals.commands")


class CommandHandler:
    def __init__(self, keys: Keys, store: SignalStore, scanner: Scanner) -> None:
        self.keys = keys
        self.store = store
        self.scanner = scanner

    async def handle(self, commands: Sequence[Command]) -> None:
        """Serve a batch of commands: one scan per period for all jobs not finished yet (a
        redelivered command whose job is done or failed needs nothing)."""
        by_period: dict[str, list[JobStatus]] = {}
        for cmd in commands:
            job = await self.store.get_job(cmd.id) or jobs.queued(cmd)
            if job.state not in ("done", "failed"):
                by_period.setdefault(cmd.period, []).append(job)
        for period, pending in by_period.items():
            await self.scanner.run(pending, period)

    def fail_jobs(self, pipe: Any, dead: Sequence[Dead]) -> None:
        """On the dead-lettering transaction: a command that could be read but kept failing also
        fails its job, so nobody waits on it (and the schedule, which skips while its last job is
        pending, goes on)."""
        for _, fields, error in dead:
            try:
                cmd = decode(Command, fields)
            except BadMessage:
                continue
            job = jobs.queued(cmd).model_copy(
                update={"state": "failed", "error": f"dead-lettered: {error}", "finished_ts": wall_ms()}
            )
            jobs.save(pipe, self.keys, job)
