"""volume_wave_enhanced (量价进阶), from the system being replaced (its latest version); exact.

volume_wave's crosses, filtered by a trend line and paired into trades: a BUY only from flat and
above the trend, a SELL only to close a BUY accepted earlier in the window.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from signals import indicators as ind
from signals.strategies.base import (
    Crossing,
    Hits,
    Strategy,
    Window,
    make_hits,
    volume_ratio,
)
from signals.strategies.confidence import Confidence, Term, volume_term
from signals.strategies.volume_wave import VolumeWaveParams, wave_lines

Array = np.ndarray


class VolumeWaveEnhancedParams(VolumeWaveParams):
    """volume_wave's lines (angel, length, multiplier, devil) and the trend ``ema0(close, trend)``."""

    trend: int = Field(18, ge=1)


def wave_positions(angel: Array, devil: Array, close: Array, trend: Array) -> tuple[Array, Array]:
    """The pairing of STRATEGIES.md replayed from the first row, for all codes at once.

    Starting flat, for every row i: ``cross_over(angel, devil)`` at i, flat and
    ``close[i] > trend[i]``: BUY accepted, now long; else ``cross_under`` at i and long: SELL
    accepted, now flat; anything else is ignored (row 0 has no cross).

    Left-aligned (T, N) lines in; out, per row after it is replayed: ``held`` (1.0 long, 0.0
    flat) and ``since``, the row of the BUY that opened the long (meaningful where held)."""
    T, N = close.shape
    held = ind.empty(T, N)
    since = ind.empty(T, N)
    if T == 0:
        return held, since
    held[0] = 0.0
    since[0] = 0.0
    # flat and a BUY: now long; long and a SELL: now flat (the crosses found in the same loop)
    ind.positions_loop(angel, devil, close, trend, held, since)
    return held, since


class VolumeWaveEnhanced(Strategy[VolumeWaveEnhancedParams]):
    """volume_wave's ``angel`` and ``devil`` (the same parameters) and ``trend = ema0(close,
    trend)`` (18). The crosses are paired from the first bar of the window, starting flat: a
    ``cross_over(angel, devil)`` is a BUY when flat and the close is above the trend (then long),
    a ``cross_under`` is a SELL when long (then flat), the rest is ignored. BUY at t when
    ``cross_over`` at t, ``close[t] > trend[t]`` and flat before t; SELL when ``cross_under`` at
    t and long before t; price is the close. The SELL depends on where the window starts (both
    callers pass the same window). Confidence: :attr:`confidence` (the gap after the cross, the
    close beyond the trend on the signal's side, the volume)."""

    key = "volume_wave_enhanced"
    name = "量价进阶"
    params_type = VolumeWaveEnhancedParams
    confidence = Confidence(
        (
            Term(
                0.45,
                "g",
                "|angel - devil| / close at the last bar (the gap after the cross relative to price)",
                0.01,
            ),
            Term(
                0.2,
                "d",
                "how far the close is beyond the trend line on the signal's side, relative to price "
                "((close-trend)/close for BUY, (trend-close)/close for SELL, 0 if on the other side)",
                0.02,
            ),
            volume_term(0.35),
        )
    )

    @property
    def min_bars(self) -> int:
        return max(40, self.params.length + 2)

    def evaluate(self, w: Window) -> Hits:
        a = w.aligned()
        p = self.params
        angel, devil = wave_lines(a, p)
        trend = a.cached(("ema0", "close", p.trend), lambda: ind.ema0(a.close, p.trend, left_aligned=True))
        held, since = wave_positions(angel, devil, a.close, trend)
        c = Crossing.last_bars(a, angel, devil)
        close, tr = a.at(a.close), a.at(trend)
        long_before = a.at(held, 1) == 1.0
        # the close of the BUY that the long open before t started with (NaN if flat)
        bought = np.full(a.N, np.nan)
        row = a.at(since, 1)[long_before].astype(np.int64)
        bought[long_before] = a.close[row, a.cols[long_before]]
        buy = c.up & (close > tr) & ~long_before
        sell = c.down & long_before
        with np.errstate(invalid="ignore", divide="ignore"):
            gap = np.abs((c.x1 - c.y1) / close)
            beyond = np.where(buy, (close - tr) / close, (tr - close) / close)
        conf = self.confidence(gap, beyond, volume_ratio(a))

        def reason(j: int, side: int) -> str:
            lines = f"angel {c.x1[j]:.4f} crossed {'above' if side > 0 else 'below'} devil {c.y1[j]:.4f}"
            if side > 0:
                return f"{lines}, close {close[j]:.4f} above the trend EMA{p.trend} {tr[j]:.4f}"
            return f"{lines}, closing the long bought at {bought[j]:.4f}"

        return make_hits(a, self.min_bars, buy, sell, close, conf, reason)
