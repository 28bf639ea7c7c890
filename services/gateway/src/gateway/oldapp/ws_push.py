"""The old app's ``price_update`` pushes (OLD_API.md P10), built from the live snapshots.

One round of pushes: one message per subscribed strategy (the codes of its buy list) and one with
every stock-subscribed code; each item is the code's snapshot as the app reads it. ``change`` is
the move of the pushed price since the last round that pushed the code (0 the first time), so
what the app adds up is what it was shown. An item's ``timestamp`` is its snapshot's time, the
message's the market time of the round. Pure functions; the hub (gateway.oldapp.ws) reads and
sends.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from gateway.oldapp.codes import to_old
from gateway.oldapp.ws_protocol import timestamp
from marketbus.contracts import Quote, Signal
from marketbus.sessions import is_trading_day, local_day_start_ms, trading_date

LOT = 100  # shares per lot: the app reads volume in lots
MINUTE_MS = 60_000
# when the old backend pushed (Shanghai time of a trading day, in minutes): the opening auction's
# indicative prices from 09:15, the morning's last snapshot until 12:00, the closing auction's price
# (stamped 15:00:00 and a few seconds after) until 15:15
PUSH_WINDOWS = ((9 * 60 + 15, 12 * 60), (13 * 60, 15 * 60 + 15))
STOCKS = ""  # the message key of the stock-subscribed codes (a strategy key is never empty)


def in_push_window(ts_ms: int) -> bool:
    """Whether prices are pushed at market time ``ts_ms``: a trading day, inside PUSH_WINDOWS."""
    minute = (ts_ms - local_day_start_ms(ts_ms)) // MINUTE_MS
    if not any(start <= minute < end for start, end in PUSH_WINDOWS):
        return False
    return is_trading_day(trading_date(ts_ms))


def _number(value: float) -> float:
    return value + 0.0  # -0.0 -> 0.0


def lots(shares: float) -> int | None:
    """Whole lots of ``shares``; None when nothing traded (as the old backend sent it)."""
    if not math.isfinite(shares) or shares < LOT:
        return None
    return int(shares // LOT)


def change_percent(quote: Quote) -> float:
    """The quote's change against the previous close, percent, 2 dp: the snapshot's own figure,
    else computed from its previous close, else 0 (the app reads it as a number, never null)."""
    value = quote.change_percent
    if value is None or not math.isfinite(value):
        pre = quote.pre_close
        value = (quote.price - pre) / pre * 100 if pre else 0.0
    return _number(round(value, 2))


def price_item(quote: Quote, last_price: float | None) -> dict[str, Any]:
    """One ``data[]`` item. ``last_price``: the price pushed for the code in the previous round."""
    price = _number(round(quote.price, 2))
    change = _number(round(price - last_price, 2)) if last_price is not None else 0.0
    return {
        "code": to_old(quote.code, quote.market),
        "name": quote.name,
        "price": price,
        "change": change,
        "change_percent": change_percent(quote),
        "volume": lots(quote.volume),
        "timestamp": timestamp(quote.ts),
    }


def price_items(
    quotes: Iterable[Quote], last_prices: Mapping[str, float]
) -> tuple[dict[str, dict[str, Any]], dict[str, float]]:
    """(marketbus code -> item, the prices pushed this round: the next round's ``last_prices``).
    A code not pushed this round is forgotten, so the memory holds only what is subscribed."""
    items = {q.code: price_item(q, last_prices.get(q.code)) for q in quotes}
    return items, {code: item["price"] for code, item in items.items()}


def strategy_codes(listed: Iterable[Signal], strategies: Iterable[str]) -> dict[str, list[str]]:
    """strategy key -> the codes of its buy list, in the list's order (each code once), for each
    of ``strategies`` (an empty list when it lists nothing)."""
    out: dict[str, list[str]] = {key: [] for key in strategies}
    seen: dict[str, set[str]] = {key: set() for key in out}
    for s in listed:
        codes = out.get(s.strategy)
        if codes is not None and s.code not in seen[s.strategy]:
            seen[s.strategy].add(s.code)
            codes.append(s.code)
    return out


def price_update(items: list[dict[str, Any]], now_ms: int) -> dict[str, Any]:
    return {"type": "price_update", "data": items, "count": len(items), "timestamp": timestamp(now_ms)}


def messages(
    by_strategy: Mapping[str, list[str]],
    stocks: Iterable[str],
    items: Mapping[str, dict[str, Any]],
    now_ms: int,
) -> dict[str, dict[str, Any]]:
    """The round's messages: strategy key -> its message, and :data:`STOCKS` -> the message of the
    stock-subscribed codes (sorted by code). A code without a snapshot is left out; a message
    with no item is not sent (left out)."""
    out: dict[str, dict[str, Any]] = {}
    for key, codes in by_strategy.items():
        data = [items[code] for code in codes if code in items]
        if data:
            out[key] = price_update(data, now_ms)
    data = [items[code] for code in sorted(set(stocks)) if code in items]
    if data:
        out[STOCKS] = price_update(data, now_ms)
    return out
