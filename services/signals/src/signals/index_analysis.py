"""The old app's index screen (OLD_API.md P9): one pure function of an index's closed daily bars.

Every field is defined in the README, section "Index analysis fields"; the constants below are
the numbers those definitions name. Indicators are TA-Lib's (SMA, MACD, RSI, ATR) at the last bar,
computed over the analysed period plus up to ``WARMUP_BARS`` bars before it (so MA60 and the
smoothed indicators exist for a short period too); the statistics and levels use the period alone
(its last ``days`` bars).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import talib
from numpy.lib.stride_tricks import sliding_window_view

from marketbus.queries import (
    IndexAnalysis,
    KeyLevels,
    KeyMetrics,
    Level,
    Macd,
    MarketSentiment,
    MovingAverages,
    Rsi,
    TargetPrices,
    TechnicalAnalysis,
    TradingAdvice,
)
from marketbus.trend import CLOSE, HIGH, LOW, TS, VOLUME

Array = np.ndarray

MIN_BARS = 60  # MA60 needs 60 closes
WARMUP_BARS = 120  # bars before the period the indicators may read
MA_PERIODS = (5, 10, 20, 60)
MACD_FAST, MACD_SLOW, MACD_SIGNAL = 12, 26, 9
RSI_PERIOD = 14
ATR_PERIOD = 14
SENTIMENT_BARS = 20  # daily changes the sentiment counts
VOLUME_RECENT = 5  # of those, the recent bars whose mean volume is compared with the others'
HORIZON = 5  # bars ahead of the target prices
SWING_WING = 3  # a swing low (high) is the lowest low (highest high) of itself and 3 bars each side
LEVELS = 3  # supports and resistances given
LEVEL_GAP_ATR = 0.5  # a level this close (in ATRs) to a nearer one is left out
STOP_ATR = 2.0  # the stop loss is at most this many ATRs below the price
TAKE_ATR = 3.0  # the take profit without a resistance: this many ATRs above the price

SENTIMENTS = ((75, "极度乐观"), (65, "乐观"), (55, "偏乐观"), (45, "中性"), (35, "偏悲观"), (25, "悲观"))


class TooFewBars(ValueError):
    """The index has fewer closed daily bars than the analysis needs."""


def pct(value: float, base: float) -> float:
    """``(value / base - 1) * 100``; 0 when ``base`` is 0."""
    return (value / base - 1.0) * 100.0 if base else 0.0


def trend_of(close: float, ma20: float, ma60: float) -> str:
    if close > ma20:
        return "强势上涨" if ma20 > ma60 else "上涨"
    if close < ma20:
        return "强势下跌" if ma20 < ma60 else "下跌"
    return "中性"


def macd_reading(dif: Array, dea: Array) -> str:
    """From the last two bars of DIF and DEA: 转多 (crossed above on the last bar), 多头, 转空,
    空头, 中性 (equal)."""
    if dif[-1] > dea[-1]:
        return "转多" if dif[-2] <= dea[-2] else "多头"
    if dif[-1] < dea[-1]:
        return "转空" if dif[-2] >= dea[-2] else "空头"
    return "中性"


def rsi_reading(value: float) -> str:
    if value > 70:
        return "超买"
    if value > 60:
        return "偏强"
    if value < 30:
        return "超卖"
    if value < 40:
        return "偏弱"
    return "中性"


def sentiment_of(score: float) -> str:
    return next((label for floor, label in SENTIMENTS if score >= floor), "极度悲观")


def volume_trend_of(change_pct: float) -> str:
    if change_pct > 30:
        return "显著放量"
    if change_pct > 15:
        return "温和放量"
    if change_pct >= -15:
        return "平稳"
    if change_pct >= -30:
        return "温和缩量"
    return "显著缩量"


def trailing_run(mask: Array) -> int:
    """How many of the last entries of ``mask`` are true in a row."""
    falses = np.flatnonzero(~mask)
    return int(len(mask) - 1 - falses[-1]) if len(falses) else len(mask)


def swings(values: Array, lows: bool, wing: int = SWING_WING) -> Array:
    """Values lower (``lows``) or higher than each of the ``wing`` bars before and after them (a
    flat stretch has none)."""
    if len(values) < 2 * wing + 1:
        return np.empty(0)
    windows = sliding_window_view(values, 2 * wing + 1)
    middle = values[wing : len(values) - wing]
    extreme = windows.min(axis=1) if lows else windows.max(axis=1)
    alone = (windows == extreme[:, None]).sum(axis=1) == 1
    return middle[(middle == extreme) & alone]


def pick_levels(candidates: Sequence[float], gap: float, label: str, current: float) -> list[Level]:
    """The nearest ``LEVELS`` candidates (given nearest first), each more than ``gap`` from every
    level already picked."""
    picked: list[float] = []
    for value in candidates:
        if all(abs(value - p) > gap for p in picked):
            picked.append(value)
            if len(picked) == LEVELS:
                break
    return [
        Level(level=f"{label}{i + 1}", price=p, distance_pct=pct(p, current)) for i, p in enumerate(picked)
    ]


def touch_rate(close: Array, extreme: Array, distance_pct: float, up: bool, horizon: int = HORIZON) -> float:
    """Percent of the bars (with ``horizon`` bars after them) from which the next ``horizon`` bars'
    high (``up``) or low reached ``distance_pct`` from that bar's close."""
    starts = len(close) - horizon
    if starts <= 0:
        return 0.0
    ahead = sliding_window_view(extreme[1:], horizon)[:starts]
    level = close[:starts] * (1.0 + distance_pct / 100.0)
    hit = ahead.max(axis=1) >= level if up else ahead.min(axis=1) <= level
    return float(100.0 * hit.mean())


