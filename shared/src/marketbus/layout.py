"""Adopting the keys of the layout before the bus hash tag.

Until the Cluster layout (see :mod:`marketbus.keys`), the streams and the shared state were named
``<prefix>:ticks``, ``<prefix>:daystate``, ...; they are ``{<prefix>}:ticks``, ... now. A deployment
upgraded in place keeps its data: every service adopts the old keys at start, before it reads
them. A key is renamed when its new name is free (atomically, RENAMENX); when another service
already wrote the new name (a counter, a heartbeat), a hash's old fields are added where the new
one lacks them, and any other kind is left in place with a warning naming it. On a Cluster there
is nothing to adopt: the old layout never ran there (its transactions spanned slots). Once done,
``Keys.layout`` records it, and later starts skip the adoption (and its SCAN for old job keys).
"""

from __future__ import annotations

import logging
from typing import Any

from redis.asyncio.cluster import RedisCluster

from marketbus.contracts import PERIODS
from marketbus.keys import Keys
from marketbus.wire import text

log = logging.getLogger(__name__)

LAYOUT = "2"  # the bus hash tag (layout 1: no tag on the streams and shared state)

# the Keys properties whose names moved under the tag (the signals' keys always carried it)
MOVED = (
    "ticks", "bars", "commands", "dlq", "queries", "signals_history", "snapshots", "universe",
    "scheduler_state", "strategies", "metrics", "market_clock", "daystate", "calendar",
    "poll_stats", "heartbeats",
)  # fmt: skip


def legacy_names(keys: Keys) -> list[tuple[str, str]]:
    """(old name, new name) of every fixed-name key that moved under the tag."""
    names = [getattr(keys, name) for name in MOVED] + [keys.backfill_done(p) for p in PERIODS]
    return [(name.replace(keys.tag, keys.prefix, 1), name) for name in names]


async def adopt_legacy_keys(client: Any, keys: Keys) -> list[str]:
    """Rename (or merge) the old layout's keys into the new names; the old names adopted."""
    if isinstance(client, RedisCluster) or text(await client.get(keys.layout) or b"") == LAYOUT:
        return []  # adopted before (no SCAN of a large keyspace at every start)
    pairs = legacy_names(keys)
    async for raw in client.scan_iter(match=f"{keys.prefix}:job:*", count=1000):
        old = text(raw)
        pairs.append((old, keys.job(old.removeprefix(f"{keys.prefix}:job:"))))
    adopted: list[str] = []
    for old, new in pairs:
        if not await client.exists(old):
            continue
        if await client.renamenx(old, new):
            adopted.append(old)
        elif text(await client.type(old)) == "hash":
            fields = await client.hgetall(old)
            pipe = client.pipeline(transaction=True)
            for field, value in fields.items():
                pipe.hsetnx(new, field, value)
            pipe.delete(old)
            await pipe.execute()
            adopted.append(old)
        else:
            log.warning("kept %s as it is: %s was written before it could be renamed", old, new)
    await client.set(keys.layout, LAYOUT)
    if adopted:
        log.info(
            "adopted %d keys of the layout before the Cluster hash tag (%s, ...)", len(adopted), adopted[0]
        )
    return adopted
