"""The full market end to end at the real cadence: simulator -> quotes -> bars -> signals.

Every party is its own process on this machine: the provider simulator (6,500 generated codes;
:mod:`benchmarks.simwitness`, the real simulator app plus a witness of what its eastmoney
``ulist`` answers served), ``python -m quotes`` (feed ``auto``, ``MARKETBUS_POLL_INTERVAL=3``,
``MARKETBUS_PROVIDER_URL`` at the simulator) and ``python -m signals`` (one worker). All three
share one market clock at speed 1 (``MARKETBUS_MARKET_CLOCK``), a Friday morning of a real
trading day, 2026-11-20, set so that the run crosses a minute
boundary (10:01 when the services start as fast as expected): every code's
10:00 bar closes during the run and the signals worker gets the whole market's bars at once, as
it does every minute of a trading day. Before the run each code's trend series gets its last 250
one-minute bars, built from the simulator's own day paths (so the strategies have full windows
that join the live prices). Polling runs for 60 s of wall time (quick: 15 s) from the first poll,
longer only if no minute boundary has been crossed by then (the first row says how long it ran
and the market time it covered).
The service is stopped between two polls, so no request is in flight. ``BENCH_KEEP=1`` keeps
the quotes service's log (its directory is printed).

Rows:

- polls completed, their durations (p50 and the longest, from the poll reports ``<prefix>:poll``)
  beside the 3 s interval, the codes covered by the least-covered poll beside the codes that
  trade, and the simulator's count of ``ulist`` requests served beside the chunks the reports
  account for;
- six bad snapshots planted in the simulator (``/_control/plant``: three stamped 10 minutes
  ahead, three 50% over the previous close) must come back as exactly three ``future`` and three
  ``limit_band`` rejections;
- ticks accepted (``ticks_accepted`` in ``<prefix>:metrics``) beside the snapshots the simulator
  served that changed (time or cumulative volume, per code): every one must be accepted, or
  rejected with a reason counted in the metrics (or a counted duplicate), and per code the set of
  accepted and rejected snapshot times must be the set served;
- 1m and 5m bars published vs closed (``bars_closed``), and bars whose volume is not the
  day-cumulative volume delta of the accepted ticks across the bar (missing and extra bars
  included): must be 0;
- bar -> signal latency for every signal of the run: ``created_ts`` minus the bar's end on the
  market clock (what a user sees), split into the end -> publish part (a polled bar closes when
  the first tick of the next minute arrives, or at its end plus the poll feed's 5 s lateness)
  and publish (the bar's stream entry id) -> signal;
- the signals group's lag and pending at the end of the run, the time it took to drain after;
- RSS of each process at the end of the run (the simulator, quotes, the signals worker, and a
  gateway and a scorecard service running beside them, the gateway after it has read every
  snapshot once) and the server's ``used_memory_rss``; quotes must stay within 200 MiB.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
from redis.asyncio import Redis

from benchmarks import procs
from benchmarks.bench_load import metrics, start
from benchmarks.harness import Result
from marketbus.clock import MarketClock, parse_clock, wall_ms
from marketbus.keys import SIGNALS_GROUP, Keys
from marketbus.redis import connect
from marketbus.server import free_port
from marketbus.sessions import (
    MINUTE_MS,
    bar_close_ms,
    bucket_of_minute,
    from_ms,
    minute_bucket,
    session_minutes,
    shanghai_ms,
    trading_date,
)
from marketbus.trend import AMOUNT, CLOSE, HIGH, LOW, NF, OPEN, TS, VOLUME, TrendStore
from quotes.feeds.poll import LATENESS_MS
from quotes.history import minutes_before
from quotes.providersim.launch import SimProcess
from quotes.providersim.market import Market

N_CODES, SEED = 6500, 7
INTERVAL_S = 3.0
BOUNDARY = shanghai_ms(2026, 11, 20, 10, 1)  # the minute boundary the run crosses (a Friday)
STARTUP_S = 20.0  # about how long the simulator and the quotes service take to be polling (busy box)
HISTORY_GAP_MS = 2 * 60_000  # the seeded history ends before 09:59, ahead of every live tick
HISTORY = 250
PERIODS = ("1m", "5m")
PLANTS = {"future": 3, "limit_band": 3}  # bad snapshots served on purpose, by the reason expected
PLANT_AFTER_MS = 6_000  # market ms after the first poll
QUOTES_RSS_MB = 200  # issue 14: the quotes process at full-market size
BIG_CAP = 10_000_000  # stream caps out of the way: every entry of the run is read back


@dataclass
class Run:
    """What the run saw while it went on."""

    reports: list[dict[str, Any]] = field(default_factory=list)
    t_first: float = 0.0
    t_end: float = 0.0
    lag_end: int = -1
    pending_end: int = -1
    rss: dict[str, float] = field(default_factory=dict)
    drain_s: float = float("nan")


def minute_history(market: Market, codes: list[str], before_ms: int, count: int = HISTORY) -> np.ndarray:
    """(codes, count, NF): the simulator's own 1m bars of the ``count`` minutes before ``before_ms``
    (prices at the minute points of its day paths; it moves linearly between them)."""
    minutes = minutes_before(before_ms, count)
    secs = [market.securities[c] for c in codes]
    out = np.empty((len(codes), len(minutes), NF))
    out[:, :, TS] = minutes
    for day in sorted({trading_date(m) for m in minutes}):
        index = {m: k for k, m in enumerate(session_minutes(day))}
        cols = [j for j, m in enumerate(minutes) if m in index]
        ks = np.array([index[minutes[j]] for j in cols])
        paths = market.paths(secs, day)
        price = np.stack([p.price for p in paths])
        volume = np.stack([p.volume for p in paths])
        amount = np.stack([p.amount for p in paths])
        o, c = price[:, ks], price[:, ks + 1]
        out[:, cols, OPEN], out[:, cols, CLOSE] = o, c
        out[:, cols, HIGH], out[:, cols, LOW] = np.maximum(o, c), np.minimum(o, c)
        out[:, cols, VOLUME] = volume[:, ks + 1] - volume[:, ks]
        out[:, cols, AMOUNT] = np.round(amount[:, ks + 1] - amount[:, ks], 2)
    return out


def expected_bars(ticks: dict[str, list[tuple[int, float]]], period: str) -> dict[tuple[str, int], float]:
    """Per (code, bar start): the volume the bar must have, from a code's accepted ticks in time
    order (the cumulative volume at its last tick less the one at the last tick before it; a
    code's first tick, mid-session, only sets the baseline)."""
    out: dict[tuple[str, int], float] = {}
    for code, seen in ticks.items():
        base: float | None = None
        last_bucket: int | None = None
        last_volume = 0.0
        for ts, volume in seen:
            minute = minute_bucket(ts)
            if minute is None:
                continue
            b = bucket_of_minute(minute, period)
            if base is None:
                base = volume
            elif b != last_bucket:
                assert last_bucket is not None
                base = last_volume
            last_bucket, last_volume = b, volume
            out[code, b] = volume - base
    return out


def bar_errors(
    expected: dict[tuple[str, int], float], published: dict[tuple[str, int], float]
) -> tuple[int, int, int]:
    """(bars with the wrong volume, bars missing, bars extra). A code's last bar may still be
    open when the service stops (stored, not published): it is not counted missing."""
    last: dict[str, int] = {}
    for code, ts in expected:
        last[code] = max(ts, last.get(code, ts))
    wrong = sum(1 for key, v in published.items() if key in expected and expected[key] != v)
    missing = sum(1 for key in expected if key not in published and key[1] != last[key[0]])
    extra = sum(1 for key in published if key not in expected)
    return wrong, missing, extra


async def read_stream(client: Redis, stream: str) -> list[tuple[int, dict[str, Any]]]:
    """Every entry of a stream: (entry time ms, decoded ``data``)."""
    out: list[tuple[int, dict[str, Any]]] = []
    start_id = "-"
    while True:
        page: Any = await client.xrange(stream, min=start_id, count=10_000)  # [(id, fields)], bytes
        if not page:
            return out
        for entry_id, fields in page:
            out.append((int(entry_id.split(b"-")[0]), orjson.loads(fields[b"data"])))
        start_id = "(" + page[-1][0].decode()
        if len(page) < 10_000:
            return out


def wall_of(clock: MarketClock, market_ms: int) -> float:
    """The wall time (epoch ms) at which the market clock shows ``market_ms``."""
    return clock.anchor_ms + (market_ms - clock.start_ms) / clock.speed


def p(values: list[float], q: float) -> float:
    return procs.percentile(values, q)


async def run(url: str, quick: bool) -> list[Result]:
    seconds = 15.0 if quick else 60.0
    prefix = "bm"
    keys = Keys(prefix)
    client = connect(url)
    tmp = Path(tempfile.mkdtemp(prefix="bench-market-"))
    market = Market(SEED, N_CODES)
    codes = list(market.securities)
    tradable = sum(1 for s in market.securities.values() if not s.suspended)
    rows = minute_history(market, codes, BOUNDARY - HISTORY_GAP_MS)
    await TrendStore(client, keys, max_bars=500).merge_rows(dict(zip(codes, rows, strict=True)), "1m")
    settings: dict[str, object] = {
        "ticks_maxlen": BIG_CAP, "bars_maxlen": BIG_CAP, "signals_maxlen": BIG_CAP, "dlq_maxlen": BIG_CAP,
    }  # fmt: skip
    sim: SimProcess | None = None
    quotes: subprocess.Popen[bytes] | None = None
    workers: list[subprocess.Popen[bytes]] = []
    others: list[subprocess.Popen[bytes]] = []  # the gateway and the scorecard, for their RSS
    state = Run()
    try:
        workers = await procs.start_signals(client, url, prefix, 1, **settings)
        gw_port = free_port()
        gateway = await procs.start_http(["-m", "gateway"], procs.env_for(url, prefix, port=gw_port), gw_port)
        others.append(gateway)
        others.append(start("scorecard", procs.env_for(url, prefix, **settings), tmp / "scorecard.log"))
        # the clock starts now: the first poll lands about half a run before the boundary's bars
        # close (boundary + lateness), once the simulator and quotes are up
        lead_ms = int((seconds / 2 - LATENESS_MS / 1000 + STARTUP_S) * 1000)
        spec = MarketClock(BOUNDARY - lead_ms, wall_ms(), 1.0).spec()
        clock = parse_clock(spec)  # exactly the clock every process reads from the spec
        sim_proc = procs.spawn(["-m", "benchmarks.simwitness", "--codes", str(N_CODES), "--seed", str(SEED),
                                "--clock", spec])  # fmt: skip
        try:
            ready = orjson.loads(await procs.read_line(sim_proc, 120))
        except BaseException:
            procs.stop(sim_proc)
            raise
        sim = SimProcess(sim_proc, ready["url"], ready["codes"])
        env = procs.env_for(url, prefix, feed="auto", provider_url=sim.url, poll_interval=INTERVAL_S,
                            market_clock=spec, **settings)  # fmt: skip
        quotes = start("quotes", env, tmp / "quotes.log")
        await observe(client, keys, clock, seconds, sim, market, quotes, workers[0], tmp, state)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{gw_port}", timeout=60) as http:
            for path in ("/api/stocks/quotes", "/api/etf/quotes"):  # every snapshot read once
                (await http.get(path)).raise_for_status()
        state.rss["gateway"] = procs.rss_mb(gateway)
        state.rss["scorecard"] = procs.rss_mb(others[1])
        procs.stop(quotes)
        if quotes.returncode != 0:
            raise RuntimeError(
                f"quotes exited {quotes.returncode}: {(tmp / 'quotes.log').read_text()[-2000:]}"
            )
        t_stop = time.monotonic()
        state.drain_s = await procs.drained(client, keys.bars, SIGNALS_GROUP, 300) - t_stop
        async with httpx.AsyncClient(timeout=60) as http:
            witness = (await http.get(f"{sim.url}/_control/witness")).json()
            planted = (await http.get(f"{sim.url}/_control/planted")).json()["served"]
        counters = sim.counters()
        m = await metrics(client, keys)
        ticks = await read_stream(client, keys.ticks)
        rejects = await read_stream(client, keys.dlq)
        bars = await read_stream(client, keys.bars)
        signals = await read_stream(client, keys.signals)
        info = await client.info("memory")
    finally:
        for proc in [quotes, *workers, *others]:
            if proc is not None:
                procs.stop(proc)
        if sim is not None:
            sim.stop()
        await client.aclose()
        if os.environ.get("BENCH_KEEP"):
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return results(
        state, clock, seconds, tradable, witness, counters, m, ticks, rejects, bars, signals, info, planted
    )


def plant(sim: SimProcess, market: Market, at: int) -> None:
    """Have the simulator serve a few bad snapshots (each once) from market time ``at`` on: stamps
    10 minutes ahead (``future``) and prices 50% over the previous close (``limit_band``), on main
    board stocks that trade."""
    listed = sim.listing()
    out = set(listed["suspended"])
    main_board = ("SH主板", "SZ主板")
    stocks = sorted(
        x["code"]
        for x in listed["securities"]
        if x["market"] in main_board and x["code"] not in out and "ST" not in x["name"]
    )
    picks = iter(stocks[:: max(1, len(stocks) // 10)])
    for _ in range(PLANTS["future"]):
        sim.control("plant", code=next(picks), at=at, shift_s=600)
    for _ in range(PLANTS["limit_band"]):
        code = next(picks)
        snap = market.snapshot(code, at)
        assert snap is not None
        # a volume of its own too, so that it is a change even where it alters a repeated snapshot
        price = round(snap.pre_close * 1.5, 2)
        sim.control("plant", code=code, at=at, price=price, volume=snap.volume + 100)


async def observe(
    client: Redis, keys: Keys, clock: MarketClock, seconds: float, sim: SimProcess, market: Market,
    quotes: subprocess.Popen[bytes], worker: subprocess.Popen[bytes], tmp: Path, state: Run,
) -> None:  # fmt: skip
    """Follow the poll reports until the run is over (after the first, plant the bad snapshots),
    then return between two polls (no request in flight) with the end-of-run figures in ``state``.

    The run is over once ``seconds`` have passed since the first poll and a minute boundary after
    the first poll has been crossed: a poll started at least the feed's lateness after it has
    completed, so every bar of the minute before has closed (``BOUNDARY`` when the services
    started as fast as expected, the next minute when they were slower)."""
    deadline = time.monotonic() + 120 + seconds * 3
    crossed_at = 2**62
    while True:
        for proc, name in ((quotes, "quotes"), (worker, "signals"), (sim.proc, "simulator")):
            if proc.poll() is not None:
                log = (tmp / "quotes.log").read_text()[-2000:] if name == "quotes" else ""
                raise RuntimeError(f"{name} exited {proc.returncode} during the run {log}")
        raw = await client.get(keys.poll_stats)
        now = time.monotonic()
        if raw is not None:
            report = orjson.loads(raw)
            if not state.reports or report["started_ts"] != state.reports[-1]["started_ts"]:
                state.reports.append(report)
                if len(state.reports) == 1:
                    state.t_first = now - report["duration_ms"] / 1000
                    plant(sim, market, report["started_ts"] + PLANT_AFTER_MS)
                    boundary = (report["started_ts"] // MINUTE_MS + 1) * MINUTE_MS
                    crossed_at = boundary + LATENESS_MS
            done = (
                now - state.t_first >= seconds
                and state.reports[-1]["started_ts"] >= crossed_at
                # between two polls: the next one starts INTERVAL_S after this one started
                and clock.now_ms() < report["started_ts"] + INTERVAL_S * 1000 - 500
            )
            if done:
                state.t_end = now
                g = await procs.group_info(client, keys.bars, SIGNALS_GROUP)
                state.lag_end, state.pending_end = int(g.get("lag") or 0), int(g["pending"])
                state.rss = {"simulator": procs.rss_mb(sim.proc), "quotes": procs.rss_mb(quotes),
                             "signals": procs.rss_mb(worker)}  # fmt: skip
                return
        if now > deadline:
            raise TimeoutError(f"the run did not end: {len(state.reports)} polls seen")
        await asyncio.sleep(0.1)


def results(
    state: Run, clock: MarketClock, seconds: float, tradable: int, witness: dict[str, Any],
    counters: dict[str, Any], m: dict[str, int], ticks: list[tuple[int, dict[str, Any]]],
    rejects: list[tuple[int, dict[str, Any]]], bars: list[tuple[int, dict[str, Any]]],
    signals: list[tuple[int, dict[str, Any]]], info: dict[str, Any], planted: list[dict[str, Any]],
) -> list[Result]:  # fmt: skip
    reports = state.reports
    ran_s = state.t_end - state.t_first
    durations = [r["duration_ms"] / 1000 for r in reports]
    starts = [r["started_ts"] for r in reports]
    gaps = [(b - a) / 1000 for a, b in itertools.pairwise(starts)]
    chunks = sum(sum(r["providers"].values()) for r in reports)
    by_provider = {
        name: sum(r["providers"].get(name, 0) for r in reports) for name in ("eastmoney", "sina", "tencent")
    }
    served_ulist = counters["served"]["eastmoney"].get("/api/qt/ulist.np/get", 0)
    failed = sum(r["failed_chunks"] for r in reports)
    covered = min(r["codes_covered"] for r in reports)
    requested = max(r["codes_requested"] for r in reports)

    # snapshots served that changed vs ticks accepted / rejected
    served = {code: {int(ts) * 1000 for ts, _ in seen} for code, seen in witness["changed"].items()}
    n_served = sum(len(v) for v in served.values())
    by_code: dict[str, list[tuple[int, float]]] = {}
    for _, t in ticks:
        by_code.setdefault(t["code"], []).append((int(t["ts"]), float(t["volume"])))
    seen = {code: {ts for ts, _ in v} for code, v in by_code.items()}
    for _, tick in rejects:  # a dead letter's data is the rejected tick
        if "code" in tick and "ts" in tick:
            seen.setdefault(tick["code"], set()).add(int(tick["ts"]))
    differ = sum(len(served.get(c, set()) ^ seen.get(c, set())) for c in set(served) | set(seen))
    accepted = m.get("ticks_accepted", 0)
    rejected = {k.removeprefix("ticks_rejected:"): v for k, v in m.items() if k.startswith("ticks_rejected:")}
    duplicate = m.get("ticks_duplicate", 0)
    dropped = sum(v for k, v in m.items() if k.startswith("ticks_dropped"))
    counted = accepted + sum(rejected.values()) + duplicate
    reconciled = counted == n_served and differ == 0 and dropped == 0 and len(ticks) == accepted
    planted_reasons = Counter(
        "future" if x["ts"] > x["served_at"] + 60_000 else "limit_band" for x in planted
    )
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(rejected.items())) or "none rejected"

    # bars
    for v in by_code.values():
        v.sort()
    published: dict[str, dict[tuple[str, int], float]] = {p_: {} for p_ in PERIODS}
    publish_ms: dict[tuple[str, str, int], int] = {}
    for entry_ms, b in bars:
        publish_ms[b["code"], b["period"], int(b["ts"])] = entry_ms
        if b["period"] in published:
            published[b["period"]][b["code"], int(b["ts"])] = float(b["volume"])
    errors = {p_: bar_errors(expected_bars(by_code, p_), published[p_]) for p_ in PERIODS}
    bad_bars = sum(sum(e) for e in errors.values())
    n_1m = len(published["1m"])
    n_5m = len(published["5m"])

    # latency: for every signal of the run
    to_publish, to_signal, total = [], [], []
    for _, s in signals:
        key = (s["code"], s["period"], int(s["bar_ts"]))
        if s.get("provisional") or key not in publish_ms:
            continue
        end_wall = wall_of(clock, bar_close_ms(int(s["bar_ts"]), s["period"]))
        to_publish.append(publish_ms[key] - end_wall)
        to_signal.append(float(s["created_ts"]) - publish_ms[key])
        total.append(float(s["created_ts"]) - end_wall)
    n_sig = len(total)
    rss_server = float(info.get("used_memory_rss", 0)) / 2**20

    window = f"market {from_ms(starts[0]):%H:%M:%S}-{from_ms(starts[-1]):%H:%M:%S}"
    size = f"{requested:,} codes every {INTERVAL_S:.0f} s, {ran_s:.0f} s, {window}"
    out = [
        Result(
            "market",
            f"polls completed ({size}; start-to-start p50 {p(gaps, 50):.2f} s)",
            len(reports),
            "polls",
            baseline="run time / interval",
            baseline_value=round(ran_s / INTERVAL_S, 1),
            target=">= run / 3 s - 1",
            met=len(reports) >= ran_s / INTERVAL_S - 1,
        ),
        Result(
            "market",
            "poll duration p50",
            p(durations, 50),
            "s",
            baseline="poll interval",
            baseline_value=INTERVAL_S,
            higher_is_better=False,
        ),
        Result(
            "market",
            f"poll duration, longest of {len(reports)}",
            max(durations),
            "s",
            baseline="poll interval",
            baseline_value=INTERVAL_S,
            higher_is_better=False,
            target="< 3 s (well inside the interval)",
            met=max(durations) < INTERVAL_S,
        ),
        Result(
            "market",
            f"codes covered by the least-covered poll ({failed} chunks lost)",
            covered,
            "codes",
            baseline="codes that trade (listed, not suspended)",
            baseline_value=tradable,
            target="all",
            met=covered == tradable and failed == 0,
        ),
        Result(
            "market",
            "ulist requests the simulator served vs chunks the poll reports count "
            f"(eastmoney {by_provider['eastmoney']}, sina {by_provider['sina']}, "
            f"tencent {by_provider['tencent']})",
            served_ulist,
            "requests",
            baseline="chunks in the reports",
            baseline_value=chunks,
            target="equal",
            met=served_ulist == chunks == by_provider["eastmoney"],
        ),
        Result(
            "market",
            f"ticks accepted, rejected ({reasons}), duplicate ({duplicate}) vs changed "
            f"snapshots served ({witness['rows']:,} rows served, {witness['repeated']:,} repeats, "
            f"{witness['no_trade']:,} without a trade; {differ} per-code differences, "
            f"{dropped} dropped)",
            counted,
            "ticks",
            baseline="changed snapshots served",
            baseline_value=n_served,
            target="exactly equal, per code",
            met=reconciled,
        ),
        Result(
            "market",
            "bad snapshots planted in the simulator, served and rejected with their reason "
            f"(served: {dict(sorted(planted_reasons.items()))}, rejected: {dict(sorted(rejected.items()))})",
            sum(rejected.values()),
            "ticks",
            baseline="planted and served",
            baseline_value=len(planted),
            target="the same reasons, exactly",
            met=dict(planted_reasons) == rejected and len(planted) == sum(PLANTS.values()),
        ),
        Result(
            "market",
            "ticks accepted per second of the run",
            accepted / ran_s,
            "ticks/s",
            baseline="codes that trade / 3 s",
            baseline_value=tradable / INTERVAL_S,
        ),
        Result(
            "market",
            f"bars with a volume != the cumulative-volume delta of their ticks (bars_closed "
            f"{m.get('bars_closed', 0):,}; published 1m {n_1m:,}, 5m {n_5m:,}; wrong/missing/extra "
            f"1m {errors['1m']}, 5m {errors['5m']})",
            bad_bars,
            "bars",
            higher_is_better=False,
            target="0",
            met=bad_bars == 0 and m.get("bars_closed", 0) == len(bars) and n_1m >= tradable,
        ),
        Result(
            "market",
            f"bar end -> signal p50 ({n_sig:,} signals; end on the market clock)",
            p(total, 50),
            "ms",
            higher_is_better=False,
        ),
        Result("market", "bar end -> signal p99", p(total, 99), "ms", higher_is_better=False),
        Result(
            "market",
            "  of which bar end -> bar published, p50 (next-minute tick or end + 5 s lateness)",
            p(to_publish, 50),
            "ms",
            higher_is_better=False,
        ),
        Result(
            "market",
            "  of which bar end -> bar published, p99",
            p(to_publish, 99),
            "ms",
            higher_is_better=False,
        ),
        Result(
            "market",
            "  of which bar published -> signal, p50",
            p(to_signal, 50),
            "ms",
            higher_is_better=False,
        ),
        Result(
            "market",
            "  of which bar published -> signal, p99",
            p(to_signal, 99),
            "ms",
            higher_is_better=False,
        ),
        Result(
            "market",
            f"signals group lag at the end of the run (pending {state.pending_end})",
            state.lag_end,
            "bars",
            higher_is_better=False,
        ),
        Result(
            "market",
            "signals group drained, after quotes stopped (0: it already was)",
            state.drain_s,
            "s",
            higher_is_better=False,
        ),
    ]
    for name, mb in state.rss.items():
        what = f"RSS of {name} at the end of the run ({N_CODES:,} codes)"
        quotes = name == "quotes"
        target = f"<= {QUOTES_RSS_MB} MiB" if quotes else ""
        met = mb <= QUOTES_RSS_MB if quotes else None
        out.append(Result("market", what, mb, "MiB", higher_is_better=False, target=target, met=met))
    out.append(
        Result("market", "server used_memory_rss at the end", rss_server, "MiB", higher_is_better=False)
    )
    return out
