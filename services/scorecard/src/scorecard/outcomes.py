"""What happened after a signal: pure functions of the signal and its code's bars.

For a signal on bar ``t`` (its close ``c0``) and each horizon ``h`` (bars of the signal's period):

- ``ret``: ``side * (close[t+h] / c0 - 1)`` (a SELL scores the fall);
- ``mfe`` / ``mae``: the best and the worst move in the signal's direction within bars
  ``t+1 .. t+h``, from the highs and lows (a BUY: ``max(high) / c0 - 1`` and ``min(low) / c0 - 1``;
  a SELL: ``1 - min(low) / c0`` and ``1 - max(high) / c0``), so ``mae <= mfe``; a negative ``mae``
  is a move against the signal;
- ``first``: for a BUY with a stop and/or a target, which one the bars ``t+1 .. t+h`` reached first
  (the low at or below the stop, the high at or above the target; both in one bar: ``both``, since
  the order inside a bar is unknown);
- the market over the same bars (:mod:`scorecard.market`): ``vs_mkt = side * (raw - market)``.

Only bars after ``t`` are read: nothing the signal could not have known is in its score, and
nothing it knew is counted as its result (look-ahead is impossible by construction).

An outcome is stored packed (float64, NaN for unknown), :data:`RECORD` values per signal.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from marketbus.contracts import SCORE_HORIZONS
from marketbus.trend import CLOSE, HIGH, LOW, TS

Array = np.ndarray

HORIZONS: tuple[int, ...] = SCORE_HORIZONS

# first-hit codes
NEITHER, TARGET, STOP, BOTH = 0, 1, 2, 3
FIRST_NAMES = {NEITHER: "neither", TARGET: "target", STOP: "stop", BOTH: "both"}

# the packed record: the signal's facts, then per horizon RET..VS_CSI
SIDE, CONFIDENCE, BAR_TS, ENTRY, HAS_LEVELS = range(5)
HEAD = 5
RET, MAE, MFE, FIRST, SETTLED, VS_MKT, VS_CSI, T1 = range(8)
PER_H = 8
RECORD = HEAD + PER_H * len(HORIZONS)
RECORD_BYTES = RECORD * 8


def col(h_index: int, what: int) -> int:
    """Index in a packed record of field ``what`` of horizon ``HORIZONS[h_index]``."""
    return HEAD + PER_H * h_index + what


@dataclass
class HorizonOutcome:
    ret: float = math.nan
    mae: float = math.nan
    mfe: float = math.nan
    first: float = math.nan
    t1: int | None = None  # bar time of the horizon's last bar
    raw: float = math.nan  # close[t+h] / c0 - 1, unsigned
    settled: bool = False  # the market figures are final
    vs_mkt: float = math.nan
    vs_csi: float = math.nan

    @property
    def known(self) -> bool:
        return self.t1 is not None


@dataclass
class Outcome:
    side: int
    confidence: float
    bar_ts: int
    entry: float
    has_levels: bool
    horizons: list[HorizonOutcome] = field(default_factory=list)
    row: int = 0  # the signal's bar's row in the rows it was computed from

    def complete(self) -> bool:
        """Every horizon's bars are there and its market figures final: nothing more will change."""
        return all(h.known and h.settled for h in self.horizons)

    def pack(self) -> bytes:
        rec = np.full(RECORD, np.nan)
        rec[SIDE], rec[CONFIDENCE], rec[BAR_TS] = self.side, self.confidence, self.bar_ts
        rec[ENTRY], rec[HAS_LEVELS] = self.entry, float(self.has_levels)
        for i, h in enumerate(self.horizons):
            rec[col(i, RET)], rec[col(i, MAE)], rec[col(i, MFE)] = h.ret, h.mae, h.mfe
            rec[col(i, FIRST)], rec[col(i, SETTLED)] = h.first, float(h.settled)
            rec[col(i, VS_MKT)], rec[col(i, VS_CSI)] = h.vs_mkt, h.vs_csi
            rec[col(i, T1)] = math.nan if h.t1 is None else h.t1
        return rec.astype("<f8").tobytes()


def unpack(raws: Sequence[bytes]) -> Array:
    """Packed records to an array of shape (n, RECORD)."""
    if not raws:
        return np.empty((0, RECORD))
    return np.frombuffer(b"".join(raws), dtype="<f8").reshape(-1, RECORD)


def first_hit(highs: Array, lows: Array, stop: float | None, take: float | None) -> int:
    """Which level the bars (in order) reached first: TARGET, STOP, BOTH (in one bar) or NEITHER."""
    for hi, lo in zip(highs, lows, strict=True):
        hit_stop = stop is not None and lo <= stop
        hit_take = take is not None and hi >= take
        if hit_stop and hit_take:
            return BOTH
        if hit_stop:
            return STOP
        if hit_take:
            return TARGET
    return NEITHER


def entry_row(rows: Array, bar_ts: int) -> int | None:
    """The row of the bar ``bar_ts`` in a code's rows, or None when it is not stored."""
    i = int(np.searchsorted(rows[:, TS], bar_ts))
    if i < len(rows) and rows[i, TS] == bar_ts:
        return i
    return None


def forward(
    rows: Array,
    bar_ts: int,
    side: int,
    confidence: float,
    stop: float | None = None,
    take: float | None = None,
    horizons: Sequence[int] = HORIZONS,
) -> Outcome | None:
    """The outcome of a signal on bar ``bar_ts`` from its code's rows (oldest first, the packed
    trend records); None when that bar is not among them. Horizons whose bars have not come yet
    stay unknown."""
    i0 = entry_row(rows, bar_ts)
    if i0 is None:
        return None
    c0 = float(rows[i0, CLOSE])
    levels = side > 0 and (stop is not None or take is not None)
    out = Outcome(side, confidence, bar_ts, c0, levels, row=i0)
    for h in horizons:
        ho = HorizonOutcome()
        end = i0 + h
        if end < len(rows) and c0 > 0:
            span = rows[i0 + 1 : end + 1]
            ho.raw = float(rows[end, CLOSE]) / c0 - 1.0
            ho.ret = side * ho.raw
            up = float(span[:, HIGH].max()) / c0 - 1.0
            down = float(span[:, LOW].min()) / c0 - 1.0
            ho.mfe, ho.mae = (up, down) if side > 0 else (-down, -up)
            if levels:
                ho.first = float(first_hit(span[:, HIGH], span[:, LOW], stop, take))
            ho.t1 = int(rows[end, TS])
        out.horizons.append(ho)
    return out


def apply_market(ho: HorizonOutcome, side: int, market: float | None, csi: float | None) -> None:
    """Settle a horizon with the market's returns over its bars (None: no figure to compare)."""
    ho.settled = True
    ho.vs_mkt = math.nan if market is None else side * (ho.raw - market)
    ho.vs_csi = math.nan if csi is None else side * (ho.raw - csi)
