"""The history run: every strategy at every stored bar, so the scorecard is full from the first minute.

The streaming path answers for one bar with the window of ``WINDOW_BARS`` rows ending at it
(:func:`signals.evaluate.window_ending_at`); the history run gives, for every stored closed bar of
every code and period, exactly the signals that window gives (same kernels, same windows, same ids).

How, without evaluating each of the 250 windows of a code separately (250 full-market scans):

- a bar ``t`` among a code's first ``WINDOW_BARS`` rows has the window ``rows[0 .. t]``: all these
  windows start on the series' first row. Every kernel is causal (a row's value depends on that
  row and the rows before it, from the window's first row on; see
  :func:`signals.indicators.left_align`), so the indicators of the longest of them, ``rows[0 ..
  WINDOW_BARS-1]``, hold every shorter window's values on its rows. The strategies read their last
  bar through :meth:`Aligned.at`; :class:`PrefixAligned` is the same aligned window with one
  "column" per (code, bar) answering ``at`` on that bar's row: one evaluation over the codes gives
  every bar's answer;
- a later bar (``t >= WINDOW_BARS``) has a window of its own start: those are evaluated as they
  are, one column per window, with :func:`signals.evaluate.evaluate_windows` itself.

Each run checks itself: the bars of a few codes are also evaluated window by window (the streaming
function); a strategy whose answers differ (a kernel that is not causal) is logged and evaluated
window by window for every bar.

The signals go to the ``signals_history`` stream as :class:`~marketbus.contracts.SignalBatch`
entries (one per code and period). A code is run when its series was never run, or starts earlier
than when it was last run (older bars imported); ``marketbus backfill`` forgets the runs so
everything is run again. Writing twice is harmless: the ids are deterministic and the scorecard
scores an id once.
"""

from __future__ import annotations

import asyncio
import logging
import math
import struct
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from marketbus.clock import wall_ms
from marketbus.contracts import PERIODS, Security, Signal, SignalBatch
from marketbus.streams import SIGNALS_HISTORY, Publisher
from marketbus.trend import CLOSE, TS, VOLUME, TrendStore, time_major
from marketbus.wire import DATA_FIELD, text
from signals import indicators as ind
from signals.evaluate import Target, evaluate_windows
from signals.scan import closed_only
from signals.strategies import WINDOW_BARS, Strategy, Window, evaluate_all
from signals.strategies.base import Aligned

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from marketbus.keys import Keys
    from marketbus.settings import Settings
    from signals.service import SignalsService
    from signals.store import SignalStore

log = logging.getLogger("signals.backfill")

Array = np.ndarray
Series = tuple[str, Array]  # (code, its closed rows, oldest first)

CODES_PER_EVAL = 500  # codes evaluated together (bounds the (code, bar) columns of one evaluation)
WINDOWS_PER_EVAL = 2_000  # later-bar windows evaluated together
CODES_PER_WRITE = 200  # codes whose entries and run marks are written in one transaction
SIGNALS_PER_ENTRY = 2_000  # a code with more signals in a period gets several entries
CHECK_CODES = 2  # codes checked window by window in each run
LOCK_TTL_MS = 60_000
CHECK_S = 10.0  # how often the service looks at the trend epoch for history not run yet
FULL_CHECK_S = 600.0  # and reads every series' first bar time anyway (writers outside TrendStore)
FIRST_TS = struct.Struct("<d")  # a stored record's first field, its bar time (marketbus.trend.RECORD)
TS_BYTES = FIRST_TS.size
FIELDS = ("open", "high", "low", "close", "volume")


