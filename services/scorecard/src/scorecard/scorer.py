"""The Redis side of the scorecard: signals in, outcomes kept up to date as bars close, figures out.

State (all in Redis, under the ``{prefix}`` hash tag, so a restart resumes where it stopped):

- outcome hashes, one per period, strategy and market: signal id -> the packed outcome
  (:mod:`scorecard.outcomes`), written again whenever it changes;
- pending hashes, one per period and code: signal id -> the signal's facts while a horizon or a
  market figure is still to come (and the market figures already final), with an index set;
- the market figures of every span (period, t0, t1) once final (a week, then recomputed if asked);
- the newest bar time seen per period, and the periods whose outcomes changed ("dirty").

Every effect is a function of the signal and the stored bars, written with ``HSET`` of the same
value: a redelivered signal or bar changes nothing, and a signal seen on two streams (the live one
and the history run's) is one signal, scored once. A batch's writes are one transaction
(``MULTI``/``EXEC``); the runtime acknowledges the entries after it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict, ValidationError

from marketbus.clock import wall_ms
from marketbus.contracts import PERIODS, Bar, ScorecardState, Security, Signal, SignalBatch, StrategyInfo
from marketbus.trend import RECORD_BYTES, TS, TrendStore
from marketbus.trend import unpack as unpack_rows
from marketbus.wire import text
from scorecard import figures
from scorecard.market import MarketSpan, market_spans
from scorecard.outcomes import HORIZONS, Outcome, apply_market, entry_row, forward, unpack

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from marketbus.keys import Keys
    from marketbus.settings import Settings

log = logging.getLogger("scorecard")

TAIL_BARS = 64  # bars read per code first; more when a signal's bar is older
MARKET_TTL_S = 7 * 24 * 3600
MARKET_MARGIN_BARS = 32  # read a little further back than the signal's code needs, for other codes
UNIVERSE_MAX_AGE_S = 60.0
SPANS_KEPT = 200_000  # final market figures kept in memory per period
PACE = 20.0  # a period's figures are computed again at the earliest 20x their last duration later


class Pending(BaseModel):
    """A scored signal whose outcome may still change: its facts and what is already final."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    code: str
    period: str
    strategy: str
    market: str
    side: int
    confidence: float
    bar_ts: int
    stop: float | None = None
    take: float | None = None
    # horizon -> [market, csi300] once the market figures of its span are final
    settled: dict[str, tuple[float | None, float | None]] = {}
    state: str = ""  # digest of the outcome last written
    known: int | None = None  # horizons whose bars were there when it was last written

    @classmethod
    def of(cls, s: Signal) -> Pending:
        return cls(
            id=s.id,
            code=s.code,
            period=s.period,
            strategy=s.strategy,
            market=s.market,
            side=1 if s.side == "BUY" else -1,
            confidence=s.confidence,
            bar_ts=s.bar_ts,
            stop=s.stop_loss,
            take=s.take_profit,
        )


@dataclass
class Stats:
    signals: int = 0  # closed-bar signals seen (history included)
    scored: int = 0  # of those, new ones scored
    duplicates: int = 0  # already scored (redelivered, or on both streams)
    provisional: int = 0  # provisional signals and withdrawals, not scored
    unscorable: int = 0  # the signal's bar is not in its trend series
    completed: int = 0  # outcomes that will not change any more
    refreshes: int = 0


def quiet(r: Pending, rows: np.ndarray, newest: int) -> bool:
    """Nothing can have changed for ``r`` since it was written: no further horizon's bars, and no
    horizon waiting for its market figures whose span a later bar has closed (a cheap test before
    computing the outcome again)."""
    if r.known is None:
        return False
    i0 = entry_row(rows, r.bar_ts)
    if i0 is None:
        return False
    after = len(rows) - 1 - i0
    if sum(1 for h in HORIZONS if h <= after) != r.known:
        return False
    waiting = [h for h in HORIZONS[: r.known] if str(h) not in r.settled]
    return not any(rows[i0 + h, TS] < newest for h in waiting)


def digest(packed: bytes) -> str:
    return hashlib.blake2b(packed, digest_size=8).hexdigest()


