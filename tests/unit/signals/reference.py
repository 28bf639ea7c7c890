"""Straightforward reference strategies: one code at a time, plain Python loops and TA-Lib,
following STRATEGIES.md literally. Each returns (side, price) for the last bar of one unpadded
series, or (side, price, stop_loss, take_profit) for those that set a stop; side 1 BUY, -1 SELL,
0 nothing; price NaN when nothing."""

from __future__ import annotations

import math

import numpy as np
import talib

NAN = math.nan


def xover(a, b, t) -> bool:  # type: ignore[no-untyped-def]
    return bool(a[t - 1] <= b[t - 1] and a[t] > b[t])


def xunder(a, b, t) -> bool:  # type: ignore[no-untyped-def]
    return bool(a[t - 1] >= b[t - 1] and a[t] < b[t])


def cross_side(a, b, c, min_bars) -> tuple[int, float]:  # type: ignore[no-untyped-def]
    t = len(c) - 1
    if len(c) < min_bars:
        return 0, NAN
    if xover(a, b, t):
        return 1, c[t]
    if xunder(a, b, t):
        return -1, c[t]
    return 0, NAN


def ema0(x, n):  # type: ignore[no-untyped-def]
    k = 2 / (n + 1)
    e = [x[0]]
    for i in range(1, len(x)):
        e.append(k * x[i] + (1 - k) * e[-1])
    return e


def wave_lines(c):  # type: ignore[no-untyped-def]
    """volume_wave's angel and devil."""
    angel = ema0(c, 2)
    lr = talib.LINEARREG(c, 18)
    xsl = [0.0] * len(c)
    for i in range(1, len(c)):
        if not math.isnan(lr[i]) and not math.isnan(lr[i - 1]):
            xsl[i] = lr[i] - lr[i - 1]
    devil = ema0([c[i] + 20 * xsl[i] for i in range(len(c))], 36)
    return angel, devil


def volume_wave(o, h, lo, c, v):  # type: ignore[no-untyped-def]
    if len(c) < 40:
        return 0, NAN
    angel, devil = wave_lines(c)
    return cross_side(angel, devil, c, 40)


def volume_wave_enhanced(o, h, lo, c, v):  # type: ignore[no-untyped-def]
    return wave_trade(c)[:2]


def wave_trade(c):  # type: ignore[no-untyped-def]
    """volume_wave_enhanced: (side, price, bought), ``bought`` the close of the BUY that a SELL
    closes (NaN otherwise)."""
    n = len(c)
    if n < 40:
        return 0, NAN, NAN
    angel, devil = wave_lines(c)
    trend = ema0(c, 18)

    def up(i: int) -> bool:
        return i >= 1 and xover(angel, devil, i)

    def dn(i: int) -> bool:
        return i >= 1 and xunder(angel, devil, i)

    # the pairing, replayed from the first bar, starting flat, up to the bar before t
    t = n - 1
    long, bought = False, NAN
    for i in range(t):
        if up(i) and not long and c[i] > trend[i]:
            long, bought = True, c[i]
        elif dn(i) and long:
            long, bought = False, NAN
    if up(t) and c[t] > trend[t] and not long:
        return 1, c[t], NAN
    if dn(t) and long:
        return -1, c[t], bought
    return 0, NAN, NAN


def volume_wave_enhanced_confidence(c, v, side) -> float:  # type: ignore[no-untyped-def]
    """volume_wave_enhanced's documented score, literally:
    0.45 * g/(g+0.01) + 0.2 * d/(d+0.02) + 0.35 * v/(v+1.5)."""
    angel, devil = wave_lines(c)
    trend = ema0(c, 18)
    t = len(c) - 1
    g = abs(angel[t] - devil[t]) / c[t]
    d = max((c[t] - trend[t]) / c[t] if side > 0 else (trend[t] - c[t]) / c[t], 0.0)
    return 0.45 * g / (g + 0.01) + 0.2 * d / (d + 0.02) + 0.35 * volume_score(v)