class PrefixAligned(Aligned):
    """An aligned window of codes whose ``at`` answers for many bars of each code at once.

    Column ``k`` of the answers is code ``cols[k]`` at its (left-aligned) row ``last[k]``, as if the
    window ended there. ``at`` gathers from the flat array (one index per column, kept per
    ``back``), and on a price or volume field it is memoised (read-only): a strategy's reasons
    read it once per hit."""

    def __init__(self, w: Window, cols: Array, last: Array) -> None:
        super().__init__(w)
        self.codes: int = w.shape[1]
        self.cols = cols
        self.last = last
        self.n = last + 1
        self.N = len(cols)
        self.full = False
        self._field_at: dict[tuple[str, int], Array] = {}
        self._index: dict[int, tuple[Array, Array | None]] = {}

    def at(self, a: Array, back: int = 0) -> Array:
        for name in FIELDS:
            if self.memo.get(("field", name)) is a:
                got = self._field_at.get((name, back))
                if got is None:
                    got = self._gather(a, back)
                    got.flags.writeable = False
                    self._field_at[(name, back)] = got
                return got
        return self._gather(a, back)

    def _gather(self, a: Array, back: int) -> Array:
        if a.shape != (self.T, self.codes):
            return super().at(a, back)
        index = self._index.get(back)
        if index is None:
            rows = self.last - back
            before_first = rows < 0
            index = (
                np.maximum(rows, 0) * self.codes + self.cols,
                before_first if before_first.any() else None,
            )
            self._index[back] = index
        v = np.take(a.reshape(-1), index[0])
        if index[1] is not None:
            v[index[1]] = np.nan
        return v


def round_half_even_like_python(x: Array, digits: int) -> Array:
    """``round(v, digits)`` of Python for every value, vectorised: the nearest multiple of
    10**-digits computed in numpy, and Python's own ``round`` where the scaled value is too near a
    half (or too large) for numpy's product to be sure of the side."""
    scale = 10.0**digits
    with np.errstate(invalid="ignore", over="ignore"):
        y = x * scale
        out = np.rint(y) / scale
        frac = np.abs(y - np.trunc(y))
        risky = np.isfinite(x) & ((np.abs(frac - 0.5) < 1e-6) | (np.abs(y) >= 2.0**31))
    for i in np.flatnonzero(risky):
        out[i] = round(float(x[i]), digits)
    return out


@dataclass
class Found:
    """Signals column by column, as the Signal fields hold them (NaN for null): code ``series[j]``
    at its row ``t``, strategy ``strategies[s]``."""

    j: Array
    t: Array
    s: Array
    side: Array
    bar_ts: Array
    price: Array
    confidence: Array
    volume_ratio: Array
    change_percent: Array
    stop_loss: Array
    take_profit: Array
    reason: list[str]

    def __len__(self) -> int:
        return len(self.j)

    @classmethod
    def concat(cls, parts: Sequence[Found]) -> Found:
        names = [f for f in cls.__dataclass_fields__ if f != "reason"]
        if not parts:
            empty = {
                n: np.empty(0, dtype=np.int64 if n in ("j", "t", "s", "bar_ts") else np.float64)
                for n in names
            }
            return cls(**empty, reason=[])
        arrays = {n: np.concatenate([getattr(p, n) for p in parts]) for n in names}
        return cls(**arrays, reason=[r for p in parts for r in p.reason])

    def take(self, order: Array) -> Found:
        names = [f for f in type(self).__dataclass_fields__ if f != "reason"]
        arrays = {n: getattr(self, n)[order] for n in names}
        return type(self)(**arrays, reason=[self.reason[i] for i in order])


def _nan(values: Iterable[float | None]) -> Array:
    return np.array([math.nan if v is None else v for v in values], dtype=np.float64)


def found_of_signals(signals: Sequence[Signal], index: Mapping[str, int], order: Mapping[str, int]) -> Found:
    """Signals (of the window-by-window path) as columns; ``index``: code -> j, ``order``:
    strategy key -> s. Their row ``t`` is unknown here and set to -1 (only the order uses it)."""
    n = len(signals)
    return Found(
        j=np.array([index[x.code] for x in signals], dtype=np.int64),
        t=np.full(n, -1, dtype=np.int64),
        s=np.array([order[x.strategy] for x in signals], dtype=np.int64),
        side=np.array([1 if x.side == "BUY" else -1 for x in signals], dtype=np.int8),
        bar_ts=np.array([x.bar_ts for x in signals], dtype=np.int64),
        price=_nan(x.price for x in signals),
        confidence=_nan(x.confidence for x in signals),
        volume_ratio=_nan(x.volume_ratio for x in signals),
        change_percent=_nan(x.change_percent for x in signals),
        stop_loss=_nan(x.stop_loss for x in signals),
        take_profit=_nan(x.take_profit for x in signals),
        reason=[x.reason for x in signals],
    )