class Scorer:
    """One scorecard worker's handlers. Its changes are serialised by one lock (run one worker)."""

    def __init__(self, client: Redis, keys: Keys, settings: Settings) -> None:
        self.client = client
        self.keys = keys
        self.settings = settings
        self.trend = TrendStore(client, keys, settings.trend_max_bars)
        self.full_bars = 2 * settings.trend_max_bars  # a series holds up to twice the cap
        self.lock = asyncio.Lock()
        self.stats = Stats()
        self._universe: dict[str, str] = {}  # code -> market
        self._swept: dict[tuple[str, str], tuple[int, int]] = {}  # (period, code) -> (last bar, newest)
        self._due_at: dict[str, float] = {}  # period -> loop time its figures may be computed again
        self._spans: dict[str, dict[tuple[int, int], MarketSpan]] = {}  # final market figures
        self._universe_at = -math.inf

    # ------------------------------------------------------------------ handlers
    async def on_signals(self, signals: Sequence[Signal]) -> None:
        closed = [s for s in signals if not s.provisional]
        self.stats.provisional += len(signals) - len(closed)
        await self.score(closed)

    async def on_history(self, batches: Sequence[SignalBatch]) -> None:
        await self.score([s for b in batches for s in b.signals()])

    async def on_bars(self, bars: Sequence[Bar]) -> None:
        async with self.lock:
            newest: dict[str, int] = {}
            for b in bars:
                newest[b.period] = max(newest.get(b.period, 0), b.ts)
            await self._see_newest(newest)
            pairs = sorted({(b.period, b.code) for b in bars})
            members = await self.client.smismember(
                self.keys.score_pending_index, [f"{p}|{c}" for p, c in pairs]
            )
            await self._advance(
                await self._load_pending([pc for pc, m in zip(pairs, members, strict=True) if m])
            )

    async def score(self, signals: Sequence[Signal]) -> None:
        """Score the closed-bar signals not scored yet."""
        self.stats.signals += len(signals)
        unique = list({s.id: s for s in signals}.values())
        self.stats.duplicates += len(signals) - len(unique)
        if not unique:
            return
        async with self.lock:
            by_cell: dict[str, list[Signal]] = {}
            for s in unique:
                by_cell.setdefault(self.keys.score_outcomes(s.period, s.strategy, s.market), []).append(s)
            pipe = self.client.pipeline(transaction=False)
            for key, items in by_cell.items():
                pipe.hmget(key, [s.id for s in items])
            fresh = [
                Pending.of(s)
                for items, old in zip(by_cell.values(), await pipe.execute(), strict=True)
                for s, raw in zip(items, old, strict=True)
                if raw is None
            ]
            self.stats.duplicates += len(unique) - len(fresh)
            await self._advance(fresh, fresh=True)

    async def sweep(self) -> None:
        """Bring the pending outcomes up to date whose code has a new bar, or whose period has (a
        market figure may have become final), since the last sweep: what the bar handler may have
        missed (a signal scored while its bars arrived, a code without bars of its own)."""
        async with self.lock:
            index = sorted(text(m) for m in await self.client.smembers(self.keys.score_pending_index))
            pairs = [(m.partition("|")[0], m.partition("|")[2]) for m in index]
            if not pairs:
                return
            newest = await self._newest({p for p, _ in pairs})
            pipe = self.client.pipeline(transaction=False)
            for period, code in pairs:
                pipe.getrange(self.keys.trend(code, period), -RECORD_BYTES, -1)
            seen: dict[tuple[str, str], tuple[int, int]] = {}
            for (period, code), raw in zip(pairs, await pipe.execute(), strict=True):
                rows = unpack_rows(raw)
                seen[(period, code)] = (int(rows[-1, TS]) if len(rows) else 0, newest.get(period, 0))
            due = [pc for pc in pairs if self._swept.get(pc) != seen[pc]]
            await self._advance(await self._load_pending(due, drop_empty=True))
            self._swept = {pc: self._swept.get(pc, seen[pc]) for pc in pairs}

    # ------------------------------------------------------------------ outcomes
    async def _load_pending(
        self, pairs: Sequence[tuple[str, str]], drop_empty: bool = False
    ) -> list[Pending]:
        if not pairs:
            return []
        pipe = self.client.pipeline(transaction=False)
        for period, code in pairs:
            pipe.hgetall(self.keys.score_pending(period, code))
        out: list[Pending] = []
        empty: list[str] = []
        for (period, code), raw in zip(pairs, await pipe.execute(), strict=True):
            if not raw:
                empty.append(f"{period}|{code}")
            for value in raw.values():
                try:
                    out.append(Pending.model_validate_json(value))
                except ValidationError as exc:
                    log.warning("dropping an unreadable pending outcome: %s", exc.errors()[0]["msg"])
        if drop_empty and empty:
            await self.client.srem(self.keys.score_pending_index, *empty)
        return out

    async def _series(self, wanted: Mapping[tuple[str, str], int]) -> dict[tuple[str, str], np.ndarray]:
        """The rows of each (period, code), reaching back to at least the given bar time when the
        series has it (a short tail first; the whole series where that is too short)."""
        by_period: dict[str, list[str]] = {}
        for period, code in wanted:
            by_period.setdefault(period, []).append(code)
        out: dict[tuple[str, str], np.ndarray] = {}
        for period, codes in by_period.items():
            tails = await self.trend.tails(codes, period, TAIL_BARS)
            for code, rows in zip(codes, tails, strict=True):
                if len(rows) == TAIL_BARS and rows[0, TS] > wanted[(period, code)]:
                    rows = await self.trend.tail(code, period, self.full_bars)
                out[(period, code)] = rows
        return out

    async def _see_newest(self, newest: Mapping[str, int]) -> None:
        if newest:
            await self.client.zadd(self.keys.score_newest, dict(newest), gt=True)

    async def _newest(self, periods: Iterable[str]) -> dict[str, int]:
        periods = sorted(set(periods))
        scores = await self.client.zmscore(self.keys.score_newest, periods)
        return {p: int(s) for p, s in zip(periods, scores, strict=True) if s is not None}

    async def _advance(self, records: Sequence[Pending], fresh: bool = False) -> None:
        """Compute the outcome of each signal from its code's bars, settle the horizons whose market
        figures are final, and write what changed in one transaction."""
        if not records:
            return
        wanted: dict[tuple[str, str], int] = {}
        for r in records:
            key = (r.period, r.code)
            wanted[key] = min(wanted.get(key, r.bar_ts), r.bar_ts)
        series = await self._series(wanted)
        newest: dict[str, int] = {}
        for (period, _), rows in series.items():
            if len(rows):
                newest[period] = max(newest.get(period, 0), int(rows[-1, TS]))
        await self._see_newest(newest)
        newest = await self._newest({r.period for r in records})
        if not fresh:  # every pending signal of these codes is looked at: the sweep need not
            for (period, code), rows in series.items():
                self._swept[(period, code)] = (int(rows[-1, TS]) if len(rows) else 0, newest.get(period, 0))
        outcomes: list[tuple[Pending, Outcome]] = []
        spans: dict[str, set[tuple[int, int]]] = {}
        depth: dict[str, int] = {}
        gone: list[Pending] = []
        for r in records:
            rows = series[(r.period, r.code)]
            if not fresh and quiet(r, rows, newest.get(r.period, 0)):
                continue
            o = forward(rows, r.bar_ts, r.side, r.confidence, r.stop, r.take)
            if o is None:
                if fresh:
                    self.stats.unscorable += 1
                else:
                    gone.append(r)
                continue
            for h, ho in zip(HORIZONS, o.horizons, strict=True):
                final = r.settled.get(str(h))
                if final is not None:
                    apply_market(ho, r.side, *final)
                elif ho.t1 is not None and ho.t1 < newest.get(r.period, 0):
                    spans.setdefault(r.period, set()).add((r.bar_ts, ho.t1))
                    depth[r.period] = max(depth.get(r.period, 0), len(rows) - o.row)
            outcomes.append((r, o))
        figures_of: dict[str, dict[tuple[int, int], MarketSpan]] = {}
        for period, wanted_spans in spans.items():
            figures_of[period] = await self._market(period, wanted_spans, depth[period])
        await self._write(outcomes, figures_of, gone, fresh)

    async def _write(
        self,
        outcomes: Sequence[tuple[Pending, Outcome]],
        figures_of: Mapping[str, Mapping[tuple[int, int], MarketSpan]],
        gone: Sequence[Pending],
        fresh: bool,
    ) -> None:
        k = self.keys
        pipe = self.client.pipeline(transaction=True)
        dirty: set[str] = set()
        cells: dict[str, dict[str, bytes]] = {}  # outcome hash -> id -> packed outcome
        pending: dict[str, dict[str, str]] = {}  # pending hash -> id -> JSON
        for r, o in outcomes:
            settled = dict(r.settled)
            for h, ho in zip(HORIZONS, o.horizons, strict=True):
                span = figures_of.get(r.period, {}).get((r.bar_ts, ho.t1 or 0)) if not ho.settled else None
                if span is not None:
                    apply_market(ho, r.side, span.market, span.csi300)
                    settled[str(h)] = (span.market, span.csi300)
            packed = o.pack()
            state = digest(packed)
            if not fresh and state == r.state:
                continue  # nothing new since it was written
            cells.setdefault(k.score_outcomes(r.period, r.strategy, r.market), {})[r.id] = packed
            dirty.add(r.period)
            pending_key = k.score_pending(r.period, r.code)
            if o.complete():
                self.stats.completed += 1
                if not fresh:
                    pipe.hdel(pending_key, r.id)
            else:
                known = sum(1 for ho in o.horizons if ho.known)
                update = r.model_copy(update={"settled": settled, "state": state, "known": known})
                pending.setdefault(pending_key, {})[r.id] = update.model_dump_json()
                pipe.sadd(k.score_pending_index, f"{r.period}|{r.code}")
            self.stats.scored += int(fresh)
        for key, mapping in cells.items():
            pipe.hset(key, mapping=mapping)  # type: ignore[arg-type]
        for key, values in pending.items():
            pipe.hset(key, mapping=values)  # type: ignore[arg-type]
        for period in dirty:
            pipe.sadd(
                k.score_cells(period),
                *sorted({f"{r.strategy}|{r.market}" for r, _ in outcomes if r.period == period}),
            )
        for r in gone:  # its bars were trimmed away: the outcome stays as last written
            pipe.hdel(k.score_pending(r.period, r.code), r.id)
        if dirty:
            pipe.sadd(k.score_dirty, *sorted(dirty))
        if len(pipe):
            await pipe.execute()

    # ------------------------------------------------------------------ the market
    async def _markets(self) -> dict[str, str]:
        """code -> market of the universe (reloaded every minute)."""
        loop = asyncio.get_running_loop()
        if loop.time() - self._universe_at > UNIVERSE_MAX_AGE_S:
            raw = await self.client.hgetall(self.keys.universe)
            out: dict[str, str] = {}
            for code, value in raw.items():
                try:
                    out[text(code)] = Security.model_validate_json(value).market
                except ValidationError:
                    continue
            self._universe, self._universe_at = out, loop.time()
        return self._universe

    async def _market(
        self, period: str, spans: set[tuple[int, int]], depth: int
    ) -> dict[tuple[int, int], MarketSpan]:
        """The market figures of final spans: stored ones, the others computed from every code's
        bars (reading ``depth`` bars back and a margin) and stored."""
        known = self._spans.setdefault(period, {})
        out = {span: known[span] for span in spans if span in known}
        ordered = sorted(spans - set(out))
        pipe = self.client.pipeline(transaction=False)
        for t0, t1 in ordered:
            pipe.hget(self.keys.score_market(period, t0), str(t1))
        missing: list[tuple[int, int]] = []
        for span, raw in zip(ordered, await pipe.execute() if ordered else [], strict=True):
            if raw is None:
                missing.append(span)
            else:
                out[span] = MarketSpan.from_json(orjson.loads(raw))
        self._remember(period, out)
        if not missing:
            return out
        markets = await self._markets()
        codes = sorted(markets)
        n = min(self.full_bars, depth + MARKET_MARGIN_BARS)
        tails = await self.trend.tails(codes, period, n)
        oldest = min(t0 for t0, _ in missing)
        series = {}
        for code, rows in zip(codes, tails, strict=True):
            if len(rows) == n and rows[0, TS] > oldest and n < self.full_bars:
                rows = await self.trend.tail(code, period, self.full_bars)
            series[code] = rows
        computed = await asyncio.to_thread(market_spans, series, markets, missing)
        pipe = self.client.pipeline(transaction=False)
        for (t0, t1), fig in computed.items():
            key = self.keys.score_market(period, t0)
            pipe.hset(key, str(t1), orjson.dumps(fig.to_json()))
            pipe.expire(key, MARKET_TTL_S)
        await pipe.execute()
        out.update(computed)
        self._remember(period, computed)
        return out

    def _remember(self, period: str, spans: Mapping[tuple[int, int], MarketSpan]) -> None:
        """Keep final market figures in memory too (they never change), up to a bound."""
        known = self._spans.setdefault(period, {})
        if len(known) + len(spans) > SPANS_KEPT:
            known.clear()
        known.update(spans)

    # ------------------------------------------------------------------ the figures
    async def refresh(self) -> list[str]:
        """Recompute the figures of the periods whose outcomes changed; the periods done."""
        k = self.keys
        popped = sorted(text(p) for p in await self.client.spop(k.score_dirty, 1000) or [])
        loop = asyncio.get_running_loop()
        later = [p for p in popped if self._due_at.get(p, -math.inf) > loop.time()]
        if later:  # computed moments ago: again once its pace allows
            await self.client.sadd(k.score_dirty, *later)
        periods = [p for p in popped if p not in later]
        if not periods:
            return []
        names = await self._strategy_names()
        min_samples = self.settings.scorecard_min_samples
        for period in periods:
            started = loop.time()
            scored = await self._scored(period)
            rows, dists = await asyncio.to_thread(
                figures.period_scorecard, scored, period, names, min_samples
            )
            # a period whose figures take long to compute is computed less often (CPU stays low)
            self._due_at[period] = loop.time() + PACE * (loop.time() - started)
            pipe = self.client.pipeline(transaction=True)
            pipe.delete(k.scorecard(period), k.scorecard_distribution(period))
            if rows:
                pipe.hset(
                    k.scorecard(period), mapping={figures.field_of(r): r.model_dump_json() for r in rows}
                )
                pipe.hset(
                    k.scorecard_distribution(period),
                    mapping={figures.field_of(d): d.model_dump_json() for d in dists},
                )
            counts = {"scored": len(scored.records), "pending": figures.pending_count(scored.records)}
            pipe.hset(k.scorecard_meta, f"period:{period}", orjson.dumps(counts))
            pipe.hset(k.scorecard_meta, "state", (await self._state(period, counts)).model_dump_json())
            await pipe.execute()
        self.stats.refreshes += 1
        return periods

    async def _state(self, period: str, counts: Mapping[str, int]) -> ScorecardState:
        """The ScorecardState with ``period``'s new counts and the other periods' stored ones."""
        per: dict[str, Mapping[str, int]] = {}
        for field, raw in (await self.client.hgetall(self.keys.scorecard_meta)).items():
            name = text(field)
            if name.startswith("period:"):
                per[name.removeprefix("period:")] = orjson.loads(raw)
        per[period] = counts
        periods = [p for p in PERIODS if per.get(p, {}).get("scored")]
        return ScorecardState(
            updated_ts=wall_ms(),
            horizons=list(HORIZONS),
            min_samples=self.settings.scorecard_min_samples,
            periods=periods,
            scored=sum(int(c.get("scored", 0)) for c in per.values()),
            pending=sum(int(c.get("pending", 0)) for c in per.values()),
        )

    async def _strategy_names(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for key, raw in (await self.client.hgetall(self.keys.strategies)).items():
            try:
                out[text(key)] = StrategyInfo.model_validate_json(raw).name
            except ValidationError:
                continue
        return out

    async def _cells(self, period: str) -> list[tuple[str, str]]:
        cells = sorted(text(m) for m in await self.client.smembers(self.keys.score_cells(period)))
        return [(c.partition("|")[0], c.partition("|")[2]) for c in cells]

    async def _scored(self, period: str) -> figures.Scored:
        cells = await self._cells(period)
        pipe = self.client.pipeline(transaction=False)
        for strategy, market in cells:
            pipe.hvals(self.keys.score_outcomes(period, strategy, market))
        raws: list[bytes] = []
        strategies: list[str] = []
        markets: list[str] = []
        for (strategy, market), values in zip(cells, await pipe.execute(), strict=True):
            raws.extend(values)
            strategies.extend([strategy] * len(values))
            markets.extend([market] * len(values))
        return figures.Scored(unpack(raws), strategies, markets)
