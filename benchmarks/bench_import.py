"""History import: a Tushare ``daily`` CSV of 6,000 codes x 250 trading days (quick: 1,000 codes).

The file (generated here, by trade date as Tushare serves it: ``ts_code, trade_date, open, high,
low, close, pre_close, change, pct_chg, vol, amount``, ``vol`` in lots, ``amount`` in thousands of
yuan) carries a few planted bad rows: a bad code, a bad date, a negative open, a high below the
low, a weekend date, a volume that is not a number, and a duplicate of an earlier row.

``quotes.importer.import_history`` reads, validates, converts and merges it into the trend series
of the private server (timed from the call to its return, progress bar off), then a second import
of the same file (idempotent: 0 new bars, the stored bytes unchanged). Checked too: exactly the
planted rows rejected, with their line numbers, and every stored series equal to the generated
bars. Baseline in the same run: a bare pipelined SET of the same packed bytes per code
(``marketbus.trend.pack``, 500 codes per pipeline as the importer), so the ratio shows what
reading, parsing, validating and merging cost on top of writing.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from redis.asyncio import Redis

from benchmarks.data import codes as make_codes
from benchmarks.data import daily_rows
from benchmarks.harness import Result
from marketbus.keys import Keys
from marketbus.redis import connect
from marketbus.sessions import UTC_OFFSET_MS
from marketbus.settings import load_settings
from marketbus.trend import pack
from quotes.importer import CHUNK_CODES, import_history

DAYS = 250
COLUMNS = ["ts_code", "trade_date", "open", "high", "low", "close", "pre_close", "change", "pct_chg",
           "vol", "amount"]  # fmt: skip


def trading_days() -> tuple[list[str], np.ndarray]:
    """250 weekdays up to 2024-12-31: YYYYMMDD and the epoch ms of their start in Asia/Shanghai."""
    days = pd.bdate_range(end="2024-12-31", periods=DAYS)
    ms = days.to_numpy().astype("datetime64[ms]").astype(np.int64) - UTC_OFFSET_MS
    return list(days.strftime("%Y%m%d")), ms.astype(float)


def generate(n_codes: int, path: Path) -> tuple[dict[str, np.ndarray], list[int]]:
    """Write the file; return the bars it holds per code (shares, yuan) and the bad rows' lines."""
    codes = make_codes(n_codes)
    dates, day_ms = trading_days()
    data = daily_rows(n_codes, DAYS, seed=7)  # (codes, days, 7)
    lots = np.round(data[:, :, 5] / 100)
    amount_k = np.round(lots * 100 * data[:, :, 4] / 1000, 3)
    close = data[:, :, 4]
    pre = np.concatenate([close[:, :1], close[:, :-1]], axis=1)
    # by trade date, every code of the day (as Tushare's daily endpoint returns them)
    frame = pd.DataFrame(
        {
            "ts_code": np.tile(np.array(codes, dtype=object), DAYS),
            "trade_date": np.repeat(np.array(dates, dtype=object), n_codes),
            "open": data[:, :, 1].T.ravel(),
            "high": data[:, :, 2].T.ravel(),
            "low": data[:, :, 3].T.ravel(),
            "close": close.T.ravel(),
            "pre_close": pre.T.ravel(),
            "change": np.round(close - pre, 2).T.ravel(),
            "pct_chg": np.round((close / pre - 1) * 100, 4).T.ravel(),
            "vol": lots.T.ravel(),
            "amount": amount_k.T.ravel(),
        }
    )
    c, d = codes[1], dates[10]
    dup = frame.iloc[7].to_list()  # row 7 (line 9) again, further down
    bad = [
        ["60000X.SH", d, 10, 11, 9, 10, 10, 0, 0, 100, 1000],  # bad code
        [c, "2024131", 10, 11, 9, 10, 10, 0, 0, 100, 1000],  # bad trade_date
        [c, d, -1, 11, 9, 10, 10, 0, 0, 100, 1000],  # open not positive
        [c, d, 10, 9, 10.5, 10, 10, 0, 0, 100, 1000],  # high below the low
        [c, "20241228", 10, 11, 9, 10, 10, 0, 0, 100, 1000],  # a Saturday
        [c, d, 10, 11, 9, 10, 10, 0, 0, "n/a", 1000],  # vol not a number
        dup,  # duplicate of an earlier line
    ]
    n = len(frame)
    at = sorted(int(x) for x in np.random.default_rng(3).choice(np.arange(100, n), len(bad), replace=False))
    lines = [pos + k + 2 for k, pos in enumerate(at)]  # header = line 1
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(",".join(COLUMNS) + "\n")
        prev = 0
        for pos, row in zip([*at, n], [*bad, None], strict=True):
            frame.iloc[prev:pos].to_csv(handle, header=False, index=False)
            if row is not None:
                handle.write(",".join(str(v) for v in row) + "\n")
            prev = pos
    bars = {}
    for j, code in enumerate(codes):
        rows = data[j].copy()
        rows[:, 0] = day_ms
        rows[:, 5] = lots[j] * 100.0
        rows[:, 6] = amount_k[j] * 1000.0
        bars[code] = rows
    return bars, lines


