"""History import: Tushare-layout bars from CSV/Parquet into the trend series, idempotently.

``period="1d"``: Tushare ``daily`` layout (ts_code, trade_date YYYYMMDD, open, high, low, close,
pre_close, change, pct_chg, vol, amount) with ``vol`` in lots of 100 shares and ``amount`` in
thousands of yuan; converted to shares and yuan. ``period="1w"``/``"1M"``: Tushare ``weekly`` /
``monthly`` (or ``stk_weekly_monthly``), the same columns and units; ``trade_date`` is any day of
the week or month (Tushare gives its last trading day, or its last day), and the bar time becomes
the week's or month's bar start (00:00 of its first trading day, :func:`marketbus.sessions.bucket_of_day`).
``period="1m"``/``"5m"``/``"15m"``/``"30m"``/``"60m"``: Tushare ``stk_mins`` layout (ts_code,
trade_time, open, close, high, low, vol, amount) with ``vol`` in shares and ``amount`` in yuan;
``trade_time`` is the bar's end (60m bars end at 10:30, 11:30, 14:00, 15:00) and the 09:30:00 row
(the opening call auction) is folded into the day's first bar, as
:func:`quotes.tables.stk_mins_bar_start` defines (the replay feed reads these files the same
way). The bar time becomes the bar's start.

The coarser periods made of the imported one (:func:`quotes.aggregate.coarser_periods`: 5m, 15m,
30m and 60m of 1m bars, 1w and 1M of 1d bars) are derived from the file's good rows by
:func:`quotes.aggregate.resample` and merged too; the first bar of a code is left out when the
file begins after its start (it would hold only part of its time). The last one may be partial
(the week so far): a later import or the live path replaces it.

Every bad row is reported with its line number (header = line 1) and reason and skipped; the good
rows are merged into the trend series (a bar of the same time replaces, importing twice changes
nothing). Codes not in the universe are added with their code as name.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from marketbus.contracts import CODE_RE, PERIODS
from marketbus.keys import Keys
from marketbus.redis import connect
from marketbus.sessions import (
    DAY_MS,
    INTRADAY_MS,
    MULTI_DAY_PERIODS,
    SESSIONS,
    UTC_OFFSET_MS,
    bucket_of_day,
    bucket_of_minute,
)
from marketbus.settings import Settings
from marketbus.trend import NF, TS, TrendStore
from quotes.aggregate import coarser_periods, resample
from quotes.tables import (
    TUSHARE_UNITS,
    BadRow,
    fold_open_rows,
    numeric,
    read_table,
    shanghai_epoch_ms,
    stk_mins_bar_start,
)
from quotes.universe import add_to_universe

if TYPE_CHECKING:
    from redis.asyncio import Redis

CHUNK_CODES = 500
PRICE_COLUMNS = ("open", "high", "low", "close")
LAYOUTS = {  # every period of PERIODS: time column, shares per vol unit, yuan per amount unit
    period: (column, *TUSHARE_UNITS[column])
    for period in PERIODS
    for column in ("trade_time" if period in INTRADAY_MS else "trade_date",)
}

ProgressFn = Callable[[int, int], None]


@dataclass
class ImportSummary:
    path: str
    period: str
    rows: int = 0  # data rows read
    bars: int = 0  # good rows, merged
    added: int = 0  # bars that were not in the series before
    codes: int = 0
    new_codes: list[str] = field(default_factory=list)  # added to the universe
    derived: dict[str, tuple[int, int]] = field(default_factory=dict)  # period -> (bars, new)
    rejected: list[BadRow] = field(default_factory=list)
    seconds: float = 0.0

    def render(self, max_rejects: int = 50) -> str:
        lines = [
            f"{self.path}: {self.rows} rows, {self.bars} bars ({self.added} new) for "
            f"{self.codes} codes, period {self.period}, {len(self.rejected)} rejected, "
            f"{len(self.new_codes)} codes added to the universe, {self.seconds:.2f}s"
        ]
        if self.derived:
            made = ", ".join(f"{p} {bars} bars ({new} new)" for p, (bars, new) in self.derived.items())
            lines.append(f"  derived: {made}")
        lines += [f"  rejected {row}" for row in self.rejected[:max_rejects]]
        if len(self.rejected) > max_rejects:
            lines.append(f"  ... and {len(self.rejected) - max_rejects} more rejected rows")
        return "\n".join(lines)


@dataclass
class ParsedBars:
    rows_by_code: dict[str, np.ndarray]
    rejected: list[BadRow]
    rows: int


def parse_bars(path: str | Path, period: str = "1d") -> ParsedBars:
    """Read and validate a Tushare-layout file (pure: no I/O besides reading it)."""
    if period not in LAYOUTS:
        raise ValueError(f"period must be one of {', '.join(LAYOUTS)}, not {period!r}")
    time_col, vol_unit, amount_unit = LAYOUTS[period]
    frame, lines, rejected = read_table(path, dtype={"ts_code": str, time_col: str})
    unsplittable = len(rejected)
    required = ["ts_code", time_col, *PRICE_COLUMNS, "vol", "amount"]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{path}: missing column(s) {', '.join(missing)} (Tushare layout needs {', '.join(required)})"
        )
    n = len(frame)
    reason = np.full(n, "", dtype=object)
    flagged = np.zeros(n, dtype=bool)  # reason != "", kept as booleans: compared on every check

    def flag(mask: np.ndarray, message: Callable[[int], str]) -> None:
        for i in np.flatnonzero(mask & ~flagged):
            reason[i] = message(int(i))
            flagged[i] = True

    codes = frame["ts_code"].astype("string").str.strip().str.upper()
    raw = {c: frame[c] for c in required}
    flag(frame[required].isna().all(axis=1).to_numpy(), lambda i: "empty row")
    flag(~codes.str.match(CODE_RE.pattern).to_numpy(dtype=bool, na_value=False),
         lambda i: f"bad ts_code {raw['ts_code'].iloc[i]!r} (expected like 600519.SH)")  # fmt: skip
    fmt = "%Y%m%d" if time_col == "trade_date" else None
    ts = shanghai_epoch_ms(frame[time_col], fmt)
    flag(np.isnan(ts), lambda i: f"bad {time_col} {raw[time_col].iloc[i]!r}")
    values = {c: numeric(frame[c]) for c in (*PRICE_COLUMNS, "vol", "amount")}
    for c in (*PRICE_COLUMNS, "vol", "amount"):
        flag(np.isnan(values[c]), lambda i, c=c: f"bad {c} {raw[c].iloc[i]!r}")  # type: ignore[misc]
    for c in PRICE_COLUMNS:
        flag(values[c] <= 0, lambda i, c=c: f"{c} {values[c][i]} is not positive")  # type: ignore[misc]
    for c in ("vol", "amount"):
        flag(values[c] < 0, lambda i, c=c: f"{c} {values[c][i]} is negative")  # type: ignore[misc]
    o, h, lo, cl = (values[c] for c in PRICE_COLUMNS)
    flag(h < np.fmax(np.fmax(o, cl), lo),
         lambda i: f"high {h[i]} is below open/close/low")  # fmt: skip
    flag(lo > np.fmin(o, cl), lambda i: f"low {lo[i]} is above open/close")
    if period == "1d":
        # weekends only: the bundled holiday calendar is not trusted over the data source
        weekday = ((np.nan_to_num(ts) + UTC_OFFSET_MS) // DAY_MS + 3) % 7
        flag(~np.isnan(ts) & (weekday >= 5),
             lambda i: f"{raw[time_col].iloc[i]} is a weekend day")  # fmt: skip
        bar_ts = ts
        is_open = np.zeros(n, dtype=bool)
    elif period in MULTI_DAY_PERIODS:
        bar_ts = _day_buckets(ts, period)  # any day of the week or month: its bar start
        is_open = np.zeros(n, dtype=bool)
    else:
        bar_ts, is_open = _intraday_bar_start(ts, period)
        flag(~np.isnan(ts) & np.isnan(bar_ts),
             lambda i: f"{raw[time_col].iloc[i]} is not the end of a {period} session bar "
                       "(nor the 09:30:00 opening auction)")  # fmt: skip
    # duplicates of (code, time) among the valid rows: the first one wins (an opening-auction row
    # and the first bar share a time: they are folded, not duplicates)
    code_arr = codes.to_numpy(dtype=object, na_value="")
    key = pd.DataFrame({"c": code_arr, "t": bar_ts, "a": is_open})
    valid = np.flatnonzero(~flagged)
    repeated = key.iloc[valid].duplicated(keep="first").to_numpy()
    if repeated.any():
        # the first line of each repeated key (only the rows a repeat involves are looked at)
        involved = key.iloc[valid].duplicated(keep=False).to_numpy()
        firsts = valid[involved & ~repeated]
        first_line = dict(zip(map(tuple, key.iloc[firsts].to_numpy()), lines[firsts], strict=True))
        dup = np.zeros(n, dtype=bool)
        dup[valid[repeated]] = True
        flag(dup, lambda i: f"duplicate of line {first_line[tuple(key.iloc[i])]}")
    good = ~flagged
    rejected = sorted(
        [*rejected, *(BadRow(int(lines[i]), str(reason[i])) for i in np.flatnonzero(~good))],
        key=lambda row: row.line,
    )
    bars = np.column_stack([o, h, lo, cl, values["vol"] * vol_unit, values["amount"] * amount_unit])
    keep, bars = fold_open_rows(code_arr, np.where(good, bar_ts, np.nan), is_open & good, bars)
    rows = np.column_stack([bar_ts, bars])[keep]
    good_codes = code_arr[keep]
    # by code, then time: the codes as integers (their rank) for the sort, not 1.5 M string compares
    rank, _ = pd.factorize(good_codes, sort=True)
    order = np.lexsort((rows[:, 0], rank))
    rows, good_codes = rows[order], good_codes[order]
    starts: list[int] = []
    if len(rows):
        starts = np.flatnonzero(np.r_[True, good_codes[1:] != good_codes[:-1]]).tolist()
    bounds = [*starts, len(rows)]
    rows_by_code = {
        str(good_codes[a]): np.ascontiguousarray(rows[a:b].reshape(-1, NF))
        for a, b in itertools.pairwise(bounds)
    }
    return ParsedBars(rows_by_code, rejected, n + unsplittable)


def _day_buckets(ts: np.ndarray, period: str) -> np.ndarray:
    """The 1w / 1M bar start of each day (NaN stays NaN)."""
    out = np.full(len(ts), np.nan)
    ok = ~np.isnan(ts)
    days, inverse = np.unique(ts[ok], return_inverse=True)
    out[ok] = np.array([bucket_of_day(int(d), period) for d in days], dtype=np.float64)[inverse]
    return out


def _intraday_bar_start(ts: np.ndarray, period: str) -> tuple[np.ndarray, np.ndarray]:
    """:func:`quotes.tables.stk_mins_bar_start`, which aligns bars to multiples of their length
    after midnight; where the session opens are no such multiple (60m: the morning opens at
    09:30, so its bars end at 10:30 and 11:30), each row's bar is checked by the session rule of
    :func:`marketbus.sessions.bucket_of_minute` instead."""
    step = INTRADAY_MS[period]
    bar_ts, is_open = stk_mins_bar_start(ts, step)
    if all(open_ % step == 0 for open_, _close in SESSIONS):
        return bar_ts, is_open
    for i in np.flatnonzero(~np.isnan(ts) & ~is_open):
        start = int(ts[i]) - step
        tod = (start + UTC_OFFSET_MS) % DAY_MS
        within = any(open_ <= tod and tod + step <= close for open_, close in SESSIONS)
        bar_ts[i] = start if within and bucket_of_minute(start, period) == start else np.nan
    return bar_ts, is_open


def derive(rows_by_code: dict[str, np.ndarray], period: str) -> dict[str, dict[str, np.ndarray]]:
    """The bars of every coarser period made of imported ``period`` bars (pure): coarser period ->
    code -> rows; a code's first bar is left out when its rows begin after that bar's start."""
    out: dict[str, dict[str, np.ndarray]] = {}
    codes = list(rows_by_code)
    times = np.concatenate([rows_by_code[c][:, TS] for c in codes]) if codes else np.empty(0)
    cuts = np.cumsum([len(rows_by_code[c]) for c in codes])[:-1]
    # every code's bars share their times: each distinct time is bucketed once, not per code
    days, inverse = np.unique(times, return_inverse=True)
    for coarser in coarser_periods(period):
        buckets = np.array([bucket_of_minute(int(d), coarser) for d in days], dtype=np.float64)
        starts = np.split(buckets[inverse], cuts)
        made = {
            code: resample(rows_by_code[code], coarser, whole_first=True, starts=start)
            for code, start in zip(codes, starts, strict=True)
        }
        out[coarser] = {code: rows for code, rows in made.items() if len(rows)}
    return out


async def import_history(
    path: str | Path,
    settings: Settings,
    period: str = "1d",
    progress: bool | ProgressFn = True,
    client: Redis | None = None,
) -> ImportSummary:
    """Import a Tushare-layout file into the trend series of ``period``; see the module doc.

    ``progress``: True shows a rich progress bar on stderr, False nothing, a callable gets
    ``(codes_done, codes_total)``. ``client``: an open redis.asyncio client to use (default: one
    created from ``settings.redis_url`` in the running loop and closed at the end).
    Raises ValueError for an unreadable file or missing columns, FileNotFoundError when absent.
    """
    started = time.perf_counter()
    if client is None and not settings.redis_url:
        raise ValueError("MARKETBUS_REDIS_URL is not set")
    keys = Keys(settings.key_prefix)
    own = client is None
    with _Progress(progress, f"import {Path(path).name} ({period})") as bar:
        parsed = parse_bars(path, period)  # the bar shows "reading" meanwhile
        summary = ImportSummary(path=str(path), period=period, rows=parsed.rows)
        summary.rejected = parsed.rejected
        codes = list(parsed.rows_by_code)
        bar.start(len(codes))
        if client is None:
            client = connect(settings.redis_url)
        try:
            store = TrendStore(client, keys, settings.trend_max_bars)
            for start in range(0, len(codes), CHUNK_CODES):
                chunk = {c: parsed.rows_by_code[c] for c in codes[start : start + CHUNK_CODES]}
                summary.added += await store.merge_rows(chunk, period)
                for coarser, rows_by_code in derive(chunk, period).items():
                    bars, new = summary.derived.get(coarser, (0, 0))
                    new += await store.merge_rows(rows_by_code, coarser)
                    summary.derived[coarser] = (bars + sum(map(len, rows_by_code.values())), new)
                bar.update(len(chunk))
            summary.new_codes = await add_to_universe(client, keys, codes)
        finally:
            if own:
                await client.aclose()
    summary.codes = len(parsed.rows_by_code)
    summary.bars = sum(len(rows) for rows in parsed.rows_by_code.values())
    summary.seconds = time.perf_counter() - started
    return summary


def run_import_history(
    path: str | Path, settings: Settings, period: str = "1d", progress: bool = True
) -> ImportSummary:
    """Synchronous entry for a CLI: runs :func:`import_history` in its own event loop."""
    import asyncio

    return asyncio.run(import_history(path, settings, period, progress))


class _Progress:
    """A rich progress bar (indeterminate while reading), a callback, or nothing."""

    def __init__(self, progress: bool | ProgressFn, label: str) -> None:
        from rich.progress import Progress, TaskID

        self.total = 0
        self.done = 0
        self.label = label
        self.callback: ProgressFn | None = progress if callable(progress) else None
        self._rich: Progress | None = None
        self._task: TaskID | None = None
        if progress is True:
            from rich.console import Console

            self._rich = Progress(console=Console(stderr=True), transient=False)
            self._task = self._rich.add_task(f"{label}: reading", total=None)

    def start(self, total: int) -> None:
        self.total = total
        if self._rich is not None and self._task is not None:
            self._rich.update(self._task, description=f"{self.label}: codes", total=total)
        if self.callback is not None:
            self.callback(0, total)

    def __enter__(self) -> _Progress:
        if self._rich is not None:
            self._rich.start()
        return self

    def update(self, n: int) -> None:
        self.done += n
        if self._rich is not None and self._task is not None:
            self._rich.update(self._task, completed=self.done)
        if self.callback is not None:
            self.callback(self.done, self.total)

    def __exit__(self, *exc: object) -> None:
        if self._rich is not None:
            self._rich.stop()


def main(argv: list[str] | None = None) -> int:
    """``python -m quotes.importer FILE [--period 1d]`` (what ``marketbus import-history`` runs)."""
    import argparse
    import sys

    from redis.exceptions import RedisError

    from marketbus.redis import redact
    from marketbus.settings import load_settings

    parser = argparse.ArgumentParser(prog="marketbus import-history")
    parser.add_argument("file")
    parser.add_argument("--period", default="1d", choices=PERIODS)
    args = parser.parse_args(argv)
    settings = load_settings()
    try:
        summary = run_import_history(args.file, settings, args.period)
    except (FileNotFoundError, ValueError) as exc:
        print(f"marketbus import-history: {exc}", file=sys.stderr)
        return 2
    except RedisError as exc:
        where = redact(settings.redis_url or "")
        print(f"marketbus import-history: cannot reach the server at {where}: {exc}", file=sys.stderr)
        return 2
    print(summary.render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
