"""From trend windows to Signal messages: the one evaluation both callers use.

The streaming path passes the windows of the bars in a consumed batch; the full-market scan passes
the last window of every code. Both go through :func:`evaluate_windows`, so the same window always
gives the same signals.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from marketbus.contracts import Security, Signal, signal_id
from marketbus.trend import AMOUNT, CLOSE, TS, VOLUME, time_major
from signals.indicators import empty, recycle
from signals.strategies import WINDOW_BARS, Strategy, Window, evaluate_all


@dataclass(frozen=True, slots=True)
class Target:
    """One window to evaluate: the code, its period and its rows (oldest first, ending at the bar)."""

    code: str
    period: str
    rows: np.ndarray


def window_ending_at(rows: np.ndarray, bar_ts: int, length: int = WINDOW_BARS) -> np.ndarray | None:
    """The last ``length`` rows whose time is <= ``bar_ts``; None if the bar itself is not there."""
    if len(rows) and rows[-1, TS] == bar_ts:  # the usual case: the bar is the newest row
        return rows[-length:]
    end = int(rows[:, TS].searchsorted(bar_ts, side="right"))
    if end == 0 or rows[end - 1, TS] != bar_ts:
        return None
    return rows[max(0, end - length) : end]


def layout(windows: Sequence[np.ndarray], length: int) -> np.ndarray:
    """:func:`marketbus.trend.time_major` without the amount (no strategy reads it), in an array
    of the per-thread pool (inside :func:`signals.indicators.recycle`): shape (6, length, n).

    A full market's layout is 72 MB: fresh memory for it every scan cost more in page faults than
    the copy itself."""
    out = empty(AMOUNT * length, len(windows)).reshape(AMOUNT, length, len(windows))
    return time_major(windows, length, AMOUNT, out)


def _ratios(num: np.ndarray, den: np.ndarray) -> list[float | None]:
    """``num / den`` per code; None where either is not finite or ``den`` is 0."""
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        ratio = num / den
    ok = np.isfinite(num) & np.isfinite(den) & (den != 0)
    return [r if k else None for r, k in zip(ratio.tolist(), ok.tolist(), strict=True)]


def _rounded(values: np.ndarray) -> list[float | None]:
    """Each value rounded to 4 decimals; None where it is not finite."""
    return [round(v, 4) if math.isfinite(v) else None for v in values.tolist()]


def evaluate_windows(
    targets: Sequence[Target],
    strategies: Sequence[Strategy],
    universe: Mapping[str, Security],
    now_ms: int,
) -> list[Signal]:
    """Evaluate every strategy on the last bar of every target window, all codes at once."""
    if not targets:
        return []
    # the layout and the indicators share the pool; every array of it is dropped at the end
    with recycle():
        return _evaluate(targets, strategies, universe, now_ms)


def _evaluate(
    targets: Sequence[Target],
    strategies: Sequence[Strategy],
    universe: Mapping[str, Security],
    now_ms: int,
) -> list[Signal]:
    tm = layout([t.rows for t in targets], WINDOW_BARS)
    window = Window.from_time_major(tm)
    close, volume = tm[CLOSE], tm[VOLUME]
    # per code, computed once for all the strategies that fire on it
    bar_ts = tm[TS, -1].astype(np.int64).tolist()
    change = _ratios(close[-1] - close[-2], close[-2])
    volume_ratio = _ratios(volume[-1], volume[-2])
    names = [universe.get(t.code) for t in targets]
    out: list[Signal] = []
    for strategy, hits in evaluate_all(strategies, window):
        fired = np.flatnonzero(hits.side)
        if not fired.size:
            continue
        key, strategy_name = strategy.key, strategy.name
        columns = zip(
            fired.tolist(),
            hits.side[fired].tolist(),
            hits.price[fired].tolist(),
            hits.confidence[fired].tolist(),
            _rounded(hits.stop_loss[fired]),
            _rounded(hits.take_profit[fired]),
            strict=True,
        )
        for j, side, price, confidence, stop, take in columns:
            target, sec, ch = targets[j], names[j], change[j]
            out.append(
                Signal(
                    id=signal_id(target.code, key, target.period, bar_ts[j]),
                    code=target.code,
                    name=sec.name if sec else target.code,
                    market=sec.market if sec else "unknown",
                    strategy=key,
                    strategy_name=strategy_name,
                    side="BUY" if side > 0 else "SELL",
                    price=round(price, 4),
                    period=target.period,
                    bar_ts=bar_ts[j],
                    confidence=round(min(1.0, max(0.0, confidence)), 4),
                    volume_ratio=volume_ratio[j],
                    change_percent=None if ch is None else round(ch * 100, 4),
                    stop_loss=stop,
                    take_profit=take,
                    reason=hits.reasons[j],
                    created_ts=now_ms,
                )
            )
    return out


def warm_up(strategies: Sequence[Strategy]) -> None:
    """Evaluate every strategy once on a small synthetic window, so the compiled time loops of the
    indicators (:mod:`signals.indicators.loops`) are loaded, or compiled, before the first batch:
    a worker's first bars then cost what later ones do."""
    t = np.arange(WINDOW_BARS, dtype=np.float64)
    close = 10.0 + np.sin(t / 7.0)
    rows = np.column_stack([t, close, close + 0.1, close - 0.1, close, 1000.0 + t, close * 1000.0])
    tm = layout([rows, rows[-40:]], WINDOW_BARS)  # one full window, one short (front-padded)
    evaluate_all(strategies, Window.from_time_major(tm))