def _ratios(num: Array, den: Array) -> Array:
    """``num / den``, NaN (null) where either is not finite or ``den`` is 0 (as evaluate_windows)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num / den
    out[~(np.isfinite(num) & np.isfinite(den)) | (den == 0)] = np.nan
    return out


def prefix_found(series: Sequence[Series], strategies: Sequence[Strategy[Any]]) -> Found:
    """The signals of every bar among each code's first ``WINDOW_BARS`` rows (windows starting on
    the series' first row), all bars of all these codes in one evaluation."""
    heads = [rows[:WINDOW_BARS] for _, rows in series]
    lengths = np.array([len(h) for h in heads], dtype=np.int64)
    if not len(heads) or not lengths.any():
        return Found.concat([])
    T = int(lengths.max())
    tm = time_major(heads, T)
    w = Window.from_time_major(tm)
    cols = np.repeat(np.arange(len(heads), dtype=np.int64), lengths)
    last = np.concatenate([np.arange(n, dtype=np.int64) for n in lengths])
    w._memo["aligned"] = PrefixAligned(w, cols, last)
    # every code's rows one after the other: row t of code j is flat[offset[j] + t]
    flat = np.concatenate(heads)
    offset = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    parts: list[Found] = []
    for s, (_, hits) in enumerate(evaluate_all(strategies, w)):
        k = np.flatnonzero(hits.side)
        j, t = cols[k], last[k]
        at = offset[j] + t
        before = np.where(t > 0, at - 1, 0)
        first = t == 0
        close1, vol1 = flat[at, CLOSE], flat[at, VOLUME]
        close0 = np.where(first, np.nan, flat[before, CLOSE])
        vol0 = np.where(first, np.nan, flat[before, VOLUME])
        change = _ratios(close1 - close0, close0)
        parts.append(
            Found(
                j=j,
                t=t,
                s=np.full(len(k), s, dtype=np.int64),
                side=hits.side[k].astype(np.int8),
                bar_ts=flat[at, TS].astype(np.int64),
                price=round_half_even_like_python(hits.price[k].astype(np.float64), 4),
                confidence=round_half_even_like_python(np.clip(hits.confidence[k], 0.0, 1.0), 4),
                volume_ratio=_ratios(vol1, vol0),
                change_percent=round_half_even_like_python(change * 100, 4),
                stop_loss=round_half_even_like_python(hits.stop_loss[k].astype(np.float64), 4),
                take_profit=round_half_even_like_python(hits.take_profit[k].astype(np.float64), 4),
                reason=[hits.reasons[int(i)] for i in k],
            )
        )
    return Found.concat(parts)


def window_targets(
    series: Sequence[Series], period: str, bars: Callable[[int], Iterable[int]]
) -> list[Target]:
    """The streaming path's window for each row ``t`` in ``bars(len(rows))`` of every code."""
    return [
        Target(code, period, rows[max(0, t + 1 - WINDOW_BARS) : t + 1])
        for code, rows in series
        for t in bars(len(rows))
    ]


def windowed_signals(
    targets: Sequence[Target],
    strategies: Sequence[Strategy[Any]],
    universe: Mapping[str, Security],
    now_ms: int,
) -> list[Signal]:
    """The streaming path's own function over these windows, ``WINDOWS_PER_EVAL`` at a time."""
    out: list[Signal] = []
    for start in range(0, len(targets), WINDOWS_PER_EVAL):
        out.extend(evaluate_windows(targets[start : start + WINDOWS_PER_EVAL], strategies, universe, now_ms))
    return out


