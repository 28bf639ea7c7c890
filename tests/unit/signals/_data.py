"""Random bar windows for the signals tests: random walks, some tick-rounded (ties matter for
``<=`` in crosses), flat stretches, volume spikes, and random NaN front padding."""

from __future__ import annotations

import numpy as np


def random_bars(
    rng: np.random.Generator, T: int, N: int, min_valid: int = 0
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Fields (T, N) front-padded with NaN, and the number of real bars per code."""
    vol = rng.uniform(0.003, 0.04, N)
    steps = rng.normal(0.0, 1.0, (T, N)) * vol + rng.normal(0, 0.003, N)
    # bursts of trend and flat stretches
    steps[rng.random((T, N)) < 0.05] *= 4
    flat = rng.random((T, N)) < 0.08
    steps[flat] = 0.0
    close = rng.uniform(2, 80, N) * np.exp(np.cumsum(steps, axis=0))
    spread = np.abs(rng.normal(0, 1, (T, N))) * vol * close * 0.6
    high = close + spread * rng.random((T, N))
    low = close - spread * rng.random((T, N))
    open_ = low + (high - low) * rng.random((T, N))
    tick = rng.choice([0.0, 0.01, 0.001], N, p=[0.4, 0.4, 0.2])
    for j in np.flatnonzero(tick):
        for a in (close, high, low, open_):
            a[:, j] = np.maximum(np.round(a[:, j] / tick[j]) * tick[j], tick[j])
    high = np.maximum.reduce([high, close, open_])
    low = np.minimum.reduce([low, close, open_])
    volume = np.round(rng.lognormal(10, 0.6, (T, N)) / 100) * 100
    spikes = rng.random((T, N)) < 0.04
    volume[spikes] *= rng.uniform(2, 6, spikes.sum())
    volume[-1, rng.random(N) < 0.25] *= 3  # make volume_surge fire at the last bar sometimes
    n_valid = np.where(rng.random(N) < 0.5, T, rng.integers(min_valid, T + 1, N)).astype(np.int64)
    if min_valid == 0:
        n_valid[rng.random(N) < 0.01] = 0  # codes with no bar at all
    fields = {"open": open_, "high": high, "low": low, "close": close, "volume": volume}
    for a in fields.values():
        for j in np.flatnonzero(n_valid < T):
            a[: T - n_valid[j], j] = np.nan
    return fields, n_valid
