"""The trend windows a signals worker evaluates, kept between batches and brought up to date with
the bytes appended since.

Reading a whole window (250 bars, 14 KB) for every bar made the transfer from the server most of the
streaming path's time, and of the server's: at the minute close of the whole market that is 90 MB a
minute for the 1m bars alone. A worker keeps the last rows of each series it evaluated and the
series' length then; the next read asks only for the bytes from its last known record on (usually
that record and the new bar, 112 bytes) and checks that the record is still there, byte for byte, at
the same place. It is not when the series was rewritten (trimmed, its last bar replaced, deleted,
rebuilt after an empty restart); then the window is read whole, as it was before.

A rewrite of older bars that keeps the length and the last record (an import correcting a bar in
the middle) is not visible that way: every such rewrite bumps the rewrite counter
(``Keys.trend_rewrites``, by :meth:`marketbus.trend.TrendStore.merge_rows`), and a changed counter
empties the cache. The counter is read with the windows, in the same round trip. Creating a series
bumps only the trend epoch (which the history run follows), so a fresh start's first bars and a
day's new listings keep the cache.

The cache is bounded (``capacity`` series, least recently used dropped first): each holds ``keep``
rows of 56 bytes. Nothing here is shared between workers; any worker can still handle any bar.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from redis.asyncio.cluster import RedisCluster

from marketbus.trend import RECORD_BYTES, TrendStore, unpack


@dataclass(slots=True)
class _Entry:
    rows: np.ndarray  # the last rows of the series (at most ``keep``), oldest first
    end: int  # the series' length in bytes when ``rows`` were read (``rows[-1]`` ends there)
    last: bytes  # ``rows[-1]`` as stored


@dataclass
class CacheStats:
    hits: int = 0  # windows brought up to date from the bytes appended since
    misses: int = 0  # windows read whole (not cached, rewritten, or the cache emptied)
    resets: int = 0  # the cache emptied on a bump of the rewrite counter


# KEYS[1] the rewrite counter, KEYS[2..] trend keys; ARGV[i] where to read KEYS[i + 1] from (a byte
# offset, negative from the end). Returns {counter, data, length, data, length, ...}: one round trip and
# one reply for a whole batch, where a pipeline costs the client ~15 us of parsing per command.
READ_LUA = """
local out = {redis.call('GET', KEYS[1]) or false}
for i = 2, #KEYS do
  out[#out + 1] = redis.call('GETRANGE', KEYS[i], tonumber(ARGV[i - 1]), -1)
  out[#out + 1] = redis.call('STRLEN', KEYS[i])
end
return out
"""


class WindowCache(TrendStore):
    """A :class:`TrendStore` whose :meth:`tails` come from the kept windows where they are still
    the series' tails (see the module's text); every other method reads the server.

    On one server (or a Sentinel's primary) a batch is read by one script; on a Cluster, where the
    series are spread over the nodes, by a pipeline of one ``GETRANGE`` and one ``STRLEN`` per
    series (an append between the two only makes the next read of that series whole)."""

    def __init__(self, client: Any, keys: Any, max_bars: int, keep: int, capacity: int) -> None:
        super().__init__(client, keys, max_bars)
        self.keep = keep
        self.capacity = capacity
        self.scripted = not isinstance(client, RedisCluster)
        self.stats = CacheStats()
        self._entries: OrderedDict[tuple[str, str], _Entry] = OrderedDict()
        self._rewrites: bytes | None = None

    def __len__(self) -> int:
        return len(self._entries)

    async def tails(self, codes: Sequence[str], period: str, n: int, chunk: int = 500) -> list[np.ndarray]:
        """The last ``n`` bars of every code, as :meth:`TrendStore.tails` reads them."""
        if n > self.keep or self.capacity == 0:
            return await super().tails(codes, period, n, chunk)
        out: list[np.ndarray] = []
        for start in range(0, len(codes), chunk):
            out.extend(await self._tails(codes[start : start + chunk], period, n))
        return out

    async def _read(self, keys: Sequence[str], offsets: Sequence[int]) -> tuple[Any, list[tuple[bytes, int]]]:
        """(the rewrite counter, (bytes from the offset on, the series' length) per key)."""
        if self.scripted:
            reply = await self.client.eval(READ_LUA, 1 + len(keys), self.keys.trend_rewrites, *keys, *offsets)
        else:
            pipe = self.client.pipeline(transaction=False)
            pipe.get(self.keys.trend_rewrites)
            for key, offset in zip(keys, offsets, strict=True):
                pipe.getrange(key, offset, -1)
                pipe.strlen(key)
            reply = await pipe.execute()
        return reply[0], [(bytes(reply[i] or b""), int(reply[i + 1])) for i in range(1, len(reply), 2)]

    async def _tails(self, codes: Sequence[str], period: str, n: int) -> list[np.ndarray]:
        keys = [self.keys.trend(code, period) for code in codes]
        cached = [self._entries.get((code, period)) for code in codes]
        whole = -self.keep * RECORD_BYTES
        offsets = [whole if e is None else e.end - RECORD_BYTES for e in cached]
        rewrites, replies = await self._read(keys, offsets)
        if rewrites != self._rewrites:
            if self._entries:
                self.stats.resets += 1
            self._entries.clear()
            self._rewrites = rewrites
        out: list[np.ndarray | None] = [None] * len(codes)
        again: list[int] = []  # kept windows that are no longer the series' tails
        for i, (entry, (data, length)) in enumerate(zip(cached, replies, strict=True)):
            if entry is None:
                out[i] = self._keep(codes[i], period, data, length, n)
            elif self._entries.get((codes[i], period)) is entry:
                out[i] = self._update(codes[i], period, entry, data, n)
                if out[i] is None:
                    again.append(i)
            else:  # the cache was emptied
                again.append(i)
        self.stats.hits += len(codes) - len(again) - sum(e is None for e in cached)
        self.stats.misses += len(again) + sum(e is None for e in cached)
        if again:
            _, replies = await self._read([keys[i] for i in again], [whole] * len(again))
            for i, (data, length) in zip(again, replies, strict=True):
                out[i] = self._keep(codes[i], period, data, length, n)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)
        return [rows if rows is not None else unpack(None) for rows in out]

    def _keep(self, code: str, period: str, data: bytes, length: int, n: int) -> np.ndarray:
        """The last ``n`` of the rows read whole; they are kept (as of the series' ``length``)."""
        rows = unpack(data)
        if data and len(data) % RECORD_BYTES == 0 and length % RECORD_BYTES == 0:
            self._entries[(code, period)] = _Entry(rows, length, data[-RECORD_BYTES:])
        return rows[-n:]

    def _update(self, code: str, period: str, entry: _Entry, delta: bytes, n: int) -> np.ndarray | None:
        """The window with the bytes appended since ``entry`` was read; None (and the entry dropped)
        when the series is no longer ``entry``'s continuation or ``entry`` holds too few rows."""
        key = (code, period)
        if not delta or len(delta) % RECORD_BYTES or delta[:RECORD_BYTES] != entry.last:
            del self._entries[key]
            return None
        if len(delta) > RECORD_BYTES:
            entry.rows = np.concatenate([entry.rows, unpack(delta[RECORD_BYTES:])])[-self.keep :]
            entry.last = delta[-RECORD_BYTES:]
            entry.end += len(delta) - RECORD_BYTES  # where this read ended
        if len(entry.rows) < n and entry.end > len(entry.rows) * RECORD_BYTES:  # more than was kept
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry.rows[-n:]