@dataclass
class History:
    """What a history run found for some codes of one period."""

    series: Sequence[Series]
    period: str
    strategies: Sequence[Strategy[Any]]
    found: Found
    now_ms: int

    def entries(self, universe: Mapping[str, Security]) -> list[dict[str, Any]]:
        """The SignalBatch JSON of every code with signals (several for a code with more than
        ``SIGNALS_PER_ENTRY``), oldest bar first, then in strategy order."""
        f = self.found
        if not len(f):
            return []
        f = f.take(np.lexsort((f.s, f.bar_ts, f.j)))
        keys = [st.key for st in self.strategies]
        names = {st.key: st.name for st in self.strategies}
        bounds = np.flatnonzero(np.diff(f.j)) + 1
        out: list[dict[str, Any]] = []
        for lo, hi in zip(np.concatenate([[0], bounds]), np.concatenate([bounds, [len(f)]]), strict=True):
            code = self.series[int(f.j[lo])][0]
            sec = universe.get(code)
            for a in range(int(lo), int(hi), SIGNALS_PER_ENTRY):
                b = min(int(hi), a + SIGNALS_PER_ENTRY)
                used = [keys[i] for i in f.s[a:b]]
                out.append(
                    {
                        "schema_version": 1,
                        "code": code,
                        "name": sec.name if sec else code,
                        "market": sec.market if sec else "unknown",
                        "period": self.period,
                        "created_ts": self.now_ms,
                        "strategy_names": {k: names[k] for k in set(used)},
                        "strategy": used,
                        "side": ["BUY" if v > 0 else "SELL" for v in f.side[a:b]],
                        "bar_ts": f.bar_ts[a:b],
                        "price": f.price[a:b],
                        "confidence": f.confidence[a:b],
                        "volume_ratio": f.volume_ratio[a:b],
                        "change_percent": f.change_percent[a:b],
                        "stop_loss": f.stop_loss[a:b],
                        "take_profit": f.take_profit[a:b],
                        "reason": f.reason[a:b],
                    }
                )
        return out

    def signals(self, universe: Mapping[str, Security]) -> list[Signal]:
        """The same as Signal messages (what the scorecard reads back from the entries)."""
        return [
            s for e in self.entries(universe) for s in SignalBatch.model_validate_json(encode(e)).signals()
        ]


def encode(entry: Mapping[str, Any]) -> bytes:
    """An entry's JSON (numpy columns as lists, NaN as null)."""
    return orjson.dumps(entry, option=orjson.OPT_SERIALIZE_NUMPY)


def mismatched_strategies(
    found: Found,
    series: Sequence[Series],
    period: str,
    strategies: Sequence[Strategy[Any]],
    universe: Mapping[str, Security],
    now_ms: int,
) -> set[str]:
    """Strategies whose answers for the codes ``series`` (the first ones of ``found``'s codes)
    differ from the streaming path's, window by window over every bar of their first
    ``WINDOW_BARS`` rows."""
    targets = window_targets(series, period, lambda n: range(min(n, WINDOW_BARS)))
    index = {code: j for j, (code, _) in enumerate(series)}
    order = {st.key: s for s, st in enumerate(strategies)}
    expected = found_of_signals(windowed_signals(targets, strategies, universe, now_ms), index, order)
    mine = found.take(np.flatnonzero(found.j < len(series)))

    def rows(f: Found, s: int) -> list[tuple[Any, ...]]:
        cols: list[Array] = [f.j, f.bar_ts, f.side, f.price, f.confidence, f.volume_ratio]
        cols += [f.change_percent, f.stop_loss, f.take_profit]
        pick = np.flatnonzero(f.s == s)
        return sorted(
            (*(float(c[i]) if not np.isnan(c[i]) else None for c in cols), f.reason[i]) for i in pick
        )

    return {st.key for s, st in enumerate(strategies) if rows(mine, s) != rows(expected, s)}


def history_found(
    series: Sequence[Series],
    period: str,
    strategies: Sequence[Strategy[Any]],
    universe: Mapping[str, Security],
    now_ms: int,
    check: int = CHECK_CODES,
) -> History:
    """Every strategy at every row of every code's rows (closed bars, oldest first): the signals
    the streaming path gives for each of those bars."""
    series = [(c, r) for c, r in series if len(r)]
    # the codes with the most rows first: the self-check takes the first ones
    series.sort(key=lambda s: -len(s[1]))
    parts = [
        prefix_found(series[a : a + CODES_PER_EVAL], strategies)
        for a in range(0, len(series), CODES_PER_EVAL)
    ]
    for n, a in enumerate(range(0, len(series), CODES_PER_EVAL)):
        parts[n].j += a
    found = Found.concat(parts)
    index = {code: j for j, (code, _) in enumerate(series)}
    order = {st.key: s for s, st in enumerate(strategies)}
    if check and series:
        bad = mismatched_strategies(found, series[:check], period, strategies, universe, now_ms)
        if bad:
            log.warning(
                "history run %s: %s differ from the window-by-window answers; evaluating them window "
                "by window (slower)",
                period,
                ", ".join(sorted(bad)),
            )
            slow = [st for st in strategies if st.key in bad]
            found = found.take(np.flatnonzero(~np.isin(found.s, [order[k] for k in bad])))
            targets = window_targets(series, period, lambda n: range(min(n, WINDOW_BARS)))
            found = Found.concat(
                [found, found_of_signals(windowed_signals(targets, slow, universe, now_ms), index, order)]
            )
    later = window_targets(series, period, lambda n: range(WINDOW_BARS, n))
    if later:
        extra = windowed_signals(later, strategies, universe, now_ms)
        found = Found.concat([found, found_of_signals(extra, index, order)])
    return History(series, period, strategies, found, now_ms)


