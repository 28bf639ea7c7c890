"""The shared stream reader in-process against the real server: one XREAD feeds every client, and a
client that does not read overflows its own queue without holding the others back."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from gateway.sse import SignalHub
from marketbus import wire
from marketbus.keys import Keys

from .conftest import T0, make_signal


async def test_slow_client_overflows_alone(client: Redis, keys: Keys) -> None:
    hub = SignalHub(client, keys.signals, block_ms=100)
    hub.start()
    try:
        async with (
            hub.subscribe(lambda _: True, maxsize=1000) as fast,
            hub.subscribe(lambda _: True, maxsize=3) as slow,
        ):
            await hub.ready()
            ids = []
            for i in range(20):
                entry = await client.xadd(keys.signals, wire.encode(make_signal("510300.SH", bar_ts=T0 + i)))  # type: ignore[arg-type]
                ids.append(entry.decode())
            got: list[str] = []
            async with asyncio.timeout(5):
                while len(got) < 20:
                    eid, _ = await fast.queue.get()
                    got.append(eid)
            assert got == ids
            assert slow.overflowed and slow.queue.qsize() == 3
            assert [slow.queue.get_nowait()[0] for _ in range(3)] == ids[:3]
    finally:
        await hub.stop()
