"""The query asker against a real server: a question beyond the ones allowed in flight is refused at
once, and the one waiting still gets its answer."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from marketbus import queries, streams
from marketbus.clock import wall_ms
from marketbus.contracts import EvaluateItem, Query
from marketbus.keys import Keys
from marketbus.queries import Asker, QueryBusy, QueryReply
from marketbus.redis import connect
from marketbus.settings import Settings
from marketbus.wire import decode


async def test_a_question_beyond_the_limit_is_refused_at_once(
    client: Redis, keys: Keys, settings: Settings, redis_url: str
) -> None:
    waiter = connect(redis_url, max_connections=1)
    publisher = streams.Publisher.of(streams.QUERIES, keys, settings, client)
    asker = Asker(publisher, waiter, keys, timeout_s=30.0, max_waiting=1)
    try:
        first = asyncio.create_task(asker.evaluate([EvaluateItem(code="600519.SH", strategy="ma_cross")]))
        # the first question is published (its asker now waits for the answer)
        ((_, ((_, fields),)),) = await client.xread({keys.queries: "0"}, count=1, block=20_000)
        try:
            await asker.evaluate([EvaluateItem(code="000001.SZ", strategy="ma_cross")])
        except QueryBusy as exc:
            assert "already waiting" in str(exc)
        else:
            raise AssertionError("a second question was let through")
        assert await client.xlen(keys.queries) == 1  # the refused one was never published
        query = decode(Query, fields)  # answered as a signals worker does: not disturbed
        pipe = client.pipeline(transaction=True)
        queries.answer(
            pipe, query, QueryReply(query_id=query.id, status="rejected", error="test", answered_ts=wall_ms())
        )
        await pipe.execute()
        try:
            await first
        except queries.QueryRejected as exc:
            assert str(exc) == "test"
        else:
            raise AssertionError("the first question's answer was lost")
        assert asker.waiting == 0
    finally:
        await waiter.aclose()
