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

from marketbus.contracts import Bar

if TYPE_CHECKING:
    from redis.asyncio import Redis

FIELDS = ("ts", "open", "high", "low", "close", "volume", "amount")
NF = len(FIELDS)
RECORD = np.dtype("<f8")
RECORD_BYTES = NF * RECORD.itemsize
MERGE_ATTEMPTS = 50
TS, OPEN, HIGH, LOW, CLOSE, VOLUME, AMOUNT = range(NF)

# KEYS[1] trend key; ARGV[1] one record; ARGV[2] max bars. Returns 1 appended, 2 replaced, 0 older,
# 3 (CREATED) the series created with this bar.
CREATED = 3
APPEND_LUA = """
local rec = ARGV[1]
local size = 56
local len = redis.call('STRLEN', KEYS[1])
if len < size then
  redis.call('SET', KEYS[1], rec)
  return 3
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

# KEYS[1] trend key; ARGV[1] the series' length when it was read; ARGV[2] its last record then
# (empty for no series); ARGV[3] the merged series. Writes it and returns 1 when the series is
# unchanged since (an append changes its length or its last record), else 0 and writes nothing.
REPLACE_IF_UNCHANGED_LUA = """
local len = redis.call('STRLEN', KEYS[1])
if len ~= tonumber(ARGV[1]) then return 0 end
if len > 0 and redis.call('GETRANGE', KEYS[1], len - #ARGV[2], -1) ~= ARGV[2] then return 0 end
redis.call('SET', KEYS[1], ARGV[3])
return 1
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

    def append_in(self, pipe: Any, bar: Bar) -> None:
        """Queue an idempotent append of one closed bar on a pipeline. EVAL, not EVALSHA: a
        Cluster pipeline refuses EVALSHA, and the server caches the script by its body anyway."""
        pipe.eval(APPEND_LUA, 1, self.keys.trend(bar.code, bar.period), pack_bar(bar), self.max_bars)

    async def append(self, bars: Iterable[Bar]) -> list[int]:
        """Append closed (or forming) bars, one pipeline; idempotent (a bar time already stored is
        replaced). Per bar: 1 appended, 2 replaced, 0 older than the series' last bar (ignored),
        3 (``CREATED``) the series created with it; then the trend epoch is bumped."""
        pipe = self.client.pipeline(transaction=False)
        for bar in bars:
            self.append_in(pipe, bar)
        out = list(await pipe.execute())
        if CREATED in out:
            await self.client.incr(self.keys.trend_epoch)
        return out

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

    async def packed(self, codes: Sequence[str], period: str) -> list[bytes]:
        """The whole stored series of each code, as stored (at most twice max_bars records)."""
        pipe = self.client.pipeline(transaction=False)
        for code in codes:
            pipe.get(self.keys.trend(code, period))
        return [bytes(raw or b"") for raw in await pipe.execute()]

    async def merge_rows(self, rows_by_code: dict[str, np.ndarray], period: str, chunk: int = 500) -> int:
        """Bulk, idempotent import: merge rows into each code's series. Returns bars added.

        Safe beside a live quotes service: each series is written back only if it is unchanged
        since it was read (one script per key, so the series may live on any node of a Cluster);
        a series a bar was appended to meanwhile is read and merged again instead of overwritten.
        A series the import leaves as it was is not written. When any series changed, the trend
        epoch (the history run looks again) and the rewrite counter (the signals workers read
        their kept windows again) are bumped."""
        codes = list(rows_by_code)
        added = changed = 0
        for start in range(0, len(codes), chunk):
            a, c = await self._merge_chunk(codes[start : start + chunk], rows_by_code, period)
            added, changed = added + a, changed + c
        if changed:
            pipe = self.client.pipeline(transaction=False)
            pipe.incr(self.keys.trend_epoch)
            pipe.incr(self.keys.trend_rewrites)
            await pipe.execute()
        return added

    async def _merge_chunk(
        self, codes: list[str], rows_by_code: dict[str, np.ndarray], period: str
    ) -> tuple[int, int]:
        """(bars added, series rewritten) for one chunk of codes."""
        added = changed = 0
        todo = codes
        for _ in range(MERGE_ATTEMPTS):
            raws = await self.packed(todo, period)
            gains: list[int] = []
            written: list[str] = []
            pipe = self.client.pipeline(transaction=False)
            for code, raw in zip(todo, raws, strict=True):
                old, new = unpack(raw), rows_by_code[code]
                merged = pack(merge(old, new, self.max_bars))
                if merged == raw:
                    continue
                gains.append(int(np.setdiff1d(new[:, TS], old[:, TS]).size))
                written.append(code)
                key = self.keys.trend(code, period)
                pipe.eval(REPLACE_IF_UNCHANGED_LUA, 1, key, len(raw), raw[-RECORD_BYTES:], merged)
            done = await pipe.execute() if written else []
            added += sum(g for g, ok in zip(gains, done, strict=True) if ok)
            changed += sum(1 for ok in done if ok)
            todo = [code for code, ok in zip(written, done, strict=True) if not ok]
            if not todo:
                return added, changed
        raise RuntimeError(f"{period} series of {todo[0]}..{todo[-1]} kept changing during the import")


def time_major(
    windows: Sequence[np.ndarray], length: int, fields: int = NF, out: np.ndarray | None = None
) -> np.ndarray:
    """Stack per-code rows into one array of shape (fields, length, n_codes), NaN-padded at the front.

    Time runs along axis 1 (oldest first); a code with fewer than ``length`` bars has NaN before
    its first bar. ``fields``: only the first so many fields of :data:`FIELDS`. ``out``: an array of
    that shape to fill (one kept between calls: a new one is fresh memory, page-faulted in full)
    instead of a new one.
    """
    fresh = out is None
    if out is None:
        out = np.full((fields, length, len(windows)), np.nan, dtype=np.float64)
    for j, rows in enumerate(windows):
        k = min(len(rows), length)
        if k < length and not fresh:
            out[:, : length - k, j] = np.nan
        if k:
            out[:, length - k :, j] = rows[-k:, :fields].T
    return out
