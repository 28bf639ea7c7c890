"""Strategies: hand-built windows, a literal per-code reference on thousands of random windows,
batch == one code at a time, confidence ordering, registry."""

from __future__ import annotations

import math

import numpy as np
import pytest

from signals.strategies import (
    STRATEGIES,
    WINDOW_BARS,
    Window,
    build_strategies,
    evaluate_all,
)
from signals.strategies.trend_continuation import swing_levels

from . import reference as ref
from ._data import random_bars

KEYS = list(STRATEGIES)
FIELDS = ("open", "high", "low", "close", "volume")


def window(fields: dict[str, np.ndarray]) -> Window:
    return Window(**{k: fields[k] for k in FIELDS})


@pytest.fixture(scope="module")
def scan() -> tuple[dict[str, np.ndarray], np.ndarray, dict[str, object]]:
    """3,000 random windows of 70 bars (random front padding) evaluated in one batch."""
    fields, nv = random_bars(np.random.default_rng(2024), 70, 3000)
    results = {s.key: h for s, h in evaluate_all(build_strategies(), window(fields))}
    return fields, nv, results


def test_registry() -> None:
    assert KEYS == [
        "volume_wave",
        "trend_continuation",
        "ma_cross",
        "macd_cross",
        "rsi_reversal",
        "boll_breakout",
        "kdj_cross",
        "volume_surge",
        "volume_wave_enhanced",
        "volatility_conservation",
    ]
    assert WINDOW_BARS == 250
    names = {s.key: (s.name, s.min_bars) for s in build_strategies()}
    assert names == {
        "volume_wave": ("动量守恒", 40),
        "trend_continuation": ("趋势延续", 11),
        "ma_cross": ("均线金叉", 21),
        "macd_cross": ("MACD金叉", 35),
        "rsi_reversal": ("RSI反转", 16),
        "boll_breakout": ("布林突破", 21),
        "kdj_cross": ("KDJ金叉", 10),
        "volume_surge": ("放量突破", 21),
        "volume_wave_enhanced": ("量价进阶", 40),
        "volatility_conservation": ("趋势追踪", 2),
    }


def test_describe_and_overrides() -> None:
    s = {x.key: x for x in build_strategies({"ma_cross": {"fast": 10, "slow": 30}})}
    d = s["ma_cross"].describe()
    assert d.params == {"fast": 10, "slow": 30} and d.min_bars == 31
    assert d.key == "ma_cross" and d.name and d.confidence
    assert s["trend_continuation"].describe().params == {
        "L": 5,
        "stop_loss_ratio": 0.05,
        "reward_risk": 1.5,
    }
    assert s["volume_wave_enhanced"].describe().params == {
        "angel": 2,
        "length": 18,
        "multiplier": 20.0,
        "devil": 36,
        "trend": 18,
    }
    assert s["volatility_conservation"].describe().params == {"key": 1.0, "atr_period": 10}
    with pytest.raises(ValueError):
        build_strategies({"nope": {}})
    with pytest.raises(ValueError):
        build_strategies({"ma_cross": {"fastest": 3}})


def check_against_reference(key: str, hits, windows) -> None:  # type: ignore[no-untyped-def]
    """Column j of ``hits`` is what the literal reference gives on ``windows[j]`` (the unpadded
    (open, high, low, close, volume) of that column, None for a column with no bar): the side,
    the price, the stop and target where the reference sets them, and for volume_wave_enhanced's
    SELL the BUY price it closes in the reason. Not vacuous: both sides fire."""
    fn = ref.REFERENCES[key]
    sides = np.zeros(len(windows), dtype=np.int8)
    for j, series in enumerate(windows):
        if series is None:
            continue
        got = fn(*series)
        sides[j] = got[0]
        if got[0]:
            assert hits.price[j] == got[1], f"{key} price, code {j}"
            expected = got[2:] if len(got) > 2 else (math.nan, math.nan)
            assert np.array_equal([hits.stop_loss[j], hits.take_profit[j]], expected, equal_nan=True), (
                key,
                j,
            )
            if key == "volume_wave_enhanced" and got[0] < 0:
                bought = ref.wave_trade(series[3])[2]
                assert hits.reasons[j].endswith(f"closing the long bought at {bought:.4f}"), j
    mismatch = np.flatnonzero(sides != hits.side)
    assert mismatch.size == 0, f"{key}: codes {mismatch[:10]} ref {sides[mismatch[:10]]}"
    assert (sides == 1).sum() >= 5 and (sides == -1).sum() >= 5, (key, np.bincount(sides + 1))


