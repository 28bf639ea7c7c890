"""A batch's ticks go to the ticks stream as one command (a server-side XADD loop): the entries
are those of one XADD per tick, in the batch's order, bounded by the stream's cap, and written
in the batch's MULTI/EXEC."""

from redis.asyncio import Redis

from marketbus import wire
from marketbus.contracts import Tick
from marketbus.keys import Keys
from marketbus.sessions import shanghai_ms as sh
from marketbus.streams import TICKS, Publisher
from quotes.feeds.base import make_tick

T0 = sh(2024, 6, 4, 9, 31)


def ticks(n: int) -> list[Tick]:
    return [make_tick("600000.SH", T0 + i, 10.0 + i % 7 * 0.01, 100.0 * i, 1000.0 * i) for i in range(n)]


async def test_many_ticks_in_one_command_are_the_entries_of_one_xadd_each(client: Redis, keys: Keys) -> None:
    batch = ticks(700)
    publisher = Publisher(TICKS, keys.ticks, 100_000)
    pipe = client.pipeline(transaction=True)
    publisher.add_many_encoded(pipe, [wire.payload(t) for t in batch[:400]])
    publisher.add_many_encoded(pipe, [wire.payload(t) for t in batch[400:]])
    assert await pipe.execute() == [400, 300]
    one_each = Publisher(TICKS, f"{keys.ticks}:one", 100_000)
    pipe = client.pipeline(transaction=True)
    for t in batch:
        one_each.add(pipe, t)
    await pipe.execute()
    many = await client.xrange(keys.ticks)
    single = await client.xrange(f"{keys.ticks}:one")
    assert [fields for _, fields in many] == [fields for _, fields in single]
    assert [wire.decode(Tick, fields) for _, fields in many] == batch


async def test_the_cap_bounds_the_stream(client: Redis, keys: Keys) -> None:
    batch = ticks(2000)
    publisher = Publisher(TICKS, keys.ticks, 100)
    pipe = client.pipeline(transaction=False)
    publisher.add_many_encoded(pipe, [wire.payload(t) for t in batch])
    await pipe.execute()
    length = await client.xlen(keys.ticks)
    assert 100 <= length < 400  # approximate trimming: whole nodes of entries
    ((_, last),) = await client.xrevrange(keys.ticks, count=1)
    assert wire.decode(Tick, last) == batch[-1]
