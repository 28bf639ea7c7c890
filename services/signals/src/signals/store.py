"""Redis side of the signals service: write signals once, read the universe, record job status."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from marketbus.contracts import JobStatus, Security, Signal
from marketbus.keys import Keys
from marketbus.wire import text

if TYPE_CHECKING:
    from redis.asyncio import Redis

SEEN_TTL_S = 30 * 24 * 3600

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


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class SignalStore:
    def __init__(self, client: Redis, keys: Keys, maxlen: int) -> None:
        self.client = client
        self.keys = keys
        self.maxlen = maxlen
        self._write = client.register_script(WRITE_SIGNAL_LUA)
        self._universe: dict[str, Security] = {}
        self._universe_loaded_at = 0.0

    async def write(self, signals: Sequence[Signal]) -> int:
        """Write each signal once (pipelined). Returns how many were new."""
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
        raw = await self.client.get(self.keys.job(job_id))
        return JobStatus.model_validate_json(raw) if raw else None
