"""Full-market scan: server -> every strategy on every code -> signals written.

Baselines in the same run: a TA-Lib per-code loop computing the same indicators (evaluation only),
and the replaced system's way (per-code JSON in Redis, pandas, Python loops) on a sample of codes.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np
import orjson
import pandas as pd
import talib

from benchmarks.data import codes as make_codes
from benchmarks.data import daily_rows
from benchmarks.harness import Result
from marketbus.contracts import JobStatus, Security
from marketbus.keys import Keys
from marketbus.redis import connect
from marketbus.settings import Settings
from marketbus.trend import CLOSE, HIGH, LOW, VOLUME, TrendStore, time_major
from signals.consumer import SLACK_BARS
from signals.evaluate import Target, evaluate_windows, warm_up
from signals.scan import Scanner
from signals.store import SignalStore
from signals.strategies import WINDOW_BARS, Window, build_strategies, evaluate_all
from signals.windows import WindowCache


def talib_loop(rows: np.ndarray) -> float:
    """The indicators the strategies use, computed with TA-Lib one code at a time."""
    t0 = time.perf_counter()
    for r in rows:
        c, h, lo, v = r[:, CLOSE], r[:, HIGH], r[:, LOW], r[:, VOLUME]
        talib.SMA(c, 5)
        talib.SMA(c, 20)
        talib.MACD(c, 12, 26, 9)
        talib.RSI(c, 14)
        talib.BBANDS(c, 20, 2, 2)
        talib.LINEARREG(c, 18)
        talib.EMA(c, 2)
        talib.EMA(c, 36)
        talib.MAX(h, 11)
        talib.MIN(lo, 11)
        talib.MAX(h, 9)
        talib.MIN(lo, 9)
        talib.SMA(v, 20)
    return time.perf_counter() - t0


def old_way_one(raw: bytes) -> list[tuple[str, str]]:
    """What the replaced system did per code: JSON -> DataFrame -> pandas + Python loops."""
    df = pd.DataFrame(orjson.loads(raw))
    out: list[tuple[str, str]] = []
    close = df["close"]
    ma5, ma20 = close.rolling(5).mean(), close.rolling(20).mean()
    if ma5.iloc[-2] <= ma20.iloc[-2] and ma5.iloc[-1] > ma20.iloc[-1]:
        out.append(("ma_cross", "BUY"))
    ema12, ema26 = close.ewm(span=12).mean(), close.ewm(span=26).mean()
    macd = ema12 - ema26
    sig = macd.ewm(span=9).mean()
    if macd.iloc[-2] <= sig.iloc[-2] and macd.iloc[-1] > sig.iloc[-1]:
        out.append(("macd_cross", "BUY"))
    delta = close.diff()
    gain = delta.clip(lower=0).rolling(14).mean()
    loss = (-delta.clip(upper=0)).rolling(14).mean()
    rsi = 100 - 100 / (1 + gain / loss)
    if rsi.iloc[-2] <= 30 < rsi.iloc[-1]:
        out.append(("rsi_reversal", "BUY"))
    mid, std = close.rolling(20).mean(), close.rolling(20).std(ddof=0)
    if close.iloc[-1] > mid.iloc[-1] + 2 * std.iloc[-1]:
        out.append(("boll_breakout", "BUY"))
    angel = close.ewm(span=2, adjust=False).mean()
    lr = [np.nan] * len(close)
    for i in range(17, len(close)):  # Python loop, as the old code did
        y = close.iloc[i - 17 : i + 1].to_numpy()
        x = np.arange(18)
        slope, icpt = np.polyfit(x, y, 1)
        lr[i] = icpt + slope * 17
    xsl = pd.Series(lr).diff().fillna(0)
    devil = (close + 20 * xsl).ewm(span=36, adjust=False).mean()
    if angel.iloc[-2] <= devil.iloc[-2] and angel.iloc[-1] > devil.iloc[-1]:
        out.append(("volume_wave", "BUY"))
    highs, lows = df["high"].tolist(), df["low"].tolist()
    last_high, last_low, up = highs[0], lows[0], False
    for i in range(5, len(highs)):  # the 1-2-3 state machine, per code, per bar
        j = i - 5
        if j < 10:
            continue
        is_max = highs[j] == max(highs[j - 10 : j + 1])
        is_min = lows[j] == min(lows[j - 10 : j + 1])
        if up:
            if is_min and lows[j] < last_low:
                last_low = lows[j]
            if is_max and highs[j] > last_low:
                last_high, up = highs[j], False
        else:
            if is_max and highs[j] > last_high:
                last_high = highs[j]
            if is_min and lows[j] < last_high:
                last_low, up = lows[j], True
    return out


async def forget_signals(client: Any, keys: Keys) -> None:
    """Remove the signals' idempotency markers, so the next scan writes every signal again."""
    seen = [k async for k in client.scan_iter(match=f"{keys.tag}:signal:seen:*", count=5000)]
    for start in range(0, len(seen), 5000):
        await client.unlink(*seen[start : start + 5000])


