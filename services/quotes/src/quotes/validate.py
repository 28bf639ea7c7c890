"""Tick validation and snapshot building: pure functions of a tick and what came before it."""

from __future__ import annotations

import math
from collections.abc import Mapping

import orjson

from marketbus.contracts import Tick
from marketbus.sessions import accepts_tick, from_ms
from quotes.universe import Listing

REASONS = ("unknown_code", "bad_price", "bad_volume", "out_of_session", "stale")


def reject_reason(
    tick: Tick, listings: Mapping[str, Listing], last_ts: Mapping[str, int]
) -> tuple[str, str] | None:
    """``(reason, detail)`` when the tick must be dropped, else None.

    Reasons: unknown_code, bad_price (NaN, infinite, zero or negative), bad_volume (negative or
    not finite volume or amount), out_of_session (not a trading day, or outside 09:15–11:30 and
    13:00–15:00 plus the grace at the session ends), stale (older than the code's last tick).
    """
    code = tick.code
    if code not in listings:
        return "unknown_code", f"code {code!r} is not in the universe"
    price = tick.price
    if not (isinstance(price, (int, float)) and math.isfinite(price) and price > 0):
        return "bad_price", f"price {price!r} is not a positive finite number"
    for name in ("volume", "amount"):
        value = getattr(tick, name)
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
            return "bad_volume", f"{name} {value!r} is not a non-negative finite number"
    ts = tick.ts
    if not isinstance(ts, int) or ts < 0 or not accepts_tick(ts):
        when = from_ms(ts).isoformat() if isinstance(ts, int) and ts >= 0 else repr(ts)
        return "out_of_session", f"ts {ts!r} ({when}) is outside the trading sessions"
    last = last_ts.get(code)
    if last is not None and ts < last:
        return "stale", f"ts {ts} is older than the code's last tick ({last})"
    return None


def quote_json(tick: Tick, listing: Listing) -> bytes:
    """JSON of :class:`marketbus.contracts.Quote` for the code's latest tick."""
    pre_close = tick.pre_close
    change = round((tick.price - pre_close) / pre_close * 100, 4) if pre_close and pre_close > 0 else None
    return orjson.dumps(
        {
            "code": tick.code,
            "name": listing.name,
            "market": listing.market,
            "price": tick.price,
            "change_percent": change,
            "volume": tick.volume,
            "amount": tick.amount,
            "open": tick.open,
            "high": tick.high,
            "low": tick.low,
            "pre_close": pre_close,
            "turnover": tick.turnover,
            "ts": tick.ts,
        }
    )


def tick_json(tick: Tick) -> bytes:
    """The tick as JSON for the DLQ (NaN and infinities become null)."""
    return orjson.dumps(tick.__dict__)
