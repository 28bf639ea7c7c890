"""The library's consumer runtime against a real server: typed batches, acknowledgement after the
effect, dead letters, claims, a slow batch kept claimed, group re-creation and the stop."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from redis.asyncio import Redis

from marketbus import streams, wire
from marketbus.consumer import Runtime
from marketbus.contracts import Bar
from marketbus.keys import Keys
from marketbus.settings import Settings
from marketbus.streams import Group

GROUP = Group(streams.BARS, "runtime-test", "test", "the runtime's own test group")


def bar(i: int, code: str = "510300.SH") -> Bar:
    return Bar(code=code, period="1m", ts=1_700_000_000_000 + i * 60_000, open=1, high=1, low=1, close=1 + i,
               volume=100, amount=100)  # fmt: skip


async def wait_until(predicate: Callable[[], Awaitable[object]], within_s: float = 20.0) -> object:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if value := await predicate():
            return value
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached in time")


async def group_state(client: Redis, key: str) -> tuple[int, int]:
    """(pending, lag) of the test group."""
    for g in await client.xinfo_groups(key):
        if wire.text(g["name"]) == GROUP.name:
            return int(g["pending"]), int(g["lag"] or 0)
    raise AssertionError("no group")


@pytest.fixture
def runtime_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"claim_idle_ms": 200, "max_deliveries": 2, "batch_size": 50})


@pytest.fixture
async def run() -> AsyncIterator[Callable[[Runtime], asyncio.Task[None]]]:
    started: list[tuple[Runtime, asyncio.Task[None]]] = []

    def start(rt: Runtime) -> asyncio.Task[None]:
        task = asyncio.create_task(rt.run())
        started.append((rt, task))
        return task

    yield start
    for rt, task in started:
        rt.stop()
        await asyncio.wait_for(task, 30)


async def test_handlers_get_typed_batches_and_entries_are_acknowledged_after_the_effect(
    runtime_settings: Settings, client: Redis, keys: Keys, run: Callable[[Runtime], asyncio.Task[None]]
) -> None:
    seen: list[Bar] = []

    async def handle(bars: list[Bar]) -> None:
        assert all(isinstance(b, Bar) for b in bars)
        seen.extend(bars)

    rt = Runtime(runtime_settings, "test")
    rt.consume(GROUP, handle)
    run(rt)
    await asyncio.wait_for(rt.ready.wait(), 30)
    await streams.Publisher.of(streams.BARS, keys, runtime_settings, client).publish_batch(
        [bar(i) for i in range(120)]
    )
    await wait_until(lambda: asyncio.sleep(0, len(seen) == 120))
    await wait_until(lambda: _drained(client, keys.bars))
    assert [b.close for b in seen] == [1 + i for i in range(120)]


async def _drained(client: Redis, key: str) -> bool:
    return await group_state(client, key) == (0, 0)


async def test_an_unreadable_entry_is_dead_lettered_at_once_and_the_others_go_on(
    runtime_settings: Settings, client: Redis, keys: Keys, run: Callable[[Runtime], asyncio.Task[None]]
) -> None:
    seen: list[Bar] = []

    async def handle(bars: list[Bar]) -> None:
        seen.extend(bars)

    rt = Runtime(runtime_settings, "test")
    rt.consume(GROUP, handle)
    run(rt)
    await asyncio.wait_for(rt.ready.wait(), 30)
    pipe = client.pipeline(transaction=True)
    pipe.xadd(keys.bars, wire.encode(bar(0)))
    pipe.xadd(keys.bars, {"data": b'{"code": "nope"}'})
    pipe.xadd(keys.bars, {"data": b"\xff\xfe not utf-8"})
    pipe.xadd(keys.bars, wire.encode(bar(1)))
    ids = await pipe.execute()
    await wait_until(lambda: asyncio.sleep(0, len(seen) == 2))
    await wait_until(lambda: _drained(client, keys.bars))
    dead = await client.xrange(keys.dlq)
    assert [wire.text(f[b"entry_id"]) for _, f in dead] == [wire.text(ids[1]), wire.text(ids[2])]
    assert b"not a valid Bar" in dead[0][1][b"error"]
    assert rt.consumptions[0].counters.dead_letters == 2


async def test_a_failing_entry_does_not_hold_back_its_batch_and_is_dead_lettered_after_max_deliveries(
    runtime_settings: Settings, client: Redis, keys: Keys, run: Callable[[Runtime], asyncio.Task[None]]
) -> None:
    handled: list[float] = []
    calls: list[int] = []

    async def handle(bars: list[Bar]) -> None:
        calls.append(len(bars))
        if any(b.close == 3 for b in bars):
            raise RuntimeError("poison bar")
        handled.extend(b.close for b in bars)

    rt = Runtime(runtime_settings, "test")
    rt.consume(GROUP, handle)
    run(rt)
    await asyncio.wait_for(rt.ready.wait(), 30)
    await streams.Publisher.of(streams.BARS, keys, runtime_settings, client).publish_batch(
        [bar(i) for i in range(5)]
    )
    await wait_until(lambda: client.xlen(keys.dlq))
    await wait_until(lambda: _drained(client, keys.bars))
    assert sorted(handled) == [1, 2, 4, 5]  # each good bar once
    ((_, fields),) = await client.xrange(keys.dlq)
    assert b"processing failed 2 times (max_deliveries 2)" in fields[b"error"]
    assert wire.decode(Bar, fields).close == 3
    assert (
        rt.consumptions[0].counters.failures == 2
    )  # its delivery, then one claim; the next claim dead-letters


async def test_a_slow_batch_is_kept_claimed_and_never_handled_twice(
    runtime_settings: Settings, client: Redis, keys: Keys, run: Callable[[Runtime], asyncio.Task[None]]
) -> None:
    release = asyncio.Event()
    calls: list[list[float]] = []

    async def handle(bars: list[Bar]) -> None:
        calls.append([b.close for b in bars])
        await release.wait()

    rt = Runtime(runtime_settings, "test")
    c = rt.consume(GROUP, handle)
    run(rt)
    await asyncio.wait_for(rt.ready.wait(), 30)
    await streams.Publisher.of(streams.BARS, keys, runtime_settings, client).publish(bar(0))
    await wait_until(lambda: asyncio.sleep(0, bool(calls)))
    sweeps = c.counters.sweeps
    # many claim sweeps (each after more than claim_idle_ms) while the handler is still busy
    await wait_until(lambda: asyncio.sleep(0, c.counters.sweeps >= sweeps + 5))
    pending = await client.xpending_range(keys.bars, GROUP.name, "-", "+", 10)
    assert [p["times_delivered"] for p in pending] == [1]
    release.set()
    await wait_until(lambda: _drained(client, keys.bars))
    assert calls == [[1.0]] and c.counters.claimed == 0


async def test_a_dead_worker_s_entries_are_claimed_by_a_live_one(
    runtime_settings: Settings, client: Redis, keys: Keys, run: Callable[[Runtime], asyncio.Task[None]]
) -> None:
    await client.xgroup_create(keys.bars, GROUP.name, id="0", mkstream=True)
    await streams.Publisher.of(streams.BARS, keys, runtime_settings, client).publish_batch(
        [bar(i) for i in range(3)]
    )
    # a worker that read them and died before acknowledging
    await client.xreadgroup(GROUP.name, "dead-worker", {keys.bars: ">"}, count=10)
    seen: list[Bar] = []

    async def handle(bars: list[Bar]) -> None:
        seen.extend(bars)

    rt = Runtime(runtime_settings, "test")
    c = rt.consume(GROUP, handle)
    run(rt)
    await wait_until(lambda: _drained(client, keys.bars))
    assert sorted(b.close for b in seen) == [1, 2, 3] and c.counters.claimed == 3


async def test_a_group_deleted_under_it_is_created_again_and_consuming_goes_on(
    runtime_settings: Settings, client: Redis, keys: Keys, run: Callable[[Runtime], asyncio.Task[None]]
) -> None:
    seen: list[Bar] = []

    async def handle(bars: list[Bar]) -> None:
        seen.extend(bars)

    rt = Runtime(runtime_settings, "test")
    c = rt.consume(GROUP, handle)
    run(rt)
    await asyncio.wait_for(rt.ready.wait(), 30)
    publisher = streams.Publisher.of(streams.BARS, keys, runtime_settings, client)
    await publisher.publish(bar(0))
    await wait_until(lambda: asyncio.sleep(0, len(seen) == 1))
    await client.delete(keys.bars)  # as a server restarted empty would leave it
    await wait_until(lambda: asyncio.sleep(0, not c.subscriber.running))  # FastStream stopped it
    await wait_until(lambda: asyncio.sleep(0, c.subscriber.running))  # the runtime started it again
    await publisher.publish(bar(1))
    await wait_until(lambda: asyncio.sleep(0, len(seen) == 2))


async def test_the_stop_finishes_the_batch_in_flight_and_does_not_hang_on_a_stubborn_task(
    runtime_settings: Settings, client: Redis, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    entered = asyncio.Event()
    release = asyncio.Event()
    done: list[float] = []

    async def handle(bars: list[Bar]) -> None:
        entered.set()
        await release.wait()
        done.extend(b.close for b in bars)

    give_up = asyncio.Event()

    async def stubborn() -> None:
        # swallows every cancel until the test lets it go: it must not keep the stop from ending
        while not give_up.is_set():
            try:
                await give_up.wait()
            except asyncio.CancelledError:
                continue

    rt = Runtime(runtime_settings, "test")
    rt.consume(GROUP, handle)
    rt.background(stubborn, "stubborn")
    task = asyncio.create_task(rt.run())
    await asyncio.wait_for(rt.ready.wait(), 30)
    await streams.Publisher.of(streams.BARS, keys, runtime_settings, client).publish(bar(0))
    await asyncio.wait_for(entered.wait(), 20)
    rt.stop()
    await asyncio.sleep(0)
    assert not task.done()  # waits for the batch in flight
    release.set()
    with caplog.at_level(logging.ERROR, logger="marketbus.tasks"):
        await asyncio.wait_for(task, 30)
    assert done == [1.0]
    assert await group_state(client, keys.bars) == (0, 0)  # acknowledged before the exit
    assert "task stubborn did not stop" in caplog.text
    assert not await client.hexists(keys.heartbeats, f"test:{rt.consumer}")
    give_up.set()
