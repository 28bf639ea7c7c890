"""What a chart page draws, shaped from what the services stored: the bars of one code and period
(oldest first), the markers of one strategy's signals at their bars, and the names the page shows.
Pure: the route reads, this shapes, the browser draws. Nothing is computed beyond that."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gateway.chart.params import OLD_PERIODS, ChartPeriod, ChartStrategy, Theme
from marketbus.contracts import PERIODS, Quote, Signal
from marketbus.trend import CLOSE, HIGH, LOW, OPEN, TS, VOLUME

THREE_DECIMALS = ("ETF", "LOF", "REIT")  # price step 0.001 (and Shanghai B shares, in USD)
B_SHARES = "B股"


@dataclass(frozen=True, slots=True)
class ChartSubject:
    code: str  # marketbus code, 600519.SH
    app_code: str  # the old app's code, 600519 (an index keeps its suffix)
    name: str
    market: str


def price_decimals(code: str, market: str) -> int:
    """Decimals of the price step: 3 for ETFs, LOFs, REITs and Shanghai B shares, else 2."""
    if market in THREE_DECIMALS or (market == B_SHARES and code.endswith(".SH")):
        return 3
    return 2


def chartable(signals: Iterable[Signal]) -> list[Signal]:
    """The signals a chart marks: withdrawals out, and a provisional signal the close confirmed or
    withdrew is shown by its resolution only."""
    items = list(signals)
    resolved = {ref for s in items for ref in (s.confirms, s.withdraws) if ref}
    return [s for s in items if s.status != "withdrawn" and s.id not in resolved]


def forming_bar(last_ts: int | None, signals: Sequence[Signal], quote: Quote | None) -> list[float] | None:
    """Today's forming daily bar, from the latest snapshot, when a provisional signal stands on it
    (the in-session scan evaluated that same snapshot; its bar is not stored until the close)."""
    if quote is None or not quote.price:
        return None
    later = [s.bar_ts for s in signals if s.provisional and (last_ts is None or s.bar_ts > last_ts)]
    if not later:
        return None
    price = quote.price
    return [
        max(later),
        quote.open or price,
        quote.high or price,
        quote.low or price,
        price,
        quote.volume,
    ]


def _bar(row: Sequence[float], decimals: int) -> list[float]:
    digits = decimals + 2
    return [
        int(row[TS]),
        round(row[OPEN], digits),
        round(row[HIGH], digits),
        round(row[LOW], digits),
        round(row[CLOSE], digits),
        round(row[VOLUME], 2),
    ]


def _marker(s: Signal) -> dict[str, Any]:
    return {
        "ts": s.bar_ts,
        "side": s.side,
        "price": s.price,
        "confidence": s.confidence,
        "reason": s.reason,
        "provisional": s.provisional,
    }


def markers_at(bar_times: Iterable[int], signals: Iterable[Signal]) -> list[dict[str, Any]]:
    """One marker per bar and side, at bars that are drawn (a closed-bar signal before a provisional
    one of the same bar), oldest first."""
    times = set(bar_times)
    chosen: dict[tuple[int, str], Signal] = {}
    for s in chartable(signals):
        if s.bar_ts not in times:
            continue
        key = (s.bar_ts, s.side)
        held = chosen.get(key)
        if held is None or (held.provisional and not s.provisional):
            chosen[key] = s
    return [_marker(chosen[k]) for k in sorted(chosen)]


def period_tabs() -> list[dict[str, str]]:
    """The old app's periods this deployment keeps, finest first: the page's period tabs."""
    return [{"name": old, "period": mb} for old, mb in OLD_PERIODS.items() if mb in PERIODS]


def chart_payload(
    *,
    subject: ChartSubject,
    period: ChartPeriod,
    strategy: ChartStrategy | None,
    theme: Theme,
    rows: np.ndarray,
    signals: Sequence[Signal] = (),
    quote: Quote | None = None,
    tabs: bool = True,
) -> dict[str, Any]:
    """The page's data (embedded as JSON): ``bars`` are ``[ts, open, high, low, close, volume]``
    (ts: bar start, epoch ms UTC; volume in shares), oldest first; ``markers`` the strategy's
    signals at those bars; ``forming`` true when the last bar is today's forming daily bar."""
    decimals = price_decimals(subject.code, subject.market)
    bars = [_bar(r, decimals) for r in rows.tolist()]
    shown = chartable(signals)
    extra = None
    if period.period == "1d":
        extra = forming_bar(int(bars[-1][0]) if bars else None, shown, quote)
    if extra is not None:
        bars.append(_bar(extra, decimals))
    return {
        "code": subject.code,
        "app_code": subject.app_code,
        "name": subject.name,
        "market": subject.market,
        "period": period.period,
        "period_name": period.name,
        "periods": period_tabs() if tabs else [],
        "strategy": None if strategy is None else {"key": strategy.key, "name": strategy.name},
        "theme": theme,
        "decimals": decimals,
        "bars": bars,
        "forming": extra is not None,
        "markers": markers_at((int(b[0]) for b in bars), shown),
    }
