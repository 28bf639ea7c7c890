"""Every vectorised indicator against TA-Lib (the oracle) code by code, on padded random data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import talib

from signals import indicators as ind

from . import reference as ref
from ._data import random_bars

T, N = 90, 300


@pytest.fixture(scope="module")
def bars() -> tuple[dict[str, np.ndarray], np.ndarray]:
    return random_bars(np.random.default_rng(7), T, N)


def check_per_code(mine: np.ndarray, n_valid: np.ndarray, ref) -> None:  # type: ignore[no-untyped-def]
    """Column j of ``mine`` equals ``ref(j, first)`` on the code's unpadded series."""
    assert mine.shape == (T, N)
    for j in range(N):
        first = T - n_valid[j]
        expected = np.full(T, np.nan)
        if n_valid[j]:
            expected[first:] = ref(j, first)
        got = mine[:, j]
        assert np.array_equal(np.isnan(got), np.isnan(expected)), f"NaN positions, code {j}"
        ok = ~np.isnan(got)
        assert np.allclose(got[ok], expected[ok], rtol=1e-9, atol=0), f"values, code {j}"


def test_padding_variety(bars) -> None:  # type: ignore[no-untyped-def]
    _, n_valid = bars
    assert (n_valid == T).sum() > 50 and (n_valid < 20).sum() > 5 and (n_valid == 0).any()


@pytest.mark.parametrize("n", [1, 5, 20])
def test_sma(bars, n: int) -> None:  # type: ignore[no-untyped-def]
    f, nv = bars
    for field in ("close", "volume"):
        x = f[field]
        check_per_code(ind.sma(x, n), nv, lambda j, s: talib.SMA(x[s:, j], n))  # noqa: B023


def test_sma_is_bit_identical_to_talib(bars) -> None:  # type: ignore[no-untyped-def]
    """TA_SMA has no CPU-specific build; its running total is replayed exactly."""
    f, nv = bars
    mine = ind.sma(f["close"], 20)
    for j in np.flatnonzero(nv):
        s = T - nv[j]
        assert np.array_equal(mine[s:, j], talib.SMA(f["close"][s:, j], 20), equal_nan=True)


@pytest.mark.parametrize("n", [2, 12, 26])
def test_ema(bars, n: int) -> None:  # type: ignore[no-untyped-def]
    f, nv = bars
    x = f["close"]
    check_per_code(ind.ema(x, n), nv, lambda j, s: talib.EMA(x[s:, j], n))


@pytest.mark.parametrize("params", [(12, 26, 9), (5, 10, 3), (26, 12, 9)])
def test_macd(bars, params) -> None:  # type: ignore[no-untyped-def]
    f, nv = bars
    x = f["close"]
    mine = ind.macd(x, *params)
    for k in range(3):
        check_per_code(mine[k], nv, lambda j, s: talib.MACD(x[s:, j], *params)[k])  # noqa: B023


@pytest.mark.parametrize("n", [14, 6])
def test_rsi(bars, n: int) -> None:  # type: ignore[no-untyped-def]
    f, nv = bars
    x = f["close"]
    check_per_code(ind.rsi(x, n), nv, lambda j, s: talib.RSI(x[s:, j], n))


def test_rsi_flat_series_is_zero_like_talib() -> None:
    x = np.full(30, 5.0)
    assert np.array_equal(ind.rsi(x, 14), talib.RSI(x, 14), equal_nan=True)


@pytest.mark.parametrize("params", [(20, 2.0, 2.0), (10, 1.5, 2.5), (20, 1.0, 1.0)])
def test_bbands(bars, params) -> None:  # type: ignore[no-untyped-def]
    f, nv = bars
    x = f["close"]
    mine = ind.bbands(x, *params)
    for k in range(3):
        check_per_code(mine[k], nv, lambda j, s: talib.BBANDS(x[s:, j], *params)[k])  # noqa: B023


