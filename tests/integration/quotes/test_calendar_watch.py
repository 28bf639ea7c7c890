"""The learned-holiday watch against the real server: a weekday whose 09:35 passes with only the
previous session's snapshots is recorded in Redis, installed, and the bars stop for it."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Iterator

import pytest
from redis.asyncio import Redis

from marketbus import calendar, sessions
from marketbus.keys import Keys
from marketbus.sessions import shanghai_ms as sh
from quotes.calendar_watch import watch

MONDAY = dt.date(2027, 1, 4)


@pytest.fixture(autouse=True)
def package_calendar_again() -> Iterator[None]:
    yield
    sessions.install_calendar(None)


async def wait_until(check: object) -> None:
    deadline = time.monotonic() + 30.0
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_a_stale_morning_is_learned_closed(client: Redis, keys: Keys) -> None:
    await calendar.load(client, keys, today=dt.date(2026, 12, 2))
    market = {"now": sh(2027, 1, 4, 9, 30)}
    stale = sh(2026, 12, 31, 15, 0)  # the provider keeps serving the last session's snapshot
    stop = asyncio.Event()
    task = asyncio.create_task(
        watch(
            client, keys, lambda: market["now"], lambda: stale, stop,
            answered_ms=lambda: market["now"], every_s=0.01,
        )
    )  # fmt: skip
    try:
        assert sessions.minute_bucket(sh(2027, 1, 4, 10)) is not None  # a weekday: taken as open
        market["now"] = sh(2027, 1, 4, 9, 36)
        await wait_until(lambda: not sessions.is_trading_day(MONDAY))
    finally:
        stop.set()
        learned = await asyncio.wait_for(task, 30)
    assert learned == [MONDAY]
    assert await client.hexists(keys.calendar, f"learned:{MONDAY}")
    assert sessions.minute_bucket(sh(2027, 1, 4, 10)) is None
    assert sessions.next_session_open(sh(2027, 1, 4, 10)) == sh(2027, 1, 5, 9, 30)
    sessions.install_calendar(None)  # another process starting now obeys it too
    await calendar.load(client, keys, today=MONDAY)
    assert not sessions.is_trading_day(MONDAY)


async def test_a_feed_that_does_not_answer_teaches_nothing(client: Redis, keys: Keys) -> None:
    await calendar.load(client, keys, today=dt.date(2026, 12, 2))
    stop = asyncio.Event()
    checks = {"n": 0}

    def now() -> int:
        checks["n"] += 1
        return sh(2027, 1, 4, 10)

    task = asyncio.create_task(
        watch(client, keys, now, lambda: None, stop, answered_ms=lambda: None, every_s=0.01)
    )
    await wait_until(lambda: checks["n"] >= 20)  # the rule was checked many times
    stop.set()
    assert await asyncio.wait_for(task, 30) == []
    assert sessions.is_trading_day(MONDAY)
    assert not await client.hexists(keys.calendar, f"learned:{MONDAY}")
