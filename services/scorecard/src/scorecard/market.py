"""The market over the same bars as a signal: pure functions of the universe's bars.

For a span from bar time ``t0`` to bar time ``t1`` of one period:

- ``market``: the equal-weight average of ``close(t1) / close(t0) - 1`` over the universe's
  securities that have a bar at both times (indices, market ``指数``, are left out: they are averages
  of the others); ``n`` says how many;
- ``csi300``: the same return of CSI 300 (``000300.SH``), when its bars are stored.

A span's figures are final once a later bar of the period exists (every code's bar of ``t1`` has
closed by then: bars close on the market clock, all codes at once); until then they are not computed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from marketbus.securities import INDEX
from marketbus.trend import CLOSE, TS

Array = np.ndarray

CSI300 = "000300.SH"


@dataclass(frozen=True, slots=True)
class MarketSpan:
    market: float | None  # equal-weight average return, None without any security
    n: int  # securities in the average
    csi300: float | None

    def to_json(self) -> list[float | int | None]:
        return [self.market, self.n, self.csi300]

    @classmethod
    def from_json(cls, raw: Sequence[float | int | None]) -> MarketSpan:
        market, n, csi = raw
        return cls(
            None if market is None else float(market), int(n or 0), None if csi is None else float(csi)
        )


def span_returns(rows: Array, t0: Array, t1: Array) -> Array:
    """``close(t1) / close(t0) - 1`` of one code for each span, NaN where either bar is missing."""
    out = np.full(len(t0), np.nan)
    if not len(rows):
        return out
    ts = rows[:, TS]
    i0 = np.minimum(np.searchsorted(ts, t0), len(ts) - 1)
    i1 = np.minimum(np.searchsorted(ts, t1), len(ts) - 1)
    ok = (ts[i0] == t0) & (ts[i1] == t1) & (rows[i0, CLOSE] > 0)
    out[ok] = rows[i1[ok], CLOSE] / rows[i0[ok], CLOSE] - 1.0
    return out


def market_spans(
    series: Mapping[str, Array], markets: Mapping[str, str], spans: Iterable[tuple[int, int]]
) -> dict[tuple[int, int], MarketSpan]:
    """The market's figures of each span (t0, t1) from every code's rows (``markets``: code ->
    its market; codes missing there count as securities)."""
    pairs = sorted(set(spans))
    if not pairs:
        return {}
    t0 = np.array([p[0] for p in pairs], dtype=np.float64)
    t1 = np.array([p[1] for p in pairs], dtype=np.float64)
    total = np.zeros(len(pairs))
    count = np.zeros(len(pairs), dtype=np.int64)
    csi = np.full(len(pairs), np.nan)
    for code, rows in series.items():
        r = span_returns(rows, t0, t1)
        if code == CSI300:
            csi = r
        if markets.get(code) == INDEX:
            continue
        ok = ~np.isnan(r)
        total[ok] += r[ok]
        count[ok] += 1
    out = {}
    for k, pair in enumerate(pairs):
        n = int(count[k])
        out[pair] = MarketSpan(
            float(total[k] / n) if n else None, n, None if np.isnan(csi[k]) else float(csi[k])
        )
    return out
