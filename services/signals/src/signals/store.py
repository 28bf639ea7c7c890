"""Redis side of the signals service: write signals once, provisional signals and their resolution at
the close, read the universe and the snapshots, record job status."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from pydantic import ValidationError

from marketbus import jobs
from marketbus.clock import wall_ms
from marketbus.contracts import JobStatus, Quote, Security, Signal
from marketbus.keys import Keys
from marketbus.trend import CLOSE, TS
from marketbus.wire import payload, text
from signals.provisional import ProvisionalKey, resolve

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from signals.evaluate import Target

log = logging.getLogger("signals.store")

SEEN_TTL_S = 30 * 24 * 3600
PROVISIONAL_TTL_S = 7 * 24 * 3600
PROVISIONAL_PERIODS = ("1d",)
CLOSED_FIELD = "~closed"

# The scripts go as EVAL in pipelines (a Cluster pipeline refuses EVALSHA; the server caches a
# script by its body), and every key they touch is declared in KEYS, all in the bus slot.
# The values of a chunk's signals go as one argument, each value ended by a newline (none has one:
# the JSON is compact and escapes it in strings; codes, keys, periods and times have none), where
# one argument per value had cost the client more than the script costs the server (redis-py packs
# a command's arguments one by one, in Python). ``latest_ts`` reads the bar time of a stored
# latest signal without decoding its JSON: a quote inside a JSON string is escaped, so the quoted
# name followed by a colon is the key itself (cjson decodes what the pattern does not find).
_VALUES_LUA = """
local values, at = ARGV[3], 1
local function value()
  local stop = string.find(values, '\\n', at, true)
  local v = string.sub(values, at, stop - 1)
  at = stop + 1
  return v
end
local function latest_ts(json)
  local ts = string.match(json, '"bar_ts"%s*:%s*(%d+)')
  if ts then return tonumber(ts) end
  return cjson.decode(json)['bar_ts']
end
"""

# One call writes a chunk of signals. KEYS: signals stream, latest hash, then one seen marker per
# signal. ARGV: maxlen, ttl, then the values (json, latest field, bar_ts) of every signal. Returns
# how many were new.
# The marker makes each write idempotent: a redelivered bar, or a scan over a bar the stream already
# evaluated, adds nothing. "latest" only moves forward in bar time.
WRITE_SIGNALS_LUA = (
    _VALUES_LUA
    + """
local new = 0
for i = 3, #KEYS do
  local json, field, bar_ts = value(), value(), tonumber(value())
  if redis.call('SET', KEYS[i], '1', 'NX', 'EX', ARGV[2]) then
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'data', json)
    local old = redis.call('HGET', KEYS[2], field)
    if (not old) or latest_ts(old) <= bar_ts then
      redis.call('HSET', KEYS[2], field, json)
    end
    new = new + 1
  end
end
return new
"""
)

# One call writes a chunk of provisional signals. KEYS: signals stream, latest hash, then the
# provisional hash of (period, bar, code) of each signal. ARGV: maxlen, ttl, then the values (json,
# strategy, latest field, bar_ts) of every signal. Returns how many were new.
# One provisional signal per code, strategy, period and bar (the first found); none once the closed
# bar was handled (a scan that read the forming bar just before the close adds nothing after it).
WRITE_PROVISIONAL_LUA = (
    _VALUES_LUA
    + """
local new = 0
for i = 3, #KEYS do
  local json, strategy, field, bar_ts = value(), value(), value(), tonumber(value())
  if redis.call('HEXISTS', KEYS[i], '~closed') == 0
      and redis.call('HSETNX', KEYS[i], strategy, json) == 1 then
    redis.call('EXPIRE', KEYS[i], ARGV[2])
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'data', json)
    local old = redis.call('HGET', KEYS[2], field)
    if (not old) or latest_ts(old) <= bar_ts then
      redis.call('HSET', KEYS[2], field, json)
    end
    new = new + 1
  end
