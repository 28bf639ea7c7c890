"""Latency under a steady load: tick -> snapshot at 2,000 ticks/s, bar -> signal at 2,000 bars/s.

Every party is its own process: the generator (timestamps in the messages), the service, and the
watcher that sees the effect. Latency = when the watcher saw the effect minus publish time (same
machine, same wall clock).

- tick -> snapshot: the quotes service (``QuotesService.run``: ingest loop, bar timer, heartbeat)
  fed from a stream the tick generator XADDs 20 ticks to every 10 ms (the publish time travels in
  ``turnover``); 500 codes at real-time market speed, crossing a minute boundary (500 1m bars
  close mid-run). The watcher polls the snapshots of 50 codes every millisecond. The figure
  includes the feed hop (XADD -> XREAD), as a real provider's network would.
- bar -> signal: ``python -m signals``; the generator appends each bar to its trend series and
  XADDs it to {mb}:bars in one pipeline (what quotes does), 20 bars every 10 ms; the watcher
  XREAD BLOCKs on {mb}:signals. Only bars that produce a signal give a sample. The load starts once
  the worker's history run over the stored series is done (steady state, as in bench_consume).
- the minute-close burst: the whole market's bars closing at one minute (10:30: the 1m, 5m, 15m,
  30m and 60m bars of 6,500 codes, 32,500 bars; 1,000 codes in quick mode), appended to the trend
  series and XADDed at once in pipelines of 1,000 as fast as the benchmark process can, one signals
  worker; the figure is the latency of the slowest bar of the burst (its publish -> its first
  signal seen), and when the last signal of the burst was seen after the last bar was published.
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks import procs
from benchmarks.bench_consume import history_done
from benchmarks.data import codes as make_codes
from benchmarks.data import daily_rows, load_market
from benchmarks.harness import Result
from benchmarks.workers import OPEN_MS
from marketbus import wire
from marketbus.contracts import Bar
from marketbus.keys import SIGNALS_GROUP, Keys
from marketbus.redis import connect
from marketbus.sessions import PERIOD_MS
from marketbus.trend import TrendStore

RATE = 2000
WARMUP = 2.0  # seconds of load before samples count (lazy imports, first calendar lookup, scripts)


def after_warmup(pairs: list[tuple[float, float]]) -> list[float]:
    """Latencies of (publish ms, latency ms) pairs published after the warm-up."""
    if not pairs:
        return []
    start = min(pt for pt, _ in pairs) + WARMUP * 1000
    return [lat for pt, lat in pairs if pt >= start]


async def tick_to_snapshot(url: str, quick: bool) -> list[Result]:
    seconds = 2.0 if quick else 12.0
    n_codes, prefix = 500, "bl"
    codes = make_codes(n_codes)
    start_ms = OPEN_MS + 60_000 - int((WARMUP + seconds * 0.4) * 1000)  # 09:31 at 40% of the run
    host = procs.role("quotes_host", {"url": url, "prefix": prefix, "codes": n_codes})
    with procs.running(host):
        await procs.read_line(host, 60)
        watch = procs.role(
            "snapshot_watch",
            {"url": url, "prefix": prefix, "sample": codes[::10], "seconds": WARMUP + seconds + 1.5},
        )
        with procs.running(watch):
            await procs.read_line(watch, 60)
            gen = procs.role(
                "tick_gen",
                {
                    "url": url,
                    "prefix": prefix,
                    "codes": n_codes,
                    "rate": RATE,
                    "seconds": WARMUP + seconds,
                    "start_ms": start_ms,
                },
            )
            sent = (await procs.result_of(gen, seconds + 60))["sent"]
            lat = after_warmup((await procs.result_of(watch, 60))["latencies"])
        procs.stop(host)
        hosted = await procs.result_of(host, 30)
    what = f"{sent:,} ticks at {RATE:,}/s, {len(lat):,} samples, {hosted['bars']} bars closed"
    return [
        Result(
            "latency", f"tick->snapshot p50 ({what})", procs.percentile(lat, 50), "ms", higher_is_better=False
        ),
        Result("latency", "tick->snapshot p99", procs.percentile(lat, 99), "ms", higher_is_better=False),
    ]


async def bar_to_signal(url: str, quick: bool) -> list[Result]:
    seconds = 2.0 if quick else 10.0
    n_codes, extra, prefix, seed = (1000, 12, "bs", 11) if quick else (2000, 12, "bs", 11)
    history = 250
    client = connect(url)
    codes = make_codes(n_codes)
    rows = daily_rows(n_codes, history + extra, seed=seed)
    await load_market(client, prefix, codes, rows[:, :history])
    workers = await procs.start_signals(client, url, prefix, 1)
    with procs.running(*workers):
        await history_done(client, prefix, n_codes)
        watch = procs.role("signal_watch", {"url": url, "prefix": prefix, "seconds": WARMUP + seconds + 2})
        with procs.running(watch):
            await procs.read_line(watch, 60)
            gen = procs.role(
                "bar_gen",
                {
                    "url": url,
                    "prefix": prefix,
                    "codes": n_codes,
                    "history": history,
                    "extra": extra,
                    "seed": seed,
                    "rate": RATE,
                    "seconds": WARMUP + seconds,
                },
            )
            published = (await procs.result_of(gen, seconds + 60))["published"]
            seen = await procs.result_of(watch, 60)
        rss = procs.rss_mb(workers[0])
    await client.aclose()
    first = {(c, ts): t for c, ts, t in seen["seen"]}
    lat = after_warmup([(pt, first[(c, ts)] - pt) for c, ts, pt in published if (c, ts) in first])
    p99 = procs.percentile(lat, 99)
    what = f"{len(published):,} bars at {RATE:,}/s, {len(lat):,} with signals"
    return [
        Result(
            "latency", f"bar->signal p50 ({what})", procs.percentile(lat, 50), "ms", higher_is_better=False
        ),
        Result(
            "latency",
            "bar->signal p99",
            p99,
            "ms",
            higher_is_better=False,
            target="p99 <= 20 ms (issue 14)",
            met=p99 <= 20,
        ),
        Result("memory", "signals worker RSS after the bar->signal run", rss, "MiB", higher_is_better=False),
    ]


BURST_PERIODS = ("1m", "5m", "15m", "30m", "60m")  # the bars that close together at 10:30
BURST_END_MS = OPEN_MS + 60 * 60_000  # 10:30 Asia/Shanghai of the benchmark day


def burst_rows(n_codes: int, history: int, period: str, seed: int) -> np.ndarray:
    """``history + 1`` bars per code of ``period``, the last one ending at ``BURST_END_MS``
    (evenly spaced: the strategies read only the bars, not the session calendar)."""
    rows = daily_rows(n_codes, history + 1, seed=seed)
    step = PERIOD_MS[period]
    rows[:, :, 0] = BURST_END_MS - step * np.arange(history + 1, 0, -1)
    return rows


async def minute_close_burst(url: str, quick: bool) -> list[Result]:
    n_codes, history, prefix = (1000 if quick else 6500), 250, "bb"
    client = connect(url)
    keys = Keys(prefix)
    codes = make_codes(n_codes)
    rows = {p: burst_rows(n_codes, history, p, seed=31 + k) for k, p in enumerate(BURST_PERIODS)}
    for p in BURST_PERIODS:
        await load_market(client, prefix, codes, rows[p][:, :history], period=p)
    bars = []
    for p in BURST_PERIODS:
        for j in range(n_codes):
            r = rows[p][j, history]
            bar = Bar(code=codes[j], period=p, ts=int(r[0]), open=r[1], high=r[2], low=r[3],
                      close=r[4], volume=r[5], amount=r[6])  # fmt: skip
            bars.append(bar)
    await client.xgroup_create(keys.bars, SIGNALS_GROUP, id="$", mkstream=True)
    workers = await procs.start_signals(client, url, prefix, 1)
    with procs.running(*workers):
        for p in BURST_PERIODS:
            await history_done(client, prefix, n_codes, p)
        # the watcher reads until its deadline (well past the drain), then reports what it saw
        watch = procs.role("signal_watch", {"url": url, "prefix": prefix, "seconds": 15 if quick else 30})
        with procs.running(watch):
            await procs.read_line(watch, 60)
            trend = TrendStore(client, keys, max_bars=500)
            published: dict[tuple[str, int], float] = {}
            started = time.time() * 1000
            for start in range(0, len(bars), 1000):
                pipe = client.pipeline(transaction=False)
                chunk = bars[start : start + 1000]
                for bar in chunk:
                    trend.append_in(pipe, bar)
                    pipe.xadd(keys.bars, wire.encode(bar), maxlen=100_000, approximate=True)
                await pipe.execute()
                pt = time.time() * 1000
                published.update(((b.code, b.ts), pt) for b in chunk)
            last_published = pt
            await procs.drained(client, keys.bars, SIGNALS_GROUP, limit=300)
            seen = await procs.result_of(watch, 60)
    await client.aclose()
    lat = [t - published[(c, ts)] for c, ts, t in seen["seen"] if (c, ts) in published]
    last_seen = max((t for c, ts, t in seen["seen"] if (c, ts) in published), default=last_published)
    slowest = max(lat, default=0.0)
    what = (
        f"{len(bars):,} bars ({', '.join(BURST_PERIODS)} of {n_codes:,} codes) published in "
        f"{last_published - started:,.0f} ms, {len(lat):,} with signals, 1 worker"
    )
    return [
        Result(
            "latency",
            f"minute-close burst: slowest bar->signal ({what})",
            slowest,
            "ms",
            higher_is_better=False,
            target="<= 300 ms",
            met=slowest <= 300,
        ),
        Result(
            "latency",
            "minute-close burst: bar->signal p50",
            procs.percentile(lat, 50),
            "ms",
            higher_is_better=False,
        ),
        Result(
            "latency",
            "minute-close burst: last signal seen after the last bar published",
            last_seen - last_published,
            "ms",
            higher_is_better=False,
        ),
    ]


async def run(url: str, quick: bool) -> list[Result]:
    out = await tick_to_snapshot(url, quick)
    await connect(url).flushall()
    out += await bar_to_signal(url, quick)
    await connect(url).flushall()
    return out + await minute_close_burst(url, quick)
