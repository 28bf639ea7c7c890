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
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

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