def analyse(code: str, rows: Array, days: int) -> IndexAnalysis:
    """The analysis of ``code`` from its closed daily bars ``rows`` (trend records, oldest first)
    over the last ``days`` of them. Raises :class:`TooFewBars` under ``MIN_BARS`` bars."""
    rows = rows[-(days + WARMUP_BARS) :]
    n = len(rows)
    if n < MIN_BARS:
        raise TooFewBars(f"{code} has {n} closed daily bars; the analysis needs at least {MIN_BARS}")
    high, low, close, volume = (np.ascontiguousarray(rows[:, f]) for f in (HIGH, LOW, CLOSE, VOLUME))
    current = float(close[-1])

    ma = {p: float(talib.SMA(close, p)[-1]) for p in MA_PERIODS}
    dif, dea, hist = talib.MACD(close, MACD_FAST, MACD_SLOW, MACD_SIGNAL)
    rsi = float(talib.RSI(close, RSI_PERIOD)[-1])
    atr = float(talib.ATR(high, low, close, ATR_PERIOD)[-1])
    technical = TechnicalAnalysis(
        trend=trend_of(current, ma[20], ma[60]),
        moving_averages=MovingAverages(ma5=ma[5], ma10=ma[10], ma20=ma[20], ma60=ma[60]),
        macd=Macd(
            value=float(dif[-1]),
            signal=float(dea[-1]),
            histogram=float(hist[-1]),
            interpretation=macd_reading(dif, dea),
        ),
        rsi=Rsi(value=rsi, interpretation=rsi_reading(rsi)),
        atr=atr,
    )
    p = max(0, n - days)  # the period: rows[p:]
    return IndexAnalysis(
        code=code,
        bar_ts=int(rows[-1, TS]),
        days=n - p,
        technical_analysis=technical,
        market_sentiment=sentiment(close, volume),
        key_metrics=metrics(close[p:], high[p:], low[p:], float(close[-2])),
        key_levels=levels(close[p:], high[p:], low[p:], atr),
    )


