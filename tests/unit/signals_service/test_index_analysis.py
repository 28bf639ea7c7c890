"""The index analysis (OLD_API.md P9, README "Index analysis fields"): every field of ``analyse``
against a computation written here, literally, from its definition (plain loops, no TA-Lib), on a
planted series; the readings at their thresholds; the levels on a hand-built period."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from marketbus.trend import NF
from signals.index_analysis import (
    MIN_BARS,
    WARMUP_BARS,
    TooFewBars,
    analyse,
    levels,
    macd_reading,
    rsi_reading,
    sentiment_of,
    trend_of,
    volume_trend_of,
)

DAY = 86_400_000
T0 = 1_735_660_800_000  # 2025-01-01 00:00 Asia/Shanghai


def planted(n: int, seed: int = 3) -> np.ndarray:
    """Trend records (ts, open, high, low, close, volume, amount) of a random walk with a rally,
    a sell-off and uneven volume: every reading has something to say."""
    rng = np.random.default_rng(seed)
    steps = rng.normal(0.0, 0.011, n)
    steps[n // 3 : n // 3 + 15] += 0.01  # a rally
    steps[2 * n // 3 : 2 * n // 3 + 10] -= 0.012  # a sell-off
    close = 3000.0 * np.exp(np.cumsum(steps))
    open_ = np.concatenate([[close[0]], close[:-1]]) * (1 + rng.normal(0, 0.002, n))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.006, n)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.006, n)))
    volume = rng.lognormal(22, 0.35, n)
    rows = np.empty((n, NF))
    rows[:, 0] = T0 + np.arange(n) * DAY
    rows[:, 1], rows[:, 2], rows[:, 3], rows[:, 4] = open_, high, low, close
    rows[:, 5], rows[:, 6] = volume, volume * close
    return rows


# --- literal references ------------------------------------------------------------------------
def ema_from(values: list[float], n: int, seed: float) -> list[float]:
    k = 2.0 / (n + 1)
    out = [seed]
    for v in values:
        out.append(k * v + (1 - k) * out[-1])
    return out


def ref_macd(close: list[float]) -> tuple[list[float], list[float]]:
    """TA-Lib's MACD(12, 26, 9): both EMAs start on bar 25, the slow one seeded with the mean of
    closes 0..25, the fast one with the mean of closes 14..25; the signal EMA seeded with the mean
    of the first 9 DIF values. Returns (DIF, DEA) from the signal's first bar (33) on."""
    slow = ema_from(close[26:], 26, sum(close[:26]) / 26)
    fast = ema_from(close[26:], 12, sum(close[14:26]) / 12)
    dif = [f - s for f, s in zip(fast, slow, strict=True)]  # bars 25 ..
    dea = ema_from(dif[9:], 9, sum(dif[:9]) / 9)  # bars 33 ..
    return dif[8:], dea


def ref_rsi(close: list[float], n: int = 14) -> float:
    """Wilder: the first averages are the means of the first n gains and losses, then
    avg = (avg * (n - 1) + new) / n; RSI = 100 * gain / (gain + loss) at the last bar."""
    d = [b - a for a, b in itertools.pairwise(close)]
    gain = sum(max(x, 0.0) for x in d[:n]) / n
    loss = sum(max(-x, 0.0) for x in d[:n]) / n
    for x in d[n:]:
        gain = (gain * (n - 1) + max(x, 0.0)) / n
        loss = (loss * (n - 1) + max(-x, 0.0)) / n
    return 100.0 * gain / (gain + loss)


def ref_atr(high: list[float], low: list[float], close: list[float], n: int = 14) -> float:
    tr = [
        max(high[i] - low[i], abs(high[i] - close[i - 1]), abs(low[i] - close[i - 1]))
        for i in range(1, len(close))
    ]
    atr = sum(tr[:n]) / n
    for x in tr[n:]:
        atr = (atr * (n - 1) + x) / n
    return atr


def pct(a: float, b: float) -> float:
    return (a / b - 1) * 100