def ut_stop(h, lo, c, key=1.0, period=10):  # type: ignore[no-untyped-def]
    """volatility_conservation's ATR trailing stop and ATR, bar by bar."""
    n = len(c)
    tr = [h[0] - lo[0]]
    for i in range(1, n):
        tr.append(max(h[i] - lo[i], abs(h[i] - c[i - 1]), abs(lo[i] - c[i - 1])))
    atr = [tr[0]]
    for i in range(1, n):
        atr.append(tr[i] / period + atr[i - 1] * (period - 1) / period)
    nloss = [key * a for a in atr]
    stop = [c[0] - nloss[0]]
    for i in range(1, n):
        p = stop[i - 1]
        if c[i] > p and c[i - 1] > p:
            stop.append(max(p, c[i] - nloss[i]))
        elif c[i] < p and c[i - 1] < p:
            stop.append(min(p, c[i] + nloss[i]))
        elif c[i] > p:
            stop.append(c[i] - nloss[i])
        else:
            stop.append(c[i] + nloss[i])
    return stop, atr


def volatility_conservation(o, h, lo, c, v, key=1.0, atr_period=10):  # type: ignore[no-untyped-def]
    """(side, price, stop_loss, take_profit)."""
    n = len(c)
    if n < 2:
        return 0, NAN, NAN, NAN
    stop, _ = ut_stop(h, lo, c, key, atr_period)
    t = n - 1
    if c[t - 1] <= stop[t - 1] and c[t] > stop[t]:
        return 1, c[t], stop[t], NAN
    if c[t - 1] >= stop[t - 1] and c[t] < stop[t]:
        return -1, c[t], NAN, NAN
    return 0, NAN, NAN, NAN


def volatility_conservation_confidence(h, lo, c, v) -> float:  # type: ignore[no-untyped-def]
    """volatility_conservation's documented score, literally: 0.6 * g/(g+0.01) + 0.4 * v/(v+1.5)."""
    stop, _ = ut_stop(h, lo, c)
    t = len(c) - 1
    g = abs(c[t] - stop[t - 1]) / c[t]
    return 0.6 * g / (g + 0.01) + 0.4 * volume_score(v)


def volume_score(v) -> float:  # type: ignore[no-untyped-def]
    """v/(v+1.5) of the volume ratio v = volume[t]/volume[t-1] (inf scores 1, 0/0 scores 0)."""
    t = len(v) - 1
    ratio = v[t] / v[t - 1] if v[t - 1] else (math.inf if v[t] else 0.0)
    return 1.0 if math.isinf(ratio) else ratio / (ratio + 1.5)


def trend_levels(h, lo, L=5):  # type: ignore[no-untyped-def]
    n = len(h)
    hh = [None] * n
    ll = [None] * n
    for j in range(2 * L, n):
        hh[j] = max(h[j - 2 * L : j + 1])
        ll[j] = min(lo[j - 2 * L : j + 1])

    def is_max(j: int) -> bool:
        return j >= L and hh[j] is not None and h[j] == hh[j]

    def is_min(j: int) -> bool:
        return j >= L and ll[j] is not None and lo[j] == ll[j]

    dir_up = False
    last_high, last_low = h[0], lo[0]
    LH, LL = [NAN] * n, [NAN] * n
    for i in range(L, n):
        j = i - L
        if dir_up:
            if is_min(j) and lo[j] < last_low:
                last_low = lo[j]
            if is_max(j) and h[j] > last_low:
                last_high = h[j]
                dir_up = False
        else:
            if is_max(j) and h[j] > last_high:
                last_high = h[j]
            if is_min(j) and lo[j] < last_high:
                last_low = lo[j]
                dir_up = True
                if is_max(j) and h[j] > last_low:
                    last_high = h[j]
                    dir_up = False
        LH[i], LL[i] = last_high, last_low
    return LH, LL


def trend_continuation(o, h, lo, c, v, L=5):  # type: ignore[no-untyped-def]
    """(side, price, stop_loss, take_profit)."""
    n = len(c)
    if n < 2 * L + 1:
        return 0, NAN, NAN, NAN
    LH, LL = trend_levels(h, lo, L)

    def recent_touch(i: int) -> bool:
        if i < 10:
            return False
        for k in range(1, 10):
            a, b = i - k, i - k - 1
            if (lo[a] <= LL[a] and lo[b] > LL[b]) or (h[a] >= LH[a] and h[b] < LH[b]):
                return True
        return False

    t = n - 1
    if h[t] >= LH[t] and h[t - 1] < LH[t - 1] and not recent_touch(t):
        price = LH[t]
        stop = max(LL[t], price * 0.95)
        return 1, price, stop, price + 1.5 * (price - stop)
    if lo[t] <= LL[t] and lo[t - 1] > LL[t - 1] and not recent_touch(t):
        return -1, LL[t], NAN, NAN
    return 0, NAN, NAN, NAN


