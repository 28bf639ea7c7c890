"""Provisional in-session signals against a real server and a real signals service: the scan on the
market clock, the forming daily bar, and the close (streaming path) confirming or withdrawing."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import time
from collections.abc import AsyncIterator

import numpy as np
import orjson
import pytest
from redis.asyncio import Redis

from marketbus.clock import wall_ms
from marketbus.contracts import Bar, Command, JobStatus, Security, Signal, signal_id
from marketbus.keys import SIGNALS_GROUP, Keys
from marketbus.sessions import day_start_ms, shanghai_ms, trading_days_before
from marketbus.settings import Settings
from marketbus.trend import TrendStore
from marketbus.wire import encode
from signals.service import SignalsService

DAY = dt.date(2026, 11, 27)  # a Friday; the wall clock of the test run is days later
D = day_start_ms(DAY)
AT_TEN = shanghai_ms(2026, 11, 27, 10, 0)
N = 120


def daily_bars(code: str, closes: np.ndarray, days: list[dt.date]) -> list[Bar]:
    out = []
    for i, (c, day) in enumerate(zip(closes, days, strict=True)):
        prev = closes[i - 1] if i else c
        out.append(
            Bar(
                code=code,
                period="1d",
                ts=day_start_ms(day),
                open=float(prev),
                high=float(max(prev, c)) + 0.01,
                low=float(min(prev, c)) - 0.01,
                close=float(c),
                volume=1e6 + 1e4 * i,
                amount=float(c) * 1e6,
            )
        )
    return out


def declining(n: int) -> np.ndarray:
    return np.round(np.linspace(12.0, 10.0, n), 2)


async def seed_code(client: Redis, keys: Keys, code: str, closes: np.ndarray, end: dt.date) -> list[Bar]:
    """Closed daily bars ending on ``end`` (inclusive), the last ones of ``closes``."""
    days = [*trading_days_before(end, len(closes) - 1), end]
    bars = daily_bars(code, closes, days)
    await client.hset(
        keys.universe, code, Security(code=code, name=f"ETF {code[:6]}", market="ETF").model_dump_json()
    )
    await TrendStore(client, keys).append(bars)
    return bars


async def put_snapshot(client: Redis, keys: Keys, code: str, price: float, ts: int) -> None:
    quote = {
        "code": code, "name": f"ETF {code[:6]}", "market": "ETF", "price": price, "ts": ts,
        "change_percent": None, "volume": 2e6, "amount": price * 2e6, "open": 10.0,
        "high": max(price, 10.0) + 0.01, "low": 9.99, "pre_close": 10.0, "turnover": None,
    }  # fmt: skip
    await client.hset(keys.snapshots, code, orjson.dumps(quote))


@contextlib.asynccontextmanager
async def market_clock(client: Redis, keys: Keys, at: int, speed: float = 0.0) -> AsyncIterator[None]:
    """Publish the market clock as the quotes service does (fresh every 0.2 s) while inside: at
    ``at``, running ``speed`` market ms per wall ms (0: standing still)."""
    w0 = wall_ms()

    async def once() -> None:
        wall = wall_ms()
        ts = at + int((wall - w0) * speed)
        await client.set(keys.market_clock, orjson.dumps({"ts": ts, "wall": wall, "speed": speed or 1}))

    async def publish() -> None:
        while True:
            await once()
            await asyncio.sleep(0.2)

    await once()
    task = asyncio.create_task(publish())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.fixture
async def service(settings: Settings) -> AsyncIterator[SignalsService]:
    s = settings.model_copy(update={"claim_idle_ms": 500, "auto_calculate_signals": False})
    svc = SignalsService(s)
    task = asyncio.create_task(svc.run())
    await asyncio.wait_for(svc.runtime.ready.wait(), 30)  # its groups exist: what a test adds is read
    yield svc
    svc.stop()
    await asyncio.wait_for(task, 15)


async def wait_until(predicate, within_s: float = 20.0):
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        value = await predicate()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached in time")


async def scan(client: Redis, keys: Keys, job_id: str) -> JobStatus:
    cmd = Command(id=job_id, type="calc_signals", period="1d", issued_ts=wall_ms(), source="schedule")
    await client.xadd(keys.commands, encode(cmd))  # type: ignore[arg-type]

    async def finished() -> JobStatus | None:
        raw = await client.get(keys.job(job_id))
        job = JobStatus.model_validate_json(raw) if raw else None
        return job if job and job.state in ("done", "failed") else None

    job = await wait_until(finished)
    assert job.state == "done", job.error
    return job


async def stream(client: Redis, keys: Keys) -> list[Signal]:
    return [Signal.model_validate_json(f[b"data"]) for _, f in await client.xrange(keys.signals)]


async def drained(client: Redis, keys: Keys) -> bool:
    info = await client.xinfo_groups(keys.bars)
    group = next(g for g in info if g["name"].decode() == SIGNALS_GROUP)
    return group["pending"] == 0 and group["lag"] == 0


async def close_day(client: Redis, keys: Keys, code: str, prev: Bar, close: float) -> Bar:
    """What the quotes service does at the close: the daily bar into the trend series, then on
    {mb}:bars."""
    bar = Bar(code=code, period="1d", ts=D, open=prev.close, high=max(prev.close, close) + 0.01,
              low=min(prev.close, close) - 0.01, close=close, volume=2e6, amount=close * 2e6)  # fmt: skip
    await TrendStore(client, keys).append([bar])
    await client.xadd(keys.bars, encode(bar))  # type: ignore[arg-type]
    return bar


def ma_cross(signals: list[Signal], code: str) -> list[Signal]:
    return [s for s in signals if s.code == code and s.strategy == "ma_cross"]


async def test_the_scan_answers_for_the_bar_closed_at_the_market_s_time(
    service: SignalsService, client: Redis, keys: Keys
) -> None:
    # the golden cross is on the 26th; the 27th is stored half-built (quotes stopped mid-day)
    closes = declining(N)
    closes[-1] = 11.5
    bars = await seed_code(client, keys, "510300.SH", closes, dt.date(2026, 11, 26))
    partial = Bar(code="510300.SH", period="1d", ts=D, open=11.5, high=11.6, low=11.4, close=11.45,
                  volume=1e5, amount=1.1e6)  # fmt: skip
    await TrendStore(client, keys).append([partial])
    async with market_clock(client, keys, AT_TEN):
        job = await scan(client, keys, "job-clock")
    found = [s for s in await stream(client, keys) if not s.provisional]
    assert job.codes == 1
    assert {s.bar_ts for s in found} == {bars[-1].ts}  # the 26th: the last bar closed at 10:00
    cross = ma_cross(found, "510300.SH")
    assert len(cross) == 1 and cross[0].side == "BUY" and cross[0].status is None


async def test_a_provisional_signal_is_confirmed_at_the_close(
    service: SignalsService, client: Redis, keys: Keys
) -> None:
    code = "510300.SH"
    bars = await seed_code(client, keys, code, declining(N - 1), dt.date(2026, 11, 26))
    await put_snapshot(client, keys, code, 11.5, AT_TEN)  # today's jump, still forming
    async with market_clock(client, keys, AT_TEN):
        job = await scan(client, keys, "job-in-session")
    prov = ma_cross(await stream(client, keys), code)
    assert len(prov) == 1, prov
    p = prov[0]
    assert p.provisional and p.status == "provisional" and p.side == "BUY" and p.bar_ts == D
    assert p.id == signal_id(code, "ma_cross", "1d", D, "provisional") and p.price == 11.5
    assert job.signals >= 1 and job.new_signals >= 1
    latest = await client.hget(keys.signals_latest, f"{code}|ma_cross|1d")
    assert latest is not None and json.loads(latest)["id"] == p.id

    # a second in-session scan finds it again and writes nothing new
    before = await client.xlen(keys.signals)
    async with market_clock(client, keys, AT_TEN + 20 * 60_000):
        again = await scan(client, keys, "job-in-session-2")
    assert again.new_signals == 0 and await client.xlen(keys.signals) == before

    closing = await close_day(client, keys, code, bars[-1], 11.5)  # the close gives the same cross

    async def confirmed() -> list[Signal]:
        return [s for s in ma_cross(await stream(client, keys), code) if s.status == "confirmed"]

    conf = (await wait_until(confirmed))[0]
    assert conf.id == signal_id(code, "ma_cross", "1d", D) and conf.confirms == p.id
    assert not conf.provisional and conf.side == "BUY" and conf.bar_ts == D
    assert not [s for s in await stream(client, keys) if s.status == "withdrawn" and s.strategy == "ma_cross"]
    latest = await client.hget(keys.signals_latest, f"{code}|ma_cross|1d")
    assert latest is not None and json.loads(latest)["id"] == conf.id

    # the closing bar redelivered, and the evening scan over the closed bar: nothing new
    await wait_until(lambda: drained(client, keys))
    before = await client.xlen(keys.signals)
    await client.xadd(keys.bars, encode(closing))  # type: ignore[arg-type]
    await wait_until(lambda: drained(client, keys))
    async with market_clock(client, keys, shanghai_ms(2026, 11, 27, 17, 30)):
        evening = await scan(client, keys, "job-evening")
    assert evening.new_signals == 0
    assert await client.xlen(keys.signals) == before


async def test_a_provisional_signal_the_close_does_not_give_is_withdrawn(
    service: SignalsService, client: Redis, keys: Keys
) -> None:
    code = "159915.SZ"
    bars = await seed_code(client, keys, code, declining(N - 1), dt.date(2026, 11, 26))
    await put_snapshot(client, keys, code, 11.5, AT_TEN)
    async with market_clock(client, keys, AT_TEN):
        await scan(client, keys, "job-prov")
    (p,) = ma_cross(await stream(client, keys), code)
    assert p.status == "provisional"

    await close_day(client, keys, code, bars[-1], 9.95)  # the jump faded: no cross at the close
    # another code closes the day before any provisional signal of it was written
    other = "588000.SH"
    other_bars = await seed_code(client, keys, other, declining(N - 1), dt.date(2026, 11, 26))
    await close_day(client, keys, other, other_bars[-1], 9.95)

    async def withdrawn() -> list[Signal]:
        return [s for s in ma_cross(await stream(client, keys), code) if s.status == "withdrawn"]

    w = (await wait_until(withdrawn))[0]
    assert w.withdraws == p.id and w.id == signal_id(code, "ma_cross", "1d", D, "withdrawn")
    assert w.side == "BUY" and w.bar_ts == D and w.price == 9.95 and "no signal" in w.reason
    assert not [s for s in ma_cross(await stream(client, keys), code) if not s.provisional]
    latest = await client.hget(keys.signals_latest, f"{code}|ma_cross|1d")
    assert latest is not None and json.loads(latest)["status"] == "withdrawn"

    # a scan that still reads the forming bar (a snapshot of the jump) after the bar has closed
    # writes no provisional signal, neither again nor for the first time
    await wait_until(lambda: drained(client, keys))
    await put_snapshot(client, keys, other, 11.5, AT_TEN)
    before = await client.xlen(keys.signals)
    async with market_clock(client, keys, shanghai_ms(2026, 11, 27, 14, 59)):
        late = await scan(client, keys, "job-late")
    assert late.new_signals == 0 and await client.xlen(keys.signals) == before
    assert late.signals > 0  # it did find them on the forming bars


async def test_the_schedule_fires_in_the_market_s_session_and_writes_provisional_signals(
    settings: Settings, client: Redis, keys: Keys
) -> None:
    """Under `marketbus up` the sim's clock runs 60x from a session in the past: the schedule's
    in-session slot comes at the market's 09:40, and its scan evaluates the forming bar."""
    code = "510300.SH"
    await seed_code(client, keys, code, declining(N - 1), dt.date(2026, 11, 26))
    await put_snapshot(client, keys, code, 11.5, shanghai_ms(2026, 11, 27, 9, 39))
    s = settings.model_copy(
        update={"auto_calculate_signals": True, "signal_schedule": "every 20m in session"}
    )
    async with market_clock(client, keys, shanghai_ms(2026, 11, 27, 9, 39, 30), speed=60):
        svc = SignalsService(s)
        task = asyncio.create_task(svc.run())
        try:

            async def provisional() -> list[Signal]:
                return [p for p in ma_cross(await stream(client, keys), code) if p.provisional]

            (p,) = await wait_until(provisional)
            assert p.status == "provisional" and p.bar_ts == D
            # the market's 09:40 slot fired (not one of the wall clock's)
            assert await client.exists(f"{keys.scheduler_state}:slot:{shanghai_ms(2026, 11, 27, 9, 40)}")

            async def scheduled_job_done() -> bool:
                last = await client.hget(keys.scheduler_state, "last_job_id")
                raw = await client.get(keys.job(last.decode())) if last else None
                return bool(raw) and JobStatus.model_validate_json(raw).state == "done"

            assert await wait_until(scheduled_job_done)
        finally:
            svc.stop()
            await asyncio.wait_for(task, 15)