@pytest.mark.parametrize("key", KEYS)
def test_matches_literal_reference(scan, key: str) -> None:  # type: ignore[no-untyped-def]
    fields, nv, results = scan
    windows = [ref.series(fields, j, int(nv[j])) if nv[j] else None for j in range(len(nv))]
    check_against_reference(key, results[key], windows)


@pytest.fixture(scope="module")
def every_bar() -> tuple[list[list[np.ndarray]], dict[str, object]]:
    """The window ending at every bar of 16 random 150-bar series, as the scan and the streaming
    path cut them (the last ``LENGTH`` bars, fewer at the start of a series), one column each
    (front-padded), all evaluated in one batch."""
    length, T, n = 90, 150, 16
    fields, _ = random_bars(np.random.default_rng(77), T, n, min_valid=T)
    windows = []
    cols: dict[str, list[np.ndarray]] = {k: [] for k in fields}
    for j in range(n):
        for t in range(T):
            first = max(0, t + 1 - length)
            windows.append([np.ascontiguousarray(fields[k][first : t + 1, j]) for k in FIELDS])
            for k in fields:
                cols[k].append(np.r_[np.full(length - (t + 1 - first), np.nan), fields[k][first : t + 1, j]])
    w = window({k: np.stack(v, axis=1) for k, v in cols.items()})
    return windows, {s.key: h for s, h in evaluate_all(build_strategies(), w)}


@pytest.mark.parametrize("key", KEYS)
def test_matches_literal_reference_at_every_bar(every_bar, key: str) -> None:  # type: ignore[no-untyped-def]
    """Every bar of long series: windows that grow from the first bar, then slide (the window
    start moves, which changes volume_wave_enhanced's pairing and the trailing stop)."""
    windows, results = every_bar
    check_against_reference(key, results[key], windows)