# --- the whole analysis ------------------------------------------------------------------------
@pytest.mark.parametrize("n,days", [(200, 180), (240, 50)])
def test_every_field_against_its_definition(n: int, days: int) -> None:
    rows = planted(n)
    a = analyse("000001.SH", rows, days)
    used = rows[-(days + WARMUP_BARS) :]  # what the indicators read: the period and its warm-up
    close, high, low = (list(map(float, used[:, f])) for f in (4, 2, 3))
    volume = list(map(float, used[:, 5]))
    period = rows[-days:]
    pc, ph, pl = (list(map(float, period[:, f])) for f in (4, 2, 3))
    cur = close[-1]
    approx = lambda x: pytest.approx(x, rel=1e-9, abs=1e-9)  # noqa: E731

    assert a.code == "000001.SH" and a.bar_ts == int(rows[-1, 0]) and a.days == days

    t = a.technical_analysis
    for p in (5, 10, 20, 60):
        assert getattr(t.moving_averages, f"ma{p}") == approx(sum(close[-p:]) / p)
    dif, dea = ref_macd(close)
    assert t.macd.value == approx(dif[-1]) and t.macd.signal == approx(dea[-1])
    assert t.macd.histogram == approx(dif[-1] - dea[-1])
    assert t.rsi.value == approx(ref_rsi(close))
    assert t.atr == approx(ref_atr(high, low, close))
    ma20, ma60 = sum(close[-20:]) / 20, sum(close[-60:]) / 60
    assert t.trend == (
        ("强势上涨" if ma20 > ma60 else "上涨") if cur > ma20 else ("强势下跌" if ma20 < ma60 else "下跌")
    )

    s = a.market_sentiment
    changes = [pct(close[i], close[i - 1]) for i in range(len(close) - 20, len(close))]
    vols = volume[-20:]
    ups = [i for i, c in enumerate(changes) if c > 0]
    downs = [i for i, c in enumerate(changes) if c < 0]
    assert (s.up_days_20, s.down_days_20) == (len(ups), len(downs))
    bull = sum(changes[i] * vols[i] for i in ups)
    bear = sum(-changes[i] * vols[i] for i in downs)
    assert s.bull_power_ratio == approx(100 * bull / (bull + bear))
    assert s.bear_power_ratio == approx(100 - 100 * bull / (bull + bear))
    up_vol, down_vol = sum(vols[i] for i in ups), sum(vols[i] for i in downs)
    assert s.volume_ratio == approx(100 * up_vol / (up_vol + down_vol))
    vol_change = pct(sum(volume[-5:]) / 5, sum(volume[-20:-5]) / 15)
    assert s.volume_change_pct == approx(vol_change)
    assert s.volume_trend == volume_trend_of(vol_change)
    m5, m20 = pct(cur, close[-6]), pct(cur, close[-21])
    assert (s.momentum_5d, s.momentum_20d) == (approx(m5), approx(m20))
    run_up = run_down = 0
    for i in range(len(close) - 1, 0, -1):
        if close[i] > close[i - 1] and run_down == 0:
            run_up += 1
        elif close[i] < close[i - 1] and run_up == 0:
            run_down += 1
        else:
            break
    assert (s.consecutive_up, s.consecutive_down) == (run_up, run_down)
    score = (
        30 * len(ups) / 20
        + 25 * s.bull_power_ratio / 100
        + 20 * s.volume_ratio / 100
        + 15 * min(100, max(0, 50 + 5 * m5)) / 100
        + 10 * min(100, max(0, 50 + 2 * m20)) / 100
    )
    assert s.sentiment_score == approx(score) and s.sentiment == sentiment_of(score)

    m = a.key_metrics
    assert m.current_price == cur and m.total_trading_days == days
    assert m.change == approx(cur - close[-2]) and m.change_pct == approx(pct(cur, close[-2]))
    assert (m.period_high, m.period_low) == (max(ph), min(pl))
    assert m.period_return == approx(pct(cur, pc[0]))
    daily = [pct(pc[i], pc[i - 1]) for i in range(1, len(pc))]
    mean = sum(daily) / len(daily)
    assert m.volatility == approx(math.sqrt(sum((x - mean) ** 2 for x in daily) / (len(daily) - 1)))
    peak, worst = pc[0], 0.0
    for c in pc:
        peak = max(peak, c)
        worst = min(worst, pct(c, peak))
    assert m.max_drawdown == approx(worst)

    # the levels are those of the period with the ATR of the last bar (checked by hand below)
    assert a.key_levels == levels(period[:, 4], period[:, 2], period[:, 3], t.atr)
    k = a.key_levels
    assert k.current_price == cur
    assert all(x.price < cur for x in k.supports) and all(x.price > cur for x in k.resistances)
    assert [x.price for x in k.supports] == sorted((x.price for x in k.supports), reverse=True)
    assert [x.price for x in k.resistances] == sorted(x.price for x in k.resistances)


def test_fewer_bars_than_the_analysis_needs_is_said() -> None:
    with pytest.raises(TooFewBars, match=f"399006.SZ has {MIN_BARS - 1} closed daily bars"):
        analyse("399006.SZ", planted(MIN_BARS - 1), 180)
    assert analyse("399006.SZ", planted(MIN_BARS), 180).days == MIN_BARS


# --- the readings at their thresholds ----------------------------------------------------------
def test_trend_reading() -> None:
    assert trend_of(11, 10, 9) == "强势上涨"
    assert trend_of(11, 10, 12) == "上涨"
    assert trend_of(9, 10, 11) == "强势下跌"
    assert trend_of(9, 10, 8) == "下跌"
    assert trend_of(10, 10, 8) == "中性"


def test_macd_reading_tells_a_cross_on_the_last_bar() -> None:
    assert macd_reading(np.array([1.0, 2.0]), np.array([1.0, 1.5])) == "转多"
    assert macd_reading(np.array([2.0, 2.0]), np.array([1.0, 1.5])) == "多头"
    assert macd_reading(np.array([1.0, 1.0]), np.array([1.0, 1.5])) == "转空"
    assert macd_reading(np.array([0.0, 1.0]), np.array([1.0, 1.5])) == "空头"
    assert macd_reading(np.array([0.0, 1.5]), np.array([1.0, 1.5])) == "中性"


