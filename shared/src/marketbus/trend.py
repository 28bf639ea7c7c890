"""Trend series storage: the bars of one code and period as packed float64 records in a string key.

Record layout (little-endian float64, 56 bytes): ts, open, high, low, close, volume, amount.
The scan reads the tail of thousands of keys with pipelined ``GETRANGE`` and decodes with one
``np.frombuffer``; a stream per code would be ~40x slower to read (see DESIGN.md).

Appends are idempotent (a Lua script compares the bar time with the last record): a newer bar is
appended, a bar with the last record's time replaces it, an older one is ignored. The series is
trimmed to ``max_bars`` once it holds twice that many.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from redis.exceptions import WatchError

from marketbus.contracts import Bar

if TYPE_CHECKING:
    from redis.asyncio import Redis

FIELDS = ("ts", "open", "high", "low", "close", "volume", "amount")
NF = len(FIELDS)
RECORD = np.dtype("<f8")
RECORD_BYTES = NF * RECORD.itemsize
MERGE_ATTEMPTS = 50
TS, OPEN, HIGH, LOW, CLOSE, VOLUME, AMOUNT = range(NF)

# KEYS[1] trend key; ARGV[1] one record; ARGV[2] max bars. Returns 1 appended, 2 replaced, 0 older.
APPEND_LUA = """
local rec = ARGV[1]
local size = 56
local len = redis.call('STRLEN', KEYS[1])
if len < size then
  redis.call('SET', KEYS[1], rec)
  return 1
end
local lts = struct.unpack('<d', redis.call('GETRANGE', KEYS[1], len - size, len - size + 7))
local nts = struct.unpack('<d', string.sub(rec, 1, 8))
if nts > lts then
  len = redis.call('APPEND', KEYS[1], rec)
  local maxb = tonumber(ARGV[2])
  if len > 2 * maxb * size then
    redis.call('SET', KEYS[1], redis.call('GETRANGE', KEYS[1], len - maxb * size, -1))
  end
  return 1
elseif nts == lts then
  redis.call('SETRANGE', KEYS[1], len - size, rec)
  return 2
end
return 0
"""


def pack_bar(bar: Bar) -> bytes:
    return np.array(
        [bar.ts, bar.open, bar.high, bar.low, bar.close, bar.volume, bar.amount], dtype=RECORD
    ).tobytes()


def pack(rows: np.ndarray) -> bytes:
    """Rows of shape (n, 7) to the stored bytes."""
    return np.ascontiguousarray(rows, dtype=RECORD).tobytes()


def unpack(raw: bytes | None) -> np.ndarray:
    """Stored bytes to rows of shape (n, 7). A partial trailing record is dropped."""
    if not raw:
        return np.empty((0, NF), dtype=RECORD)
    usable = len(raw) - len(raw) % RECORD_BYTES
    return np.frombuffer(raw, dtype=RECORD, count=usable // 8).reshape(-1, NF)


def merge(existing: np.ndarray, new: np.ndarray, max_bars: int) -> np.ndarray:
    """Union by bar time (a new row replaces an existing row of the same time), sorted, capped."""
    both = new if len(existing) == 0 else np.concatenate([existing, new])
    if len(both) == 0:
        return both
    # keep the LAST occurrence of every ts: reverse, unique (first), then sort ascending
    rev = both[::-1]
    _, idx = np.unique(rev[:, TS], return_index=True)
    merged = rev[idx]
    return merged[-max_bars:]


class TrendStore:
    """Reads and writes trend series over one redis.asyncio client (created in the caller's loop)."""

    def __init__(self, client: Redis, keys: Any, max_bars: int = 500) -> None:
        self.client = client
        self.keys = keys
        self.max_bars = max_bars
        self._append = client.register_script(APPEND_LUA)

    async def append_in(self, pipe: Any, bar: Bar) -> None:
        """Queue an idempotent append of one closed bar on a pipeline (awaiting only queues it)."""
        await self._append(
            keys=[self.keys.trend(bar.code, bar.period)],
            args=[pack_bar(bar), self.max_bars],
            client=pipe,
        )

    async def append(self, bars: Iterable[Bar]) -> list[int]:
        pipe = self.client.pipeline(transaction=False)
        for bar in bars:
            await self.append_in(pipe, bar)
        return list(await pipe.execute())

    async def tail(self, code: str, period: str, n: int) -> np.ndarray:
        raw = await self.client.getrange(self.keys.trend(code, period), -n * RECORD_BYTES, -1)
        return unpack(cast(bytes, raw))

    async def tails(self, codes: Sequence[str], period: str, n: int, chunk: int = 500) -> list[np.ndarray]:
        """The last ``n`` bars of every code, pipelined ``chunk`` codes per round trip."""
        out: list[np.ndarray] = []
        for start in range(0, len(codes), chunk):
            pipe = self.client.pipeline(transaction=False)
            for code in codes[start : start + chunk]:
                pipe.getrange(self.keys.trend(code, period), -n * RECORD_BYTES, -1)
            out.extend(unpack(raw) for raw in await pipe.execute())
        return out

    async def merge_rows(self, rows_by_code: dict[str, np.ndarray], period: str, chunk: int = 500) -> int:
        """Bulk, idempotent import: merge rows into each code's series. Returns bars added.

        Safe beside a live quotes service: each chunk of series is WATCHed before it is read and
        written back in MULTI/EXEC, so a bar appended meanwhile makes the chunk start over instead
        of being overwritten."""
        codes = list(rows_by_code)
        added = 0
        for start in range(0, len(codes), chunk):
            added += await self._merge_chunk(codes[start : start + chunk], rows_by_code, period)
        return added

    async def _merge_chunk(self, codes: list[str], rows_by_code: dict[str, np.ndarray], period: str) -> int:
        keys = [self.keys.trend(code, period) for code in codes]
        for _ in range(MERGE_ATTEMPTS):
            async with self.client.pipeline(transaction=True) as tx:
                await tx.watch(*keys)
                existing = await self.tails(codes, period, self.max_bars * 2, chunk=len(codes))
                tx.multi()
                added = 0
                for code, key, old in zip(codes, keys, existing, strict=True):
                    new = rows_by_code[code]
                    added += int(np.setdiff1d(new[:, TS], old[:, TS]).size)
                    tx.set(key, pack(merge(old, new, self.max_bars)))
                try:
                    await tx.execute()
                except WatchError:
                    continue  # a series changed while we merged: read it again
                return added
        raise RuntimeError(f"{period} series of {codes[0]}..{codes[-1]} kept changing during the import")


def time_major(windows: Sequence[np.ndarray], length: int) -> np.ndarray:
    """Stack per-code rows into one array of shape (7, length, n_codes), NaN-padded at the front.

    Time runs along axis 1 (oldest first); a code with fewer than ``length`` bars has NaN before
    its first bar.
    """
    out = np.full((NF, length, len(windows)), np.nan, dtype=np.float64)
    for j, rows in enumerate(windows):
        k = min(len(rows), length)
        if k:
            out[:, length - k :, j] = rows[-k:].T
    return out
