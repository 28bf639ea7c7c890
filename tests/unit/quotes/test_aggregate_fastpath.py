"""The aggregator's same-minute fast path changes nothing: every bar, every stored state and every
close is what the full per-period pass gives, on a day with late ticks, bars closed on time by
the clock, repeated snapshots and a new day."""

import random

from marketbus.contracts import Bar
from marketbus.sessions import shanghai_ms as sh
from quotes.aggregate import BarAggregator
from quotes.feeds.base import make_tick

CODES = ("600000.SH", "510300.SH", "300750.SZ")


def session_ticks(seed: int) -> list[tuple[str, object]]:
    """("tick", Tick) and ("advance", now) steps over two trading days: a tick every few seconds
    per code, some of them late (stamped before the code's last tick), a clock step now and then."""
    rng = random.Random(seed)
    steps: list[tuple[str, object]] = []
    for day in ((2024, 5, 9), (2024, 5, 10)):
        starts = (sh(*day, 9, 24, 50), sh(*day, 13, 0))
        for start, length_s in zip(starts, (7 * 60, 5 * 60), strict=True):
            volume = {c: 0.0 for c in CODES}
            for second in range(0, length_s, 3):
                for code in CODES:
                    ts = start + second * 1000 + rng.randrange(0, 3000)
                    if rng.random() < 0.05:
                        ts -= 61_000  # late: a minute back
                    volume[code] += rng.randrange(0, 5) * 100
                    price = round(10 + rng.uniform(-0.2, 0.2), 2)
                    tick = make_tick(code, ts, price, volume[code], round(volume[code] * price, 2),
                                     10.0, 10.2, 9.8, 10.0)  # fmt: skip
                    steps.append(("tick", tick))
                    if rng.random() < 0.05:
                        steps.append(("tick", tick))  # the same snapshot again
                if rng.random() < 0.1:
                    steps.append(("advance", start + second * 1000 + rng.randrange(0, 90_000)))
    return steps


def run(steps: list[tuple[str, object]], fast: bool) -> tuple[list[Bar], list[dict[str, bytes]]]:
    agg = BarAggregator()
    bars: list[Bar] = []
    states: list[dict[str, bytes]] = []
    for kind, value in steps:
        if kind == "advance":
            assert isinstance(value, int)
            bars.extend(agg.advance(value))
        else:
            if not fast:
                for state in agg._codes.values():
                    state.minute = -1  # no fast path: every tick takes the full pass
            if not agg.adds_nothing(value):  # type: ignore[arg-type]
                bars.extend(agg.add(value))  # type: ignore[arg-type]
        states.append(agg.take_changed())
    bars.extend(agg.flush())
    return bars, states


def test_the_fast_path_gives_the_bars_and_states_of_the_full_pass() -> None:
    for seed in range(3):
        steps = session_ticks(seed)
        fast_bars, fast_states = run(steps, fast=True)
        full_bars, full_states = run(steps, fast=False)
        assert len(full_bars) > 50
        assert fast_bars == full_bars
        assert fast_states == full_states
