"""The ten strategies of STRATEGIES.md, registered in one place (in the order of that document).

``evaluate_all(build_strategies(), Window.from_time_major(tm))`` is the whole computation for
both callers: the streaming path (one code, N=1) and the full-market scan (all codes at once).
Strategies evaluated on the same window share its memoised indicators.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from signals import indicators as ind
from signals.strategies.base import Hits, Strategy, StrategyParams, Window
from signals.strategies.boll_breakout import BollBreakout
from signals.strategies.kdj_cross import KdjCross
from signals.strategies.ma_cross import MaCross
from signals.strategies.macd_cross import MacdCross
from signals.strategies.rsi_reversal import RsiReversal
from signals.strategies.trend_continuation import TrendContinuation
from signals.strategies.volatility_conservation import VolatilityConservation
from signals.strategies.volume_surge import VolumeSurge
from signals.strategies.volume_wave import VolumeWave
from signals.strategies.volume_wave_enhanced import VolumeWaveEnhanced

__all__ = [
    "STRATEGIES",
    "WINDOW_BARS",
    "Hits",
    "Strategy",
    "StrategyParams",
    "Window",
    "build_strategies",
    "evaluate_all",
]

# the window length (bars per code) both callers evaluate
WINDOW_BARS = 250

STRATEGIES: dict[str, type[Strategy[Any]]] = {
    cls.key: cls
    for cls in (
        VolumeWave,
        TrendContinuation,
        MaCross,
        MacdCross,
        RsiReversal,
        BollBreakout,
        KdjCross,
        VolumeSurge,
        VolumeWaveEnhanced,
        VolatilityConservation,
    )
}


def build_strategies(
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[Strategy[Any]]:
    """One instance of every registered strategy, in registry order, with default parameters
    except those in ``overrides`` (``{"ma_cross": {"fast": 10}}``). An unknown strategy key or
    parameter name raises ``ValueError`` (pydantic's ``ValidationError`` is one)."""
    overrides = dict(overrides or {})
    unknown = set(overrides) - set(STRATEGIES)
    if unknown:
        raise ValueError(f"unknown strategies in overrides: {sorted(unknown)}")
    return [cls(dict(overrides.get(key, {}))) for key, cls in STRATEGIES.items()]


def evaluate_all(strategies: Iterable[Strategy[Any]], w: Window) -> list[tuple[Strategy[Any], Hits]]:
    """Every strategy on the same window (indicators computed once and shared).

    The indicator arrays live only for this call: they come from a per-thread pool and go back
    to it (see ``signals.indicators.recycle``); the Hits hold copies."""
    with ind.recycle():
        try:
            return [(s, s.evaluate(w)) for s in strategies]
        finally:
            w._memo.clear()