@pytest.mark.parametrize(
    "value,reading",
    [
        (70.01, "超买"),
        (70.0, "偏强"),
        (60.01, "偏强"),
        (60.0, "中性"),
        (40.0, "中性"),
        (39.99, "偏弱"),
        (29.99, "超卖"),
    ],
)
def test_rsi_reading(value: float, reading: str) -> None:
    assert rsi_reading(value) == reading


@pytest.mark.parametrize(
    "score,label",
    [
        (75, "极度乐观"),
        (74.9, "乐观"),
        (65, "乐观"),
        (55, "偏乐观"),
        (45, "中性"),
        (35, "偏悲观"),
        (25, "悲观"),
        (24.9, "极度悲观"),
    ],
)
def test_sentiment_labels(score: float, label: str) -> None:
    assert sentiment_of(score) == label


@pytest.mark.parametrize(
    "change,label",
    [
        (30.1, "显著放量"),
        (30, "温和放量"),
        (15.1, "温和放量"),
        (15, "平稳"),
        (-15, "平稳"),
        (-15.1, "温和缩量"),
        (-30, "温和缩量"),
        (-30.1, "显著缩量"),
    ],
)
def test_volume_trend_labels(change: float, label: str) -> None:
    assert volume_trend_of(change) == label


# --- supports, resistances, targets, advice on a hand-built period -------------------------------
def hand_period() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """40 bars closing at 100 (high 101, low 99) but for planted swing lows 90 (bar 5, the period
    low), 95 (bar 12), 97 (bar 20) and 97.5 (bar 28), and swing highs 110 (bar 8, the period high),
    104 (bar 15) and 104.8 (bar 30). Flat stretches are no swing: a swing is lower (higher) than
    each of the 3 bars on both sides."""
    close = np.full(40, 100.0)
    high = np.full(40, 101.0)
    low = np.full(40, 99.0)
    for i, v in {5: 90.0, 12: 95.0, 20: 97.0, 28: 97.5}.items():
        low[i] = v
    for i, v in {8: 110.0, 15: 104.0, 30: 104.8}.items():
        high[i] = v
    return close, high, low


def test_levels_are_the_nearest_swings_spaced_by_half_an_atr() -> None:
    close, high, low = hand_period()
    k = levels(close, high, low, atr=2.0)  # levels closer than 1.0 to a nearer one are left out
    assert [(x.level, x.price) for x in k.supports] == [("支撑1", 97.5), ("支撑2", 95.0), ("支撑3", 90.0)]
    assert [(x.level, x.price) for x in k.resistances] == [("压力1", 104.0), ("压力2", 110.0)]
    assert [x.distance_pct for x in k.supports] == [
        pytest.approx(-2.5),
        pytest.approx(-5.0),
        pytest.approx(-10.0),
    ]
    # stop: the nearest support, at most 2 ATR below; take profit: the nearest resistance
    adv = k.trading_advice
    assert (adv.stop_loss, adv.take_profit) == (97.5, 104.0)
    assert adv.stop_loss_pct == pytest.approx(-2.5) and adv.take_profit_pct == pytest.approx(4.0)
    assert adv.risk_reward_ratio == pytest.approx(4.0 / 2.5)
    # targets: ATR * sqrt(5) either side; probability: how often the next 5 bars reached that far
    move = 2.0 * math.sqrt(5)
    tp = k.target_prices
    assert tp.upside_target == pytest.approx(100 + move) and tp.downside_target == pytest.approx(100 - move)
    assert tp.upside_distance == pytest.approx(move) and tp.downside_distance == pytest.approx(-move)
    starts = range(40 - 5)
    up_hits = sum(max(high[i + 1 : i + 6]) >= 100 + move for i in starts)  # bar 8 (110) and bar 30 (104.8)
    down_hits = sum(min(low[i + 1 : i + 6]) <= 100 - move for i in starts)  # bars 5 (90) and 12 (95)
    assert tp.probability_up == pytest.approx(100 * up_hits / 35) and up_hits == 10
    assert tp.probability_down == pytest.approx(100 * down_hits / 35) and down_hits == 10


def test_far_supports_give_a_stop_two_atr_below_and_no_resistance_a_target_three_atr_above() -> None:
    close, high, low = hand_period()
    high[:] = 101.0  # no swing high left: the period high (101) is the only resistance
    k = levels(close, high, low, atr=0.5)  # the nearest support (97.5) is 5 ATR away
    assert k.trading_advice.stop_loss == pytest.approx(99.0)  # 100 - 2 * 0.5
    assert [x.price for x in k.resistances] == [101.0]
    low[:] = 100.0  # the price at the period low: no support at all
    high[:] = 100.0
    k = levels(close, high, low, atr=0.5)
    assert k.supports == [] and k.resistances == []
    assert k.trading_advice.stop_loss == pytest.approx(99.0)
    assert k.trading_advice.take_profit == pytest.approx(101.5)
    assert k.trading_advice.risk_reward_ratio == pytest.approx(1.5)
