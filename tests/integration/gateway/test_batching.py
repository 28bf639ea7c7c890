"""Concurrent reads of one hash become one HMGET per loop turn; each caller gets its own field."""

import asyncio

import pytest
from redis.asyncio import Redis

from gateway.batching import HashFieldLoader


async def hmget_calls(client: Redis) -> int:
    stats = await client.info("commandstats")
    return int(stats.get("cmdstat_hmget", {}).get("calls", 0))


async def test_concurrent_gets_share_one_hmget(client: Redis, prefix: str) -> None:
    key = f"{prefix}:h"
    await client.hset(key, mapping={"a": b"1", "b": b"2"})
    loader = HashFieldLoader(client, key)
    before = await hmget_calls(client)
    got = await asyncio.gather(*(loader.get(f) for f in ["a", "b", "a", "zz"]))
    assert got == [b"1", b"2", b"1", None]
    assert await hmget_calls(client) == before + 1
    await client.hset(key, "b", b"3")
    assert await loader.get("b") == b"3"  # a later turn reads again: nothing is cached
    assert await hmget_calls(client) == before + 2


async def test_an_error_reaches_every_waiter(prefix: str) -> None:
    dead = Redis(port=1, socket_connect_timeout=0.2)  # nothing listens there
    loader = HashFieldLoader(dead, f"{prefix}:h")
    results = await asyncio.gather(loader.get("a"), loader.get("b"), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) or "Connect" in type(r).__name__ for r in results)
    with pytest.raises(Exception, match=r"(?i)connect"):
        await loader.get("c")
    await dead.aclose()
