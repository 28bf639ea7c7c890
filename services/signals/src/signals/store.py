"""Redis side of the signals service: write signals once, provisional signals and their resolution at
the close, read the universe and the snapshots, record job status."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pydantic import ValidationError

from marketbus import jobs
from marketbus.clock import wall_ms
from marketbus.contracts import JobStatus, Quote, Security, Signal
from marketbus.keys import Keys
from marketbus.trend import CLOSE, TS
from marketbus.wire import text
from signals.provisional import ProvisionalKey, resolve

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from signals.evaluate import Target

log = logging.getLogger("signals.store")

SEEN_TTL_S = 30 * 24 * 3600
PROVISIONAL_TTL_S = 7 * 24 * 3600
PROVISIONAL_PERIODS = ("1d",)
CLOSED_FIELD = "~closed"

# KEYS: seen marker, signals stream, latest hash. ARGV: json, maxlen, ttl, latest field, bar_ts.
# The marker makes the write idempotent: a redelivered bar, or a scan over a bar the stream already
# evaluated, adds nothing. "latest" only moves forward in bar time.
WRITE_SIGNAL_LUA = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[3]) then
  return false
end
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'data', ARGV[1])
local old = redis.call('HGET', KEYS[3], ARGV[4])
if (not old) or cjson.decode(old)['bar_ts'] <= tonumber(ARGV[5]) then
  redis.call('HSET', KEYS[3], ARGV[4], ARGV[1])
end
return id
"""

# KEYS: provisional hash of (period, bar, code), signals stream, latest hash.
# ARGV: json, maxlen, ttl, strategy, latest field, bar_ts.
# One provisional signal per code, strategy, period and bar (the first found); none once the closed
# bar was handled (a scan that read the forming bar just before the close adds nothing after it).
WRITE_PROVISIONAL_LUA = """
if redis.call('HEXISTS', KEYS[1], '~closed') == 1 then
  return false
end
if redis.call('HSETNX', KEYS[1], ARGV[4], ARGV[1]) == 0 then
  return false
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'data', ARGV[1])
local old = redis.call('HGET', KEYS[3], ARGV[5])
if (not old) or cjson.decode(old)['bar_ts'] <= tonumber(ARGV[6]) then
  redis.call('HSET', KEYS[3], ARGV[5], ARGV[1])
end
return id
"""

# KEYS: provisional hash of a closed bar. ARGV: ttl. Marks the bar closed and returns its provisional
# signals (a flat field/value list). Idempotent: a redelivered bar reads the same signals again.
CLOSE_BAR_LUA = """
redis.call('HSET', KEYS[1], '~closed', '1')
redis.call('EXPIRE', KEYS[1], ARGV[1])
return redis.call('HGETALL', KEYS[1])
"""


class SignalStore:
    def __init__(self, client: Redis, keys: Keys, maxlen: int) -> None:
        self.client = client
        self.keys = keys
        self.maxlen = maxlen
        self._write = client.register_script(WRITE_SIGNAL_LUA)
        self._write_provisional = client.register_script(WRITE_PROVISIONAL_LUA)
        self._close_bar = client.register_script(CLOSE_BAR_LUA)
        self._universe: dict[str, Security] = {}
        self._universe_loaded_at = 0.0

    async def write(self, signals: Sequence[Signal], evaluated: Sequence[Target] = ()) -> int:
        """Write each closed-bar signal once (pipelined). Returns how many were new.

        ``evaluated`` are the closed-bar windows the signals came from: for a daily bar, its
        provisional signals are resolved (see :mod:`signals.provisional`): a withdrawal for each one
        the closed bar does not give again, ``confirms`` on the closed-bar signal that does."""
        closing = [t for t in evaluated if t.period in PROVISIONAL_PERIODS and len(t.rows)]
        if closing:
            provisional = await self._close_bars(closing)
            if provisional:
                closes = {(t.code, int(t.rows[-1, TS])): float(t.rows[-1, CLOSE]) for t in closing}
                signals = resolve(signals, provisional, closes, wall_ms())
        if not signals:
            return 0
        pipe = self.client.pipeline(transaction=False)
        for sig in signals:
            await self._write(
                keys=[self.keys.signal_seen(sig.id), self.keys.signals, self.keys.signals_latest],
                args=[
                    sig.model_dump_json(),
                    self.maxlen,
                    SEEN_TTL_S,
                    f"{sig.code}|{sig.strategy}|{sig.period}",
                    sig.bar_ts,
                ],
                client=pipe,
            )
        results = await pipe.execute()
        return sum(1 for r in results if r)

    async def _close_bars(self, targets: Sequence[Target]) -> dict[ProvisionalKey, Signal]:
        """Mark these closed bars as closed; their provisional signals, by key."""
        pipe = self.client.pipeline(transaction=False)
        for t in targets:
            key = self.keys.signal_provisional(t.period, int(t.rows[-1, TS]), t.code)
            await self._close_bar(keys=[key], args=[PROVISIONAL_TTL_S], client=pipe)
        out: dict[ProvisionalKey, Signal] = {}
        for flat in await pipe.execute():
            for field, raw in zip(flat[::2], flat[1::2], strict=True):
                if text(field) == CLOSED_FIELD:
                    continue
                try:
                    sig = Signal.model_validate_json(raw)
                except ValidationError as exc:
                    log.warning("skipping a bad provisional signal: %s", exc.errors()[0]["msg"])
                    continue
                out[(sig.code, sig.strategy, sig.period, sig.bar_ts)] = sig
        return out

    async def write_provisional(self, signals: Sequence[Signal]) -> int:
        """Write each provisional signal once per code, strategy, period and bar, unless that bar
        has closed meanwhile. Returns how many were new."""
        if not signals:
            return 0
        pipe = self.client.pipeline(transaction=False)
        for sig in signals:
            await self._write_provisional(
                keys=[
                    self.keys.signal_provisional(sig.period, sig.bar_ts, sig.code),
                    self.keys.signals,
                    self.keys.signals_latest,
                ],
                args=[
                    sig.model_dump_json(),
                    self.maxlen,
                    PROVISIONAL_TTL_S,
                    sig.strategy,
                    f"{sig.code}|{sig.strategy}|{sig.period}",
                    sig.bar_ts,
                ],
                client=pipe,
            )
        results = await pipe.execute()
        return sum(1 for r in results if r)

    async def snapshots(self, codes: Sequence[str], chunk: int = 1000) -> dict[str, Quote]:
        """The latest snapshot of each code that has a readable one."""
        out: dict[str, Quote] = {}
        for start in range(0, len(codes), chunk):
            part = codes[start : start + chunk]
            for code, raw in zip(part, await self.client.hmget(self.keys.snapshots, part), strict=True):
                if raw is None:
                    continue
                try:
                    out[code] = Quote.model_validate_json(raw)
                except ValidationError:
                    continue
        return out

    async def universe(self, codes: Sequence[str] = ()) -> dict[str, Security]:
        """The securities by code; reloaded when a code is unknown (at most every 5 s) or stale."""
        age = time.monotonic() - self._universe_loaded_at
        missing = any(c not in self._universe for c in codes)
        if age > 60 or (missing and age > 5):
            raw = await self.client.hgetall(self.keys.universe)
            self._universe = {text(k): Security.model_validate_json(v) for k, v in raw.items()}
            self._universe_loaded_at = time.monotonic()
        return self._universe

    async def codes(self) -> list[str]:
        return sorted(text(k) for k in await self.client.hkeys(self.keys.universe))

    async def get_job(self, job_id: str) -> JobStatus | None:
        return jobs.parse(await self.client.get(self.keys.job(job_id)))
