"""Commands from ``mb:commands`` (published by the gateway, the CLI or the schedule).

Commands that arrive while a scan runs queue up in the stream and are served together by the next
scan, one per period: a scan is never started twice at once, and every job gets an answer.
A command is acknowledged after its job reached ``done`` or ``failed``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from marketbus.contracts import Command, JobStatus
from marketbus.dlq import dead_letter
from marketbus.keys import COMMANDS_GROUP, Keys
from marketbus.wire import BadMessage, decode
from signals.scan import Scanner
from signals.store import SignalStore

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
        self, client: Redis, keys: Keys, store: SignalStore, scanner: Scanner, dlq_maxlen: int
    ) -> None:
        self.client = client
        self.keys = keys
        self.store = store
        self.scanner = scanner
        self.dlq_maxlen = dlq_maxlen

    async def handle(self, entries: Sequence[Entry]) -> None:
        by_period: dict[str, list[JobStatus]] = {}
        bad = []
        for entry_id, fields in entries:
            try:
                cmd = decode(Command, fields)
            except BadMessage as exc:
                bad.append((entry_id, fields, str(exc)))
                continue
            job = await self.store.get_job(cmd.id) or queued_job(cmd)
            if job.state in ("done", "failed"):
                continue  # redelivered after it finished: nothing to do
            by_period.setdefault(cmd.period, []).append(job)
        if bad:
            pipe = self.client.pipeline(transaction=True)
            for entry_id, fields, error in bad:
                dead_letter(
                    pipe,
                    self.keys.dlq,
                    self.dlq_maxlen,
                    self.keys.commands,
                    entry_id,
                    fields,
                    error,
                )
                log.warning("command entry %s dead-lettered: %s", entry_id.decode(), error)
            await pipe.execute()
        for period, jobs in by_period.items():
            await self.scanner.run(jobs, period)
        await self.client.xack(self.keys.commands, COMMANDS_GROUP, *[i for i, _ in entries])
