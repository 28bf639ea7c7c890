"""The old app's daily history of a code (OLD_API.md P6), from the trend series."""

from __future__ import annotations

import datetime as dt

import numpy as np

from gateway.oldapp.models import HistoryBar
from marketbus.sessions import trading_date
from marketbus.trend import AMOUNT, CLOSE, HIGH, LOW, OPEN, TS, VOLUME

PERIOD = "1d"


def history_bars(rows: np.ndarray, start: dt.date | None, end: dt.date | None) -> list[HistoryBar]:
    """The stored daily bars (oldest first) from ``start`` to ``end``, both included (either open)."""
    out: list[HistoryBar] = []
    for r in rows.tolist():
        day = trading_date(int(r[TS]))
        if (start is not None and day < start) or (end is not None and day > end):
            continue
        out.append(
            HistoryBar(
                trade_date=day.isoformat(),
                open=r[OPEN],
                high=r[HIGH],
                low=r[LOW],
                close=r[CLOSE],
                volume=r[VOLUME],
                amount=r[AMOUNT],
            )
        )
    return out