def due_codes(first_ts: Mapping[str, int], done: Mapping[str, int]) -> list[str]:
    """Codes whose stored series (``first_ts``: its first bar) was never run, or starts earlier
    than when it was last run (``done``)."""
    return sorted(c for c, ts in first_ts.items() if c not in done or ts < done[c])


@dataclass
class RunStats:
    codes: int = 0
    bars: int = 0
    signals: int = 0
    entries: int = 0
    seconds: float = 0.0


class HistoryRun:
    """Runs the history of the codes that are due, one worker at a time across the service."""

    def __init__(
        self,
        client: Redis,
        keys: Keys,
        settings: Settings,
        trend: TrendStore,
        store: SignalStore,
        strategies: Sequence[Strategy[Any]],
        owner: str,
        market_now: Callable[[], Awaitable[int]],
        periods: Sequence[str] = PERIODS,
    ) -> None:
        self.client = client
        self.keys = keys
        self.trend = trend
        self.store = store
        self.strategies = strategies
        self.owner = owner
        self.market_now = market_now
        self.periods = tuple(periods)
        self.read_bars = 2 * settings.trend_max_bars  # a series holds up to twice the cap
        self.publisher = Publisher.of(SIGNALS_HISTORY, keys, settings, client)
        self.last = RunStats()
        self._cpu = ThreadPoolExecutor(max_workers=1, thread_name_prefix="history-eval")
        self._epoch: object = None  # the trend epoch at the last complete check
        self._checked_at: float | None = None  # when that was (monotonic)

    async def _unchanged(self) -> tuple[bool, object]:
        """Whether nothing can be due since the last complete check: the trend epoch (bumped when
        a series is created or bars are merged into one) is the same, and the last full read of
        the series' first bar times is recent. Then no first bar time is read at all: reading
        them for the whole market (6,500 codes x eight periods) every few seconds held the loop
        the streaming path runs on."""
        epoch = await self.client.get(self.keys.trend_epoch)
        fresh = self._checked_at is not None and time.monotonic() - self._checked_at < FULL_CHECK_S
        return (fresh and epoch == self._epoch), epoch

    def close(self) -> None:
        self._cpu.shutdown(wait=True)

    async def run_due(self) -> RunStats:
        """Run every period's due codes, unless another worker is running them now."""
        unchanged, epoch = await self._unchanged()
        if unchanged:
            return RunStats()
        if not await self.client.set(self.keys.backfill_lock, self.owner, nx=True, px=LOCK_TTL_MS):
            return RunStats()
        keeper = asyncio.create_task(self._keep_lock())
        total = RunStats()
        started = time.perf_counter()
        try:
            for period in self.periods:
                st = await self.run_period(period)
                total.codes += st.codes
                total.bars += st.bars
                total.signals += st.signals
                total.entries += st.entries
        finally:
            keeper.cancel()
            await self.client.eval(
                "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end"
                " return 0",
                1,
                self.keys.backfill_lock,
                self.owner,
            )
        total.seconds = time.perf_counter() - started
        self._epoch, self._checked_at = epoch, time.monotonic()
        if total.codes:
            # its arrays (up to POOL_MAX_BYTES: a chunk's columns are every bar of 500 codes) would
            # otherwise stay with the worker until the next history run, most likely never
            await asyncio.get_running_loop().run_in_executor(self._cpu, ind.release)
            self.last = total
            log.info(
                "history run: %d codes, %d bars, %d signals in %d entries, %.2f s",
                total.codes,
                total.bars,
                total.signals,
                total.entries,
                total.seconds,
            )
        return total

    async def _keep_lock(self) -> None:
        while True:
            await asyncio.sleep(LOCK_TTL_MS / 3000)
            await self.client.pexpire(self.keys.backfill_lock, LOCK_TTL_MS)

    async def _first_ts(self, codes: Sequence[str], period: str) -> dict[str, int]:
        """The first stored bar time of each code that has a series of ``period``."""
        pipe = self.client.pipeline(transaction=False)
        for code in codes:  # the first record's time field only: this runs every CHECK_S seconds
            pipe.getrange(self.keys.trend(code, period), 0, TS_BYTES - 1)
        out: dict[str, int] = {}
        for code, raw in zip(codes, await pipe.execute(), strict=True):
            if raw and len(raw) == TS_BYTES:
                out[code] = int(FIRST_TS.unpack(raw)[0])
        return out

    async def run_period(self, period: str) -> RunStats:
        codes = await self.store.codes()
        raw = await self.client.hgetall(self.keys.backfill_done(period))
        done = {text(k): int(v) for k, v in raw.items()}
        first = await self._first_ts(codes, period)
        due = due_codes(first, done)
        st = RunStats()
        if not due:
            return st
        universe = await self.store.universe(due)
        loop = asyncio.get_running_loop()
        for start in range(0, len(due), CODES_PER_EVAL):
            chunk = due[start : start + CODES_PER_EVAL]
            tails = await self.trend.tails(chunk, period, self.read_bars)
            now = await self.market_now()
            series = [(c, closed_only(rows, period, now)) for c, rows in zip(chunk, tails, strict=True)]
            found, entries = await loop.run_in_executor(
                self._cpu, run_chunk, series, period, self.strategies, universe, wall_ms()
            )
            marks = {c: int(r[0, TS]) for c, r in zip(chunk, tails, strict=True) if len(r)}
            await self._write(entries, marks, period)
            st.codes += len(chunk)
            st.bars += sum(len(r) for _, r in series)
            st.signals += found
            st.entries += len(entries)
        return st

    async def _write(
        self, entries: Sequence[tuple[str, bytes]], marks: Mapping[str, int], period: str
    ) -> None:
        """The entries and the codes' run marks, ``CODES_PER_WRITE`` codes per transaction (a
        code's mark is written with its entries: a run stopped halfway resumes at the next code)."""
        by_code: dict[str, list[bytes]] = {}
        for code, data in entries:
            by_code.setdefault(code, []).append(data)
        codes = sorted(marks)
        for start in range(0, len(codes), CODES_PER_WRITE):
            part = codes[start : start + CODES_PER_WRITE]
            pipe = self.client.pipeline(transaction=True)
            for code in part:
                for data in by_code.get(code, ()):
                    self.publisher.add_encoded(pipe, {DATA_FIELD: data})
            pipe.hset(self.keys.backfill_done(period), mapping={c: marks[c] for c in part})
            await pipe.execute()


