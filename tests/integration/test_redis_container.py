"""The same Lua scripts and stream commands against a real Redis in a container (testcontainers).

Runs when a Docker engine answers; the build machines have none, so there it is skipped with the
reason. The rest of the suite uses the embedded valkey-server (or MARKETBUS_TEST_REDIS_URL).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from redis.asyncio import Redis

from marketbus.contracts import Bar, Signal, signal_id
from marketbus.keys import SIGNALS_GROUP, Keys
from marketbus.trend import TS, TrendStore


def docker_engine() -> str | None:
    """None when an engine answers, else why not."""
    try:
        import docker

        docker.from_env(timeout=3).ping()
    except Exception as exc:  # no socket, no permission, engine down: all mean "no engine"
        return f"no Docker engine answers ({type(exc).__name__}: {str(exc)[:120]})"
    return None


@pytest.fixture(scope="module")
def container_url() -> Iterator[str]:
    reason = docker_engine()
    if reason:
        pytest.skip(reason)
    from testcontainers.redis import RedisContainer

    with RedisContainer("redis:7.4-alpine") as redis:
        host = redis.get_container_host_ip()
        port = redis.get_exposed_port(6379)
        yield f"redis://{host}:{port}/0"


async def test_trend_signals_and_groups_work_on_real_redis(container_url: str) -> None:
    from signals.store import SignalStore

    client = Redis.from_url(container_url)
    keys = Keys("tc")
    try:
        store = TrendStore(client, keys, max_bars=250)
        bar = Bar(code="510300.SH", period="1m", ts=60_000, open=1, high=1, low=1, close=1,
                  volume=1, amount=1)  # fmt: skip
        assert await store.append([bar, bar]) == [1, 2]
        assert (await store.tail("510300.SH", "1m", 5))[:, TS].tolist() == [60_000]
        sig = Signal(
            id=signal_id("510300.SH", "ma_cross", "1m", 60_000), code="510300.SH", name="沪深300ETF",
            market="ETF", strategy="ma_cross", strategy_name="均线金叉", side="BUY", price=1.0,
            period="1m", bar_ts=60_000, confidence=0.5, volume_ratio=1.0, change_percent=0.0,
            reason="test", created_ts=0,
        )  # fmt: skip
        signals = SignalStore(client, keys, maxlen=100)
        assert await signals.write([sig]) == 1
        assert await signals.write([sig]) == 0
        await client.xgroup_create(keys.bars, SIGNALS_GROUP, id="0", mkstream=True)
        assert any(g["name"] == SIGNALS_GROUP.encode() for g in await client.xinfo_groups(keys.bars))
    finally:
        await client.aclose()