def test_bbands_flat_series_has_zero_width() -> None:
    x = np.full(30, 3.3)
    up, _, lo = ind.bbands(x, 20)
    ref = talib.BBANDS(x, 20, 2, 2)
    assert np.array_equal(up, ref[0], equal_nan=True) and np.array_equal(lo, ref[2], equal_nan=True)


@pytest.mark.parametrize("n", [18, 5, 2])
def test_linearreg(bars, n: int) -> None:  # type: ignore[no-untyped-def]
    f, nv = bars
    x = f["close"]
    check_per_code(ind.linearreg(x, n), nv, lambda j, s: talib.LINEARREG(x[s:, j], n))


def test_linearreg_constant_window_has_zero_slope_change() -> None:
    """A flat stretch gives exactly the same value on every bar (no rounding noise)."""
    x = np.r_[np.linspace(10, 12, 30), np.full(40, 11.37)]
    lr = ind.linearreg(x, 18)
    assert np.all(np.diff(lr[48:]) == 0.0)


@pytest.mark.parametrize("n", [2, 9, 11, 16])
def test_rolling_max_min(bars, n: int) -> None:  # type: ignore[no-untyped-def]
    f, nv = bars
    h, lo = f["high"], f["low"]
    check_per_code(ind.rolling_max(h, n), nv, lambda j, s: talib.MAX(h[s:, j], n))
    check_per_code(ind.rolling_min(lo, n), nv, lambda j, s: talib.MIN(lo[s:, j], n))


@pytest.mark.parametrize("n", [2, 36])
def test_ema0_is_pandas_ewm(bars, n: int) -> None:  # type: ignore[no-untyped-def]
    f, nv = bars
    x = f["close"]
    check_per_code(
        ind.ema0(x, n),
        nv,
        lambda j, s: pd.Series(x[s:, j]).ewm(span=n, adjust=False).mean().to_numpy(),
    )


def kdj_reference(h: np.ndarray, lo: np.ndarray, c: np.ndarray, n=9, m1=3, m2=3):  # type: ignore[no-untyped-def]
    """Literal loops over one code (STRATEGIES.md)."""
    size = len(c)
    K, D = np.full(size, np.nan), np.full(size, np.nan)
    k = d = 50.0
    for i in range(n - 1, size):
        hh, ll = max(h[i - n + 1 : i + 1]), min(lo[i - n + 1 : i + 1])
        rsv = 50.0 if hh == ll else (c[i] - ll) / (hh - ll) * 100
        k = (m1 - 1) / m1 * k + 1 / m1 * rsv
        d = (m2 - 1) / m2 * d + 1 / m2 * k
        K[i], D[i] = k, d
    return K, D, 3 * K - 2 * D


def test_kdj_against_literal_loop(bars) -> None:  # type: ignore[no-untyped-def]
    f, nv = bars
    h, lo, c = f["high"], f["low"], f["close"]
    mine = ind.kdj(h, lo, c)
    for k in range(3):
        check_per_code(
            mine[k],
            nv,
            lambda j, s: kdj_reference(h[s:, j], lo[s:, j], c[s:, j])[k],  # noqa: B023
        )


def test_kdj_worked_by_hand() -> None:
    """n=3, m1=m2=3 on five bars, values worked out on paper."""
    h = np.array([10.0, 12.0, 11.0, 13.0, 13.0])
    lo = np.array([8.0, 9.0, 9.0, 10.0, 13.0])
    c = np.array([9.0, 11.0, 10.0, 12.0, 13.0])
    K, D, J = ind.kdj(h, lo, c, 3, 3, 3)
    # bar 2: HHV 12, LLV 8, RSV = (10-8)/4*100 = 50 -> K = 50, D = 50
    # bar 3: HHV 13, LLV 9, RSV = 75 -> K = 100/3+25 = 58.333.., D = 100/3 + 58.333../3
    # bar 4: HHV 13, LLV 9, RSV = 100 -> K = 2/3*58.333.. + 100/3
    assert np.isnan(K[:2]).all() and np.isnan(D[:2]).all()
    assert K[2] == pytest.approx(50) and D[2] == pytest.approx(50)
    assert K[3] == pytest.approx(175 / 3) and D[3] == pytest.approx(100 / 3 + 175 / 9)
    assert K[4] == pytest.approx(2 / 3 * 175 / 3 + 100 / 3)
    assert J[4] == pytest.approx(3 * K[4] - 2 * D[4])


