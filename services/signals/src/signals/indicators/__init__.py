"""Technical indicators on time-major arrays, vectorised across codes.

Why not call TA-Lib directly: TA-Lib takes one 1-D series per call. The full-market scan
evaluates ~6,000 codes x 250 bars, and a Python loop over codes calling TA-Lib for every
indicator costs ~0.2 s on a 2-core machine. Here every indicator runs on a ``(T, N)`` array
(time along axis 0, oldest first, one column per code); the work that is not a time recursion is
done by whole-array numpy operations, and the time loops are compiled (``loops``, numba), so a
batch of a few codes (the streaming path) costs little more than its arithmetic and the whole
market at once (the scan) runs faster than the TA-Lib loop.

Exactness: STRATEGIES.md defines the indicators as TA-Lib's, so TA-Lib is the oracle. The
recursive ones (SMA, EMA, MACD, RSI, BBANDS) replay TA-Lib's C loop: the same running totals, the
same seeding (an SMA seed for EMA; MACD's fast EMA seeded on the same bar as the slow one; Wilder
smoothing for RSI; mean of squares minus squared mean for the band width), the same zero tests.
SMA is bit-for-bit TA-Lib's (ties in crosses of tick-rounded prices resolve as TA-Lib's do). The
bundled TA-Lib picks an FMA build of some functions at run time on CPUs that have FMA, so for
those only agreement to ~1e-14 relative is possible and the tests use ``rtol=1e-9``. LINEARREG
is computed from scratch for every window (see ``regression``). Rolling max/min are exact
whatever the algorithm. ``ema0``, KDJ, ``atr0`` and the ATR trailing stop are not TA-Lib's;
they follow STRATEGIES.md literally.
tests/unit/signals/test_indicators.py compares every function with TA-Lib (or pandas, or a
literal loop) code by code on randomly padded data.

Padding: a code with fewer than T bars is NaN-padded at the FRONT. Every padded function
(``sma`` ... ``kdj``) takes such arrays and returns arrays of the same shape in which column
``j`` is exactly what the function gives for that code's unpadded series (then padded the same
way): results never depend on the padding nor on the other columns. Internally the columns are
first shifted so that every code starts at row 0 ("left-aligned", the last bar repeated at the
back, see ``align``); callers that keep data left-aligned (the strategies) pass
``left_aligned=True`` and skip the shifting. All of them accept a 1-D series too and then
return 1-D results.

The parts forms (``macd_lines``, ``rsi_parts``, ``kd_lines``, ``bb_parts``, ``atr_stop_lines``,
``rolling_levels`` with their converters ``rsi_from_parts``, ``bb_bands``,
``rolling_from_levels``) take and return left-aligned 2-D arrays only; they give the
intermediate results that callers cache and share (the strategies compute RSI and the bands on
the last two bars only, and share rolling levels between window lengths). Inside ``recycle``
every (T, N) result comes from a per-thread pool.

Modules: ``align`` (padding, the NaN head), ``pool`` (the array pool), ``averages`` (SMA, EMA,
MACD, ema0), ``oscillators`` (RSI, KDJ), ``bands`` (BBANDS), ``regression`` (LINEARREG),
``rolling`` (MAX/MIN), ``loops`` (the compiled time loops, with those of the strategies' own
state machines: ``swing_loop``, ``devil_loop``, ``positions_loop``), ``volatility`` (true range,
``atr0``, the ATR trailing stop; STRATEGIES.md, not TA-Lib's ATR), ``ta_zero`` (TA-Lib's zero
tests).
"""

from __future__ import annotations

from signals.indicators.align import first_valid, left_align, right_align
from signals.indicators.averages import ema, ema0, macd, macd_lines, sma
from signals.indicators.bands import bb_bands, bb_parts, bbands
from signals.indicators.loops import devil_loop, positions_loop, swing_loop
from signals.indicators.oscillators import kd_lines, kdj, rsi, rsi_from_parts, rsi_parts
from signals.indicators.pool import empty, recycle, release
from signals.indicators.regression import linearreg
from signals.indicators.rolling import rolling_from_levels, rolling_levels, rolling_max, rolling_min
from signals.indicators.volatility import atr0, atr_stop_lines, atr_trailing_stop, true_range

__all__ = [
    "atr0",
    "atr_stop_lines",
    "atr_trailing_stop",
    "bb_bands",
    "bb_parts",
    "bbands",
    "devil_loop",
    "ema",
    "ema0",
    "empty",
    "first_valid",
    "kd_lines",
    "kdj",
    "left_align",
    "linearreg",
    "macd",
    "macd_lines",
    "positions_loop",
    "recycle",
    "release",
    "right_align",
    "rolling_from_levels",
    "rolling_levels",
    "rolling_max",
    "rolling_min",
    "rsi",
    "rsi_from_parts",
    "rsi_parts",
    "sma",
    "swing_loop",
    "true_range",
]
