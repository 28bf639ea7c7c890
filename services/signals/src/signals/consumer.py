"""The streaming path: closed bars from the ``signals`` consumer group -> signals.

Any worker can handle any bar: the window is read from the trend series, no per-code state is kept.
Entries are acknowledged after their signals are written. An entry that cannot be parsed goes to the
DLQ at once; one whose processing keeps failing goes there after ``max_deliveries``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from marketbus.contracts import Bar
from marketbus.dlq import dead_letter
from marketbus.keys import SIGNALS_GROUP, Keys
from marketbus.trend import TrendStore
from marketbus.wire import BadMessage, decode
from signals.evaluate import Target, evaluate_windows, window_ending_at
from signals.store import SignalStore, now_ms
from signals.strategies import WINDOW_BARS, Strategy

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("signals.consumer")

Entry = tuple[bytes, dict[bytes, bytes]]
SLACK_BARS = 64  # read a little more than the window: the bar may no longer be the newest


@dataclass
class Stats:
    bars: int = 0
    signals: int = 0
    dead_letters: int = 0
    missing_window: int = 0
    failures: int = 0


class BarProcessor:
    def __init__(
        self,
        client: Redis,
        keys: Keys,
        trend: TrendStore,
        store: SignalStore,
        strategies: Sequence[Strategy],
        dlq_maxlen: int,
    ) -> None:
        self.client = client
        self.keys = keys
        self.trend = trend
        self.store = store
        self.strategies = strategies
        self.dlq_maxlen = dlq_maxlen
        self.stats = Stats()

    async def handle(self, entries: Sequence[Entry]) -> None:
        """Process a batch and acknowledge it. Unparseable entries go to the DLQ first, once; if the
        rest fails, retry entry by entry so one poison bar does not hold back the others; failing
        entries stay pending for the reclaimer."""
        if not entries:
            return
        good: list[tuple[bytes, Bar]] = []
        bad: list[tuple[bytes, dict[bytes, bytes], str]] = []
        for entry_id, fields in entries:
            try:
                good.append((entry_id, decode(Bar, fields)))
            except BadMessage as exc:
                bad.append((entry_id, fields, str(exc)))
        await self.dead_letter(bad)
        if not good:
            return
        try:
            await self._process([bar for _, bar in good])
            await self.ack([i for i, _ in good])
            return
        except Exception:
            log.exception("batch of %d bars failed; retrying one by one", len(good))
        for entry_id, bar in good:
            try:
                await self._process([bar])
                await self.ack([entry_id])
            except Exception as exc:
                self.stats.failures += 1
                log.error("bar %s failed, left pending for retry: %r", entry_id.decode(), exc)

    async def ack(self, ids: Sequence[bytes]) -> None:
        if ids:
            await self.client.xack(self.keys.bars, SIGNALS_GROUP, *ids)

    async def dead_letter(self, entries: Sequence[tuple[bytes, dict[bytes, bytes], str]]) -> None:
        """Move entries to the DLQ with their error and acknowledge them, in one round trip."""
        if not entries:
            return
        pipe = self.client.pipeline(transaction=True)
        for entry_id, fields, error in entries:
            dead_letter(pipe, self.keys.dlq, self.dlq_maxlen, self.keys.bars, entry_id, fields, error)
        pipe.xack(self.keys.bars, SIGNALS_GROUP, *[e[0] for e in entries])
        await pipe.execute()
        self.stats.dead_letters += len(entries)
        for entry_id, _, error in entries:
            log.warning("bar entry %s dead-lettered: %s", entry_id.decode(), error)

    async def _process(self, bars: Sequence[Bar]) -> None:
        targets = await self._windows(bars)
        universe = await self.store.universe([b.code for b in bars])
        signals = evaluate_windows(targets, self.strategies, universe, now_ms())
        self.stats.signals += await self.store.write(signals, targets)  # resolves provisional
        self.stats.bars += len(bars)

    async def _windows(self, bars: Sequence[Bar]) -> list[Target]:
        pairs = sorted({(b.code, b.period) for b in bars})
        by_period: dict[str, list[str]] = {}
        for code, period in pairs:
            by_period.setdefault(period, []).append(code)
        rows: dict[tuple[str, str], np.ndarray] = {}
        for period, codes in by_period.items():
            tails = await self.trend.tails(codes, period, WINDOW_BARS + SLACK_BARS)
            rows.update(((c, period), r) for c, r in zip(codes, tails, strict=True))
        targets: list[Target] = []
        for bar in bars:
            series = rows[(bar.code, bar.period)]
            window = window_ending_at(series, bar.ts)
            if window is None and len(series) and series[0, 0] > bar.ts:
                full = await self.trend.tail(bar.code, bar.period, 1 << 20)
                window = window_ending_at(full, bar.ts)
            if window is None:
                self.stats.missing_window += 1
                log.warning("bar %s %s %d is not in the trend series", bar.code, bar.period, bar.ts)
                continue
            targets.append(Target(bar.code, bar.period, window))
        return targets


class Handler(Protocol):
    """What a reclaimer drives: the consumer of one stream (bars or commands)."""

    client: Redis
    keys: Keys

    async def handle(self, entries: Sequence[Entry]) -> None: ...

    async def dead_letter(self, entries: Sequence[tuple[bytes, dict[bytes, bytes], str]]) -> None: ...


class Reclaimer:
    """Claims entries left pending by a dead consumer, or by a failure (XAUTOCLAIM), and
    dead-letters those delivered more than ``max_deliveries`` times. Bars by default; pass
    ``stream`` and ``group`` for another consumed stream."""

    def __init__(
        self,
        processor: Handler,
        consumer: str,
        min_idle_ms: int,
        max_deliveries: int,
        count: int,
        stream: str | None = None,
        group: str = SIGNALS_GROUP,
    ) -> None:
        self.p = processor
        self.stream = stream or processor.keys.bars
        self.group = group
        self.consumer = consumer
        self.min_idle_ms = min_idle_ms
        self.max_deliveries = max_deliveries
        self.count = count

    async def run_once(self) -> int:
        """One sweep over the pending entries list. Returns how many entries were claimed."""
        client = self.p.client
        start: bytes | str = "0-0"
        claimed_total = 0
        while True:
            next_id, claimed, *_ = await client.xautoclaim(
                self.stream, self.group, self.consumer, self.min_idle_ms, start, count=self.count
            )
            if claimed:
                claimed_total += len(claimed)
                await self._handle_claimed(claimed)
            if next_id in (b"0-0", "0-0"):
                return claimed_total
            start = next_id

    async def _handle_claimed(self, claimed: Sequence[Entry]) -> None:
        client = self.p.client
        ids = [i for i, _ in claimed]
        pending = await client.xpending_range(
            self.stream,
            self.group,
            min=ids[0],
            max=ids[-1],
            count=len(ids) * 2,
            consumername=self.consumer,
        )
        deliveries = {p["message_id"]: int(p["times_delivered"]) for p in pending}
        poison = [
            (
                i,
                f,
                f"processing failed {deliveries[i] - 1} times (max_deliveries {self.max_deliveries})",
            )
            for i, f in claimed
            if deliveries.get(i, 0) > self.max_deliveries
        ]
        await self.p.dead_letter(poison)
        poisoned = {i for i, _, _ in poison}
        await self.p.handle([(i, f) for i, f in claimed if i not in poisoned and f])
