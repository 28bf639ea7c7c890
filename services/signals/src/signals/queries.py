"""Queries from ``{mb}:queries`` (see :mod:`marketbus.queries`), answered on their reply keys.

Kinds:

- ``evaluate``: each (code, strategy) on the code's last *closed* bar of the period, through the one
  evaluation the bars and the scan use (:func:`signals.evaluate.evaluate_windows`), so a query gives
  the signal the scan would; an unknown code or strategy, or a code without bars, is said in its
  item and the others go on;
- ``index_analysis``: :func:`signals.index_analysis.analyse` of the code's closed daily bars.

A query whose deadline has passed is skipped (its asker stopped waiting). A question that cannot be
answered is a ``rejected`` reply, a failure a ``failed`` one: the asker learns at once instead of
waiting out its timeout. The consumer runtime acknowledges the batch after the replies are written.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from marketbus.clock import MarketClock, wall_ms
from marketbus.consumer import Runtime
from marketbus.contracts import EvaluateArgs, IndexAnalysisArgs, Query, Security
from marketbus.queries import (
    EvaluateResult,
    IndexAnalysis,
    Outcome,
    QueryReply,
    answer,
    expired,
    own_reply_key,
)
from marketbus.streams import QUERY_ANSWERS
from marketbus.trend import CLOSE, TS, TrendStore
from signals.evaluate import Target, evaluate_windows
from signals.index_analysis import WARMUP_BARS, TooFewBars, analyse, pct
from signals.market_time import MarketTime
from signals.scan import closed_only
from signals.store import SignalStore
from signals.strategies import WINDOW_BARS, Strategy

log = logging.getLogger("signals.queries")

QUERY_BATCH = 50
SLACK_BARS = 8  # read a few bars more than the window: the last ones may not have closed


class Rejected(ValueError):
    """The question cannot be answered (its reason goes back to the asker)."""


def evaluate_items(
    args: EvaluateArgs,
    windows: Mapping[str, np.ndarray],
    strategies: Sequence[Strategy[Any]],
    universe: Mapping[str, Security],
    now_ms: int,
) -> EvaluateResult:
    """Every item of ``args`` on its code's window (closed bars, oldest first): the strategies
    asked run once on all the codes asked, as the scan runs them."""
    by_key = {s.key: s for s in strategies}
    asked = [by_key[k] for k in dict.fromkeys(i.strategy for i in args.items) if k in by_key]
    codes = [c for c in dict.fromkeys(i.code for i in args.items) if len(windows.get(c, ()))]
    targets = [Target(c, args.period, windows[c][-WINDOW_BARS:]) for c in codes]
    found = {(s.code, s.strategy): s for s in evaluate_windows(targets, asked, universe, now_ms)}
    out = []
    for item in args.items:
        sec = universe.get(item.code)
        rows = windows.get(item.code)
        base = {"code": item.code, "strategy": item.strategy, "name": sec.name if sec else None}
        if item.strategy not in by_key:
            known = ", ".join(by_key)
            out.append(Outcome(**base, error=f"unknown strategy {item.strategy!r} (known: {known})"))
            continue
        if rows is None or not len(rows):
            why = f"no closed {args.period} bars of {item.code}" if sec else f"unknown code {item.code}"
            out.append(Outcome(**base, error=why))
            continue
        close = float(rows[-1, CLOSE])
        change = pct(close, float(rows[-2, CLOSE])) if len(rows) > 1 else None
        sig = found.get((item.code, item.strategy))
        out.append(
            Outcome(
                **base,
                side=sig.side if sig else None,
                reason=sig.reason if sig else None,
                confidence=sig.confidence if sig else 0.0,
                price=close,
                change_percent=change,
                bar_ts=int(rows[-1, TS]),
            )
        )
    return EvaluateResult(period=args.period, items=out)


class QueryHandler:
    """Answers the queries of one signals worker (its stores are built on the runtime's client)."""

    def __init__(self, runtime: Runtime, strategies: Sequence[Strategy[Any]], fallback: MarketClock) -> None:
        self.runtime = runtime
        self.strategies = strategies
        self.fallback = fallback
        self.skipped = 0  # expired queries, or ones with a foreign reply key

    async def start(self) -> None:
        rt = self.runtime
        self.client = rt.client
        self.keys = rt.keys
        self.trend = TrendStore(rt.client, rt.keys, rt.settings.trend_max_bars)
        self.store = SignalStore(rt.client, rt.keys, rt.settings.signals_maxlen)
        self.market = MarketTime(rt.client, rt.keys, self.fallback)

    async def handle(self, queries: Sequence[Query]) -> None:
        live = []
        now = wall_ms()
        for q in queries:
            if expired(q, now):
                self.skipped += 1
                log.info(
                    "query %s (%s) skipped: its deadline passed %d ms ago", q.id, q.kind, now - q.deadline_ts
                )
            elif not own_reply_key(self.keys, q):
                self.skipped += 1
                log.warning(
                    "query %s skipped: reply key %r is not %r", q.id, q.reply_key, self.keys.query_reply(q.id)
                )
            else:
                live.append(q)
        if not live:
            return
        replies = [(q, await self._reply(q)) for q in live]
        pipe = self.client.pipeline(transaction=True)
        for q, reply in replies:
            answer(pipe, q, reply)
        await pipe.execute()

    async def _reply(self, q: Query) -> QueryReply:
        worker = self.runtime.consumer
        try:
            result = await self._answer(q.arguments)
        except Rejected as exc:
            return QueryReply(
                query_id=q.id, status="rejected", error=str(exc), worker=worker, answered_ts=wall_ms()
            )
        except Exception as exc:
            log.exception("query %s (%s) failed", q.id, q.kind)
            error = f"{type(exc).__name__}: {exc}"
            return QueryReply(
                query_id=q.id, status="failed", error=error, worker=worker, answered_ts=wall_ms()
            )
        return QueryReply(query_id=q.id, result=result, worker=worker, answered_ts=wall_ms())

    async def _answer(self, args: EvaluateArgs | IndexAnalysisArgs) -> EvaluateResult | IndexAnalysis:
        if isinstance(args, EvaluateArgs):
            return await self._evaluate(args)
        return await self._index_analysis(args)

    async def _closed(self, codes: Sequence[str], period: str, bars: int) -> dict[str, np.ndarray]:
        now = await self.market.now()
        tails = await self.trend.tails(codes, period, bars + SLACK_BARS)
        return {c: closed_only(rows, period, now)[-bars:] for c, rows in zip(codes, tails, strict=True)}

    async def _evaluate(self, args: EvaluateArgs) -> EvaluateResult:
        codes = list(dict.fromkeys(i.code for i in args.items))
        windows = await self._closed(codes, args.period, WINDOW_BARS)
        universe = await self.store.universe(codes)
        return evaluate_items(args, windows, self.strategies, universe, wall_ms())

    async def _index_analysis(self, args: IndexAnalysisArgs) -> IndexAnalysis:
        rows = (await self._closed([args.code], "1d", args.days + WARMUP_BARS))[args.code]
        if not len(rows) and args.code not in await self.store.universe([args.code]):
            raise Rejected(f"unknown code {args.code}")
        try:
            return analyse(args.code, rows, args.days)
        except TooFewBars as exc:
            raise Rejected(str(exc)) from None


def register(runtime: Runtime, strategies: Sequence[Strategy[Any]], fallback: MarketClock) -> QueryHandler:
    """Answer the queries on ``runtime`` (its own consumer group, batches of ``QUERY_BATCH``)."""
    handler = QueryHandler(runtime, strategies, fallback)
    runtime.on_start(handler.start)
    runtime.consume(QUERY_ANSWERS, handler.handle, batch=QUERY_BATCH)
    return handler
