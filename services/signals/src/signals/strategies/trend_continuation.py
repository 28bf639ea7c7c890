"""trend_continuation (趋势延续), a 1-2-3 pattern from the system being replaced; exact."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from signals import indicators as ind
from signals.strategies.base import Aligned, Hits, Strategy, StrategyParams, Window, make_hits, volume_ratio
from signals.strategies.confidence import Confidence, Term, volume_term
from signals.strategies.shared_indicators import rolling

Array = np.ndarray
# recent_touch looks back over bars t-1 .. t-9 and needs t >= 10 (STRATEGIES.md, fixed)
TOUCH_SPAN = 9
TOUCH_MIN_T = 10


class TrendContinuationParams(StrategyParams):
    L: int = Field(5, ge=1)
    stop_loss_ratio: float = Field(0.05, ge=0, lt=1)
    reward_risk: float = Field(1.5, gt=0)


def swing_levels(
    high: Array, low: Array, L: int, hh: Array | None = None, ll: Array | None = None
) -> tuple[Array, Array]:
    """The state machine of STRATEGIES.md run for all codes at once, time-major.

    ``high``/``low`` are left-aligned (T, N). Returns ``(LH, LL)``, NaN for rows i < L.
    Exactly step 2 of the definition, with each branch as a mask over the codes. ``hh``/``ll``
    (rolling max of high / min of low over 2L+1 bars) may be passed in when already computed.
    """
    T, N = high.shape
    LH = ind.empty(T, N)
    LL = ind.empty(T, N)
    LH[: min(L, T)] = np.nan
    LL[: min(L, T)] = np.nan
    if T <= L:
        return LH, LL
    w = 2 * L + 1
    if hh is None:
        hh = ind.rolling_max(high, w, left_aligned=True)
    if ll is None:
        ll = ind.rolling_min(low, w, left_aligned=True)
    # before i = 3L no j can be a swing point: the state stays at its start
    first = min(3 * L, T)
    LH[L:first] = high[0]
    LL[L:first] = low[0]
    # j = i - L >= 2L from `first` on, so hh[j] / ll[j] exist (and j >= L holds)
    ind.swing_loop(high, low, hh, ll, L, first, LH, LL)
    return LH, LL
    w = 2 * L + 1
    if hh is None:
        hh = ind.rolling_max(high, w, left_aligned=True)
    if ll is None:
        ll = ind.rolling_min(low, w, left_aligned=True)
    last_high = high[0].copy()
    last_low = low[0].copy()
    up = np.zeros(N, dtype=bool)
    # before i = 3L no j can be a swing point: the state stays at its start
    first = min(3 * L, T)
    LH[L:first] = last_high
    LL[L:first] = last_low
    m = np.empty(N, dtype=bool)
    mx = np.empty(N, dtype=bool)
    mn = np.empty(N, dtype=bool)
    for i in range(first, T):
        j = i - L
        hj, lj = high[j], low[j]
        # is_max(j) / is_min(j); j >= 2L here, so hh[j] / ll[j] exist (and j >= L holds)
        np.equal(hj, hh[j], out=mx)
        np.equal(lj, ll[j], out=mn)
        if mx.any() or mn.any():
            dn = ~up
            # dir_up: a lower swing low extends the leg; a swing high above it turns down
            np.less(lj, last_low, out=m)
            m &= mn
            m &= up
            np.copyto(last_low, lj, where=m)
            np.greater(hj, last_low, out=m)
            m &= mx
            m &= up
            np.copyto(last_high, hj, where=m)
            up &= ~m
            # not dir_up: a higher swing high extends; a swing low below it turns up ...
            np.greater(hj, last_high, out=m)
            m &= mx
            m &= dn
            np.copyto(last_high, hj, where=m)
            turned = (lj < last_high) & mn & dn
            np.copyto(last_low, lj, where=turned)
            up |= turned
            # ... and then, still for the same j, a swing high above the new low turns down
            np.greater(hj, last_low, out=m)
            m &= mx
            m &= turned
            np.copyto(last_high, hj, where=m)
            up &= ~m
        LH[i] = last_high
        LL[i] = last_low
    return LH, LL


class TrendContinuation(Strategy[TrendContinuationParams]):
    """The 1-2-3 pattern of STRATEGIES.md: swing highs/lows (``L`` bars each side) drive a state
    machine giving the last swing high ``LH`` and low ``LL``. BUY when the high first reaches
    ``LH`` (``high[t] >= LH[t]``, ``high[t-1] < LH[t-1]``) with no touch of either level in the
    previous 9 bars; price ``LH[t]``, stop ``max(LL[t], price*(1-stop_loss_ratio))``, target
    ``price + reward_risk*(price - stop)`` (L 5, stop_loss_ratio 0.05, reward_risk 1.5 by
    default). Otherwise SELL when the low first reaches ``LL`` likewise; price ``LL[t]``, no stop
    or target.
    Confidence: :attr:`confidence` (the follow-through of the close beyond the level)."""

    key = "trend_continuation"
    name = "趋势延续"
    params_type = TrendContinuationParams
    confidence = Confidence(
        (
            Term(
                0.5,
                "f",
                "how far the close ended beyond the broken level, relative to it "
                "((close-LH)/LH for BUY, (LL-close)/LL for SELL, 0 if it closed back inside)",
                0.01,
            ),
            volume_term(0.5),
        )
    )

    @property
    def min_bars(self) -> int:
        return 2 * self.params.L + 1

    def levels(self, a: Aligned) -> tuple[Array, Array]:
        L = self.params.L
        w = 2 * L + 1
        return a.cached(
            ("swing", L),
            lambda: swing_levels(
                a.high,
                a.low,
                L,
                rolling(a, "high", w, np.maximum),
                rolling(a, "low", w, np.minimum),
            ),
        )

    def evaluate(self, w: Window) -> Hits:
        a = w.aligned()
        p = self.params
        LH, LL = self.levels(a)

        def touches(back: int) -> tuple[Array, Array]:
            """(low reaches LL, high reaches LH) first happening at bar t-back."""
            lo0, lo1 = a.at(a.low, back + 1), a.at(a.low, back)
            hi0, hi1 = a.at(a.high, back + 1), a.at(a.high, back)
            ll0, ll1 = a.at(LL, back + 1), a.at(LL, back)
            lh0, lh1 = a.at(LH, back + 1), a.at(LH, back)
            return (lo1 <= ll1) & (lo0 > ll0), (hi1 >= lh1) & (hi0 < lh0)

        recent = np.zeros(a.N, dtype=bool)
        for k in range(1, TOUCH_SPAN + 1):
            down, upw = touches(k)
            recent |= down | upw
        recent &= a.n - 1 >= TOUCH_MIN_T
        down, upw = touches(0)
        buy = upw & ~recent
        sell = down & ~recent & ~buy
        lh, ll, close = a.at(LH), a.at(LL), a.at(a.close)
        price = np.where(buy, lh, ll)
        stop = np.maximum(ll, lh * (1.0 - p.stop_loss_ratio))
        target = lh + p.reward_risk * (lh - stop)
        with np.errstate(invalid="ignore", divide="ignore"):
            follow = np.where(buy, (close - lh) / lh, (ll - close) / ll)
        conf = self.confidence(follow, volume_ratio(a))

        def reason(j: int, side: int) -> str:
            if side > 0:
                return f"high {a.at(a.high)[j]:.4f} broke the swing high {lh[j]:.4f} (swing low {ll[j]:.4f})"
            return f"low {a.at(a.low)[j]:.4f} broke the swing low {ll[j]:.4f}"

        nan = np.full(a.N, np.nan)
        return make_hits(
            a,
            self.min_bars,
            buy,
            sell,
            price,
            conf,
            reason,
            stop_loss=np.where(buy, stop, nan),
            take_profit=np.where(buy, target, nan),
        )