async def stored_scan(
    client: Any, keys: Keys, all_codes: list[str], data: np.ndarray, runs: int = 3
) -> tuple[float, float, int, Scanner]:
    """Store every code's daily bars and the universe, then time the scan, server to signals
    written, with the windows read as the signals service reads them (:mod:`signals.windows`):
    (the first scan of a worker, the median of ``runs`` later ones, signals, the scanner). Every
    scan writes every signal (the markers of the one before are removed)."""
    n_codes = len(all_codes)
    trend = TrendStore(client, keys, max_bars=WINDOW_BARS)
    for start in range(0, n_codes, 1000):
        chunk = all_codes[start : start + 1000]
        await trend.merge_rows(dict(zip(chunk, data[start : start + 1000], strict=True)), "1d")
    await client.hset(
        keys.universe,
        mapping={c: Security(code=c, name=c, market="SH主板").model_dump_json() for c in all_codes},
    )
    store = SignalStore(client, keys, maxlen=100_000)
    windows = WindowCache(
        client, keys, WINDOW_BARS, WINDOW_BARS + SLACK_BARS, Settings.model_fields["window_cache"].default
    )
    scanner = Scanner(client, keys.scan_lock, windows, store, build_strategies(), "bench")
    warm_up(scanner.strategies)  # as a worker does before its first batch
    times = []
    found = 0
    for i in range(1 + runs):
        await forget_signals(client, keys)
        job = JobStatus(job_id=f"b{i}", task_type="calc_signals", state="queued", created_ts=0)
        t0 = time.perf_counter()
        done = (await scanner.run([job], "1d"))[0]
        times.append(time.perf_counter() - t0)
        found = done.signals
    return times[0], statistics.median(times[1:]), found, scanner


async def run(url: str, quick: bool) -> list[Result]:
    n_codes = 1000 if quick else 6000
    sample = 20 if quick else 100
    client = connect(url)
    keys = Keys("bench")
    all_codes = make_codes(n_codes)
    data = daily_rows(n_codes, WINDOW_BARS)
    strategies = build_strategies()
    # marketbus: server -> signals written
    cold_s, scan_s, found, scanner = await stored_scan(client, keys, all_codes, data)

    # evaluation alone vs a TA-Lib per-code loop on the same data
    targets = [Target(c, "1d", data[j]) for j, c in enumerate(all_codes)]
    # evaluation = what the TA-Lib loop does too: indicators and strategies on arrays already laid
    # out; "layout + signals" adds the time-major stacking and building the Signal messages
    evals, fulls, loops = [], [], []
    window = Window.from_time_major(time_major([t.rows for t in targets], WINDOW_BARS))
    for _ in range(5):
        t0 = time.perf_counter()
        evaluate_all(strategies, window)
        evals.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        evaluate_windows(targets, strategies, {}, 0)
        fulls.append(time.perf_counter() - t0)
        loops.append(talib_loop(data))
    eval_s, full_s, loop_s = (statistics.median(x) for x in (evals, fulls, loops))

    # the old way on a sample: per-code JSON in a string key, pandas, Python loops
    for c, rows in zip(all_codes[:sample], data[:sample], strict=True):
        records = [
            dict(zip(("ts", "open", "high", "low", "close", "volume", "amount"), r, strict=True))
            for r in rows.tolist()
        ]
        await client.set(f"bench:old:{c}", orjson.dumps(records))
    t0 = time.perf_counter()
    for c in all_codes[:sample]:
        raw = await client.get(f"bench:old:{c}")
        old_way_one(raw)
    old_per_code = (time.perf_counter() - t0) / sample
    old_total = old_per_code * n_codes
    # scaling: the same scan over the first 1/6, 1/2 and all of the codes
    scaling = []
    for n in (n_codes // 6, n_codes // 2, n_codes):
        await forget_signals(client, keys)
        await client.delete(keys.universe)
        await client.hset(
            keys.universe,
            mapping={c: Security(code=c, name=c, market="SH主板").model_dump_json() for c in all_codes[:n]},
        )
        job = JobStatus(job_id=f"s{n}", task_type="calc_signals", state="queued", created_ts=0)
        t0 = time.perf_counter()
        await scanner.run([job], "1d")
        scaling.append((n, time.perf_counter() - t0))
    # (each scaling run writes its signals afresh: the idempotency markers were removed)
    await client.aclose()
    size = f"{n_codes} codes x {WINDOW_BARS} bars"
    return [
        Result(
            "scan",
            f"server->signals written, {size}, {found} signals (a worker's later scans, median of 3)",
            scan_s,
            "s",
            higher_is_better=False,
            target="<= 0.4 s (6,000 codes)",
            met=None if quick else scan_s <= 0.4,
        ),
        Result(
            "scan",
            "server->signals written, a worker's first scan (every window read whole)",
            cold_s,
            "s",
            baseline="later scans",
            baseline_value=scan_s,
            higher_is_better=False,
        ),
        Result(
            "scan",
            f"evaluation only, {size}, {len(build_strategies())} strategies",
            eval_s,
            "s",
            baseline="TA-Lib per-code loop",
            baseline_value=loop_s,
            higher_is_better=False,
            target="<= TA-Lib loop",
            met=eval_s <= loop_s,
        ),
        Result(
            "scan",
            f"layout + evaluation + Signal messages, {size}",
            full_s,
            "s",
            baseline="TA-Lib per-code loop",
            baseline_value=loop_s,
            higher_is_better=False,
        ),
        Result(
            "scan",
            f"whole scan vs old way (extrapolated from {sample} codes)",
            scan_s,
            "s",
            baseline="per-code JSON+pandas+loops",
            baseline_value=old_total,
            higher_is_better=False,
            target="ratio >= 50",
            met=old_total / scan_s >= 50,
        ),
        *[
            Result(
                "scaling",
                f"scan time, {n:,} codes (signals written)",
                t,
                "s",
                baseline=f"{scaling[0][0]:,} codes x {n // scaling[0][0]}",
                baseline_value=scaling[0][1] * n / scaling[0][0],
                higher_is_better=False,
            )
            for n, t in scaling
        ],
    ]
