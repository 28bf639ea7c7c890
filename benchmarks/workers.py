"""``python -m benchmarks.workers ROLE 'JSON'``: the processes the benchmarks start.

Each role runs its own loop with ``asyncio.run``, creates its clients inside it, and prints one
JSON object as the last line of stdout (``ready`` lines before it, where the harness waits).

Roles:

- ``ingest``: ticks through the quotes service's own batch path (``QuotesService.process``:
  validate, XADD ticks, snapshots, aggregate, trend + bars), or (``mode=bare``) the same ticks
  through a bare redis-py pipelined XADD loop.
- ``quotes_host``: the quotes service (``QuotesService.run``: the ingest loop, the bar timer,
  heartbeats) fed from a stream the tick generator writes (:class:`StreamFeed`).
- ``tick_gen`` / ``bar_gen`` / ``signal_gen``: paced load at a rate, publish time in the message.
- ``snapshot_watch`` / ``signal_watch``: see the effect and note when.
- ``sse_clients``: N concurrent SSE clients on ``/api/stream/signals``.
- ``naive_consumer``: a FastStream per-message subscriber (the baseline the design warns about).
- ``http_load``: an asyncio HTTP/1.1 keep-alive load generator (used only when ``wrk`` is absent).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import random
import signal
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import orjson
import psutil
from redis.asyncio import Redis

from benchmarks.data import codes as make_codes
from benchmarks.data import daily_rows
from marketbus import wire
from marketbus.contracts import Bar, Security, Signal, Tick, signal_id
from marketbus.keys import Keys
from marketbus.redis import connect
from marketbus.sessions import shanghai_ms
from marketbus.settings import load_settings
from marketbus.trend import TrendStore

OPEN_MS = shanghai_ms(2024, 6, 4, 9, 30)  # a Tuesday, a trading day
FEED_STREAM = "benchfeed"


def now_ms() -> float:
    return time.time() * 1000.0


def emit(obj: object) -> None:
    sys.stdout.write(orjson.dumps(obj).decode() + "\n")
    sys.stdout.flush()


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def listings(codes: list[str]) -> list[Any]:
    from quotes.universe import Listing, market_of

    return [Listing(Security(code=c, name=c, market=market_of(c)), 10.0) for c in codes]


def stop_event() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


# --- ingest ----------------------------------------------------------------------------------


def make_ticks(n: int, n_codes: int, seed: int = 5) -> list[Tick]:
    """Rounds of one tick per code every 3 market seconds (the full market's snapshot cadence),
    from 09:30 of a trading day; cumulative volume and amount, prices on the 0.01 grid."""
    from quotes.feeds.base import make_tick

    codes = make_codes(n_codes)
    rounds = -(-n // n_codes)
    rng = np.random.default_rng(seed)
    price = np.round(10 * np.exp(np.cumsum(rng.normal(0, 0.001, (rounds, n_codes)), axis=0)), 2)
    vol = np.cumsum(rng.integers(1, 50, (rounds, n_codes)) * 100, axis=0).astype(float)
    amount = np.round(vol * price, 2)
    out: list[Tick] = []
    step = 3000 // n_codes if n_codes <= 3000 else 0
    for r in range(rounds):
        base = OPEN_MS + r * 3000
        p, v, a = price[r].tolist(), vol[r].tolist(), amount[r].tolist()
        for i, code in enumerate(codes):
            out.append(make_tick(code, base + i * step, p[i], v[i], a[i], 10.0, max(10.0, p[i]),
                                 min(10.0, p[i]), 10.0))  # fmt: skip
            if len(out) == n:
                return out
    return out


async def ingest(p: dict[str, Any]) -> None:
    from quotes.service import QuotesService

    settings = load_settings(redis_url=p["url"], key_prefix=p["prefix"])
    ticks = make_ticks(p["ticks"], p["codes"])
    client = connect(p["url"])
    batch = settings.tick_batch
    out: dict[str, Any] = {"ticks": len(ticks), "batch": batch}
    if p["mode"] == "bare":
        fields = [wire.encode(t) for t in ticks]
        stream = f"{p['prefix']}:bare"
        t0 = time.perf_counter()
        for start in range(0, len(fields), batch):
            pipe = client.pipeline(transaction=False)
            for f in fields[start : start + batch]:
                pipe.xadd(stream, f, maxlen=settings.ticks_maxlen, approximate=True)  # type: ignore[arg-type]
            await pipe.execute()
        out["seconds"] = time.perf_counter() - t0
    else:
        # the service's start-up (quotes.startup.prepare, quotes.app.main) before the clock runs:
        # the calendar loaded and installed, the start-up objects frozen out of the GC
        from marketbus import calendar

        await calendar.load(client, Keys(settings.key_prefix), warn=False)
        service = QuotesService(client, settings, listings(make_codes(p["codes"])), NullFeed())
        gc.freeze()
        t0 = time.perf_counter()
        for start in range(0, len(ticks), batch):
            await service.process(ticks[start : start + batch])
        out["seconds"] = time.perf_counter() - t0
        out["accepted"] = service.stats.accepted
        out["rejected"] = service.stats.rejected
        out["bars"] = service.stats.bars
    out["rss_mb"] = rss_mb()
    await client.aclose()
    emit(out)


class NullFeed:
    name = "null"

    def now_ms(self) -> int:
        return 0

    async def aclose(self) -> None:
        return None


# --- the quotes service fed from a stream ----------------------------------------------------


class StreamFeed:
    """A feed reading tick batches the tick generator XADDs (``[code, ts, price, volume, amount,
    publish ms]`` rows); the publish time travels in ``turnover`` so it lands in the snapshot."""

    name = "bench-stream"

    def __init__(self, client: Redis, stream: str) -> None:
        self.client = client
        self.stream = stream
        self._now = 0

    def now_ms(self) -> int:
        return self._now

    def __aiter__(self) -> AsyncIterator[list[Tick]]:
        return self.batches()

    async def batches(self) -> AsyncIterator[list[Tick]]:
        from quotes.feeds.base import make_tick

        last: bytes | str = "0-0"
        while True:
            resp = await self.client.xread({self.stream: last}, block=100, count=100)
            ticks: list[Tick] = []
            for _, entries in resp:
                for entry_id, fields in entries:
                    last = entry_id
                    for c, ts, pr, v, a, pt in orjson.loads(fields[b"t"]):
                        ticks.append(make_tick(c, ts, pr, v, a, 10.0, None, None, 10.0, pt))
            if ticks:
                self._now = max(self._now, ticks[-1].ts)
            yield ticks

    async def aclose(self) -> None:
        return None


async def quotes_host(p: dict[str, Any]) -> None:
    from quotes.service import QuotesService

    settings = load_settings(redis_url=p["url"], key_prefix=p["prefix"])
    client = connect(p["url"])
    feed = StreamFeed(client, f"{p['prefix']}:{FEED_STREAM}")
    # the service's start-up (quotes.startup.prepare) loads the calendar before the first tick;
    # left to the first tick, building it (in a child process) would hold the loop for seconds
    from marketbus import calendar

    await calendar.load(client, Keys(settings.key_prefix), warn=False)
    service = QuotesService(client, settings, listings(make_codes(p["codes"])), feed)  # type: ignore[arg-type]
    stop = stop_event()
    emit("ready")
    await service.run(stop)
    out = {"accepted": service.stats.accepted, "bars": service.stats.bars, "rss_mb": rss_mb()}
    await client.aclose()
    emit(out)


async def paced(rate: float, seconds: float, per_step: int) -> AsyncIterator[int]:
    """Yield step numbers on an absolute schedule: ``per_step`` items each, ``rate`` items/s."""
    steps = int(rate * seconds / per_step)
    interval = per_step / rate
    t0 = time.perf_counter()
    for k in range(steps):
        delay = t0 + k * interval - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        yield k


async def tick_gen(p: dict[str, Any]) -> None:
    client = connect(p["url"])
    stream = f"{p['prefix']}:{FEED_STREAM}"
    codes = make_codes(p["codes"])
    rng = random.Random(3)
    price = dict.fromkeys(codes, 10.0)
    vol = dict.fromkeys(codes, 0.0)
    per = 20
    i = sent = 0
    t0 = time.perf_counter()
    async for _ in paced(p["rate"], p["seconds"], per):
        ts = p["start_ms"] + int((time.perf_counter() - t0) * 1000)
        rows = []
        for _ in range(per):
            c = codes[i % len(codes)]
            i += 1
            price[c] = round(max(1.0, price[c] + rng.choice((-0.01, 0.0, 0.01))), 2)
            vol[c] += 100 * rng.randint(1, 20)
            rows.append([c, ts, price[c], vol[c], round(vol[c] * price[c], 2), 0.0])
        pt = now_ms()
        for r in rows:
            r[5] = pt
        await client.xadd(stream, {"t": orjson.dumps(rows)}, maxlen=100_000, approximate=True)
        sent += len(rows)
    await client.aclose()
    emit({"sent": sent})


async def snapshot_watch(p: dict[str, Any]) -> None:
    """Poll the snapshots of a sample of codes; a new ``ts`` is one observation."""
    client = connect(p["url"])
    key = Keys(p["prefix"]).snapshots
    sample = p["sample"]
    seen: dict[str, int] = {}
    lat: list[tuple[float, float]] = []
    emit("ready")
    deadline = time.perf_counter() + p["seconds"]
    while time.perf_counter() < deadline:
        raws = await client.hmget(key, sample)
        t = now_ms()
        for code, raw in zip(sample, raws, strict=True):
            if raw is None:
                continue
            q = orjson.loads(raw)
            if seen.get(code) != q["ts"]:
                seen[code] = q["ts"]
                if q.get("turnover"):
                    lat.append((q["turnover"], t - q["turnover"]))
        await asyncio.sleep(0.001)
    await client.aclose()
    emit({"latencies": lat})


# --- bars -> signals ------------------------------------------------------------------------


async def bar_gen(p: dict[str, Any]) -> None:
    """Publish bars H.. of every code at ``rate``, as the quotes service does: trend series
    append then XADD on {mb}:bars, in one pipeline per step. Reports (code, bar ts, publish ms)."""
    client = connect(p["url"])
    keys = Keys(p["prefix"])
    trend = TrendStore(client, keys, max_bars=500)
    codes = make_codes(p["codes"])
    hist, extra = p["history"], p["extra"]
    rows = daily_rows(len(codes), hist + extra, seed=p["seed"])
    order = [(k, j) for k in range(hist, hist + extra) for j in range(len(codes))]
    per = 20
    published: list[tuple[str, int, float]] = []
    pos = 0
    async for _ in paced(p["rate"], p["seconds"], per):
        pipe = client.pipeline(transaction=False)
        step = order[pos : pos + per]
        pos += per
        if not step:
            break
        batch = []
        for k, j in step:
            r = rows[j, k]
            bar = Bar(code=codes[j], period="1d", ts=int(r[0]), open=r[1], high=r[2], low=r[3],
                      close=r[4], volume=r[5], amount=r[6])  # fmt: skip
            trend.append_in(pipe, bar)
            pipe.xadd(keys.bars, wire.encode(bar), maxlen=100_000, approximate=True)  # type: ignore[arg-type]
            batch.append((bar.code, bar.ts))
        pt = now_ms()
        await pipe.execute()
        published.extend((c, ts, pt) for c, ts in batch)
    await client.aclose()
    emit({"published": published})


async def signal_watch(p: dict[str, Any]) -> None:
    """XREAD BLOCK on the signals stream; the first signal of each (code, bar) and when."""
    client = connect(p["url"])
    stream = Keys(p["prefix"]).signals
    last: bytes | str = "0-0"
    tail = await client.xrevrange(stream, count=1)
    if tail:
        last = tail[0][0]
    first: dict[tuple[str, int], float] = {}
    count = 0
    emit("ready")
    deadline = time.perf_counter() + p["seconds"]
    while time.perf_counter() < deadline:
        resp = await client.xread({stream: last}, block=200, count=1000)
        t = now_ms()
        for _, entries in resp:
            for entry_id, fields in entries:
                last = entry_id
                count += 1
                s = orjson.loads(fields[b"data"])
                first.setdefault((s["code"], s["bar_ts"]), t)
    await client.aclose()
    emit({"signals": count, "seen": [[c, ts, t] for (c, ts), t in first.items()]})


async def signal_gen(p: dict[str, Any]) -> None:
    """Write ``count`` signals at ``rate``, each with ``created_ts`` = its write time."""
    client = connect(p["url"])
    stream = Keys(p["prefix"]).signals
    sent = 0
    async for k in paced(p["rate"], p["count"] / p["rate"], 1):
        ts = int(now_ms())
        sig = Signal(
            id=signal_id("600000.SH", "bench", "1d", k), code="600000.SH", name="bench",
            market="SH主板", strategy="bench", strategy_name="bench", side="BUY", price=10.0,
            period="1d", bar_ts=k, confidence=0.5, volume_ratio=None, change_percent=None,
            reason="benchmark", created_ts=ts,
        )  # fmt: skip
        await client.xadd(stream, wire.encode(sig), maxlen=50_000, approximate=True)  # type: ignore[arg-type]
        sent += 1
    await client.aclose()
    emit({"sent": sent})


# --- SSE clients -----------------------------------------------------------------------------


async def sse_clients(p: dict[str, Any]) -> None:
    host, port, n, expect = "127.0.0.1", p["port"], p["clients"], p["expect"]
    counts = [0] * n
    lat: list[float] = []
    ready = 0
    all_ready = asyncio.Event()

    async def one(i: int) -> None:
        nonlocal ready
        reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
        writer.write(b"GET /api/stream/signals HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n")
        await writer.drain()
        try:
            while counts[i] < expect:
                line = await reader.readline()
                if not line:
                    return
                if line.startswith(b"data: "):
                    t = now_ms()
                    counts[i] += 1
                    lat.append(t - orjson.loads(line[6:])["created_ts"])
                elif line.startswith(b"retry:"):
                    ready += 1
                    if ready == n:
                        all_ready.set()
        finally:
            writer.close()

    tasks = [asyncio.create_task(one(i)) for i in range(n)]
    await asyncio.wait_for(all_ready.wait(), 30)
    emit("ready")
    await asyncio.wait(tasks, timeout=p["timeout"])
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    lat.sort()
    emit(
        {
            "clients": n,
            "min_events": min(counts),
            "complete": sum(1 for c in counts if c >= expect),
            "samples": len(lat),
            "p50": lat[len(lat) // 2] if lat else None,
            "p99": lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else None,
            "max": lat[-1] if lat else None,
        }
    )


# --- naive FastStream per-message consumer ---------------------------------------------------


async def naive_consumer(p: dict[str, Any]) -> None:
    from faststream.middlewares import AckPolicy
    from faststream.redis import RedisBroker, RedisStreamMessage, StreamSub

    broker = RedisBroker(p["url"], logger=None)
    sub = StreamSub(p["stream"], group=p["group"], consumer="naive", polling_interval=100)
    done = 0

    @broker.subscriber(stream=sub, ack_policy=AckPolicy.ACK)
    async def handle(msg: RedisStreamMessage) -> None:
        nonlocal done
        wire.decode(Bar, msg.raw_message["data"])
        done += 1

    stop = stop_event()
    await broker.start()
    emit("ready")
    await stop.wait()
    await broker.stop()
    emit({"handled": done, "rss_mb": rss_mb()})


# --- HTTP load (fallback when wrk is missing) ------------------------------------------------


async def http_load(p: dict[str, Any]) -> None:
    host, port, paths = "127.0.0.1", p["port"], [x.encode() for x in p["paths"]]
    lat: list[float] = []
    errors = 0
    deadline = time.perf_counter() + p["seconds"]

    async def conn(i: int) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, port)
        k = i
        while time.perf_counter() < deadline:
            path = paths[k % len(paths)]
            k += 1
            t0 = time.perf_counter()
            writer.write(b"GET " + path + b" HTTP/1.1\r\nHost: bench\r\n\r\n")
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            lat.append((time.perf_counter() - t0) * 1000)
            if not head.startswith(b"HTTP/1.1 200"):
                errors += 1
        writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(conn(i) for i in range(p["connections"])))
    elapsed = time.perf_counter() - t0
    lat.sort()
    emit(
        {
            "rps": len(lat) / elapsed,
            "p50": lat[len(lat) // 2],
            "p99": lat[int(len(lat) * 0.99)],
            "errors": errors,
            "cpu_s": sum(psutil.Process().cpu_times()[:2]),
        }
    )


ROLES = {
    "ingest": ingest,
    "quotes_host": quotes_host,
    "tick_gen": tick_gen,
    "snapshot_watch": snapshot_watch,
    "bar_gen": bar_gen,
    "signal_watch": signal_watch,
    "signal_gen": signal_gen,
    "sse_clients": sse_clients,
    "naive_consumer": naive_consumer,
    "http_load": http_load,
}


def main() -> None:
    name, params = sys.argv[1], orjson.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(ROLES[name](params))


if __name__ == "__main__":
    main()