def test_kdj_zero_range_gives_rsv_50() -> None:
    x = np.full(12, 4.0)
    K, D, _ = ind.kdj(x, x, x)
    assert np.allclose(K[8:], 50.0) and np.allclose(D[8:], 50.0)


@pytest.mark.parametrize(("key", "n"), [(1.0, 10), (2.5, 3), (0.5, 1)])
def test_atr_trailing_stop_against_literal_loop(bars, key: float, n: int) -> None:  # type: ignore[no-untyped-def]
    """Bit for bit: the same operations in the same order as the literal per-bar loop."""
    f, nv = bars
    h, lo, c = f["high"], f["low"], f["close"]
    stop, atr = ind.atr_trailing_stop(h, lo, c, key, n)
    tr = ind.true_range(h, lo, c)
    assert np.array_equal(ind.atr0(h, lo, c, n), atr, equal_nan=True)
    for j in range(N):
        s = T - nv[j]
        assert np.isnan(stop[:s, j]).all() and np.isnan(atr[:s, j]).all() and np.isnan(tr[:s, j]).all()
        if nv[j]:
            rstop, ratr = ref.ut_stop(h[s:, j], lo[s:, j], c[s:, j], key, n)
            assert np.array_equal(stop[s:, j], rstop), j
            assert np.array_equal(atr[s:, j], ratr), j
            assert tr[s, j] == h[s, j] - lo[s, j]
            assert np.array_equal(tr[s + 1 :, j], talib.TRANGE(h[s:, j], lo[s:, j], c[s:, j])[1:])


def test_atr_trailing_stop_worked_by_hand() -> None:
    """atr_period 2: atr[i] = tr[i]/2 + atr[i-1]/2 (values worked out on paper)."""
    h = np.array([10.5, 10.2, 11.0, 10.0, 11.1])
    lo = np.array([9.5, 9.6, 10.0, 9.4, 9.9])
    c = np.array([10.0, 9.8, 10.8, 9.5, 11.0])
    assert ind.true_range(h, lo, c) == pytest.approx([1.0, 0.6, 1.2, 1.4, 1.6])
    stop, atr = ind.atr_trailing_stop(h, lo, c, 1.0, 2)
    assert atr == pytest.approx([1.0, 0.8, 1.0, 1.2, 1.4])
    # up and held (max), up and held, falls through (9.5 + 1.2), rises through (11.0 - 1.4)
    assert stop == pytest.approx([9.0, 9.0, 9.8, 10.7, 9.6])
    # falling: tr 1.0, 0.6, 2.0 (|low - close[1]|), 0.9; atr 1.0, 0.8, 1.4, 1.15; the close
    # falls through 9.0 (8.0 + 1.4), then the stop ratchets down: min(9.4, 7.9 + 1.15)
    h = np.array([10.5, 10.2, 9.0, 8.5])
    lo = np.array([9.5, 9.6, 7.8, 7.6])
    c = np.array([10.0, 9.8, 8.0, 7.9])
    stop, atr = ind.atr_trailing_stop(h, lo, c, 1.0, 2)
    assert atr == pytest.approx([1.0, 0.8, 1.4, 1.15])
    assert stop == pytest.approx([9.0, 9.0, 9.4, 9.05])
    # a close exactly on the stop is not above it: the stop goes over it (9.0 + tr 1.5)
    stop, _ = ind.atr_trailing_stop(
        np.array([10.5, 9.5]), np.array([9.5, 8.5]), np.array([10.0, 9.0]), 1.0, 1
    )
    assert stop.tolist() == [9.0, 10.5]