def ma_cross(o, h, lo, c, v):  # type: ignore[no-untyped-def]
    return cross_side(talib.SMA(c, 5), talib.SMA(c, 20), c, 21)


def macd_cross(o, h, lo, c, v):  # type: ignore[no-untyped-def]
    m, s, _ = talib.MACD(c, 12, 26, 9)
    return cross_side(m, s, c, 35)


def rsi_reversal(o, h, lo, c, v):  # type: ignore[no-untyped-def]
    if len(c) < 16:
        return 0, NAN
    r, t = talib.RSI(c, 14), len(c) - 1
    if r[t - 1] <= 30 < r[t]:
        return 1, c[t]
    if r[t - 1] >= 70 > r[t]:
        return -1, c[t]
    return 0, NAN


def boll_breakout(o, h, lo, c, v):  # type: ignore[no-untyped-def]
    if len(c) < 21:
        return 0, NAN
    up, _, low, t = *talib.BBANDS(c, 20, 2, 2), len(c) - 1
    if xover(c, up, t):
        return 1, c[t]
    if xunder(c, low, t):
        return -1, c[t]
    return 0, NAN


def kdj_lines(h, lo, c):  # type: ignore[no-untyped-def]
    """K and D of KDJ(9, 3, 3), 50 before the first RSV."""
    n = len(c)
    K, D = [50.0] * n, [50.0] * n
    k = d = 50.0
    for i in range(8, n):
        hh, ll = max(h[i - 8 : i + 1]), min(lo[i - 8 : i + 1])
        rsv = 50.0 if hh == ll else (c[i] - ll) / (hh - ll) * 100
        k = 2 / 3 * k + 1 / 3 * rsv
        d = 2 / 3 * d + 1 / 3 * k
        K[i], D[i] = k, d
    return K, D


def kdj_cross(o, h, lo, c, v, buy_below=30.0, sell_above=70.0):  # type: ignore[no-untyped-def]
    n = len(c)
    if n < 10:
        return 0, NAN
    K, D = kdj_lines(h, lo, c)
    t = n - 1
    if xover(K, D, t) and K[t] < buy_below:
        return 1, c[t]
    if xunder(K, D, t) and K[t] > sell_above:
        return -1, c[t]
    return 0, NAN


def kdj_confidence(h, lo, c, v, side, buy_below, sell_above) -> float:  # type: ignore[no-untyped-def]
    """kdj_cross's documented score, literally: 0.4 * g/(g+5) + 0.3 * e + 0.3 * v/(v+1.5),
    the zone depth e relative to the configured threshold."""
    K, D = kdj_lines(h, lo, c)
    t = len(c) - 1
    g = abs(K[t] - D[t])
    e = (buy_below - K[t]) / buy_below if side > 0 else (K[t] - sell_above) / (100 - sell_above)
    e = min(max(e, 0.0), 1.0)
    return 0.4 * g / (g + 5) + 0.3 * e + 0.3 * volume_score(v)


def volume_surge(o, h, lo, c, v):  # type: ignore[no-untyped-def]
    if len(c) < 21:
        return 0, NAN
    t = len(c) - 1
    mean = sum(v[t - 20 : t]) / 20
    if v[t] >= 2 * mean:
        if c[t] >= 1.02 * c[t - 1]:
            return 1, c[t]
        if c[t] <= 0.98 * c[t - 1]:
            return -1, c[t]
    return 0, NAN


REFERENCES = {
    "volume_wave": volume_wave,
    "trend_continuation": trend_continuation,
    "ma_cross": ma_cross,
    "macd_cross": macd_cross,
    "rsi_reversal": rsi_reversal,
    "boll_breakout": boll_breakout,
    "kdj_cross": kdj_cross,
    "volume_surge": volume_surge,
    "volume_wave_enhanced": volume_wave_enhanced,
    "volatility_conservation": volatility_conservation,
}


def series(fields: dict[str, np.ndarray], j: int, n_valid: int) -> list[np.ndarray]:
    T = fields["close"].shape[0]
    return [
        np.ascontiguousarray(fields[k][T - n_valid :, j]) for k in ("open", "high", "low", "close", "volume")
    ]
