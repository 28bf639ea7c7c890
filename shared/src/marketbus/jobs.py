"""Jobs: a command on ``{mb}:commands`` and its state under ``{mb}:job:<id>``, in one place.

A job is queued by the gateway (the trigger), the CLI (``marketbus scan``) and the schedule of the
signals service; its state is saved by the signals service as it runs. The job's state is written
before (and with) its command, so whoever reads the command finds the job.
"""

from __future__ import annotations

import uuid
from typing import Any

from marketbus.clock import wall_ms
from marketbus.contracts import Command, JobStatus, Period, TaskType
from marketbus.keys import JOB_TTL_S, Keys
from marketbus.streams import Publisher


def new_command(source: str, period: Period = "1d", task_type: TaskType = "calc_signals") -> Command:
    return Command(id=uuid.uuid4().hex, type=task_type, period=period, issued_ts=wall_ms(), source=source)


def queued(cmd: Command) -> JobStatus:
    """The state of a job whose command has not been served yet."""
    return JobStatus(
        job_id=cmd.id, task_type=cmd.type, state="queued", period=cmd.period, created_ts=cmd.issued_ts
    )


def save(pipe: Any, keys: Keys, job: JobStatus) -> Any:
    """Queue the write of a job's state (kept a week after its last update) on a pipeline or an
    async client (await the result then)."""
    return pipe.set(keys.job(job.job_id), job.model_dump_json(), ex=JOB_TTL_S)


def queue(pipe: Any, keys: Keys, commands: Publisher[Command], cmd: Command) -> JobStatus:
    """Queue the job's state and its command on ``pipe`` (make it ``transaction=True``: both or
    neither); the caller executes it. Returns the queued state."""
    job = queued(cmd)
    save(pipe, keys, job)
    commands.add(pipe, cmd)
    return job


def parse(raw: bytes | str | None) -> JobStatus | None:
    """A stored job state (GET's reply), or None if there is none."""
    return JobStatus.model_validate_json(raw) if raw else None
