"""A deployment upgraded in place keeps its data: the keys named before the bus hash tag are adopted."""

from __future__ import annotations

from redis.asyncio import Redis

from marketbus.keys import Keys
from marketbus.layout import adopt_legacy_keys


async def test_old_keys_are_renamed_merged_or_kept_with_their_data(client: Redis, keys: Keys) -> None:
    p = keys.prefix
    await client.hset(f"{p}:daystate", mapping={"600000.SH": b"\x01\x02state"})
    await client.xadd(f"{p}:commands", {"data": "{}"})
    await client.xgroup_create(f"{p}:commands", "signals-commands", id="0")
    await client.set(f"{p}:job:abc", '{"state": "done"}')
    await client.hset(f"{p}:metrics", mapping={"ticks_accepted": 7, "bars_closed": 3})
    await client.hset(keys.metrics, "ticks_accepted", 9)  # another service counted first
    await client.xadd(f"{p}:dlq", {"data": "old"})
    await client.xadd(keys.dlq, {"data": "new"})  # a stream under both names: left as it is
    await client.set(f"{p}:trend:1m:600000.SH", b"x")  # trend series never moved

    adopted = await adopt_legacy_keys(client, keys)

    assert set(adopted) == {f"{p}:daystate", f"{p}:commands", f"{p}:job:abc", f"{p}:metrics"}
    assert await client.hget(keys.daystate, "600000.SH") == b"\x01\x02state"
    groups = await client.xinfo_groups(keys.commands)
    assert [g["name"] for g in groups] == [b"signals-commands"]  # the group came with its stream
    assert await client.get(keys.job("abc")) == b'{"state": "done"}'
    assert await client.hgetall(keys.metrics) == {b"ticks_accepted": b"9", b"bars_closed": b"3"}
    assert await client.xlen(f"{p}:dlq") == 1 and await client.xlen(keys.dlq) == 1
    assert await client.get(keys.trend("600000.SH", "1m")) == b"x"
    assert await client.exists(f"{p}:daystate", f"{p}:commands", f"{p}:job:abc", f"{p}:metrics") == 0
    assert await adopt_legacy_keys(client, keys) == []  # nothing left to adopt
    await client.set(f"{p}:poll", "{}")  # an old name written after the adoption: not looked for
    assert await adopt_legacy_keys(client, keys) == [] and await client.get(keys.layout) == b"2"
