"""Replay ticks or bars from a CSV or Parquet file, in timestamp order, at ``settings.speed``.

Tick files: ``code`` (or ``ts_code``), ``ts``, ``price``, ``volume`` (cumulative shares of the
day), ``amount`` (cumulative yuan), optionally ``open``, ``high``, ``low``, ``pre_close``,
``turnover``. Bar files (no ``price`` column): ``code``, ``ts`` (bar start) or ``trade_date``,
``open``, ``high``, ``low``, ``close``, ``volume`` (shares in the bar), ``amount`` (yuan in the bar)
and optionally ``period`` (1m, 5m, 1d; default 1d with ``trade_date``, else 1m). Each bar becomes
four ticks (open, low/high, high/low, close) with cumulative volume, so the service rebuilds it.

Tushare files replay as they import (``marketbus import-history``): ``ts_code`` for ``code``,
``vol`` for ``volume`` in the layout's units (``daily``: lots and thousands of yuan), and a
``trade_time`` column is the ``stk_mins`` bar END, with the 09:30:00 opening-auction row folded
into the day's first bar (:func:`quotes.tables.stk_mins_bar_start`, the one convention for both).

``ts`` may be epoch ms, epoch seconds, or a date-time in Asia/Shanghai. A row that cannot be read
(bad code, time or number) is logged with its line number (header = line 1) and skipped; ticks
that parse but are invalid (a negative price, outside the sessions...) reach the service, which
sends them to the DLQ with the reason.

The clock runs at ``speed`` market seconds per wall second from the first row and jumps over
gaps that would take more than a wall second (nights, lunch, sparse files).
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import numpy as np

from marketbus.contracts import CODE_RE, Tick
from marketbus.sessions import MINUTE_MS, bar_close_ms, local_day_start_ms
from quotes.feeds.base import Feed, FeedContext, make_tick
from quotes.tables import (
    TUSHARE_UNITS,
    BadRow,
    fold_open_rows,
    numeric,
    read_table,
    shanghai_epoch_ms,
    stk_mins_bar_start,
)

log = logging.getLogger("quotes.replay")

TIME_COLUMNS = ("ts", "time", "datetime", "trade_time", "trade_date")
# where the four ticks of a bar fall, after its start
BAR_TICK_OFFSETS = {
    "1m": (0, 15_000, 30_000, 50_000),
    "5m": (0, 60_000, 150_000, 280_000),
    "1d": (570 * MINUTE_MS, 630 * MINUTE_MS, 810 * MINUTE_MS, 899 * MINUTE_MS),
}
STK_MINS_STEPS = {"1m": MINUTE_MS, "5m": 5 * MINUTE_MS}


def load_replay(path: str | Path) -> tuple[list[Tick], list[BadRow]]:
    """The ticks of a replay file in timestamp order (stable), and the rows that were skipped."""
    frame, lines, bad = read_table(path, dtype={"code": str, "ts_code": str, "trade_date": str})
    frame = frame.rename(columns={"ts_code": "code"})
    time_col = next((c for c in TIME_COLUMNS if c in frame.columns), None)
    if "code" not in frame.columns or time_col is None:
        raise ValueError(f"{path}: needs a code (or ts_code) column and one of {TIME_COLUMNS}")
    is_ticks = "price" in frame.columns
    tushare_vol = not is_ticks and "volume" not in frame.columns and "vol" in frame.columns
    if tushare_vol:
        if time_col not in TUSHARE_UNITS:
            raise ValueError(f"{path}: a vol column (Tushare) needs trade_date or trade_time, not {time_col}")
        frame = frame.rename(columns={"vol": "volume"})
    needed = ["price", "volume", "amount"] if is_ticks else ["open", "high", "low", "close",
                                                             "volume", "amount"]  # fmt: skip
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
    codes = frame["code"].astype("string").str.strip().str.upper()
    code_ok = codes.str.match(CODE_RE.pattern).to_numpy(dtype=bool, na_value=False)
    ts = shanghai_epoch_ms(frame[time_col], "%Y%m%d" if time_col == "trade_date" else None)
    cols = {c: numeric(frame[c]) for c in needed}
    if tushare_vol:
        vol_unit, amount_unit = TUSHARE_UNITS[time_col]
        cols["volume"], cols["amount"] = cols["volume"] * vol_unit, cols["amount"] * amount_unit
    reasons = np.full(len(frame), "", dtype=object)
    for c in reversed(needed):
        reasons[np.isnan(cols[c])] = f"bad {c}"
    reasons[np.isnan(ts)] = f"bad {time_col}"
    reasons[~code_ok] = "bad code"
    periods = np.empty(0, dtype=object)
    stk_mins = not is_ticks and time_col == "trade_time"
    if not is_ticks:
        default = "1d" if time_col == "trade_date" else "1m"
        periods = (
            frame["period"].astype("string").fillna(default).to_numpy(dtype=object)
            if "period" in frame.columns
            else np.full(len(frame), default, dtype=object)
        )
    for i in np.flatnonzero(reasons != ""):
        column = str(reasons[i]).removeprefix("bad ")
        value = frame[column].iloc[i] if column in frame.columns else None
        bad.append(BadRow(int(lines[i]), f"{reasons[i]} {value!r}"))
    if stk_mins:  # Tushare stk_mins: trade_time is the bar's end (see quotes.tables)
        steps = np.array([STK_MINS_STEPS.get(str(p), np.nan) for p in periods], dtype=np.float64)
        ts, is_open = stk_mins_bar_start(ts, steps)
        for i in np.flatnonzero((reasons == "") & np.isnan(ts)):
            label = frame[time_col].iloc[i]
            why = (f"trade_time {label!r} is not the end of a {periods[i]} session bar "
                   "(nor the 09:30:00 opening auction)") if str(periods[i]) in STK_MINS_STEPS else (
                   f"bad period {periods[i]!r} for trade_time (stk_mins bars: 1m, 5m)")  # fmt: skip
            reasons[i] = why
            bad.append(BadRow(int(lines[i]), why))
        values = np.column_stack([cols[c] for c in ("open", "high", "low", "close", "volume", "amount")])
        ok = reasons == ""
        keep, values = fold_open_rows(codes.to_numpy(dtype=object, na_value=""),
                                      np.where(ok, ts, np.nan), is_open & ok, values)  # fmt: skip
        for k, c in enumerate(("open", "high", "low", "close", "volume", "amount")):
            cols[c] = values[:, k]
        reasons[ok & ~keep] = "folded"  # an opening-auction row, now part of the first bar
    good = reasons == ""
    order = np.argsort(ts[good], kind="stable")
    idx = np.flatnonzero(good)[order]
    code_arr = codes.to_numpy(dtype=object, na_value="")
    if is_ticks:
        extras = {c: numeric(frame[c]) for c in ("open", "high", "low", "pre_close", "turnover")
                  if c in frame.columns}  # fmt: skip

        def opt(name: str, i: int) -> float | None:
            values = extras.get(name)
            return None if values is None or np.isnan(values[i]) else float(values[i])

        ticks = [
            make_tick(
                str(code_arr[i]),
                int(ts[i]),
                float(cols["price"][i]),
                float(cols["volume"][i]),
                float(cols["amount"][i]),
                opt("open", i),
                opt("high", i),
                opt("low", i),
                opt("pre_close", i),
                opt("turnover", i),
            )
            for i in idx
        ]
    else:
        ticks = bars_to_ticks(idx, code_arr, ts, cols, periods, lines, bad)
        ticks.sort(key=lambda t: t.ts)
    bad.sort(key=lambda row: row.line)
    return ticks, bad


def bars_to_ticks(
    idx: np.ndarray,
    codes: np.ndarray,
    ts: np.ndarray,
    cols: dict[str, np.ndarray],
    periods: np.ndarray,
    lines: np.ndarray,
    bad: list[BadRow],
) -> list[Tick]:
    """Four ticks per bar with day-cumulative volume and amount, and pre_close where known."""
    out: list[Tick] = []
    cum: dict[str, tuple[int, float, float]] = {}  # code -> (day, volume, amount)
    last_close: dict[str, tuple[int, float]] = {}  # code -> (day, close of that day so far)
    pre_close: dict[str, float] = {}
    o, h, lo, c = cols["open"], cols["high"], cols["low"], cols["close"]
    for i in idx:
        period = str(periods[i])
        if period not in BAR_TICK_OFFSETS:
            bad.append(BadRow(int(lines[i]), f"bad period {period!r} (1m, 5m, 1d)"))
            continue
        code, start = str(codes[i]), int(ts[i])
        day = local_day_start_ms(start)
        d, vol0, amt0 = cum.get(code, (day, 0.0, 0.0))
        if d != day:
            vol0 = amt0 = 0.0
        seen = last_close.get(code)
        if seen is not None and seen[0] != day:
            pre_close[code] = seen[1]
        up = c[i] >= o[i]
        path = (o[i], lo[i], h[i], c[i]) if up else (o[i], h[i], lo[i], c[i])
        volume, amount = float(cols["volume"][i]), float(cols["amount"][i])
        for k, (offset, price) in enumerate(zip(BAR_TICK_OFFSETS[period], path, strict=True)):
            share = k / 3
            out.append(make_tick(code, start + offset, float(price), vol0 + volume * share,
                                 round(amt0 + amount * share, 2),
                                 pre_close=pre_close.get(code)))  # fmt: skip
        cum[code] = (day, vol0 + volume, amt0 + amount)
        last_close[code] = (day, float(c[i]))
    return out


def recording_end(last_ts: int) -> int:
    """The market time a recording whose last tick is at ``last_ts`` hands over up to: the close of
    that tick's trading day (15:00 plus the grace), never before the tick."""
    return max(last_ts + 1, bar_close_ms(local_day_start_ms(last_ts), "1d"))


