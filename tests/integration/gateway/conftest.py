"""The gateway as a real process (`python -m gateway`) against the session's real server.

One gateway per test module (its own key prefix); each module seeds what it reads, by writing the
keys the quotes and signals services write.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import redis
from redis.asyncio import Redis

from marketbus import wire
from marketbus.contracts import Bar, Period, Quote, Security, Signal, signal_id
from marketbus.keys import SIGNALS_GROUP, Keys
from marketbus.server import free_port
from marketbus.sessions import PERIOD_MS
from marketbus.trend import TrendStore

TOKEN = "test-token-0123456789"
T0 = 1_700_000_000_000
DAY = 86_400_000


@dataclass
class Gateway:
    url: str
    keys: Keys
    redis_url: str
    proc: subprocess.Popen[bytes]
    log_path: str

    def client(self, **kw: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10.0, **kw)  # type: ignore[arg-type]

    def log(self) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()


def start_gateway(
    redis_url: str,
    prefix: str,
    tmp: str,
    token: str | None = TOKEN,
    args: tuple[str, ...] = (),
    **settings: str,
) -> Gateway:
    """``python -m gateway *args`` with its settings from the environment (``settings``: more of
    them, by field name: ``ready_max_lag="2"`` is MARKETBUS_READY_MAX_LAG=2)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETBUS_")}
    env.update(
        MARKETBUS_REDIS_URL=redis_url,
        MARKETBUS_KEY_PREFIX=prefix,
        MARKETBUS_PORT=str(port),
        MARKETBUS_SSE_QUOTE_RATE="20",
    )
    env.update({f"MARKETBUS_{name.upper()}": value for name, value in settings.items()})
    if token is not None:
        env["MARKETBUS_API_TOKEN"] = token
    log_path = os.path.join(tmp, f"gateway-{prefix}.log")
    log = open(log_path, "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", *args], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp
    )
    gw = Gateway(f"http://127.0.0.1:{port}", Keys(prefix), redis_url, proc, log_path)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gateway exited: {gw.log()[-2000:]}")
        try:
            if httpx.get(f"{gw.url}/healthz", timeout=0.5).status_code == 200:
                return gw
        except httpx.TransportError:
            time.sleep(0.05)
    stop_gateway(gw)
    raise RuntimeError(f"gateway did not start: {gw.log()[-2000:]}")


def stop_gateway(gw: Gateway) -> None:
    gw.proc.terminate()
    try:
        gw.proc.wait(10)
    except subprocess.TimeoutExpired:
        gw.proc.kill()
        gw.proc.wait(5)


@pytest.fixture(scope="module")
def gw_prefix() -> str:
    return f"g{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def gateway(redis_url: str, gw_prefix: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    gw = start_gateway(redis_url, gw_prefix, str(tmp_path_factory.mktemp("gw")))
    try:
        yield gw
    finally:
        stop_gateway(gw)


@pytest.fixture(scope="module")
def sync_redis(redis_url: str) -> Iterator[redis.Redis]:
    r = redis.Redis.from_url(redis_url)
    try:
        yield r
    finally:
        r.close()


# --- seeding ----------------------------------------------------------------------------------
SECURITIES = [
    Security(code="510300.SH", name="沪深300ETF", market="ETF"),
    Security(code="159915.SZ", name="创业板ETF", market="ETF"),
    Security(code="518880.SH", name="黄金ETF", market="ETF"),
    Security(code="600519.SH", name="贵州茅台", market="SH主板"),
    Security(code="300750.SZ", name="宁德时代", market="创业板"),
    Security(code="600234.SH", name="ST科创", market="SH主板"),
]


def make_quote(sec: Security, price: float, ts: int = T0) -> Quote:
    return Quote(
        code=sec.code,
        name=sec.name,
        market=sec.market,
        price=price,
        change_percent=1.5,
        volume=1e6,
        amount=4e6,
        open=price * 0.99,
        high=price * 1.01,
        low=price * 0.98,
        pre_close=price / 1.015,
        ts=ts,
    )


def make_signal(
    code: str,
    strategy: str = "ma_cross",
    side: str = "BUY",
    bar_ts: int = T0,
    confidence: float = 0.5,
    created_ts: int | None = None,
) -> Signal:
    sec = next(s for s in SECURITIES if s.code == code)
    return Signal(
        id=signal_id(code, strategy, "1d", bar_ts),
        code=code,
        name=sec.name,
        market=sec.market,
        strategy=strategy,
        strategy_name=strategy,
        side=side,  # type: ignore[arg-type]
        price=10.0,
        period="1d",
        bar_ts=bar_ts,
        confidence=confidence,
        volume_ratio=1.2,
        change_percent=2.0,
        reason="test",
        created_ts=created_ts if created_ts is not None else bar_ts + 1000,
    )


def seed_market(r: redis.Redis, keys: Keys) -> None:
    r.hset(keys.universe, mapping={s.code: s.model_dump_json() for s in SECURITIES})
    r.hset(
        keys.snapshots,
        mapping={s.code: make_quote(s, 3.0 + i).model_dump_json() for i, s in enumerate(SECURITIES)},
    )


def add_signal(r: redis.Redis, keys: Keys, sig: Signal) -> str:
    """What the signals service writes for a signal: its stream entry and the latest per key."""
    entry = r.xadd(keys.signals, wire.encode(sig))  # type: ignore[arg-type]
    r.hset(keys.signals_latest, f"{sig.code}|{sig.strategy}|{sig.period}", sig.model_dump_json())
    return wire.text(entry)


def seed_bars(redis_url: str, keys: Keys, code: str, period: Period, n: int) -> None:
    step = PERIOD_MS[period]
    bars = [
        Bar(
            code=code,
            period=period,
            ts=T0 + i * step,
            open=10 + i,
            high=11 + i,
            low=9 + i,
            close=10.5 + i,
            volume=1000 + i,
            amount=10_000 + i,
        )
        for i in range(n)
    ]

    async def run() -> None:
        client = Redis.from_url(redis_url)
        try:
            await TrendStore(client, keys).append(bars)
        finally:
            await client.aclose()

    asyncio.run(run())


def create_signals_group(r: redis.Redis, keys: Keys) -> None:
    r.xgroup_create(keys.bars, SIGNALS_GROUP, id="0", mkstream=True)
