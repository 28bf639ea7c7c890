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
from marketbus.trend import CLOSE, TS, VOLUME, time_major
from signals.strategies import WINDOW_BARS, Strategy, Window, evaluate_all


@dataclass(frozen=True, slots=True)
class Target:
    """One window to evaluate: the code, its period and its rows (oldest first, ending at the bar)."""

    code: str
    period: str
    rows: np.ndarray


def window_ending_at(rows: np.ndarray, bar_ts: int, length: int = WINDOW_BARS) -> np.ndarray | None:
    """The last ``length`` rows whose time is <= ``bar_ts``; None if the bar itself is not there."""
    end = int(np.searchsorted(rows[:, TS], bar_ts, side="right"))
    if end == 0 or rows[end - 1, TS] != bar_ts:
        return None
    return rows[max(0, end - length) : end]


def _ratio(num: float, den: float) -> float | None:
    if not (math.isfinite(num) and math.isfinite(den)) or den == 0:
        return None
    return float(num / den)


def evaluate_windows(
    targets: Sequence[Target],
    strategies: Sequence[Strategy],
    universe: Mapping[str, Security],
    now_ms: int,
) -> list[Signal]:
    """Evaluate every strategy on the last bar of every target window, all codes at once."""
    if not targets:
        return []
    tm = time_major([t.rows for t in targets], WINDOW_BARS)
    window = Window.from_time_major(tm)
    close, volume = tm[CLOSE], tm[VOLUME]
    out: list[Signal] = []
    for strategy, hits in evaluate_all(strategies, window):
        for j in np.flatnonzero(hits.side):
            target = targets[int(j)]
            sec = universe.get(target.code)
            change = _ratio(close[-1, j] - close[-2, j], close[-2, j])
            bar_ts = int(tm[TS, -1, j])
            stop = float(hits.stop_loss[j])
            take = float(hits.take_profit[j])
            out.append(
                Signal(
                    id=signal_id(target.code, strategy.key, target.period, bar_ts),
                    code=target.code,
                    name=sec.name if sec else target.code,
                    market=sec.market if sec else "unknown",
                    strategy=strategy.key,
                    strategy_name=strategy.name,
                    side="BUY" if hits.side[j] > 0 else "SELL",
                    price=round(float(hits.price[j]), 4),
                    period=target.period,
                    bar_ts=bar_ts,
                    confidence=round(min(1.0, max(0.0, float(hits.confidence[j]))), 4),
                    volume_ratio=_ratio(volume[-1, j], volume[-2, j]),
                    change_percent=None if change is None else round(change * 100, 4),
                    stop_loss=round(stop, 4) if math.isfinite(stop) else None,
                    take_profit=round(take, 4) if math.isfinite(take) else None,
                    reason=hits.reasons[j],
                    created_ts=now_ms,
                )
            )
    return out
