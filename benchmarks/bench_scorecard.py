"""The history run for the scorecard: every strategy at every stored daily bar of the whole market,
server -> signals written to the history stream.

Baseline in the same run: the streaming path's own way, one window per bar (``evaluate_windows`` of
the window ending at each bar, every code at once), timed on a sample of bars and extrapolated to
all of them. Also: how fast the scorecard service scores what the run wrote (a sample of entries).
"""

from __future__ import annotations

import statistics
import time

from benchmarks.data import codes as make_codes
from benchmarks.data import daily_rows
from benchmarks.harness import Result
from marketbus.contracts import Security, SignalBatch
from marketbus.keys import Keys
from marketbus.redis import connect
from marketbus.settings import Settings
from marketbus.trend import TrendStore
from marketbus.wire import decode
from scorecard.scorer import Scorer
from signals.backfill import HistoryRun, window_targets, windowed_signals
from signals.store import SignalStore
from signals.strategies import WINDOW_BARS, build_strategies

BASELINE_BARS = 10  # bars per code evaluated window by window for the baseline
SCORED_ENTRIES = 100  # history entries (codes) the scorecard scores for its rate


async def run(url: str, quick: bool) -> list[Result]:
    n_codes = 1000 if quick else 6000
    client = connect(url)
    keys = Keys("bench")
    settings = Settings(redis_url=url, key_prefix="bench", _env_file=None)  # type: ignore[call-arg]
    all_codes = make_codes(n_codes)
    data = daily_rows(n_codes, WINDOW_BARS)
    trend = TrendStore(client, keys, max_bars=WINDOW_BARS)
    for start in range(0, n_codes, 1000):
        chunk = all_codes[start : start + 1000]
        await trend.merge_rows(dict(zip(chunk, data[start : start + 1000], strict=True)), "1d")
    universe = {c: Security(code=c, name=c, market="SH主板") for c in all_codes}
    await client.hset(keys.universe, mapping={c: s.model_dump_json() for c, s in universe.items()})
    strategies = build_strategies()

    async def far_future() -> int:
        return 2**53

    history = HistoryRun(
        client,
        keys,
        settings,
        trend,
        SignalStore(client, keys, 50_000),
        strategies,
        "bench",
        far_future,
        ("1d",),
    )
    times = []
    stats = None
    for _ in range(1 if quick else 2):
        # forget the run as `marketbus backfill` does: the marks gone and the trend epoch bumped
        # (a worker skips its check while the epoch holds still)
        await client.delete(keys.backfill_done("1d"), keys.signals_history)
        await client.incr(keys.trend_epoch)
        t0 = time.perf_counter()
        stats = await history.run_due()
        times.append(time.perf_counter() - t0)
    history.close()
    assert stats is not None
    run_s = statistics.median(times)
    written = sum(len(f[b"data"]) for _, f in await client.xrange(keys.signals_history, count=200))
    entry_bytes = written / min(200, stats.entries or 1)

    # baseline: one window per bar, the streaming path's function, on a sample of bars
    series = list(zip(all_codes, data, strict=True))
    picked = range(WINDOW_BARS - BASELINE_BARS, WINDOW_BARS)
    t0 = time.perf_counter()
    windowed_signals(window_targets(series, "1d", lambda n: picked), strategies, universe, 0)
    per_bar = (time.perf_counter() - t0) / BASELINE_BARS
    baseline_s = per_bar * WINDOW_BARS  # (windows of early bars are shorter, not cheaper: padded)

    # the scorecard scoring what the run wrote (a sample of entries), signals per second
    scorer = Scorer(client, keys, settings)
    entries = [
        decode(SignalBatch, f) for _, f in await client.xrange(keys.signals_history, count=SCORED_ENTRIES)
    ]
    n_signals = sum(len(e) for e in entries)
    t0 = time.perf_counter()
    for start in range(0, len(entries), 5):
        await scorer.on_history(entries[start : start + 5])
    score_rate = n_signals / (time.perf_counter() - t0)
    await client.aclose()
    size = f"{n_codes} codes x {WINDOW_BARS} daily bars x {len(strategies)} strategies"
    return [
        Result(
            "scorecard",
            f"history run, server->history signals written, {size}: {stats.signals} signals, "
            f"{stats.entries} entries (~{entry_bytes / 1024:.0f} KB each)",
            run_s,
            "s",
            baseline=f"one window per bar, extrapolated from {BASELINE_BARS} bars",
            baseline_value=baseline_s,
            higher_is_better=False,
            target="<= 10 s (6,000 codes)",
            met=None if quick else run_s <= 10.0,
        ),
        Result(
            "scorecard",
            f"scorecard scoring history signals ({n_signals} signals of {len(entries)} codes)",
            score_rate,
            "signals/s",
        ),
    ]
