"""A signals worker killed with SIGKILL while bars flow: a live worker claims its pending bars
(XAUTOCLAIM after MARKETBUS_CLAIM_IDLE_MS) and, in the end, every bar produced exactly the signals
its window defines: none missing, none twice.

The expected set is computed here, independently of the workers, by evaluating each published
bar's window (from the final trend series) with ``signals.evaluate.evaluate_windows``.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections import Counter

import pytest
from redis.asyncio import Redis

from marketbus.keys import SIGNALS_GROUP, Keys

from ._support import (
    Procs,
    expected_signal_ids,
    group_drained,
    group_info,
    publish_bars,
    random_walk_bars,
    signal_ids,
    wait_for,
)

pytestmark = pytest.mark.slow

CODES = [f"{600000 + i:06d}.SH" for i in range(30)]
HISTORY = 260  # bars already in the trend series before the run
LIVE = 80  # bars per code published while the workers run


async def pending_of(client: Redis, keys: Keys, consumer: str) -> int:
    rows = await client.xpending_range(keys.bars, SIGNALS_GROUP, "-", "+", 10_000, consumername=consumer)
    return len(rows)


async def test_a_killed_workers_pending_bars_are_claimed_and_signalled_exactly_once(
    procs: Procs, redis_url: str, prefix: str, keys: Keys, client: Redis
) -> None:
    series = {c: random_walk_bars(c, HISTORY + LIVE, seed=i) for i, c in enumerate(CODES)}
    await publish_bars(client, keys, [b for c in CODES for b in series[c][:HISTORY]])
    await client.delete(keys.bars)  # history is in the trend series only, not on the stream

    env = {
        "MARKETBUS_CLAIM_IDLE_MS": "1000",
        "MARKETBUS_BATCH_SIZE": "10",
        "MARKETBUS_AUTO_CALCULATE_SIGNALS": "false",
    }
    victim = procs.start(
        "signals", url=redis_url, prefix=prefix, name="victim", MARKETBUS_CONSUMER_NAME="victim", **env
    )
    survivor = procs.start(
        "signals", url=redis_url, prefix=prefix, name="survivor", MARKETBUS_CONSUMER_NAME="survivor", **env
    )

    async def both_joined() -> bool:
        g = await group_info(client, keys.bars, SIGNALS_GROUP)
        return g is not None and g["consumers"] == 2

    await wait_for(both_joined, 30, "both workers in the group")

    live = [series[c][HISTORY + i] for i in range(LIVE) for c in CODES]  # round-robin over codes
    killed_with = 0

    async def publisher() -> None:
        for start in range(0, len(live), len(CODES)):
            await publish_bars(client, keys, live[start : start + len(CODES)])
            await asyncio.sleep(0.02)

    pub = asyncio.create_task(publisher())
    # freeze the victim at a moment it holds delivered-but-unacknowledged bars, then kill it
    while killed_with == 0:
        assert not pub.done(), "all bars were published before the victim held any pending"
        if await pending_of(client, keys, "victim"):
            os.kill(victim.proc.pid, signal.SIGSTOP)
            held = await pending_of(client, keys, "victim")
            if held:
                os.kill(victim.proc.pid, signal.SIGKILL)
                victim.proc.wait()
                killed_with = held
            else:
                os.kill(victim.proc.pid, signal.SIGCONT)
        await asyncio.sleep(0.005)
    await pub

    # the survivor claims the dead worker's entries once idle for CLAIM_IDLE_MS, and drains the rest
    await wait_for(lambda: group_drained(client, keys.bars, SIGNALS_GROUP), 60, "the group to drain")
    assert await pending_of(client, keys, "victim") == 0
    assert survivor.alive, survivor.log()[-3000:]

    expected = await expected_signal_ids(client, keys, live)
    got = await signal_ids(client, keys)
    twice = [i for i, n in Counter(got).items() if n > 1]
    assert not twice, f"{len(twice)} signal(s) written twice"
    missing, extra = expected - set(got), set(got) - expected
    assert not missing and not extra, (
        f"victim held {killed_with} bars at SIGKILL; {len(missing)} signal(s) missing, "
        f"{len(extra)} unexpected, of {len(expected)} expected"
    )
    assert len(expected) > 50, "too few signals for the test to mean anything"
    code, _ = survivor.terminate()
    assert code == 0, survivor.log()[-3000:]
