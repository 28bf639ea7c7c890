"""The market clock: real time, or an accelerated clock every process can agree on.

``MARKETBUS_MARKET_CLOCK=2026-11-20T09:10:00@1764650000x60`` says: at wall-clock epoch second
1764650000 the market's wall time (Asia/Shanghai) was 2026-11-20 09:10:00, and it runs 60 times
faster than real time. The clock is a pure function of the wall clock, so every process given the
same value (the provider simulator, quotes, signals) reads the same market time, and a process
restarted mid-run carries on where the market is, not where it started.

Unset, the market clock is the wall clock.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from marketbus.sessions import to_ms

_SPEC = re.compile(
    r"^(?P<at>\d{4}-\d\d-\d\d[T ]\d\d:\d\d(?::\d\d)?)"
    r"@(?P<epoch>\d+(?:\.\d+)?)x(?P<speed>\d+(?:\.\d+)?)$"
)


def wall_ms() -> int:
    """Wall-clock epoch milliseconds."""
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class MarketClock:
    """Market time = ``start_ms + (wall - anchor_ms) * speed``; ``speed`` 1 and no offset is real time."""

    start_ms: int
    anchor_ms: int
    speed: float = 1.0
    wall: Callable[[], int] = wall_ms

    def now_ms(self) -> int:
        return self.start_ms + int((self.wall() - self.anchor_ms) * self.speed)

    def wall_seconds(self, market_ms: float) -> float:
        """Wall seconds that ``market_ms`` of market time take on this clock."""
        return market_ms / self.speed / 1000

    def spec(self) -> str:
        """The setting's text for this clock (for child processes and the provider simulator)."""
        at = dt.datetime.fromtimestamp(self.start_ms / 1000, dt.timezone(dt.timedelta(hours=8)))
        epoch = f"{self.anchor_ms / 1000:.3f}".rstrip("0").rstrip(".")
        return f"{at:%Y-%m-%dT%H:%M:%S}@{epoch}x{self.speed:g}"


def real_clock() -> MarketClock:
    return MarketClock(0, 0, 1.0)


def parse_clock(spec: str | None) -> MarketClock:
    """The clock of a ``MARKETBUS_MARKET_CLOCK`` value (None or empty: real time)."""
    if not spec:
        return real_clock()
    match = _SPEC.match(spec.strip())
    if match is None:
        raise ValueError(
            f"market clock {spec!r} is not like 2026-11-20T09:10:00@1764650000x60 "
            "(Asia/Shanghai wall time @ wall-clock epoch seconds x speed)"
        )
    text = match["at"].replace(" ", "T")
    at = dt.datetime.fromisoformat(text if text.count(":") == 2 else text + ":00")
    speed = float(match["speed"])
    if speed <= 0:
        raise ValueError(f"market clock {spec!r}: the speed must be positive")
    return MarketClock(to_ms(at), round(float(match["epoch"]) * 1000), speed)


# --- the clock the quotes service publishes --------------------------------------------------
# ``Keys.market_clock`` holds JSON ``{"ts": market epoch ms up to which every tick was handed over,
# "wall": wall epoch ms when written}`` (optionally ``"speed"``, market ms per wall ms), written
# every second. Every reader (the signals service, the gateway's pushes) extrapolates it by the wall
# time since it was written, for at most ``MAX_STALE_MS``, and falls back to its configured clock.

MAX_STALE_MS = 5_000


def published_now(raw: bytes | str | None, wall_now: int, max_stale_ms: int = MAX_STALE_MS) -> int | None:
    """Market now from a published clock value, or None when it is absent, unreadable or older than
    ``max_stale_ms`` of wall time (or written in the future by more than that: a skewed host)."""
    if not raw:
        return None
    try:
        data = orjson.loads(raw)
        ts, wall = int(data["ts"]), int(data["wall"])
        speed = float(data.get("speed", 1.0))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
        return None
    if not math.isfinite(speed) or speed <= 0:
        speed = 1.0
    elapsed = wall_now - wall
    if abs(elapsed) > max_stale_ms:
        return None
    return ts + int(max(0, elapsed) * speed)


def market_now(raw: bytes | str | None, wall_now: int, fallback: MarketClock) -> int:
    """The published market clock if it is fresh, else the fallback clock."""
    now = published_now(raw, wall_now)
    return fallback.now_ms() if now is None else now
