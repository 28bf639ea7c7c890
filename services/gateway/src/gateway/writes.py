"""The gateway's one write: a queued job, its state and its command in one transaction."""

from __future__ import annotations

from typing import TYPE_CHECKING

from marketbus import jobs

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from marketbus.contracts import Command, JobStatus
    from marketbus.keys import Keys
    from marketbus.streams import Publisher


async def queue_job(redis: Redis, keys: Keys, commands: Publisher[Command], cmd: Command) -> JobStatus:
    """Save the job as queued and publish its command (both or neither); the queued state."""
    async with redis.pipeline(transaction=True) as pipe:
        job = jobs.queue(pipe, keys, commands, cmd)
        await pipe.execute()
    return job