def run_chunk(
    series: Sequence[Series],
    period: str,
    strategies: Sequence[Strategy[Any]],
    universe: Mapping[str, Security],
    now_ms: int,
) -> tuple[int, list[tuple[str, bytes]]]:
    """The CPU part of a run over some codes: (signals found, the encoded entries by code)."""
    history = history_found(series, period, strategies, universe, now_ms)
    return len(history.found), [(e["code"], encode(e)) for e in history.entries(universe)]


def attach(service: SignalsService) -> None:
    """Run the history from the signals service's runtime: as soon as it consumes, then every
    ``CHECK_S`` seconds (history seeded or imported later is run then), unless
    ``MARKETBUS_BACKFILL_HISTORY`` is false."""
    if not service.settings.backfill_history:
        return
    rt = service.runtime
    runs: list[HistoryRun] = []

    async def start() -> None:  # after the service's own start: its client, store and clock exist
        scanner = service.scanner
        runs.append(
            HistoryRun(
                service.client,
                service.keys,
                service.settings,
                scanner.trend,
                scanner.store,
                service.strategies,
                service.consumer,
                service.market.now,
                service.settings.signal_periods,  # the periods the streaming path evaluates
            )
        )

    async def check() -> None:
        for run in runs:
            await run.run_due()

    def stop() -> None:
        for run in runs:
            run.close()

    rt.on_start(start)
    rt.every(CHECK_S, check, "history run")
    rt.on_stop(stop)
