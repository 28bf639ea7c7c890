"""The shared stream reader in-process against the real server: one XREAD feeds every client, a
client that does not read overflows its own queue without holding the others back, and closing
the hub (the server's shutdown) wakes and closes every client."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from gateway import sse
from gateway.sse import QuoteHub, SignalHub
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
                ids.append(wire.text(entry))
            got: list[str] = []
            async with asyncio.timeout(5):
                while len(got) < 20:
                    await fast.wake.wait()
                    got.extend(eid for eid, _ in fast.drain())
            assert got == ids
            assert slow.overflowed
            assert [eid for eid, _ in slow.drain()] == ids[:3]
    finally:
        await hub.stop()


async def test_closing_the_hubs_closes_every_client_now_and_later(client: Redis, keys: Keys) -> None:
    signals = SignalHub(client, keys.signals, block_ms=100)
    quotes = QuoteHub(client, keys.ticks, keys.snapshots, rate=20, block_ms=100)
    for hub in (signals, quotes):
        hub.start()
    try:
        async with signals.subscribe(lambda _: True) as sig_sub, quotes.subscribe(None) as quote_sub:
            await signals.ready()
            await quotes.ready()
            assert not sig_sub.closed and not quote_sub.closed
            signals.close()
            quotes.close()
            assert sig_sub.closed and sig_sub.wake.is_set()
            assert quote_sub.closed and quote_sub.pending.wake.is_set()
            async with signals.subscribe(lambda _: True) as late:
                assert late.closed
    finally:
        await quotes.stop()
        await signals.stop()


async def test_a_closed_hub_makes_no_client_wait_for_its_reader(
    client: Redis, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sse, "READY_WAIT_SECONDS", 3600.0)  # a hub that waited would hang the test
    hub = SignalHub(client, keys.signals)  # never started: its reader never takes a position
    async with hub.subscribe(lambda _: True) as sub:
        hub.close()
        await hub.ready()
        assert sub.closed
