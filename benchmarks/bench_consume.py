"""Consume: bars/s through the signals consumer vs a bare XREADGROUP COUNT 1000 + XACK loop and a
naive FastStream per-message subscriber; and the consume rate with 1 / 2 / 4 workers.

N bars are pre-loaded: every code's trend series holds 250 + K daily bars and {mb}:bars the last K
of each (as quotes leaves them). The consumer group is created at the end of the stream, the
workers (``python -m signals``, no schedule) are started and seen alive (heartbeat), then
``XGROUP SETID 0`` releases the backlog at t0; the figure is N / (time until the group's lag and
pending are both 0, polled every 10 ms). The workers write every signal the bars produce; each run
starts from a flushed server so no run is spared work by an earlier one's idempotency markers.
The backlog is released once the workers' history run (``signals.backfill``, measured by the
scorecard benchmark) has gone over the stored series: the figure is the streaming path of a worker
in its steady state, not the streaming path sharing the CPU with a start-up job.
"""

from __future__ import annotations

import subprocess
import time

import psutil
from redis.asyncio import Redis

from benchmarks import procs
from benchmarks.data import codes as make_codes
from benchmarks.data import daily_rows, load_market
from benchmarks.harness import Result
from marketbus import wire
from marketbus.contracts import Bar
from marketbus.keys import SIGNALS_GROUP, Keys
from marketbus.redis import connect

PREFIX = "bc"
HISTORY = 250


async def prepare(client: Redis, n_codes: int, extra: int) -> list[bytes]:
    """Flush, load the trend series and the universe, XADD the bars; their entry ids."""
    await client.flushall()
    keys = Keys(PREFIX)
    codes = make_codes(n_codes)
    rows = daily_rows(n_codes, HISTORY + extra, seed=21)
    await load_market(client, PREFIX, codes, rows)
    ids: list[bytes] = []
    order = [(k, j) for k in range(HISTORY, HISTORY + extra) for j in range(n_codes)]
    for start in range(0, len(order), 1000):
        pipe = client.pipeline(transaction=False)
        for k, j in order[start : start + 1000]:
            r = rows[j, k]
            bar = Bar(
                code=codes[j],
                period="1d",
                ts=int(r[0]),
                open=r[1],
                high=r[2],
                low=r[3],
                close=r[4],
                volume=r[5],
                amount=r[6],
            )
            pipe.xadd(keys.bars, wire.encode(bar), maxlen=100_000, approximate=True)  # type: ignore[arg-type]
        ids.extend(await pipe.execute())
    return ids


async def history_done(client: Redis, prefix: str, n_codes: int, period: str = "1d") -> None:
    """Wait until the workers' history run has marked every code's ``period`` series as run."""

    async def done() -> bool:
        return int(await client.hlen(Keys(prefix).backfill_done(period))) >= n_codes

    await procs.wait_until(done, 300, "the history run of the signals workers", every=0.1)


async def timed_drain(client: Redis, group: str, start_id: str, limit: float) -> float:
    """Move the group to ``start_id`` and time until it is drained."""
    t0 = time.monotonic()
    await client.xgroup_setid(Keys(PREFIX).bars, group, start_id)
    return await procs.drained(client, Keys(PREFIX).bars, group, limit) - t0


def cpu_s(proc: subprocess.Popen[bytes]) -> float:
    """CPU seconds (user + system) a process has used so far."""
    t = psutil.Process(proc.pid).cpu_times()
    return float(t.user + t.system)


async def signals_rate(
    client: Redis, url: str, n_codes: int, extra: int, workers: int
) -> tuple[float, float, float]:
    """(bars/s, RSS MiB of the first worker, worker CPU us per bar) for ``workers`` signals
    processes. The CPU figure holds still when other processes share the machine; bars/s not."""
    ids = await prepare(client, n_codes, extra)
    await client.xgroup_create(Keys(PREFIX).bars, SIGNALS_GROUP, id="$")
    procs_ = await procs.start_signals(client, url, PREFIX, workers)
    with procs.running(*procs_):
        await history_done(client, PREFIX, n_codes)
        cpu0 = sum(cpu_s(p) for p in procs_)
        seconds = await timed_drain(client, SIGNALS_GROUP, "0", limit=300)
        cpu = sum(cpu_s(p) for p in procs_) - cpu0
        rss = procs.rss_mb(procs_[0])
    return len(ids) / seconds, rss, cpu / len(ids) * 1e6


async def bare_rate(client: Redis, n: int) -> float:
    stream = Keys(PREFIX).bars
    await client.xgroup_create(stream, "bare", id="0")
    t0 = time.perf_counter()
    done = 0
    while done < n:
        resp = await client.xreadgroup("bare", "c", {stream: ">"}, count=1000)
        if not resp:
            break
        entries = resp[0][1]
        await client.xack(stream, "bare", *[i for i, _ in entries])
        done += len(entries)
    return done / (time.perf_counter() - t0)


async def naive_rate(client: Redis, url: str, ids: list[bytes], m: int) -> float:
    stream = Keys(PREFIX).bars
    await client.xgroup_create(stream, "naive", id="$")
    proc = procs.role("naive_consumer", {"url": url, "stream": stream, "group": "naive"})
    with procs.running(proc):
        await procs.read_line(proc, 60)
        seconds = await timed_drain(client, "naive", ids[-m - 1].decode(), limit=300)
    return m / seconds


async def run(url: str, quick: bool) -> list[Result]:
    n_codes, extra, naive_n = (1000, 3, 2000) if quick else (2000, 20, 10_000)
    counts = (1,) if quick else (1, 2, 4)
    client = connect(url)
    rates: dict[int, float] = {}
    cpu_per_bar: dict[int, float] = {}
    rss = 0.0
    for w in counts:
        rates[w], r, cpu_per_bar[w] = await signals_rate(client, url, n_codes, extra, w)
        rss = rss or r
    ids = await prepare(client, n_codes, extra)
    bare = await bare_rate(client, len(ids))
    await client.xgroup_destroy(Keys(PREFIX).bars, "bare")
    bare = max(bare, await bare_rate(client, len(ids)))
    naive = await naive_rate(client, url, ids, min(naive_n, len(ids) - 1))
    await client.flushall()
    await client.aclose()
    n = n_codes * extra
    out = [
        Result(
            "consume",
            f"signals consumer, 1 worker ({n:,} bars, signals written)",
            rates[1],
            "bars/s",
            baseline="bare XREADGROUP 1000 + XACK",
            baseline_value=bare,
        ),
        Result(
            "consume",
            "signals consumer, 1 worker",
            rates[1],
            "bars/s",
            baseline="naive FastStream per-message",
            baseline_value=naive,
        ),
        Result(
            "consume",
            "signals worker CPU per bar consumed, 1 worker",
            cpu_per_bar[1],
            "us",
            higher_is_better=False,
        ),
        Result("memory", "signals worker RSS after the consume run", rss, "MiB", higher_is_better=False),
    ]
    for w in counts:
        out.append(
            Result(
                "scaling",
                f"consume rate, {w} signals worker(s)",
                rates[w],
                "bars/s",
                baseline="1 worker",
                baseline_value=rates[1],
            )
        )
    return out
