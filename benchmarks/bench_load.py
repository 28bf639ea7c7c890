"""Load: 5,000 ticks/s sustained for 60 s (quick: 10 s) through real processes, counts reconciled.

The long version of tests/reliability/test_load.py. A replay CSV of 500 codes quoted every 3
market seconds (cumulative volume and amount, a random walk), with planted ticks the service must
reject with a reason (bad price, bad volume, outside the sessions) and rows the replay cannot read
(skipped and logged, never published), shuffled: ``python -m quotes`` (feed ``replay``, speed 30:
500 / 3 s x 30 = 5,000 ticks per wall second) -> ticks, snapshots, bars -> ``python -m signals``
(consumer group on the bars stream), each in its own process, small stream caps so that trimming
is exercised. Yesterday's last hour of 1m bars is seeded so that the strategies have windows.

Rows:

- achieved ticks/s: ticks accepted by the service over the wall time from the first accepted tick
  to the moment every published tick was counted (accepted or rejected); met at >= 99% of
  5,000/s over >= 99% of the duration (the replay is paced at exactly 5,000/s; the 1% is the
  0.1 s sampling) -- and the slowest 5-s window, to show it was sustained rather than caught up;
- accepted == published - rejected, exactly, with every reason's count the planted one;
- bars whose volume differs from the sum of their ticks' cumulative-volume increments (computed
  here from the generated rows), 1m, 5m and 1d, missing and extra bars included: must be 0;
- each stream's longest length seen (sampled every 0.1 s) and at the end, vs its cap (approximate
  trimming: at most one stream node, ``stream-node-max-entries``, over);
- the signals worker's RSS after warm-up (the first 1m bars of every code consumed) and at the end
  (met at <= 1.25x);
- the time the signals group takes to drain (lag 0, nothing pending) after the feed ends (from
  the moment the last tick is counted; the last day's bars close then too).
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
from redis.asyncio import Redis

from benchmarks import procs
from benchmarks.data import codes as make_codes
from benchmarks.data import daily_rows
from benchmarks.harness import Result
from marketbus.keys import SIGNALS_GROUP, Keys
from marketbus.redis import connect
from marketbus.sessions import MINUTE_MS, shanghai_ms
from marketbus.trend import TS, VOLUME, TrendStore, unpack

N_CODES = 500
DAY_OPEN = shanghai_ms(2025, 11, 25, 9, 30)  # a Tuesday, a trading day
DAY = shanghai_ms(2025, 11, 25)
START = DAY_OPEN + 500  # each code's first quote is in the 09:30 bar: its volume counts from zero
STEP_MS, SPEED = 3_000, 30.0
RATE = N_CODES * 1000 / STEP_MS * SPEED  # 5,000 ticks per wall second
TICKS_MAXLEN, BARS_MAXLEN, SIGNALS_MAXLEN = 5_000, 2_000, 200
PLANTED = {"bad_price": 40, "bad_volume": 25, "out_of_session": 30}
UNREADABLE = 12
HISTORY_BARS = 60
COLS = ["code", "ts", "price", "volume", "amount"]


def generate(steps: int, seed: int = 11) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    """(valid rows, their volume increments (steps, codes), planted + unreadable rows)."""
    rng = np.random.default_rng(seed)
    codes = make_codes(N_CODES)
    walk = np.exp(np.cumsum(rng.normal(0, 0.004, (steps, N_CODES)), axis=0))
    price = np.round(10.0 * walk, 2)  # on the 0.01 stock tick grid
    incs = rng.integers(1, 50, (steps, N_CODES)) * 100
    volume = np.cumsum(incs, axis=0)
    amount = np.round(np.cumsum(incs * price, axis=0), 2)
    ts = START + np.arange(steps) * STEP_MS
    valid = pd.DataFrame(
        {
            "code": np.tile(np.array(codes, dtype=object), steps),
            "ts": np.repeat(ts, N_CODES),
            "price": price.ravel(),
            "volume": volume.ravel(),
            "amount": amount.ravel(),
        }
    )
    in_session = lambda: START + int(rng.integers(0, steps * STEP_MS))  # noqa: E731
    some_code = lambda: codes[int(rng.integers(0, N_CODES))]  # noqa: E731
    bad: list[dict] = []
    for i in range(PLANTED["bad_price"]):
        bad.append({"code": some_code(), "ts": in_session(), "price": [0, -1.5][i % 2],
                    "volume": 100, "amount": 100.0})  # fmt: skip
    for _ in range(PLANTED["bad_volume"]):
        bad.append({"code": some_code(), "ts": in_session(), "price": 10.0,
                    "volume": -100, "amount": 100.0})  # fmt: skip
    outside = [
        shanghai_ms(2025, 11, 24, 20, 0),  # yesterday evening
        shanghai_ms(2025, 11, 25, 9, 0),  # this morning, before the call auction
        shanghai_ms(2025, 11, 22, 10, 0),  # a Saturday, in what would be a session
    ]
    for i in range(PLANTED["out_of_session"]):
        bad.append({"code": some_code(), "ts": outside[i % 3] + i * 1000, "price": 10.0,
                    "volume": 100_000_000, "amount": 1e9})  # fmt: skip
    for i in range(UNREADABLE):
        wrong = {"code": "60000X.SH"} if i % 2 else {"price": "n/a"}
        bad.append({"code": some_code(), "ts": in_session(), "price": 10.0,
                    "volume": 100, "amount": 100.0, **wrong})  # fmt: skip
    return valid, incs, pd.DataFrame(bad, columns=COLS)


def write_replay(path: Path, valid: pd.DataFrame, bad: pd.DataFrame, seed: int = 5) -> None:
    """All rows shuffled: the replay must sort them by time itself."""
    rows = pd.concat([valid.astype(object), bad.astype(object)], ignore_index=True)
    order = np.random.default_rng(seed).permutation(len(rows))
    rows.iloc[order].to_csv(path, index=False, columns=COLS)


def expected_volumes(incs: np.ndarray) -> dict[str, np.ndarray]:
    """Per period, (bars, codes): the sum of the volume increments of each bar's ticks."""
    steps = len(incs)
    ts = START + np.arange(steps) * STEP_MS
    out = {}
    for period, length in (("1m", MINUTE_MS), ("5m", 5 * MINUTE_MS)):
        idx = (ts - DAY_OPEN) // length
        sums = np.zeros((int(idx[-1]) + 1, incs.shape[1]))
        np.add.at(sums, idx, incs)
        out[period] = sums
    out["1d"] = incs.sum(axis=0, keepdims=True).astype(float)
    return out