end
return new
"""
)

# KEYS: the provisional hashes of closed bars. ARGV: ttl. Marks each bar closed and returns the
# provisional signals of the bars that have any (a flat field/value list per such key; most bars
# have none, and an empty reply per bar cost the client more than the script). Idempotent: a
# redelivered bar reads the same signals again.
CLOSE_BARS_LUA = """
local out = {}
for i = 1, #KEYS do
  redis.call('HSET', KEYS[i], '~closed', '1')
  redis.call('EXPIRE', KEYS[i], ARGV[1])
  if redis.call('HLEN', KEYS[i]) > 1 then
    out[#out + 1] = redis.call('HGETALL', KEYS[i])
  end
end
return out
"""

# signals (or closed bars) per script call: bounds how long one call holds the server
WRITE_CHUNK = 500


def _closing(evaluated: Sequence[Target]) -> list[Target]:
    """The windows whose bars have provisional signals to resolve when they close."""
    return [t for t in evaluated if t.period in PROVISIONAL_PERIODS and len(t.rows)]


class SignalStore:
    def __init__(self, client: Redis, keys: Keys, maxlen: int) -> None:
        self.client = client
        self.keys = keys
        self.maxlen = maxlen
        self._universe: dict[str, Security] = {}
        self._universe_loaded_at = 0.0

    async def write(
        self,
        signals: Sequence[Signal],
        evaluated: Sequence[Target] = (),
        provisional: Mapping[ProvisionalKey, Signal] | None = None,
    ) -> int:
        """Write each closed-bar signal once (one script call per chunk, one round trip). Returns
        how many were new.

        ``evaluated`` are the closed-bar windows the signals came from: for a daily bar, its
        provisional signals are resolved (see :mod:`signals.provisional`): a withdrawal for each one
        the closed bar does not give again, ``confirms`` on the closed-bar signal that does.
        ``provisional`` is what :meth:`close_bars` gave for ``evaluated``, if the caller closed them
        already (while it evaluated them); without it the bars are closed here first."""
        closing = _closing(evaluated)
        if closing:
            if provisional is None:
                provisional = await self._close_bars(closing)
            if provisional:
                closes = {(t.code, int(t.rows[-1, TS])): float(t.rows[-1, CLOSE]) for t in closing}
                signals = resolve(signals, provisional, closes, wall_ms())
        if not signals:
            return 0
        head = [self.keys.signals, self.keys.signals_latest]
        pipe = self.client.pipeline(transaction=False)
        for start in range(0, len(signals), WRITE_CHUNK):
            chunk = signals[start : start + WRITE_CHUNK]
            keys = [*head, *(self.keys.signal_seen(sig.id) for sig in chunk)]
            values = b"".join(
                payload(sig) + f"\n{sig.code}|{sig.strategy}|{sig.period}\n{sig.bar_ts}\n".encode()
                for sig in chunk
            )
            pipe.eval(WRITE_SIGNALS_LUA, len(keys), *keys, self.maxlen, SEEN_TTL_S, values)
        return sum(int(n) for n in await pipe.execute())

    async def close_bars(self, evaluated: Sequence[Target]) -> dict[ProvisionalKey, Signal]:
        """Mark the daily bars these closed-bar windows end with as closed (no provisional signal
        is written for them after this); their provisional signals, by key, for :meth:`write`."""
        closing = _closing(evaluated)
        return await self._close_bars(closing) if closing else {}

    async def _close_bars(self, targets: Sequence[Target]) -> dict[ProvisionalKey, Signal]:
        """Mark these closed bars as closed; their provisional signals, by key."""
        pipe = self.client.pipeline(transaction=False)
        for start in range(0, len(targets), WRITE_CHUNK):
            keys = [
                self.keys.signal_provisional(t.period, int(t.rows[-1, TS]), t.code)
                for t in targets[start : start + WRITE_CHUNK]
            ]
            pipe.eval(CLOSE_BARS_LUA, len(keys), *keys, PROVISIONAL_TTL_S)
        out: dict[ProvisionalKey, Signal] = {}
        for chunk in await pipe.execute():
            for flat in chunk:
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
        head = [self.keys.signals, self.keys.signals_latest]
        pipe = self.client.pipeline(transaction=False)
        for start in range(0, len(signals), WRITE_CHUNK):
            chunk = signals[start : start + WRITE_CHUNK]
            keys = [*head, *(self.keys.signal_provisional(s.period, s.bar_ts, s.code) for s in chunk)]
            values = b"".join(
                payload(s) + f"\n{s.strategy}\n{s.code}|{s.strategy}|{s.period}\n{s.bar_ts}\n".encode()
                for s in chunk
            )
            pipe.eval(WRITE_PROVISIONAL_LUA, len(keys), *keys, self.maxlen, PROVISIONAL_TTL_S, values)
        return sum(int(n) for n in await pipe.execute())

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
