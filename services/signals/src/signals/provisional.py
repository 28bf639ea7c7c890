"""Provisional in-session signals on today's forming daily bar, and their resolution at the close.

In session, a 1d scan also evaluates the day's forming bar (the replaced system did, and its users
relied on it). The quotes service publishes only closed bars, and the forming daily bar is not in the
trend series during the session, so the forming bar comes from the code's latest snapshot (it
carries the day's open, high, low, last price and cumulative volume and amount); a forming row stored
in the trend series (kept there when the quotes service stopped mid-day) is used when there is no
snapshot of the day. Signals found on it are *provisional*: ids of their own
(``signal_id(..., "provisional")``), ``provisional`` true, ``status`` "provisional"; one per code,
strategy, period and day (the first one found).

When the day's bar closes (the streaming path, or a scan over the closed bar), each provisional
signal is resolved: the closed-bar signal of the same side carries ``status`` "confirmed" and
``confirms`` = the provisional id; otherwise a withdrawal is written on the signals stream
(``status`` "withdrawn", ``withdraws`` = the provisional id, id ``signal_id(..., "withdrawn")``).
Everything here is pure; the Redis side is in :mod:`signals.store`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from marketbus.contracts import Quote, Signal, signal_id
from marketbus.sessions import (
    AFTERNOON_CLOSE,
    DAY_MS,
    MORNING_OPEN,
    UTC_OFFSET_MS,
    is_trading_day,
    trading_date,
)
from marketbus.trend import NF, RECORD, TS

ProvisionalKey = tuple[str, str, str, int]  # code, strategy, period, bar_ts


def forming_day_ts(now: int) -> int | None:
    """The 1d bar time (00:00 Asia/Shanghai) of the daily bar forming at market time ``now``:
    on a trading day from the 09:30 open until the 15:00 close; None otherwise."""
    local = now + UTC_OFFSET_MS
    daynum, tod = divmod(local, DAY_MS)
    if not MORNING_OPEN <= tod < AFTERNOON_CLOSE:
        return None
    if not is_trading_day(trading_date(now)):
        return None
    return daynum * DAY_MS - UTC_OFFSET_MS


def snapshot_row(quote: Quote, day_ts: int) -> np.ndarray | None:
    """The forming daily bar of ``day_ts`` from a snapshot of that day; None when the snapshot is of
    another day or carries no trade yet (no price or no volume)."""
    if trading_date(quote.ts) != trading_date(day_ts) or quote.price <= 0 or quote.volume <= 0:
        return None
    price = quote.price
    open_ = quote.open if quote.open and quote.open > 0 else price
    high = max(h for h in (quote.high, price, open_) if h)
    low = min(x for x in (quote.low, price, open_) if x and x > 0)
    return np.array([day_ts, open_, high, low, price, quote.volume, quote.amount], dtype=RECORD)


def forming_window(rows: np.ndarray, day_ts: int, snap: np.ndarray | None, length: int) -> np.ndarray | None:
    """The last ``length`` rows ending with the forming bar of ``day_ts``: the closed rows before the
    day, then the snapshot's row (else a stored row of that day). None without a forming bar."""
    before = rows[rows[:, TS] < day_ts] if len(rows) else rows
    if snap is not None:
        forming = snap.reshape(1, NF)
    elif len(rows) and rows[-1, TS] == day_ts:
        forming = rows[-1:]
    else:
        return None
    return np.concatenate([before[-(length - 1) :] if length > 1 else before[:0], forming])


def as_provisional(sig: Signal) -> Signal:
    """A signal found on the forming bar, as the provisional signal it is."""
    return sig.model_copy(
        update={
            "id": signal_id(sig.code, sig.strategy, sig.period, sig.bar_ts, "provisional"),
            "provisional": True,
            "status": "provisional",
        }
    )


def withdrawal(prov: Signal, closed: Signal | None, close_price: float, now_ms: int) -> Signal:
    """The event withdrawing ``prov``: the closed bar gave the other side (``closed``) or nothing."""
    said = f"{closed.side} ({closed.reason})" if closed is not None else "no signal"
    return prov.model_copy(
        update={
            "id": signal_id(prov.code, prov.strategy, prov.period, prov.bar_ts, "withdrawn"),
            "provisional": True,
            "status": "withdrawn",
            "withdraws": prov.id,
            "price": round(float(close_price), 4),
            "reason": f"withdrawn at the close: the closed bar gives {said}",
            "volume_ratio": None,
            "change_percent": None,
            "stop_loss": None,
            "take_profit": None,
            "created_ts": now_ms,
        }
    )


def resolve(
    closed: Sequence[Signal],
    provisional: Mapping[ProvisionalKey, Signal],
    close_prices: Mapping[tuple[str, int], float],
    now_ms: int,
) -> list[Signal]:
    """What to write for closed bars, given the provisional signals of those bars: withdrawals first,
    then the closed-bar signals, those of a provisional signal's side marked as confirming it.

    ``provisional`` holds the provisional signals of the evaluated closed bars (key: code, strategy,
    period, bar time); ``close_prices`` the close of each of those bars by (code, bar time)."""
    by_key = {(s.code, s.strategy, s.period, s.bar_ts): s for s in closed}
    out: list[Signal] = []
    confirmed: dict[ProvisionalKey, Signal] = {}
    for key, prov in sorted(provisional.items()):
        sig = by_key.get(key)
        if sig is not None and sig.side == prov.side:
            confirmed[key] = sig.model_copy(update={"status": "confirmed", "confirms": prov.id})
        else:
            price = close_prices.get((prov.code, prov.bar_ts), prov.price)
            out.append(withdrawal(prov, sig, price, now_ms))
    for sig in closed:
        out.append(confirmed.get((sig.code, sig.strategy, sig.period, sig.bar_ts), sig))
    return out