class ReplayFeed(Feed):
    name = "replay"

    def __init__(
        self,
        ticks: list[Tick],
        speed: float,
        batch: int = 500,
        interval: float = 0.02,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ticks = ticks
        self.times = [t.ts for t in ticks]
        self.speed = speed
        self.batch = batch
        self.interval = interval
        self._monotonic = monotonic
        self._next = 0
        self._delivered = self.times[0] if ticks else 0

    @property
    def codes(self) -> list[str]:
        return sorted({t.code for t in self.ticks})

    def now_ms(self) -> int:
        return self._delivered

    async def batches(self) -> AsyncIterator[list[Tick]]:
        n = len(self.ticks)
        if not n:
            return
        base_market, base_wall = self.times[0], self._monotonic()
        one_wall_second = self.speed * 1000
        while self._next < n:
            clock = base_market + (self._monotonic() - base_wall) * one_wall_second
            upcoming = self.times[self._next]
            if upcoming > clock + one_wall_second:  # a gap: jump over it
                base_market, base_wall, clock = upcoming, self._monotonic(), upcoming
            end = min(bisect.bisect_right(self.times, clock, lo=self._next), self._next + self.batch)
            if end > self._next:
                batch = self.ticks[self._next : end]
                self._next = end
                yield batch
                # handed over: everything before the next tick's time is done; after the last
                # tick the recording's last trading day is over (its day bar closes; its week and
                # month bars only if that day ends them)
                self._delivered = self.times[end] if end < n else recording_end(self.times[-1])
            else:
                self._delivered = max(self._delivered, min(int(clock), upcoming))
                await asyncio.sleep(self.interval)


def create(ctx: FeedContext) -> Feed:
    path = ctx.settings.replay_file
    if not path:
        raise ValueError("feed=replay needs MARKETBUS_REPLAY_FILE (a CSV or Parquet file)")
    ticks, bad = load_replay(path)
    for row in bad[:100]:
        log.warning("replay %s %s: skipped", path, row)
    if len(bad) > 100:
        log.warning("replay %s: %d more bad rows skipped", path, len(bad) - 100)
    log.info("replay %s: %d ticks, %d bad rows skipped", path, len(ticks), len(bad))
    return ReplayFeed(ticks, ctx.settings.speed, batch=ctx.settings.tick_batch)


__all__ = ["ReplayFeed", "create", "load_replay"]
