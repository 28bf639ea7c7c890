"""The scorecard's figures from the scored signals: pure functions of the packed outcome records.

Every figure carries its sample size ``n``; with fewer than ``min_samples`` signals behind it, it
has no value and says so. Groups: each strategy and ``*`` (all strategies) x each market and ``*``
x each horizon, within one period (returns over different bar lengths are never mixed).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from marketbus.contracts import ConfidenceBucket, Figure, ReturnDistribution, ScoreRow, StopTargetFirst
from scorecard.outcomes import (
    BOTH,
    CONFIDENCE,
    FIRST,
    HAS_LEVELS,
    HORIZONS,
    MAE,
    MFE,
    NEITHER,
    RET,
    SETTLED,
    SIDE,
    STOP,
    TARGET,
    VS_CSI,
    VS_MKT,
    col,
)

Array = np.ndarray

ALL = "*"
BUCKET_EDGES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
BINS = 20
QUANTILES = {"p5": 5, "p25": 25, "p50": 50, "p75": 75, "p95": 95}


@dataclass(frozen=True)
class Scored:
    """The scored signals of one period: ``records`` (n, RECORD) and, per record, its strategy and
    market."""

    records: Array
    strategies: Sequence[str]
    markets: Sequence[str]


def figure(values: Array, min_samples: int, fn: Callable[[Array], float]) -> Figure:
    n = len(values)
    if n < min_samples:
        what = "no signals yet" if n == 0 else f"too few signals ({n} < {min_samples})"
        return Figure(value=None, n=n, note=what)
    return Figure(value=float(fn(values)), n=n)


def _mean(v: Array) -> float:
    return float(np.mean(v))


def _median(v: Array) -> float:
    return float(np.median(v))


def _hit_rate(v: Array) -> float:
    return float(np.mean(v > 0))


def bucket_of(confidence: Array) -> Array:
    """The confidence bucket index of each value (the last bucket includes 1.0)."""
    edges = np.asarray(BUCKET_EDGES)
    return np.clip(np.searchsorted(edges, confidence, side="right") - 1, 0, len(edges) - 2)


def bucket_label(i: int) -> str:
    return f"{BUCKET_EDGES[i]:.1f}-{BUCKET_EDGES[i + 1]:.1f}"


def _known(a: Array) -> Array:
    return a[~np.isnan(a)]


def stop_target(rec: Array, h: int) -> StopTargetFirst:
    first = rec[:, col(h, FIRST)]
    levels = (rec[:, HAS_LEVELS] == 1) & (rec[:, SIDE] > 0) & ~np.isnan(first)
    f = first[levels]
    return StopTargetFirst(
        n=int(levels.sum()),
        target=int((f == TARGET).sum()),
        stop=int((f == STOP).sum()),
        both=int((f == BOTH).sum()),
        neither=int((f == NEITHER).sum()),
    )


def score_row(
    rec: Array,
    strategy: str,
    strategy_name: str | None,
    period: str,
    market: str,
    h: int,
    min_samples: int,
) -> ScoreRow:
    """The row of one group at horizon ``HORIZONS[h]`` from its records."""
    ret_all = rec[:, col(h, RET)]
    done = ~np.isnan(ret_all)
    ret = ret_all[done]
    settled = rec[:, col(h, SETTLED)] == 1
    buckets = []
    which = bucket_of(rec[:, CONFIDENCE])
    for b in range(len(BUCKET_EDGES) - 1):
        r = ret_all[done & (which == b)]
        buckets.append(
            ConfidenceBucket(
                bucket=bucket_label(b),
                lo=BUCKET_EDGES[b],
                hi=BUCKET_EDGES[b + 1],
                hit_rate=figure(r, min_samples, _hit_rate),
                mean_return=figure(r, min_samples, _mean),
                median_return=figure(r, min_samples, _median),
            )
        )
    return ScoreRow(
        strategy=strategy,
        strategy_name=strategy_name,
        period=period,
        market=market,
        horizon=HORIZONS[h],
        signals=len(rec),
        pending=int((~done).sum()),
        hit_rate=figure(ret, min_samples, _hit_rate),
        mean_return=figure(ret, min_samples, _mean),
        median_return=figure(ret, min_samples, _median),
        vs_market=figure(_known(rec[settled, col(h, VS_MKT)]), min_samples, _mean),
        vs_csi300=figure(_known(rec[settled, col(h, VS_CSI)]), min_samples, _mean),
        mae=figure(_known(rec[:, col(h, MAE)]), min_samples, _mean),
        mfe=figure(_known(rec[:, col(h, MFE)]), min_samples, _mean),
        stop_target=stop_target(rec, h),
        buckets=buckets,
    )


def edges_for(returns: Array) -> list[float]:
    """Bin edges shared by every group of a period and horizon: symmetric around 0, wide enough
    for the 1st to the 99th percentile of all its returns (the end bins hold what lies beyond)."""
    known = _known(returns)
    if not len(known):
        return list(np.linspace(-0.01, 0.01, BINS + 1))
    lo, hi = np.percentile(known, [1, 99])
    width = max(abs(float(lo)), abs(float(hi)), 1e-6)
    return [float(x) for x in np.linspace(-width, width, BINS + 1)]


def distribution(
    returns: Array,
    strategy: str,
    period: str,
    market: str,
    horizon: int,
    edges: Sequence[float],
    min_samples: int,
) -> ReturnDistribution:
    known = _known(returns)
    e = np.asarray(edges)
    counts = np.bincount(
        np.clip(np.searchsorted(e, known, side="right") - 1, 0, len(e) - 2), minlength=len(e) - 1
    )
    enough = len(known) >= min_samples
    quantiles = {}
    if enough:
        values = np.percentile(known, list(QUANTILES.values()))
        quantiles = {k: float(v) for k, v in zip(QUANTILES, values, strict=True)}
    note = None if enough else f"too few signals ({len(known)} < {min_samples}) for quantiles"
    return ReturnDistribution(
        strategy=strategy,
        period=period,
        market=market,
        horizon=horizon,
        n=len(known),
        edges=list(e.astype(float)),
        counts=[int(c) for c in counts],
        quantiles=quantiles,
        note=note,
    )


def groups(scored: Scored) -> dict[tuple[str, str], Array]:
    """Row masks of every (strategy or ALL, market or ALL) group that has records."""
    strategies = np.asarray(scored.strategies, dtype=object)
    markets = np.asarray(scored.markets, dtype=object)
    out: dict[tuple[str, str], Array] = {}
    n = len(strategies)
    if not n:
        return out
    every = np.ones(n, dtype=bool)
    s_masks = {ALL: every, **{s: strategies == s for s in sorted(set(scored.strategies))}}
    m_masks = {ALL: every, **{m: markets == m for m in sorted(set(scored.markets))}}
    for s, sm in s_masks.items():
        for m, mm in m_masks.items():
            mask = sm & mm
            if mask.any():
                out[(s, m)] = mask
    return out


def period_scorecard(
    scored: Scored, period: str, names: Mapping[str, str], min_samples: int
) -> tuple[list[ScoreRow], list[ReturnDistribution]]:
    """Every row and distribution of one period."""
    rows: list[ScoreRow] = []
    dists: list[ReturnDistribution] = []
    rec = scored.records
    for h, horizon in enumerate(HORIZONS):
        edges = edges_for(rec[:, col(h, RET)]) if len(rec) else edges_for(np.empty(0))
        for (s, m), mask in groups(scored).items():
            part = rec[mask]
            name = None if s == ALL else names.get(s)
            rows.append(score_row(part, s, name, period, m, h, min_samples))
            dists.append(distribution(part[:, col(h, RET)], s, period, m, horizon, edges, min_samples))
    return rows, dists


def field_of(item: ScoreRow | ReturnDistribution) -> str:
    """The hash field of a row or distribution: ``strategy|market|horizon``."""
    return f"{item.strategy}|{item.market}|{item.horizon}"


def pending_count(records: Array) -> int:
    """Records with a horizon still to come or a market figure not final yet."""
    if not len(records):
        return 0
    ret = records[:, [col(h, RET) for h in range(len(HORIZONS))]]
    settled = records[:, [col(h, SETTLED) for h in range(len(HORIZONS))]]
    return int((np.isnan(ret).any(axis=1) | (settled != 1).any(axis=1)).sum())