@pytest.mark.parametrize("key", ["volume_wave_enhanced", "volatility_conservation", "trend_continuation"])
def test_the_recursions_alone_equal_the_batch(every_bar, key: str) -> None:  # type: ignore[no-untyped-def]
    """The windows where a recursion from the first bar fired (and some where it did not),
    evaluated one at a time (N=1, unpadded) with every strategy, as the streaming path does:
    the same hits as in the padded batch, to the reason and the stop."""
    windows, results = every_bar
    full = results[key]
    fired = np.flatnonzero(full.side)
    picks = [*fired[:: max(1, len(fired) // 60)], *np.flatnonzero(full.side == 0)[::97]]
    assert len(fired) >= 20
    strategies = build_strategies()
    for j in picks:
        w = window(dict(zip(FIELDS, windows[j], strict=True)))
        alone = {s.key: h for s, h in evaluate_all(strategies, w)}
        h = alone[key]
        assert h.side[0] == full.side[j], j
        for name in ("price", "confidence", "stop_loss", "take_profit"):
            assert np.array_equal(getattr(h, name)[0], getattr(full, name)[j], equal_nan=True), (name, j)
        assert h.reasons[0] == full.reasons[j]


@pytest.mark.parametrize("key", KEYS)
def test_hits_are_well_formed(scan, key: str) -> None:  # type: ignore[no-untyped-def]
    _, nv, results = scan
    h = results[key]
    fired = h.side != 0
    assert h.side.dtype == np.int8
    assert np.all((h.confidence[fired] >= 0) & (h.confidence[fired] <= 1))
    assert np.all(h.confidence[~fired] == 0) and np.isnan(h.price[~fired]).all()
    assert np.isfinite(h.price[fired]).all()
    assert len(set(np.round(h.confidence[fired], 9))) > 1, "confidence is not a constant"
    assert all(bool(r) == f for r, f in zip(h.reasons, fired, strict=True))
    assert not fired[nv < STRATEGIES[key]().min_bars].any()


def test_batch_equals_one_code_at_a_time(scan) -> None:  # type: ignore[no-untyped-def]
    fields, nv, results = scan
    strategies = build_strategies()
    picks = list(np.flatnonzero(nv == 70)[:40]) + list(np.flatnonzero((nv < 70) & (nv > 0))[:60])
    for j in picks:
        # alone and unpadded, and alone with different padding
        alone = {k: fields[k][70 - nv[j] :, j] for k in fields}
        repadded = {k: np.r_[np.full(13, np.nan), a] for k, a in alone.items()}
        for f in (alone, repadded):
            for s, h in evaluate_all(strategies, window(f)):
                full = results[s.key]
                assert h.side[0] == full.side[j], (s.key, j)
                assert np.array_equal(h.price[0], full.price[j], equal_nan=True)
                assert h.confidence[0] == full.confidence[j]
                assert h.reasons[0] == full.reasons[j]


def test_repeated_scans_are_independent() -> None:
    """Indicator buffers are reused between calls: a scan of other data in between, or of
    another shape, changes nothing."""
    f1, _ = random_bars(np.random.default_rng(11), 60, 500)
    f2, _ = random_bars(np.random.default_rng(12), 60, 500)
    f3, _ = random_bars(np.random.default_rng(13), 45, 77)
    strategies = build_strategies()
    first = evaluate_all(strategies, window(f1))
    evaluate_all(strategies, window(f2))
    evaluate_all(strategies, window(f3))
    again = evaluate_all(strategies, window(f1))
    for (_, a), (_, b) in zip(first, again, strict=True):
        assert np.array_equal(a.side, b.side) and np.array_equal(a.price, b.price, equal_nan=True)
        assert np.array_equal(a.confidence, b.confidence) and a.reasons == b.reasons


def test_short_and_empty_windows_give_nothing() -> None:
    for T in (0, 1, 2, 5):
        x = np.linspace(1, 2, T)
        w = Window(x, x + 0.1, x - 0.1, x, np.ones(T))
        for _, h in evaluate_all(build_strategies(), w):
            assert h.side.tolist() == [0]
    nan = np.full((30, 2), np.nan)
    for _, h in evaluate_all(build_strategies(), Window(nan, nan, nan, nan, nan)):
        assert h.side.tolist() == [0, 0]


def test_from_time_major_and_bar_counts() -> None:
    from marketbus.trend import time_major

    rows = [np.arange(7 * n, dtype=float).reshape(n, 7) + 1 for n in (3, 5, 0)]
    w = Window.from_time_major(time_major(rows, 4))
    assert w.close.shape == (4, 3) and w.aligned().n.tolist() == [3, 4, 0]
    assert np.array_equal(w.close[1:, 0], rows[0][:, 4])


# --------------------------------------------------------------------------- hand-built windows


def bars_from_close(close: list[float], volume: list[float] | None = None) -> Window:
    c = np.asarray(close, dtype=float)
    v = np.asarray(volume if volume is not None else [1000.0] * len(c), dtype=float)
    return Window(c, c * 1.001, c * 0.999, c, v)


def only(key: str, w: Window, **params: object):  # type: ignore[no-untyped-def]
    s = STRATEGIES[key](dict(params))
    return s.evaluate(w)


def test_ma_cross_hand_built() -> None:
    down = [20 - 0.1 * i for i in range(30)]
    buy = only("ma_cross", bars_from_close([*down, 25.0]))
    assert buy.side.tolist() == [1] and buy.price[0] == 25.0 and "crossed above" in buy.reasons[0]
    up = [10 + 0.1 * i for i in range(30)]
    assert only("ma_cross", bars_from_close([*up, 5.0])).side.tolist() == [-1]
    assert only("ma_cross", bars_from_close(up)).side.tolist() == [0]
    assert only("ma_cross", bars_from_close([10.0] * 40)).side.tolist() == [0]


def test_ma_cross_tie_then_cross() -> None:
    """Flat (SMA5 == SMA20 exactly) then a jump: cross_over's ``<=`` takes the tie."""
    assert only("ma_cross", bars_from_close([10.0] * 25 + [10.5])).side.tolist() == [1]
    assert only("ma_cross", bars_from_close([10.0] * 25 + [9.5])).side.tolist() == [-1]


def test_macd_cross_hand_built() -> None:
    down = [30 - 0.2 * i for i in range(50)]
    assert only("macd_cross", bars_from_close([*down, 35.0])).side.tolist() == [1]
    up = [10 + 0.2 * i for i in range(50)]
    assert only("macd_cross", bars_from_close([*up, 5.0])).side.tolist() == [-1]
    assert only("macd_cross", bars_from_close(up)).side.tolist() == [0]


def test_rsi_reversal_hand_built() -> None:
    down = [30 - 0.5 * i for i in range(20)]
    assert only("rsi_reversal", bars_from_close([*down, 25.0])).side.tolist() == [1]
    up = [10 + 0.5 * i for i in range(20)]
    assert only("rsi_reversal", bars_from_close([*up, 14.0])).side.tolist() == [-1]
    assert only("rsi_reversal", bars_from_close(up)).side.tolist() == [0]


def test_boll_breakout_hand_built() -> None:
    flat = [10.0 + 0.05 * (i % 2) for i in range(25)]
    assert only("boll_breakout", bars_from_close([*flat, 11.0])).side.tolist() == [1]
    assert only("boll_breakout", bars_from_close([*flat, 9.0])).side.tolist() == [-1]
    assert only("boll_breakout", bars_from_close([*flat, 10.02])).side.tolist() == [0]


def test_kdj_cross_hand_built() -> None:
    down = [30 - 0.5 * i for i in range(20)]
    assert only("kdj_cross", bars_from_close([*down, 21.0])).side.tolist() == [1]
    up = [10 + 0.5 * i for i in range(20)]
    assert only("kdj_cross", bars_from_close([*up, 19.0])).side.tolist() == [-1]
    # a cross above 30 is not a buy
    assert only("kdj_cross", bars_from_close([*up, 19.0, 25.0])).side.tolist() == [0]


def test_kdj_thresholds_are_parameters(scan) -> None:  # type: ignore[no-untyped-def]
    """Non-default zones: the sides follow buy_below / sell_above, and the zone depth in the
    confidence is relative to them ((buy_below-K)/buy_below, (K-sell_above)/(100-sell_above)),
    not to a width of 30."""
    fields, nv, results = scan
    params = {"buy_below": 45.0, "sell_above": 60.0}
    hits = only("kdj_cross", window(fields), **params)
    sides = np.zeros(len(nv), dtype=np.int8)
    for j in np.flatnonzero(nv):
        o, h, lo, c, v = ref.series(fields, j, int(nv[j]))
        sides[j] = ref.kdj_cross(o, h, lo, c, v, **params)[0]
        if sides[j]:
            expected = ref.kdj_confidence(h, lo, c, v, sides[j], **params)
            assert hits.confidence[j] == pytest.approx(expected, rel=1e-9), j
    assert np.array_equal(sides, hits.side)
    default = results["kdj_cross"].side
    assert (sides == 1).sum() > (default == 1).sum() >= 5
    assert (sides == -1).sum() > (default == -1).sum() >= 5


def test_volume_surge_hand_built() -> None:
    c = [10.0] * 21
    v = [1000.0] * 20
    assert only("volume_surge", bars_from_close([*c, 10.2], [*v, 1000, 2000])).side.tolist() == [1]
    assert only("volume_surge", bars_from_close([*c, 9.8], [*v, 1000, 2000])).side.tolist() == [-1]
    # exactly 2x the mean and exactly +2% both count (>=)
    assert only("volume_surge", bars_from_close([*c, 10.2], [*v, 1000, 1999])).side.tolist() == [0]
    assert only("volume_surge", bars_from_close([*c, 10.1], [*v, 1000, 5000])).side.tolist() == [0]


def test_volume_wave_hand_built() -> None:
    flat = [10.0] * 50
    buy = only("volume_wave", bars_from_close([*flat, 10.5]))
    assert buy.side.tolist() == [1] and buy.price[0] == 10.5 and "angel" in buy.reasons[0]
    assert only("volume_wave", bars_from_close([*flat, 9.5])).side.tolist() == [-1]
    assert only("volume_wave", bars_from_close([12.34] * 80)).side.tolist() == [0]
    # 39 bars: fewer than min_bars 40
    assert only("volume_wave", bars_from_close([10.0] * 38 + [10.5])).side.tolist() == [0]


def test_volume_wave_enhanced_pairs_its_crosses() -> None:
    """A BUY only from flat and above the trend, a SELL only to close that BUY."""
    flat = [10.0] * 50
    buy = only("volume_wave_enhanced", bars_from_close([*flat, 10.5]))
    assert buy.side.tolist() == [1] and buy.price[0] == 10.5
    assert buy.reasons[0].startswith("angel ") and "above the trend EMA18" in buy.reasons[0]
    # volume_wave sells on this cross_under; flat, the enhanced one has nothing to sell
    assert only("volume_wave", bars_from_close([*flat, 9.5])).side.tolist() == [-1]
    assert only("volume_wave_enhanced", bars_from_close([*flat, 9.5])).side.tolist() == [0]
    # a jump (BUY at bar 50), a cross_under at 54 (SELL), a cross_over at 67 above the trend (BUY
    # at 10.83), a slow decline, then a drop at bar 120 through the devil line: the SELL of that long
    closes = [*flat, 11.0, *(11.0 - 0.01 * i for i in range(1, 70)), 11.0 - 0.01 * 70 - 0.6]
    sell = only("volume_wave_enhanced", bars_from_close(closes))
    assert sell.side.tolist() == [-1] and sell.price[0] == closes[-1]
    assert sell.reasons[0].endswith("closing the long bought at 10.8300"), sell.reasons[0]
    assert np.isnan(sell.stop_loss[0]) and np.isnan(sell.take_profit[0])
    # the same bar in a window that starts after that BUY: the cross is there, no long to close
    late = bars_from_close(closes[68:])
    assert only("volume_wave", late).side.tolist() == [-1]
    assert only("volume_wave_enhanced", late).side.tolist() == [0]


def test_volume_wave_enhanced_ignores_a_cross_below_the_trend() -> None:
    """A cross_over with the close under the trend is no BUY and leaves it flat: the next
    cross_under sells nothing."""
    flat = [10.0] * 50
    closes = [*flat, 10.5, *(10.5 - 0.01 * i for i in range(1, 70)), 10.5 - 0.01 * 70 - 0.6]
    w = bars_from_close(closes[:68])  # bar 67: angel crosses above devil, close 10.33 < trend
    assert only("volume_wave", w).side.tolist() == [1]
    assert only("volume_wave_enhanced", w).side.tolist() == [0]
    w = bars_from_close(closes)
    assert only("volume_wave", w).side.tolist() == [-1]
    assert only("volume_wave_enhanced", w).side.tolist() == [0]


def test_volume_wave_enhanced_fires_only_on_volume_wave_crosses(scan) -> None:  # type: ignore[no-untyped-def]
    """Same lines: every enhanced hit is a volume_wave hit of the same side, and it fires less."""
    _, _, results = scan
    wave, enhanced = results["volume_wave"], results["volume_wave_enhanced"]
    fired = enhanced.side != 0
    assert np.array_equal(enhanced.side[fired], wave.side[fired])
    assert fired.sum() < (wave.side != 0).sum()


def ut_window() -> Window:
    """Five bars worked by hand with atr_period 2 (k 1/2), key 1:
    tr 1.0, 0.6, 1.2, 1.4, 1.6; atr 1.0, 0.8, 1.0, 1.2, 1.4;
    stop 9.0, max(9.0, 9.8-0.8) = 9.0, max(9.0, 10.8-1.0) = 9.8, then the close 9.5 falls
    through 9.8: 9.5+1.2 = 10.7 (SELL), then 11.0 rises through 10.7: 11.0-1.4 = 9.6 (BUY)."""
    h = np.array([10.5, 10.2, 11.0, 10.0, 11.1])
    lo = np.array([9.5, 9.6, 10.0, 9.4, 9.9])
    c = np.array([10.0, 9.8, 10.8, 9.5, 11.0])
    return Window(c, h, lo, c, np.array([1000.0, 1000, 1000, 1500, 3000]))


def test_volatility_conservation_worked_by_hand() -> None:
    w = ut_window()
    fields = {k: getattr(w, k)[:, 0] for k in FIELDS}

    def upto(n: int) -> Window:
        return Window(**{k: v[:n] for k, v in fields.items()})

    sell = only("volatility_conservation", upto(4), atr_period=2)
    assert sell.side.tolist() == [-1] and sell.price[0] == 9.5 and np.isnan(sell.stop_loss[0])
    assert sell.reasons[0] == "close 9.5000 broke below the ATR trailing stop 9.8000 (ATR2 1.2000)"
    buy = only("volatility_conservation", upto(5), atr_period=2)
    assert buy.side.tolist() == [1] and buy.price[0] == 11.0
    assert buy.stop_loss[0] == pytest.approx(9.6, abs=1e-12) and np.isnan(buy.take_profit[0])
    assert buy.reasons[0] == (
        "close 11.0000 broke above the ATR trailing stop 10.7000 (ATR2 1.4000); stop now 9.6000"
    )
    for n in (2, 3):  # the close stays above a ratcheting stop: nothing
        assert only("volatility_conservation", upto(n), atr_period=2).side.tolist() == [0]
    assert only("volatility_conservation", upto(1), atr_period=2).side.tolist() == [0]  # min_bars 2
    # a wider stop (key 3: 7.0, 7.4, 7.8, 7.8): the close 9.5 stays above it
    wide = STRATEGIES["volatility_conservation"]({"atr_period": 2, "key": 3.0})
    assert wide.evaluate(upto(4)).side.tolist() == [0]


def test_volatility_conservation_stop_depends_on_the_window_start() -> None:
    """The recursion starts at the window's first bar: the same bar in a window cut later can
    give another answer, and each matches the reference on its own window."""
    fields, _ = random_bars(np.random.default_rng(9), 120, 200, min_valid=120)
    full = only("volatility_conservation", window(fields))
    cut = only("volatility_conservation", window({k: v[60:] for k, v in fields.items()}))
    assert (full.side != cut.side).any() or not np.array_equal(full.stop_loss, cut.stop_loss, equal_nan=True)
    for j in range(200):
        for start, h in ((0, full), (60, cut)):
            o, hi, lo, c, v = (np.ascontiguousarray(fields[k][start:, j]) for k in FIELDS)
            side, _, stop, _ = ref.volatility_conservation(o, hi, lo, c, v)
            assert h.side[j] == side and np.array_equal(h.stop_loss[j], stop, equal_nan=True), (start, j)


def trend_window(highs: list[float]) -> tuple[Window, tuple]:  # type: ignore[type-arg]
    hi = np.asarray(highs)
    lo, c = hi - 0.4, hi - 0.1
    return Window(c, hi, lo, c, np.full(len(c), 1000.0)), ref.trend_continuation(c, hi, lo, c, c)


def test_trend_continuation_hand_built() -> None:
    # down to a swing low, a rally to a swing high 11.6, then down through the swing level
    falls = [12 - 0.2 * i for i in range(11)] + [10.2, 10.4, 10.6, 10.8, 11.0, 11.2, 11.4, 11.6]
    w, expected = trend_window([*falls, 11.4, 11.1])
    got = only("trend_continuation", w)
    assert got.side[0] == 1 and got.price[0] == 11.0 and expected[:2] == (1, 11.0)
    assert got.stop_loss[0] == expected[2] == max(10.0 - 0.4, 11.0 * 0.95)
    assert got.take_profit[0] == expected[3] == 11.0 + 1.5 * (11.0 - got.stop_loss[0])
    w, _ = trend_window([*falls, 11.4, 11.1, 10.8])  # a touch within 9 bars: nothing
    assert only("trend_continuation", w).side.tolist() == [0]
    rises = [10 + 0.2 * i for i in range(11)] + [11.8, 11.6, 11.4, 11.2, 11.0, 10.8, 10.6, 10.4]
    w, expected = trend_window([*rises, 10.6, 10.9])
    got = only("trend_continuation", w)
    assert (got.side[0], got.price[0]) == expected[:2] == (-1, 10.6)
    assert np.isnan(got.stop_loss[0]) and np.isnan(got.take_profit[0])


def test_trend_levels_match_reference_over_whole_series() -> None:
    """LH/LL on every bar (not just the last), including the 'still for the same j' rule."""
    fields, nv = random_bars(np.random.default_rng(5), 120, 400, min_valid=1)
    T = 120
    from signals.indicators import left_align

    start = T - nv
    LH, LL = swing_levels(left_align(fields["high"], start), left_align(fields["low"], start), 5)
    for j in range(400):
        _, h, lo, _, _ = ref.series(fields, j, int(nv[j]))
        rLH, rLL = ref.trend_levels(list(h), list(lo), 5)
        assert np.array_equal(LH[: nv[j], j], rLH, equal_nan=True), j
        assert np.array_equal(LL[: nv[j], j], rLL, equal_nan=True), j


def test_same_j_rule_matters() -> None:
    """A bar that is both the swing low and the swing high of its 2L+1 window (an outside bar
    over a flat range) turns up and straight back down on the same j."""
    hi = np.array([10.0] * 5 + [12.0] * 1 + [10.0] * 10)
    lo = np.array([9.0] * 5 + [8.0] * 1 + [9.0] * 10)
    # bar 5: high 12 is the window max, low 8 is the window min (only once j >= 2L; shift it)
    hi = np.r_[np.full(6, 10.0), hi]
    lo = np.r_[np.full(6, 9.0), lo]
    LH, LL = swing_levels(hi.reshape(-1, 1), lo.reshape(-1, 1), 5)
    rLH, rLL = ref.trend_levels(list(hi), list(lo), 5)
    assert np.array_equal(LH[:, 0], rLH, equal_nan=True)
    assert np.array_equal(LL[:, 0], rLL, equal_nan=True)
    assert LH[-1, 0] == 12.0 and LL[-1, 0] == 8.0


# --------------------------------------------------------------------------- confidence


def conf(key: str, w: Window) -> float:
    h = only(key, w)
    assert h.side[0] != 0
    return float(h.confidence[0])


def test_cross_confidence_grows_with_gap_and_volume() -> None:
    down = [20 - 0.1 * i for i in range(30)]
    weak = bars_from_close([*down, 22.5])
    strong = bars_from_close([*down, 24.0])
    assert conf("ma_cross", strong) > conf("ma_cross", weak)
    loud = bars_from_close([*down, 22.5], [1000.0] * 30 + [5000.0])
    assert conf("ma_cross", loud) > conf("ma_cross", weak)
    d2 = [30 - 0.2 * i for i in range(50)]
    assert conf("macd_cross", bars_from_close([*d2, 36.0])) > conf("macd_cross", bars_from_close([*d2, 21.5]))
    assert conf("volume_wave", bars_from_close([10.0] * 50 + [11.0])) > conf(
        "volume_wave", bars_from_close([10.0] * 50 + [10.3])
    )


def test_other_confidences_order() -> None:
    flat = [10.0 + 0.05 * (i % 2) for i in range(25)]
    assert conf("boll_breakout", bars_from_close([*flat, 11.0])) > conf(
        "boll_breakout", bars_from_close([*flat, 10.3])
    )
    down = [30 - 0.5 * i for i in range(20)]
    assert conf("rsi_reversal", bars_from_close([*down, 26.0])) > conf(
        "rsi_reversal", bars_from_close([*down, 24.0])
    )
    assert conf("kdj_cross", bars_from_close([*down, 21.0], [1000.0] * 20 + [4000.0])) > conf(
        "kdj_cross", bars_from_close([*down, 21.0])
    )
    c, v = [10.0] * 21, [1000.0] * 20
    assert conf("volume_surge", bars_from_close([*c, 10.8], [*v, 1000, 6000])) > conf(
        "volume_surge", bars_from_close([*c, 10.2], [*v, 1000, 2000])
    )


def test_new_confidences_are_the_documented_formulas(scan) -> None:  # type: ignore[no-untyped-def]
    """The two strategies of the latest version score as their texts say, computed literally."""
    fields, nv, results = scan
    checked = 0
    for key in ("volume_wave_enhanced", "volatility_conservation"):
        hits = results[key]
        for j in np.flatnonzero(hits.side):
            _, h, lo, c, v = ref.series(fields, j, int(nv[j]))
            if key == "volume_wave_enhanced":
                expected = ref.volume_wave_enhanced_confidence(c, v, hits.side[j])
            else:
                expected = ref.volatility_conservation_confidence(h, lo, c, v)
            assert hits.confidence[j] == pytest.approx(expected, rel=1e-9), (key, j)
            checked += 1
    assert checked > 100


def test_new_confidences_order() -> None:
    flat = [10.0] * 50
    # a bigger jump: a wider gap after the cross and a close further above the trend
    assert conf("volume_wave_enhanced", bars_from_close([*flat, 11.0])) > conf(
        "volume_wave_enhanced", bars_from_close([*flat, 10.3])
    )
    loud = bars_from_close([*flat, 10.3], [1000.0] * 50 + [5000.0])
    assert conf("volume_wave_enhanced", loud) > conf("volume_wave_enhanced", bars_from_close([*flat, 10.3]))
    # the close breaking further through the trailing stop, and on more volume
    down = [20 - 0.1 * i for i in range(30)]
    assert conf("volatility_conservation", bars_from_close([*down, 19.0])) > conf(
        "volatility_conservation", bars_from_close([*down, 17.5])
    )
    assert conf("volatility_conservation", bars_from_close([*down, 17.5], [1000.0] * 30 + [4000.0])) > conf(
        "volatility_conservation", bars_from_close([*down, 17.5])
    )


def test_confidence_is_finite_with_zero_volume() -> None:
    down = [20 - 0.1 * i for i in range(30)]
    h = only("ma_cross", bars_from_close([*down, 23.0], [0.0] * 31))
    assert h.side[0] == 1 and math.isfinite(h.confidence[0]) and 0 <= h.confidence[0] <= 1


@pytest.mark.parametrize("key", KEYS)
def test_confidence_text_is_the_formula_computed(key: str) -> None:
    """The formula ``describe()`` publishes, evaluated as written, is what the strategy computes."""
    score = STRATEGIES[key].confidence
    formula, where = score.doc.split(", where ", 1)
    assert all(f"{t.symbol} = " in where for t in score.terms)
    rng = np.random.default_rng(3)
    for _ in range(20):
        # clipped terms take values in [0, 1]; saturating ones any value >= 0
        values = {t.symbol: float(rng.uniform(0, 1 if t.scale is None else 20)) for t in score.terms}
        expected = eval(formula, {}, dict(values))
        got = score(*(np.array([values[t.symbol]]) for t in score.terms))
        assert got[0] == pytest.approx(expected, rel=1e-12), (key, values)
    assert STRATEGIES[key]().describe().confidence == score.doc


def test_strategies_use_public_indicator_functions_only() -> None:
    """Every indicator name a strategy module uses is in the package's public API."""
    import ast
    import pathlib

    import signals.strategies as pkg
    from signals import indicators as ind

    used: set[str] = set()
    for path in pathlib.Path(pkg.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("signals.indicators"):
                assert node.module == "signals.indicators", (path.name, node.module)
                used |= {a.name for a in node.names}
            elif isinstance(node, ast.Attribute) and getattr(node.value, "id", None) == "ind":
                used.add(node.attr)
    assert {"macd_lines", "rsi_parts", "kd_lines", "bb_parts"} <= used
    assert used <= set(ind.__all__), used - set(ind.__all__)