async def seed_history(client: Redis, keys: Keys) -> None:
    """Yesterday's last hour of 1m bars per code (a volatile walk near 10): the strategies fire."""
    rows = daily_rows(N_CODES, HISTORY_BARS, seed=100)
    rows[:, :, TS] = shanghai_ms(2025, 11, 24, 14, 0) + np.arange(HISTORY_BARS) * MINUTE_MS
    await TrendStore(client, keys).merge_rows(dict(zip(make_codes(N_CODES), rows, strict=True)), "1m")


async def wrong_bars(client: Redis, keys: Keys, expected: dict[str, np.ndarray]) -> tuple[int, int]:
    """(bars whose volume is not the sum of their ticks' increments, incl. missing and extra; bars)."""
    codes = make_codes(N_CODES)
    wrong = total = 0
    for period, sums in expected.items():
        step = {"1m": MINUTE_MS, "5m": 5 * MINUTE_MS, "1d": 0}[period]
        starts = DAY if period == "1d" else DAY_OPEN
        pipe = client.pipeline(transaction=False)
        for code in codes:
            pipe.get(keys.trend(code, period))
        for j, raw in enumerate(await pipe.execute()):
            rows = unpack(raw)
            rows = rows[rows[:, TS] >= DAY]  # not yesterday's seeded history
            got = {int(r[TS]): float(r[VOLUME]) for r in rows}
            want = {starts + k * step: float(v) for k, v in enumerate(sums[:, j])}
            total += len(want)
            wrong += sum(1 for t, v in want.items() if got.get(t) != v)
            wrong += sum(1 for t in got if t not in want)
    return wrong, total


