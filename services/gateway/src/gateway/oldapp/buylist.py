"""The old app's buy list (OLD_API.md P3), shaped from the stored signals.

Which signals: :func:`gateway.queries.buy_view` (the route /api/signals/buy: the latest BUY per
code and strategy, no ST names, no withdrawn signal, no index, stocks before ETFs, then confidence,
then time) on the daily bars, and the old backend's rule that a BUY counts only on the code's last
bar: a signal whose bar is older than the code's last stored daily bar is gone (the old backend
recomputed its list at every scan and kept the BUYs of the last bar only). A provisional signal,
on today's forming bar, is newer than every stored bar and stays.

Where each field comes from: ``price``, ``volume_ratio``, ``change_percent``, ``reason``,
``confidence``, ``strategy_name`` and the times from the stored Signal; ``name`` and ``market``
from the universe (the signal's own when the universe lacks the code); ``volume`` (lots) and
``volume_display`` (shares) from the signal's daily bar in the trend series, or for a provisional
signal from the day's snapshot (null when neither has it). No source: ``industry`` (the universe
has none: ``""``) and ``signal_index`` (the bar's place in the old backend's window: null).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from gateway.oldapp.codes import to_old
from gateway.oldapp.markets import old_market
from gateway.oldapp.models import BuySignal, BuySignals, BuySignalsData
from gateway.oldapp.times import day, local_time
from gateway.queries import SignalFilter, buy_view
from marketbus.contracts import Quote, Security, Signal
from marketbus.sessions import trading_date
from marketbus.trend import TS, VOLUME

PERIOD = "1d"
LOT = 100
OK = "获取买入信号成功"
FAILED = "获取买入信号失败"


def candidates(latest: Iterable[Signal], strategy: str | None) -> list[Signal]:
    """The buy view of the latest daily signals (of ``strategy``, or of every strategy), in order."""
    flt = SignalFilter(strategy=strategy, period=PERIOD)
    return buy_view(s for s in latest if flt.matches(s))


def last_bar_ts(last_bars: Mapping[str, np.ndarray]) -> dict[str, int]:
    """code -> time of its last stored daily bar (codes without bars left out)."""
    return {code: int(rows[-1, TS]) for code, rows in last_bars.items() if len(rows)}


def on_last_bar(signals: Iterable[Signal], last_ts: Mapping[str, int]) -> list[Signal]:
    """The signals on their code's last stored bar or later; a code without stored bars keeps its
    signals (nothing says they are old). Order kept."""
    return [s for s in signals if s.bar_ts >= last_ts.get(s.code, s.bar_ts)]


def bar_shares(s: Signal, last_bar: np.ndarray | None, quote: Quote | None) -> float | None:
    """Shares traded in the signal's bar: the stored bar of its time, or for a provisional signal
    the snapshot of its day (the forming bar's volume so far)."""
    if last_bar is not None and len(last_bar) and int(last_bar[-1, TS]) == s.bar_ts:
        return float(last_bar[-1, VOLUME])
    if s.provisional and quote is not None and trading_date(quote.ts) == trading_date(s.bar_ts):
        return quote.volume
    return None


def shares_display(shares: float | None) -> str | None:
    """``3100000`` -> ``310.0万股``; ``2.5e8`` -> ``2.5亿股``; under 10,000: ``9500股``."""
    if shares is None:
        return None
    if shares >= 1e8:
        return f"{shares / 1e8:.1f}亿股"
    if shares >= 1e4:
        return f"{shares / 1e4:.1f}万股"
    return f"{round(shares)}股"


def buy_item(s: Signal, sec: Security | None, shares: float | None) -> BuySignal:
    market = sec.market if sec is not None else s.market
    return BuySignal(
        code=to_old(s.code, market),
        ts_code=s.code,
        name=sec.name if sec is not None else s.name,
        industry="",
        market=old_market(market),
        strategy=s.strategy,
        strategy_name=s.strategy_name,
        confidence=s.confidence,
        kline_date=day(s.bar_ts),
        calculated_time=local_time(s.created_ts, "milliseconds"),
        timestamp=s.created_ts / 1000,
        price=s.price,
        volume=round(shares / LOT) if shares is not None else None,
        volume_ratio=s.volume_ratio,
        change_percent=s.change_percent,
        reason=s.reason,
        signal_index=None,
        is_latest=True,
        volume_display=shares_display(shares),
    )


def buy_list(
    listed: Iterable[Signal],
    last_bars: Mapping[str, np.ndarray],
    securities: Mapping[str, Security],
    quotes: Mapping[str, Quote],
) -> list[BuySignal]:
    """The items of the list: ``listed`` (from :func:`candidates`) on their code's last bar, each
    with its name, market and volume."""
    kept = on_last_bar(listed, last_bar_ts(last_bars))
    return [
        buy_item(s, securities.get(s.code), bar_shares(s, last_bars.get(s.code), quotes.get(s.code)))
        for s in kept
    ]


def answer(strategy: str | None, items: list[BuySignal]) -> BuySignals:
    return BuySignals(
        code=200, message=OK, data=BuySignalsData(strategy=strategy, count=len(items), signals=items)
    )


def failure(strategy: str | None) -> BuySignals:
    """The old backend's internal error: HTTP 200, ``code`` 500, no signal."""
    return BuySignals(code=500, message=FAILED, data=BuySignalsData(strategy=strategy, count=0, signals=[]))
