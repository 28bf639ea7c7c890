"""The history run gives, for every stored bar, exactly the signals the streaming path gives for it:
every strategy, codes with more and fewer bars than a window, through the wire format."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import numpy as np
import pytest

from marketbus.contracts import Security, Signal, SignalBatch
from marketbus.trend import TS
from signals.backfill import History, due_codes, encode, history_found, round_half_even_like_python
from signals.evaluate import Target, evaluate_windows, window_ending_at
from signals.strategies import Hits, Strategy, StrategyParams, Window, build_strategies
from signals.strategies.base import make_hits
from signals.strategies.confidence import cross_confidence

DAY = 86_400_000
T0 = 1_700_000_000_000


def market(lengths: list[int], seed: int = 1) -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    out = []
    for j, n in enumerate(lengths):
        close = 10 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
        open_ = close * np.exp(rng.normal(0, 0.005, n))
        high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.01, n)))
        low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.01, n)))
        volume = rng.lognormal(10, 0.6, n)
        ts = T0 + np.arange(n) * DAY
        out.append(
            (f"{600000 + j:06d}.SH", np.stack([ts, open_, high, low, close, volume, volume * close], 1))
        )
    return out


def universe(series: list[tuple[str, np.ndarray]]) -> dict[str, Security]:
    return {c: Security(code=c, name=f"名{c[:6]}", market="SH主板") for c, _ in series[1:]}  # one unknown


def streaming(
    series: list[tuple[str, np.ndarray]], strategies: list[Any], uni: dict[str, Security]
) -> list[Signal]:
    """What the streaming path writes for each bar: the window ending at it (window_ending_at)."""
    targets = []
    for code, rows in series:
        for ts in rows[:, TS]:
            window = window_ending_at(rows, int(ts))
            assert window is not None
            targets.append(Target(code, "1d", window))
    out = []
    for a in range(0, len(targets), 1000):
        out.extend(evaluate_windows(targets[a : a + 1000], strategies, uni, 1))
    return out


def comparable(signals: list[Signal]) -> list[tuple[Any, ...]]:
    return sorted(tuple(s.model_dump(exclude={"created_ts"}).values()) for s in signals)


def decoded(history: History, uni: dict[str, Security]) -> list[Signal]:
    """The run's entries as the scorecard reads them: JSON, validated as SignalBatch."""
    return [s for e in history.entries(uni) for s in SignalBatch.model_validate_json(encode(e)).signals()]


def test_every_bar_of_every_code_gives_the_streaming_paths_signals() -> None:
    series = market([320, 250, 249, 120, 21, 3, 1])
    strategies = build_strategies()
    uni = universe(series)
    history = history_found(series, "1d", strategies, uni, 1)
    got = decoded(history, uni)
    want = streaming(series, strategies, uni)
    assert len(want) > 500  # every strategy fires somewhere
    assert {s.strategy for s in want} == {s.key for s in strategies}
    assert comparable(got) == comparable(want)
    # one entry per code, oldest bar first; an unknown code keeps its code as name
    entries = history.entries(uni)
    assert [e["code"] for e in entries] == sorted({e["code"] for e in entries})
    first = SignalBatch.model_validate_json(encode(entries[0]))
    assert first.bar_ts == sorted(first.bar_ts)
    assert first.name == "600000.SH" and first.market == "unknown"


class Peeks(Strategy[StrategyParams]):
    """Not causal: BUY at the highest close of the WHOLE window array (rows after t included)."""

    key: ClassVar[str] = "peeks"
    name: ClassVar[str] = "peeks"
    params_type = StrategyParams
    confidence = cross_confidence(0.01, "none")

    @property
    def min_bars(self) -> int:
        return 1

    def evaluate(self, w: Window) -> Hits:
        a = w.aligned()
        top = np.broadcast_to(np.nanmax(a.close, axis=0), a.close.shape)
        close = a.at(a.close)
        buy = close >= a.at(np.ascontiguousarray(top))
        return make_hits(a, 1, buy, np.zeros(a.N, bool), close, np.zeros(a.N), lambda j, s: "top")


def test_a_strategy_that_is_not_causal_is_found_and_evaluated_window_by_window(
    caplog: pytest.LogCaptureFixture,
) -> None:
    series = market([200, 150, 90], seed=4)
    strategies = [*build_strategies(), Peeks()]
    uni = universe(series)
    with caplog.at_level(logging.WARNING, logger="signals.backfill"):
        history = history_found(series, "1d", strategies, uni, 1)
    assert "peeks" in caplog.text and "window by window" in caplog.text
    assert comparable(decoded(history, uni)) == comparable(streaming(series, strategies, uni))


def test_rounding_is_pythons() -> None:
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 50, 20000), np.arange(-2000, 2000) / 1e4 + 0.00005, [np.nan, 1e12]])
    got = round_half_even_like_python(x, 4)
    want = np.array([round(float(v), 4) if np.isfinite(v) else np.nan for v in x])
    assert np.array_equal(got, want, equal_nan=True)


def test_a_code_is_run_again_only_when_older_bars_came() -> None:
    done = {"600000.SH": 100, "600001.SH": 100}
    first = {"600000.SH": 100, "600001.SH": 40, "600002.SH": 500, "600003.SH": 200}
    # new code, and one whose series now starts earlier; trimmed (later start) and unchanged: not
    assert due_codes(first | {"600004.SH": 101} | {"600000.SH": 100}, done | {"600004.SH": 100}) == [
        "600001.SH",
        "600002.SH",
        "600003.SH",
    ]
