"""Tick validation and snapshot building: pure functions of a tick and what came before it."""

from __future__ import annotations

import math
from collections.abc import Mapping

import orjson

from marketbus.contracts import Tick
from marketbus.sessions import accepts_tick, from_ms, trading_date
from quotes.boards import check_price
from quotes.universe import Listing

FUTURE_TOLERANCE_MS = 60_000
"""A tick stamped later than the market clock plus this is rejected as ``future``."""


def reject_reason(
    tick: Tick,
    listings: Mapping[str, Listing],
    last_ts: Mapping[str, int],
    now_ms: int | None = None,
) -> tuple[str, str] | None:
    """``(reason, detail)`` when the tick must be dropped, else None.

    Reasons: unknown_code, bad_price (NaN, infinite, zero or negative), bad_volume (negative or
    not finite volume or amount), future (stamped more than :data:`FUTURE_TOLERANCE_MS` after
    ``now_ms``, the market clock; no check without one), out_of_session (not a trading day, or
    outside 09:15–11:30 and 13:00–15:00 plus the grace at the session ends), stale (older than
    the code's last tick), limit_band (outside the day's limit band around the tick's
    ``pre_close``; none for an index or a new listing's first days) and tick_grid (off the code's
    tick), from :func:`quotes.boards.check_price`; bad_listing when the code's listing has a
    market the board rules do not know (a universe data fault, named in the detail).
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
    valid_ts = isinstance(ts, int) and ts >= 0
    if valid_ts and now_ms is not None and ts > now_ms + FUTURE_TOLERANCE_MS:
        return "future", (
            f"ts {ts} ({_fmt(ts)}) is {(ts - now_ms) / 1000:.0f}s after the market clock "
            f"({_fmt(now_ms)}; tolerance {FUTURE_TOLERANCE_MS // 1000}s)"
        )
    if not valid_ts or not accepts_tick(ts):
        when = from_ms(ts).isoformat() if valid_ts else repr(ts)
        return "out_of_session", f"ts {ts!r} ({when}) is outside the trading sessions"
    last = last_ts.get(code)
    if last is not None and ts < last:
        return "stale", f"ts {ts} is older than the code's last tick ({last})"
    try:
        return check_price(price, tick.pre_close, listings[code].security, trading_date(ts))
    except ValueError as exc:
        return "bad_listing", f"cannot check the price of {code}: {exc}"


def _fmt(ts: int) -> str:
    return from_ms(ts).strftime("%Y-%m-%d %H:%M:%S")


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