def test_one_d_input_and_short_series() -> None:
    x = np.array([1.0, 2.0, 3.0])
    assert np.isnan(ind.sma(x, 5)).all() and ind.sma(x, 5).shape == (3,)
    assert np.isnan(ind.macd(x)[0]).all()
    assert np.isnan(ind.rsi(x)).all()
    assert np.isnan(ind.linearreg(x, 18)).all()
    assert np.isnan(ind.kdj(x, x, x)[0]).all()
    assert ind.atr_trailing_stop(x, x, x)[0].shape == (3,)
    assert ind.atr_trailing_stop(x[:0], x[:0], x[:0])[0].shape == (0,)


def test_columns_are_independent(bars) -> None:  # type: ignore[no-untyped-def]
    """A column's result does not depend on the other columns nor on extra NaN padding."""
    f, _ = bars
    x = f["close"]
    full = ind.macd(x)[1]
    for j in (0, 5, 17):
        alone = ind.macd(x[:, j : j + 1])[1]
        assert np.array_equal(alone[:, 0], full[:, j], equal_nan=True)
        padded = np.vstack([np.full((7, 1), np.nan), x[:, j : j + 1]])
        assert np.array_equal(ind.macd(padded)[1][7:, 0], full[:, j], equal_nan=True)


def test_parts_forms_give_the_padded_functions_values(bars) -> None:  # type: ignore[no-untyped-def]
    """The left-aligned parts that the strategies cache, moved back to the padding, are exactly
    what the padded functions return."""
    f, nv = bars
    start = T - nv
    h, lo, c = (ind.left_align(f[k], start) for k in ("high", "low", "close"))

    def same(left: np.ndarray, padded: np.ndarray) -> bool:
        return np.array_equal(ind.right_align(left, start), padded, equal_nan=True)

    line, sig = ind.macd_lines(c, 12, 26, 9)
    m = ind.macd(f["close"], 12, 26, 9)
    assert same(line, m[0]) and same(sig, m[1])
    assert same(ind.rsi_from_parts(*ind.rsi_parts(c, 14)), ind.rsi(f["close"], 14))
    mid, var = ind.bb_parts(c, 20)
    up, lower = ind.bb_bands(mid, var, 2.0, 1.5)
    b = ind.bbands(f["close"], 20, 2.0, 1.5)
    assert same(up, b[0]) and same(mid, b[1]) and same(lower, b[2])
    K, D, _ = ind.kdj(f["high"], f["low"], f["close"], 9, 3, 3)
    k, d = ind.kd_lines(h, lo, c, 9, 3, 3)
    assert same(k, K) and same(d, D)
    # levels built for one length serve a longer one with the same largest power of two
    levels = ind.rolling_levels(h, 9, np.maximum)
    hh = ind.rolling_from_levels(levels, 11, np.maximum)
    assert same(hh, ind.rolling_max(f["high"], 11))
    k2, d2 = ind.kd_lines(h, lo, c, 9, 3, 3, hh=ind.rolling_from_levels(levels, 9, np.maximum))
    assert np.array_equal(k2, k, equal_nan=True) and np.array_equal(d2, d, equal_nan=True)
    stop, atr = ind.atr_stop_lines(h, lo, c, 1.0, 10)
    ps, pa = ind.atr_trailing_stop(f["high"], f["low"], f["close"], 1.0, 10)
    assert same(stop, ps) and same(atr, pa)


def test_public_api_has_no_private_names() -> None:
    assert ind.__all__ and not [n for n in ind.__all__ if n.startswith("_")]
    assert all(callable(getattr(ind, n)) for n in ind.__all__)