async def stored(client: Redis, keys: list[str]) -> list[bytes | None]:
    out: list[bytes | None] = []
    for start in range(0, len(keys), CHUNK_CODES):
        pipe = client.pipeline(transaction=False)
        for k in keys[start : start + CHUNK_CODES]:
            pipe.get(k)
        out.extend(await pipe.execute())
    return out


def digest(values: list[bytes | None]) -> str:
    h = hashlib.sha256()
    for v in values:
        h.update(v or b"-")
    return h.hexdigest()


async def run(url: str, quick: bool) -> list[Result]:
    n_codes = 1000 if quick else 6000
    tmp = Path(tempfile.mkdtemp(prefix="bench-import-"))
    path = tmp / "daily.csv"
    bars, bad_lines = generate(n_codes, path)
    settings = load_settings(redis_url=url, key_prefix="bimp")
    keys = Keys(settings.key_prefix)
    client = connect(url)
    codes = list(bars)
    trend_keys = [keys.trend(c, "1d") for c in codes]
    try:
        # baseline: the same packed bytes, SET per code, 500 codes per pipeline
        t0 = time.perf_counter()
        for start in range(0, n_codes, CHUNK_CODES):
            pipe = client.pipeline(transaction=False)
            for c in codes[start : start + CHUNK_CODES]:
                pipe.set(f"bimpbase:{c}", pack(bars[c]))
            await pipe.execute()
        bare_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        first = await import_history(path, settings, "1d", progress=False, client=client)
        first_s = time.perf_counter() - t0
        after_first = await stored(client, trend_keys)
        t0 = time.perf_counter()
        second = await import_history(path, settings, "1d", progress=False, client=client)
        second_s = time.perf_counter() - t0
        after_second = await stored(client, trend_keys)
    finally:
        await client.aclose()
        shutil.rmtree(tmp, ignore_errors=True)
    differ = sum(1 for c, raw in zip(codes, after_first, strict=True) if raw != pack(bars[c]))
    unchanged = digest(after_first) == digest(after_second)
    got_lines = [r.line for r in first.rejected]
    size = f"{n_codes:,} codes x {DAYS} daily bars, {first.rows:,} rows"
    return [
        Result(
            "import",
            f"import_history, {size} ({first.bars:,} bars, {first.added:,} new)",
            first_s,
            "s",
            baseline="bare pipelined SET of the packed bytes",
            baseline_value=bare_s,
            higher_is_better=False,
            target="<= 10 s (6,000 x 250)",
            met=None if quick else first_s <= 10,
        ),
        Result(
            "import",
            f"planted bad rows rejected (lines {', '.join(map(str, got_lines))})",
            len(first.rejected),
            "rows",
            target=f"exactly the {len(bad_lines)} planted, by line",
            met=got_lines == bad_lines and first.bars == n_codes * DAYS,
        ),
        Result(
            "import",
            "stored series differing from the generated bars",
            differ,
            "codes",
            higher_is_better=False,
            target="0",
            met=differ == 0 and first.added == n_codes * DAYS,
        ),
        Result(
            "import",
            f"second import (idempotent): new bars, stored bytes {'unchanged' if unchanged else 'CHANGED'}",
            second.added,
            "bars",
            higher_is_better=False,
            target="0 new, unchanged",
            met=second.added == 0 and unchanged and second.bars == first.bars,
        ),
        Result(
            "import",
            f"second import time, {size}",
            second_s,
            "s",
            baseline="first import",
            baseline_value=first_s,
            higher_is_better=False,
        ),
    ]