def sentiment(close: Array, volume: Array) -> MarketSentiment:
    change = (close[1:] / close[:-1] - 1.0) * 100.0
    last = change[-SENTIMENT_BARS:]
    vol = volume[1:][-SENTIMENT_BARS:]
    up, down = last > 0, last < 0
    bull = float(np.sum(last[up] * vol[up]))
    bear = float(np.sum(-last[down] * vol[down]))
    bull_ratio = 100.0 * bull / (bull + bear) if bull + bear > 0 else 50.0
    up_vol, down_vol = float(vol[up].sum()), float(vol[down].sum())
    volume_ratio = 100.0 * up_vol / (up_vol + down_vol) if up_vol + down_vol > 0 else 50.0
    recent = float(volume[-VOLUME_RECENT:].mean())
    before = float(volume[-SENTIMENT_BARS:-VOLUME_RECENT].mean())
    volume_change = pct(recent, before)
    m5 = pct(float(close[-1]), float(close[-6]))
    m20 = pct(float(close[-1]), float(close[-21]))
    score = (
        30.0 * int(up.sum()) / SENTIMENT_BARS
        + 25.0 * bull_ratio / 100.0
        + 20.0 * volume_ratio / 100.0
        + 15.0 * min(100.0, max(0.0, 50.0 + 5.0 * m5)) / 100.0
        + 10.0 * min(100.0, max(0.0, 50.0 + 2.0 * m20)) / 100.0
    )
    return MarketSentiment(
        sentiment=sentiment_of(score),
        sentiment_score=score,
        bull_power_ratio=bull_ratio,
        bear_power_ratio=100.0 - bull_ratio,
        up_days_20=int(up.sum()),
        down_days_20=int(down.sum()),
        volume_trend=volume_trend_of(volume_change),
        volume_change_pct=volume_change,
        volume_ratio=volume_ratio,
        momentum_5d=m5,
        momentum_20d=m20,
        consecutive_up=trailing_run(change > 0),
        consecutive_down=trailing_run(change < 0),
    )


def metrics(close: Array, high: Array, low: Array, prev_close: float) -> KeyMetrics:
    """Over the period's bars; ``prev_close`` is the close before the last bar."""
    current = float(close[-1])
    change = (close[1:] / close[:-1] - 1.0) * 100.0
    drawdown = (close / np.maximum.accumulate(close) - 1.0) * 100.0
    return KeyMetrics(
        current_price=current,
        change=current - prev_close,
        change_pct=pct(current, prev_close),
        period_high=float(high.max()),
        period_low=float(low.min()),
        period_return=pct(current, float(close[0])),
        volatility=float(np.std(change, ddof=1)) if len(change) > 1 else 0.0,
        max_drawdown=float(drawdown.min()),
        total_trading_days=len(close),
    )


def levels(close: Array, high: Array, low: Array, atr: float) -> KeyLevels:
    """Over the period's bars, with the ATR of the last bar."""
    current = float(close[-1])
    gap = LEVEL_GAP_ATR * atr
    below = [float(x) for x in (*swings(low, lows=True), low.min()) if x < current]
    above = [float(x) for x in (*swings(high, lows=False), high.max()) if x > current]
    supports = pick_levels(sorted(below, reverse=True), gap, "支撑", current)
    resistances = pick_levels(sorted(above), gap, "压力", current)
    move = atr * math.sqrt(HORIZON)
    up_target, down_target = current + move, current - move
    up_distance, down_distance = pct(up_target, current), pct(down_target, current)
    floor = current - STOP_ATR * atr
    stop = max(supports[0].price, floor) if supports else floor
    take = resistances[0].price if resistances else current + TAKE_ATR * atr
    risk = current - stop
    return KeyLevels(
        current_price=current,
        supports=supports,
        resistances=resistances,
        target_prices=TargetPrices(
            upside_target=up_target,
            upside_distance=up_distance,
            probability_up=touch_rate(close, high, up_distance, up=True),
            downside_target=down_target,
            downside_distance=down_distance,
            probability_down=touch_rate(close, low, down_distance, up=False),
        ),
        trading_advice=TradingAdvice(
            stop_loss=stop,
            stop_loss_pct=pct(stop, current),
            take_profit=take,
            take_profit_pct=pct(take, current),
            risk_reward_ratio=(take - current) / risk if risk > 0 else 0.0,
        ),
    )
