"""Stopping tasks without losing the caller's cancellation; jobs and the scheduler state as the
contracts write and read them."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from marketbus import jobs
from marketbus.contracts import SchedulerState
from marketbus.keys import JOB_TTL_S, Keys
from marketbus.streams import COMMANDS, Publisher
from marketbus.tasks import cancel_and_wait, every


async def test_the_caller_s_own_cancellation_is_not_swallowed_while_it_stops_a_task() -> None:
    """The defect of ``task.cancel(); with suppress(CancelledError): await task``: a caller
    cancelled while it waits runs on. cancel_and_wait lets the caller's cancellation through."""
    slow_to_stop = asyncio.Event()

    async def worker() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            await slow_to_stop.wait()  # ends only when the test lets it

    async def stopper(inner: asyncio.Task[None], how: str) -> str:
        if how == "suppress":
            inner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await inner
        else:
            await cancel_and_wait([inner])
        return "ran on"

    for how, swallowed in (("suppress", True), ("cancel_and_wait", False)):
        inner = asyncio.create_task(worker())
        await asyncio.sleep(0)
        outer = asyncio.create_task(stopper(inner, how))
        await asyncio.sleep(0.01)
        outer.cancel()  # the caller is cancelled while it waits for the worker to end
        await asyncio.sleep(0.01)
        slow_to_stop.set()
        if swallowed:
            assert await outer == "ran on"
        else:
            with pytest.raises(asyncio.CancelledError):
                await outer
        slow_to_stop.clear()
        await asyncio.wait([inner])


async def test_cancel_and_wait_returns_the_tasks_that_would_not_stop() -> None:
    release = asyncio.Event()

    async def stubborn() -> None:
        while not release.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await release.wait()

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    assert await cancel_and_wait([task], within_s=0.05) == [task]
    release.set()
    await asyncio.wait([task])


async def test_every_goes_on_after_a_failing_call() -> None:
    calls = 0
    done = asyncio.Event()

    async def flaky() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("server away")
        done.set()

    task = asyncio.create_task(every(0.0, flaky))
    await asyncio.wait_for(done.wait(), 10)
    await cancel_and_wait([task])
    assert calls >= 2 and task.cancelled()


class Pipe:
    """Records what is queued on a pipeline (the commands a real pipeline would send)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[object, ...], dict[str, object]]] = []

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return lambda *a, **kw: self.calls.append((name, a, kw))


def test_a_queued_job_is_written_before_its_command() -> None:
    keys = Keys("t")
    cmd = jobs.new_command(source="cli", period="5m")
    pipe = Pipe()
    job = jobs.queue(pipe, keys, Publisher(COMMANDS, keys.commands, 123), cmd)
    assert job.state == "queued" and job.job_id == cmd.id and job.period == "5m"
    (set_name, set_args, set_kw), (xadd_name, xadd_args, xadd_kw) = pipe.calls
    assert (set_name, set_args[0], set_kw["ex"]) == ("set", keys.job(cmd.id), JOB_TTL_S)
    assert jobs.parse(set_args[1]) == job  # type: ignore[arg-type]
    assert (xadd_name, xadd_args[0], xadd_kw) == ("xadd", keys.commands, {"maxlen": 123, "approximate": True})


def test_scheduler_state_round_trips_through_the_hash_and_empty_fields_are_absent() -> None:
    state = SchedulerState(schedule="every 5m in session", next_run_ts=5, last_job_id="abc")
    raw = {k.encode(): v.encode() for k, v in state.to_hash().items()}
    assert SchedulerState.from_hash(raw) == state
    assert SchedulerState.from_hash({b"running_job": b"", b"unknown": b"x"}) == SchedulerState()
