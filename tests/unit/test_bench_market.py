"""The full-market benchmark's reconciliation: it must catch a dropped, wrong or invented bar, count
what the simulator served the way a poller sees it, and seed history that joins the live prices."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import orjson
import pytest

from marketbus.sessions import MINUTE_MS, load_calendar, shanghai_ms
from marketbus.trend import CLOSE, TS, VOLUME
from quotes.providersim.market import Market

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:  # the benchmarks package lives at the repository root, outside the workspace
    sys.path.insert(0, ROOT)
bench_market = importlib.import_module("benchmarks.bench_market")
simwitness = importlib.import_module("benchmarks.simwitness")
bar_errors, expected_bars, minute_history = (
    bench_market.bar_errors,
    bench_market.expected_bars,
    bench_market.minute_history,
)
Witness = simwitness.Witness

T0 = shanghai_ms(2026, 11, 20, 10, 0)


def test_bar_volumes_are_the_cumulative_delta_across_each_bar() -> None:
    ticks = {"600000.SH": [(T0 + 40_000, 1000.0), (T0 + 58_000, 1300.0), (T0 + 61_000, 1500.0),
                           (T0 + 64_000, 1900.0), (T0 + 121_000, 2000.0)]}  # fmt: skip
    got = expected_bars(ticks, "1m")
    # the first tick (mid-session) is the baseline; each later bar counts from the previous bar's last tick
    assert got == {
        ("600000.SH", T0): 300.0,
        ("600000.SH", T0 + MINUTE_MS): 600.0,
        ("600000.SH", T0 + 2 * MINUTE_MS): 100.0,
    }
    assert expected_bars(ticks, "5m") == {("600000.SH", T0): 1000.0}


def test_bar_errors_count_wrong_missing_and_extra_bars_but_not_the_open_last_one() -> None:
    expected = {("A", 1): 10.0, ("A", 2): 20.0, ("A", 3): 5.0, ("B", 1): 7.0}
    assert bar_errors(expected, {("A", 1): 10.0, ("A", 2): 20.0}) == (0, 0, 0)  # A's 3 and B's 1: open
    assert bar_errors(expected, {("A", 1): 11.0, ("A", 2): 20.0}) == (1, 0, 0)
    assert bar_errors(expected, {("A", 2): 20.0}) == (0, 1, 0)
    assert bar_errors(expected, {("A", 1): 10.0, ("A", 2): 20.0, ("C", 9): 1.0}) == (0, 0, 1)


def answer(*rows: dict[str, object]) -> bytes:
    return orjson.dumps({"rc": 0, "data": {"total": len(rows), "diff": list(rows)}})


def test_witness_notes_changed_snapshots_per_code_as_a_poller_sees_them() -> None:
    witness = Witness(lambda market, num: f"{num}.{'SH' if market == 1 else 'SZ'}")
    row = {"f2": 10.0, "f5": 12, "f12": "600000", "f13": 1, "f124": 1_763_604_000}
    witness.note(answer(row, {"f2": "-", "f5": "-", "f12": "000002", "f13": 0, "f124": 1_763_604_000}))
    witness.note(answer(row))  # the same snapshot again
    witness.note(answer({**row, "f5": 15}))  # same stamp, more volume: a change
    witness.note(answer({**row, "f124": row["f124"] + 3, "f5": 15}))  # a new stamp: a change
    report = witness.report()
    assert report["rows"] == 5 and report["no_trade"] == 1 and report["repeated"] == 1
    stamp = row["f124"]
    assert report["changed"] == {"600000.SH": [[stamp, 1200.0], [stamp, 1500.0], [stamp + 3, 1500.0]]}


def test_seeded_history_ends_where_the_simulator_goes_on() -> None:
    load_calendar()
    market = Market(7, 60)
    codes = [c for c, s in market.securities.items() if not s.suspended][:20]
    rows = minute_history(market, codes, T0, count=250)
    assert rows.shape == (20, 250, 7)
    assert rows[0, -1, TS] == T0 - MINUTE_MS and rows[0, 0, TS] < T0 - 30 * MINUTE_MS  # yesterday too
    assert (rows[:, :, VOLUME] >= 0).all()
    live = market.snapshots(codes, T0 + 3_000)  # stamps 10:00:00-10:00:02, within a tick of the 10:00 point
    for j, snap in enumerate(live):
        assert snap is not None and snap.price is not None
        assert snap.price == pytest.approx(rows[j, -1, CLOSE], rel=0.01)
