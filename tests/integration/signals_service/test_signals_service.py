"""The signals service against a real server: streaming path, idempotence, DLQ, scan jobs."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from redis.asyncio import Redis

from marketbus import jobs
from marketbus.contracts import Bar, Command, JobStatus, Security
from marketbus.keys import COMMANDS_GROUP, SIGNALS_GROUP, Keys
from marketbus.settings import Settings
from marketbus.streams import COMMANDS, Publisher
from marketbus.trend import TrendStore
from marketbus.wire import encode
from signals.service import SignalsService

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[3] / "shared/schemas/Signal.schema.json").read_text("utf-8")
)
MINUTE = 60_000
T0 = 1_764_000_000_000 // MINUTE * MINUTE


def golden_cross_closes(n: int = 120) -> np.ndarray:
    """A slow decline, then a jump on the last bar: SMA5 crosses above SMA20 exactly there."""
    closes = np.round(np.linspace(12.0, 10.0, n), 2)
    closes[-1] = 11.5
    return closes


def bars_for(code: str, closes: np.ndarray, period: str = "1m") -> list[Bar]:
    out = []
    for i, c in enumerate(closes):
        prev = closes[i - 1] if i else c
        out.append(
            Bar(
                code=code,
                period=period,
                ts=T0 + i * MINUTE,
                open=float(prev),
                high=float(max(prev, c)) + 0.01,
                low=float(min(prev, c)) - 0.01,
                close=float(c),
                volume=10_000.0 + 100 * i,
                amount=float(c) * 10_000,
            )
        )
    return out


@pytest.fixture
async def service(settings: Settings) -> AsyncIterator[SignalsService]:
    s = settings.model_copy(update={"claim_idle_ms": 500, "auto_calculate_signals": False})
    svc = SignalsService(s)
    task = asyncio.create_task(svc.run())
    await asyncio.wait_for(svc.runtime.ready.wait(), 30)  # its groups exist: what a test adds is read
    yield svc
    svc.stop()
    await asyncio.wait_for(task, 15)


async def seed(client: Redis, keys: Keys, code: str, bars: list[Bar], publish_last: bool) -> None:
    sec = Security(code=code, name="沪深300ETF", market="ETF")
    await client.hset(keys.universe, code, sec.model_dump_json())
    await TrendStore(client, keys).append(bars)
    if publish_last:
        await client.xadd(keys.bars, encode(bars[-1]))  # type: ignore[arg-type]


async def wait_until(predicate, within_s: float = 15.0):
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        value = await predicate()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached in time")


async def pending(client: Redis, stream: str, group: str) -> int:
    info = await client.xpending(stream, group)
    return int(info["pending"])


async def test_a_closed_bar_gives_its_signal_once_as_plain_json(
    service: SignalsService, client: Redis, keys: Keys
) -> None:
    bars = bars_for("510300.SH", golden_cross_closes())
    await seed(client, keys, "510300.SH", bars, publish_last=True)

    async def ma_cross() -> list:
        entries = await client.xrange(keys.signals)
        return [
            json.loads(f[b"data"]) for _, f in entries if json.loads(f[b"data"])["strategy"] == "ma_cross"
        ]

    found = await wait_until(ma_cross)
    sig = found[0]
    assert sig["side"] == "BUY" and sig["bar_ts"] == bars[-1].ts and sig["price"] == 11.5
    assert sig["name"] == "沪深300ETF" and sig["market"] == "ETF" and sig["period"] == "1m"
    assert sig["change_percent"] == pytest.approx((11.5 / bars[-2].close - 1) * 100, abs=1e-3)
    # bare XRANGE + a JSON parser, validated against the published schema
    for _, fields in await client.xrange(keys.signals):
        jsonschema.validate(json.loads(fields[b"data"]), SCHEMA)

    before = await client.xlen(keys.signals)
    await client.xadd(keys.bars, encode(bars[-1]))  # type: ignore[arg-type]  # redelivery
    await wait_until(lambda: _zero_pending(client, keys))
    await asyncio.sleep(0.3)
    assert await client.xlen(keys.signals) == before
    latest = await client.hget(keys.signals_latest, "510300.SH|ma_cross|1m")
    assert latest is not None and json.loads(latest)["id"] == sig["id"]


async def _zero_pending(client: Redis, keys: Keys) -> bool:
    info = await client.xinfo_groups(keys.bars)
    group = next(g for g in info if g["name"].decode() == SIGNALS_GROUP)
    return group["pending"] == 0 and group["lag"] == 0


async def test_a_deleted_bars_stream_stops_no_consumer(
    service: SignalsService, client: Redis, keys: Keys
) -> None:
    """Deleting the stream (or a server restarted empty) takes the group with it; FastStream then
    stops its subscriber for good. The worker re-creates the group and starts the subscriber again."""
    await wait_until(lambda: _group_exists(client, keys))
    await wait_until(lambda: _all_consuming(service))
    await client.delete(keys.bars)
    bars = bars_for("510300.SH", golden_cross_closes())
    await seed(client, keys, "510300.SH", bars, publish_last=False)
    await wait_until(lambda: _group_exists(client, keys))
    await client.xadd(keys.bars, encode(bars[-1]))  # type: ignore[arg-type]

    async def signalled() -> bool:
        return await client.xlen(keys.signals) > 0

    await wait_until(signalled, within_s=30)
    await wait_until(lambda: _zero_pending(client, keys))
    assert await _all_consuming(service)


async def _group_exists(client: Redis, keys: Keys) -> bool:
    if not await client.exists(keys.bars):
        return False
    return any(g["name"].decode() == SIGNALS_GROUP for g in await client.xinfo_groups(keys.bars))


async def _all_consuming(service: SignalsService) -> bool:
    return service.consuming and all(c.subscriber.running for c in service.runtime.consumptions)


async def test_unparseable_bars_go_to_the_dlq_and_the_rest_goes_on(
    service: SignalsService, client: Redis, keys: Keys
) -> None:
    bars = bars_for("510300.SH", golden_cross_closes())
    await seed(client, keys, "510300.SH", bars, publish_last=False)
    await client.xadd(keys.bars, {"data": b"{not json"})
    await client.xadd(keys.bars, {"data": b'{"code": "510300.SH", "period": "2h"}'})
    await client.xadd(keys.bars, encode(bars[-1]))  # type: ignore[arg-type]
    await wait_until(lambda: _zero_pending(client, keys))
    dead = await client.xrange(keys.dlq)
    assert len(dead) == 2
    errors = [f[b"error"].decode() for _, f in dead]
    assert "Invalid JSON" in errors[0] and "period" in errors[1]
    assert all(f[b"stream"].decode() == keys.bars for _, f in dead)

    async def counted() -> bool:  # visible to operators (marketbus status, /metrics)
        value = await client.hget(keys.metrics, f"signals:{service.consumer}:dead_letters")
        return value == b"2"

    assert await wait_until(counted)
    assert await wait_until(lambda: client.xlen(keys.signals))


async def test_scan_command_reports_progress_and_writes_signals(
    service: SignalsService, client: Redis, keys: Keys
) -> None:
    for i, code in enumerate(["510300.SH", "159915.SZ", "588000.SH"]):
        closes = golden_cross_closes() if i < 2 else np.linspace(10, 11, 120)
        await seed(client, keys, code, bars_for(code, closes, period="1d"), publish_last=False)
    cmd = Command(id="job-1", type="calc_signals", period="1d", issued_ts=int(time.time() * 1000))
    await client.xadd(keys.commands, encode(cmd))  # type: ignore[arg-type]

    async def finished() -> JobStatus | None:
        raw = await client.get(keys.job("job-1"))
        job = JobStatus.model_validate_json(raw) if raw else None
        return job if job and job.state in ("done", "failed") else None

    job = await wait_until(finished)
    assert job.state == "done" and job.percent == 100 and job.codes == 3 and job.signals >= 2
    assert job.started_ts and job.finished_ts and job.finished_ts >= job.started_ts
    crosses = {
        json.loads(v)["code"]
        for k, v in (await client.hgetall(keys.signals_latest)).items()
        if k.decode().endswith("|ma_cross|1d")
    }
    assert crosses == {"510300.SH", "159915.SZ"}
    assert await pending(client, keys.commands, COMMANDS_GROUP) == 0


async def test_a_worker_stopped_while_its_scan_waits_gives_the_scan_to_another_worker(
    settings: Settings, client: Redis, keys: Keys
) -> None:
    """Stopping a worker whose scan waits for another worker's scan does not wait for that scan:
    the worker stops, the job stays queued (not failed, not dead-lettered) and another worker runs
    it once the lock is free."""
    s = settings.model_copy(update={"claim_idle_ms": 300, "auto_calculate_signals": False})
    first = SignalsService(s.model_copy(update={"consumer_name": "first"}))
    task = asyncio.create_task(first.run())
    try:
        await asyncio.wait_for(first.runtime.ready.wait(), 30)
        await seed(client, keys, "510300.SH", bars_for("510300.SH", golden_cross_closes(), "1d"),
                   publish_last=False)  # fmt: skip
        await client.set(keys.scan_lock, "another-worker", px=600_000)  # a long scan elsewhere
        cmd = Command(id="handed-1", type="calc_signals", issued_ts=int(time.time() * 1000))
        pipe = client.pipeline(transaction=True)  # queued as the gateway queues it
        jobs.queue(pipe, keys, Publisher.of(COMMANDS, keys, s, client), cmd)
        await pipe.execute()

        async def delivered_to_first() -> bool:
            entries = await client.xpending_range(keys.commands, COMMANDS_GROUP, "-", "+", 10)
            return any(e["consumer"] == b"first" for e in entries) or None  # type: ignore[return-value]

        await wait_until(delivered_to_first)
    finally:
        first.stop()
        await asyncio.wait_for(task, 15)  # it does not wait for the other worker's scan
    job = jobs.parse(await client.get(keys.job("handed-1")))
    assert job is not None and job.state == "queued"
    assert await pending(client, keys.commands, COMMANDS_GROUP) == 1
    assert await client.xlen(keys.dlq) == 0

    second = SignalsService(s.model_copy(update={"consumer_name": "second"}))
    task = asyncio.create_task(second.run())
    try:
        await client.delete(keys.scan_lock)  # the other worker's scan ended

        async def finished() -> JobStatus | None:
            raw = await client.get(keys.job("handed-1"))
            job = JobStatus.model_validate_json(raw) if raw else None
            return job if job and job.state in ("done", "failed") else None

        job = await wait_until(finished)
        assert job.state == "done" and job.codes == 1
        assert await pending(client, keys.commands, COMMANDS_GROUP) == 0
        assert await client.xlen(keys.dlq) == 0
    finally:
        second.stop()
        await asyncio.wait_for(task, 15)


async def test_a_slow_scan_is_not_claimed_away_from_its_live_worker(
    settings: Settings, client: Redis, keys: Keys
) -> None:
    """A scan waiting for the lock longer than the claim idle time stays with its worker: it is
    neither re-run by the reclaimer nor dead-lettered as 'keeps failing'."""
    s = settings.model_copy(update={"claim_idle_ms": 300, "auto_calculate_signals": False})
    svc = SignalsService(s)
    task = asyncio.create_task(svc.run())
    try:
        await asyncio.wait_for(svc.runtime.ready.wait(), 30)  # its groups exist
        await seed(client, keys, "510300.SH", bars_for("510300.SH", golden_cross_closes(), "1d"),
                   publish_last=False)  # fmt: skip
        await client.set(keys.scan_lock, "another-worker", px=60_000)  # another worker is scanning
        cmd = Command(id="slow-1", type="calc_signals", issued_ts=int(time.time() * 1000))
        await client.xadd(keys.commands, encode(cmd))  # type: ignore[arg-type]
        deliveries = set()
        for _ in range(20):  # 2 s: over 6x the claim idle time
            await asyncio.sleep(0.1)
            entries = await client.xpending_range(keys.commands, COMMANDS_GROUP, "-", "+", 10)
            deliveries.update(e["times_delivered"] for e in entries)
        await client.delete(keys.scan_lock)
        assert deliveries == {1}  # delivered once, never claimed by a reclaimer

        async def finished() -> JobStatus | None:
            raw = await client.get(keys.job("slow-1"))
            job = JobStatus.model_validate_json(raw) if raw else None
            return job if job and job.state in ("done", "failed") else None

        job = await wait_until(finished)
        assert job.state == "done"
        assert await client.xlen(keys.dlq) == 0
        assert await pending(client, keys.commands, COMMANDS_GROUP) == 0
    finally:
        svc.stop()
        await asyncio.wait_for(task, 15)