def start(module: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as handle:
        return subprocess.Popen(
            [sys.executable, "-m", module],
            cwd=procs.ROOT,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


async def metrics(client: Redis, keys: Keys) -> dict[str, int]:
    return {k.decode(): int(v) for k, v in (await client.hgetall(keys.metrics)).items()}


async def count_keys(client: Redis, pattern: str) -> int:
    n = 0
    async for _ in client.scan_iter(match=pattern, count=1000):
        n += 1
    return n


async def run(url: str, quick: bool) -> list[Result]:
    seconds = 10 if quick else 60
    steps = int(seconds * SPEED * 1000 / STEP_MS)
    valid, incs, bad = generate(steps)
    published = len(valid) + sum(PLANTED.values())
    expected = expected_volumes(incs)
    n_bars = sum(s.size for s in expected.values())
    prefix = "bl"
    keys = Keys(prefix)
    client = connect(url)
    tmp = Path(tempfile.mkdtemp(prefix="bench-load-"))
    replay = tmp / "ticks.csv"
    write_replay(replay, valid, bad)
    await seed_history(client, keys)
    slack = int((await client.config_get("stream-node-max-entries"))["stream-node-max-entries"])
    env = procs.env_for(
        url, prefix, ticks_maxlen=TICKS_MAXLEN, bars_maxlen=BARS_MAXLEN,
        signals_maxlen=SIGNALS_MAXLEN, batch_size=100, consumer_name="bench-load",
    )  # fmt: skip
    signals = start("signals", env, tmp / "signals.log")
    quotes: subprocess.Popen[bytes] | None = None
    try:

        async def group_up() -> bool:
            if signals.poll() is not None:
                raise RuntimeError(
                    f"signals exited {signals.returncode}: {(tmp / 'signals.log').read_text()}"
                )
            try:
                await procs.group_info(client, keys.bars, SIGNALS_GROUP)
                return True
            except Exception:
                return False

        await procs.wait_until(group_up, 60, "the signals group", every=0.1)
        worker = psutil.Process(signals.pid)
        quotes = start(
            "quotes", {**env, "MARKETBUS_FEED": "replay", "MARKETBUS_REPLAY_FILE": str(replay),
                       "MARKETBUS_SPEED": str(SPEED)}, tmp / "quotes.log",
        )  # fmt: skip

        # sample counts, stream lengths and the worker's RSS while the load runs
        samples: list[tuple[float, int, int, int, int, int, int]] = []  # t, counted, x3, rss, read
        t_first: float | None = None
        t0 = time.monotonic()
        while True:
            m = await metrics(client, keys)
            now = time.monotonic()
            counted = sum(v for k, v in m.items() if k.startswith(("ticks_accepted", "ticks_rejected")))
            if m.get("ticks_accepted") and t_first is None:
                t_first = now
            pipe = client.pipeline(transaction=False)
            pipe.xlen(keys.ticks).xlen(keys.bars).xlen(keys.signals)
            lens = await pipe.execute()
            g = await procs.group_info(client, keys.bars, SIGNALS_GROUP)
            rss = worker.memory_info().rss
            samples.append((now, counted, *lens, rss, int(g.get("entries-read") or 0)))
            if counted >= published:
                break
            if now - t0 > seconds * 3 + 60:
                raise TimeoutError(f"only {counted} of {published} ticks counted after {now - t0:.0f} s")
            for p, name in ((quotes, "quotes"), (signals, "signals")):
                if p.poll() is not None:
                    raise RuntimeError(
                        f"{name} exited {p.returncode}: {(tmp / f'{name}.log').read_text()[-2000:]}"
                    )
            await asyncio.sleep(0.1)
        assert t_first is not None
        t_end = samples[-1][0]

        # the feed ended: its open bars close; then the signals group drains
        async def all_bars() -> bool:
            return (await metrics(client, keys)).get("bars_closed", 0) >= n_bars

        await procs.wait_until(all_bars, 60, "the last bars", every=0.01)
        t_drained = await procs.drained(client, keys.bars, SIGNALS_GROUP, 120)
        drain_s = t_drained - t_end
        pipe = client.pipeline(transaction=False)
        pipe.xlen(keys.ticks).xlen(keys.bars).xlen(keys.signals)
        lens = await pipe.execute()
        samples.append((time.monotonic(), published, *lens, worker.memory_info().rss, 0))

        m = await metrics(client, keys)
        rejected = {
            k.removeprefix("ticks_rejected:"): v for k, v in m.items() if k.startswith("ticks_rejected:")
        }
        dropped = sum(v for k, v in m.items() if k.startswith("ticks_dropped"))
        accepted = m.get("ticks_accepted", 0)
        match = re.search(
            r"replay \S+: (\d+) ticks, (\d+) bad rows skipped", (tmp / "quotes.log").read_text()
        )
        logged = (int(match[1]), int(match[2])) if match else None
        wrong, total_bars = await wrong_bars(client, keys, expected)
        written_signals = await count_keys(client, keys.signal_seen("*"))
    finally:
        for p in (quotes, signals):
            if p is not None:
                procs.stop(p)
        await client.aclose()
        shutil.rmtree(tmp, ignore_errors=True)

    took = t_end - t_first
    rate = accepted / took if took > 0 else 0.0
    # the slowest 5-s window of counted ticks while the feed ran
    windows = []
    run_samples = [s for s in samples[:-1] if s[0] >= t_first]
    j = 0
    for s in run_samples:
        while j < len(run_samples) and run_samples[j][0] < s[0] + 5.0:
            j += 1
        if j < len(run_samples):
            e = run_samples[j]
            windows.append((e[1] - s[1]) / (e[0] - s[0]))
    slowest = min(windows) if windows else rate
    warm = next((s[5] for s in samples if s[6] >= N_CODES), samples[0][5]) / 2**20
    last_rss = samples[-1][5] / 2**20
    reconciled = (
        accepted == published - sum(rejected.values())
        and accepted == len(valid)
        and rejected == PLANTED
        and dropped == 0
        and logged == (published, UNREADABLE)
    )
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(rejected.items())) or "none rejected"
    size = f"{N_CODES} codes / 3 s x speed {SPEED:.0f}, {published:,} ticks"
    out = [
        Result(
            "load",
            f"achieved ticks/s through quotes->bars->signals ({size}, {took:.1f} s)",
            rate,
            "ticks/s",
            target=f">= 5,000/s sustained {seconds} s",
            met=rate >= 0.99 * RATE and took >= 0.99 * seconds,
        ),
        Result("load", "slowest 5-s window of the run", slowest, "ticks/s"),
        Result(
            "load",
            f"ticks accepted vs published - rejected ({reasons}; {dropped} dropped, "
            f"{UNREADABLE} unreadable rows skipped)",
            accepted,
            "ticks",
            baseline="published - rejected",
            baseline_value=published - sum(rejected.values()),
            target="exactly equal",
            met=reconciled,
        ),
        Result(
            "load",
            f"bars whose volume != sum of their ticks' increments, missing and extra included (of "
            f"{total_bars:,}: 1m, 5m, 1d; {m.get('bars_closed', 0):,} closed in all eight periods)",
            wrong,
            "bars",
            higher_is_better=False,
            target="0",
            met=wrong == 0,
        ),
    ]
    written = {"ticks": accepted, "bars": m.get("bars_closed", 0), "signals": written_signals}
    for i, (name, cap) in enumerate(
        (("ticks", TICKS_MAXLEN), ("bars", BARS_MAXLEN), ("signals", SIGNALS_MAXLEN))
    ):
        longest = max(s[2 + i] for s in samples)
        end = samples[-1][2 + i]
        out.append(
            Result(
                "load",
                f"{name} stream longest length (end {end:,}, cap {cap:,}, {written[name]:,} written)",
                longest,
                "entries",
                higher_is_better=False,
                target=f"<= cap + {slack}",
                met=longest <= cap + slack and end >= cap and written[name] > cap + slack,
            )
        )
    out += [
        Result(
            "load",
            "signals worker RSS at the end vs after warm-up (first 1m bars consumed)",
            last_rss,
            "MiB",
            baseline="after warm-up",
            baseline_value=warm,
            higher_is_better=False,
            target="<= 1.25x warm-up",
            met=last_rss <= 1.25 * warm,
        ),
        Result(
            "load",
            f"signals group drained after the feed ended ({total_bars:,} bars, {written_signals:,} signals)",
            drain_s,
            "s",
            higher_is_better=False,
        ),
    ]
    return out
