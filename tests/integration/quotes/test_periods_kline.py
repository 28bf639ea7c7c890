"""The new periods from the sim's seeded history to the user, against the real server: the gateway
process serves each of them on ``GET /api/kline/{code}?period=``, and the signals workers evaluate
the closed bars of the periods ``MARKETBUS_SIGNAL_PERIODS`` names (the others are acknowledged and
skipped)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from redis.asyncio import Redis

from marketbus import jobs
from marketbus.contracts import Bar, Command, JobStatus, Security
from marketbus.keys import SIGNALS_GROUP, Keys
from marketbus.server import free_port
from marketbus.sessions import shanghai_ms as sh
from marketbus.settings import Settings
from marketbus.trend import TS, TrendStore
from marketbus.wire import encode
from quotes.daystate import decode
from quotes.history import seed_history
from quotes.universe import load_universe, publish
from signals.service import SignalsService

NEW_PERIODS = ("15m", "30m", "60m", "1w", "1M")
START = sh(2024, 10, 9, 13, 0)  # Wednesday afternoon, the week after National Day
SH = dt.timezone(dt.timedelta(hours=8))


@pytest.fixture
def gateway_url(redis_url: str, keys: Keys, tmp_path: Path) -> Iterator[str]:
    """``python -m gateway`` on a free port, reading this test's keys."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETBUS_")}
    env |= {
        "MARKETBUS_REDIS_URL": redis_url,
        "MARKETBUS_KEY_PREFIX": keys.prefix,
        "MARKETBUS_PORT": str(port),
    }
    log_path = tmp_path / "gateway.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, log_path.read_text(errors="replace")[-2000:]
            try:
                if httpx.get(f"{url}/healthz", timeout=0.5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the gateway did not start"
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


async def test_the_kline_api_serves_every_new_period_of_the_seeded_history(
    client: Redis, keys: Keys, gateway_url: str
) -> None:
    universe = load_universe()[:3]
    await publish(client, keys, universe)
    store = TrendStore(client, keys)
    await seed_history(store, universe, 7, START)
    async with httpx.AsyncClient(base_url=gateway_url, timeout=10) as http:
        for item in universe:
            for period in NEW_PERIODS:
                r = await http.get(f"/api/kline/{item.code}", params={"period": period, "limit": 1000})
                assert r.status_code == 200, r.text
                body = r.json()
                assert body["period"] == period and body["code"] == item.code
                stored = await store.tail(item.code, period, 1000)
                served = [[b[f] for f in ("ts", "open", "high", "low", "close", "volume", "amount")]
                          for b in body["items"]]  # fmt: skip
                assert len(served) > 0 and np.array_equal(np.array(served), stored), period
                times = {dt.datetime.fromtimestamp(b["ts"] / 1000, SH) for b in body["items"]}
                if period == "60m":
                    assert {t.strftime("%H:%M") for t in times} == {"09:30", "10:30", "13:00", "14:00"}
                if period == "1w":  # stamped by each week's first trading day; the holiday week's
                    assert dt.datetime(2024, 9, 30, tzinfo=SH) in times  # is Monday 30 September
                    assert all(t.weekday() < 5 and t.hour == 0 for t in times)
            # the forming week and month (Tuesday the 8th) wait in the day state, not in the series
            state = decode(await client.hget(keys.daystate, item.code), item.code)  # type: ignore[arg-type]
            assert {p: b.ts for p, b in state.bars.items()} == {"1w": sh(2024, 10, 8), "1M": sh(2024, 10, 8)}
            assert sh(2024, 10, 8) not in (await store.tail(item.code, "1w", 1000))[:, TS]
        bad = await http.get(f"/api/kline/{universe[0].code}", params={"period": "2h"})
        assert bad.status_code == 422 and "period" in bad.text


# --- the streaming path: MARKETBUS_SIGNAL_PERIODS ------------------------------------------------


def golden_cross(code: str, period: str, n: int = 120) -> list[Bar]:
    """A slow decline, then a jump on the last bar: SMA5 crosses above SMA20 exactly there."""
    closes = np.round(np.linspace(12.0, 10.0, n), 2)
    closes[-1] = 11.5
    t0 = sh(2022, 1, 3)
    out = []
    for i, c in enumerate(closes):
        prev = closes[i - 1] if i else c
        out.append(Bar(code=code, period=period, ts=t0 + i * 7 * 86_400_000, open=float(prev),
                       high=float(max(prev, c)) + 0.01, low=float(min(prev, c)) - 0.01, close=float(c),
                       volume=10_000.0 + 100 * i, amount=float(c) * 10_000))  # fmt: skip
    return out


@pytest.fixture
async def signals_service(settings: Settings) -> AsyncIterator[SignalsService]:
    s = settings.model_copy(update={"auto_calculate_signals": False, "signal_periods": ("1w", "15m")})
    svc = SignalsService(s)
    task = asyncio.create_task(svc.run())
    await asyncio.wait_for(svc.runtime.ready.wait(), 30)
    yield svc
    svc.stop()
    await asyncio.wait_for(task, 15)


async def wait_until(predicate, within_s: float = 20.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        value = await predicate()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached in time")


async def test_only_the_configured_periods_stream_signals(
    signals_service: SignalsService, client: Redis, keys: Keys
) -> None:
    code = "510300.SH"
    sec = Security(code=code, name="沪深300ETF", market="ETF")
    await client.hset(keys.universe, code, sec.model_dump_json())
    sixty, week = golden_cross(code, "60m"), golden_cross(code, "1w")
    await TrendStore(client, keys).append([*sixty, *week])
    await client.xadd(keys.bars, encode(sixty[-1]))  # type: ignore[arg-type]  # not configured
    await client.xadd(keys.bars, encode(week[-1]))  # type: ignore[arg-type]

    async def week_signal() -> list[dict[str, object]]:
        entries = [json.loads(f[b"data"]) for _, f in await client.xrange(keys.signals)]
        return [s for s in entries if s["strategy"] == "ma_cross" and s["period"] == "1w"]

    async def all_acknowledged() -> bool:
        group = next(g for g in await client.xinfo_groups(keys.bars) if g["name"].decode() == SIGNALS_GROUP)
        return group["pending"] == 0 and group["lag"] == 0

    (found,) = await wait_until(week_signal)
    assert found["bar_ts"] == week[-1].ts and found["side"] == "BUY"
    await wait_until(all_acknowledged)  # the 60m bar, read before the week's, is acknowledged too
    periods = {json.loads(f[b"data"])["period"] for _, f in await client.xrange(keys.signals)}
    assert periods == {"1w"}
    assert signals_service.processor.stats.skipped == 1


async def test_a_scan_command_carries_any_period(
    signals_service: SignalsService, client: Redis, keys: Keys
) -> None:
    """``calc_signals`` for 60m, a period not streamed here: the scan reads that period's series."""
    code = "159915.SZ"
    sec = Security(code=code, name="创业板ETF", market="ETF")
    await client.hset(keys.universe, code, sec.model_dump_json())
    await TrendStore(client, keys).append(golden_cross(code, "60m"))
    cmd = Command(id="job-60m", type="calc_signals", period="60m", issued_ts=int(time.time() * 1000))
    await client.xadd(keys.commands, encode(cmd))  # type: ignore[arg-type]

    async def finished() -> JobStatus | None:
        job = jobs.parse(await client.get(keys.job("job-60m")))
        return job if job and job.state in ("done", "failed") else None

    job = await wait_until(finished)
    assert job.state == "done" and job.period == "60m" and job.codes == 1 and job.signals >= 1, job
    latest = await client.hget(keys.signals_latest, f"{code}|ma_cross|60m")
    assert latest is not None and json.loads(latest)["side"] == "BUY"


def test_an_unknown_signal_period_is_a_start_up_error(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETBUS_")}
    env |= {"MARKETBUS_REDIS_URL": "redis://127.0.0.1:9", "MARKETBUS_SIGNAL_PERIODS": "1d,2h"}
    done = subprocess.run([sys.executable, "-m", "signals"], env=env, capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)  # fmt: skip
    assert done.returncode != 0
    assert "signal_periods" in done.stderr and "unknown period '2h'" in done.stderr, done.stderr[-2000:]
    assert "known: 1m, 5m, 15m, 30m, 60m, 1d, 1w, 1M" in done.stderr
