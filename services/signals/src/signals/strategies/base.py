"""The strategy contract: a :class:`Window` of bars in, :class:`Hits` for its last row out.

One implementation serves both callers: the streaming path passes one code's window (N=1), the
full-market scan passes every code at once (N~6000). Column ``j`` is always evaluated exactly as
if it were given alone and unpadded.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar, cast

import numpy as np
from pydantic import BaseModel, ConfigDict

from signals.indicators import first_valid, left_align

Array = np.ndarray


@dataclass(frozen=True, slots=True)
class Window:
    """Bars of N codes, time-major, oldest first, each field of shape (T, N).

    A code with fewer than T bars is NaN-padded at the FRONT (rows before its first bar are NaN
    in every field). 1-D fields are taken as one code. Indicators computed on a window are
    memoised on it, so strategies evaluated together share them (see ``evaluate_all``).
    """

    open: Array
    high: Array
    low: Array
    close: Array
    volume: Array
    _memo: dict[Any, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        shape = None
        for name in ("open", "high", "low", "close", "volume"):
            a = np.asarray(getattr(self, name), dtype=np.float64)
            if a.ndim == 1:
                a = a.reshape(-1, 1)
            if a.ndim != 2:
                raise ValueError(f"{name} must be (T, N), got shape {a.shape}")
            if shape is None:
                shape = a.shape
            elif a.shape != shape:
                raise ValueError(f"{name} has shape {a.shape}, expected {shape}")
            object.__setattr__(self, name, a)

    @classmethod
    def from_time_major(cls, tm: Array) -> Window:
        """From ``marketbus.trend.time_major``: shape (7, T, N), fields ts,open,..,volume,amount."""
        if tm.ndim != 3 or tm.shape[0] < 6:
            raise ValueError(f"expected (7, T, N), got shape {tm.shape}")
        return cls(open=tm[1], high=tm[2], low=tm[3], close=tm[4], volume=tm[5])

    @classmethod
    def from_rows(cls, rows: Array) -> Window:
        """One code's bars as rows (n, 7) (``marketbus.trend.unpack``): a window with N=1."""
        return cls.from_time_major(np.ascontiguousarray(rows.T)[:, :, None])

    @property
    def shape(self) -> tuple[int, int]:
        t, n = self.close.shape
        return int(t), int(n)

    @property
    def n_valid(self) -> Array:
        """Bars present per code, (N,) int."""
        return self.aligned().n

    def aligned(self) -> Aligned:
        got = self._memo.get("aligned")
        if got is None:
            got = self._memo["aligned"] = Aligned(self)
        return got


class Aligned:
    """The window with every code shifted to start at row 0 (filler at the back, never read),
    the form the indicator kernels take, plus helpers to read the rows of each code's last bar."""

    __slots__ = ("N", "T", "_w", "cols", "full", "last", "memo", "n", "start")

    def __init__(self, w: Window) -> None:
        self._w = w
        self.T, self.N = w.shape
        close = w.close
        self.start = np.zeros(self.N, dtype=np.int64)
        if self.T:
            # fast path: only codes with NaN on the first row are padded
            padded = np.flatnonzero(np.isnan(close[0]))
            if padded.size:
                self.start[padded] = first_valid(close[:, padded])
        self.n = (self.T - self.start).astype(np.int64)
        self.full = not self.start.any()
        self.last = np.maximum(self.n - 1, 0)
        self.cols = np.arange(self.N)
        self.memo = w._memo

    def field(self, name: str) -> Array:
        key = ("field", name)
        got = self.memo.get(key)
        if got is None:
            got = self.memo[key] = left_align(getattr(self._w, name), self.start)
        return got

    @property
    def close(self) -> Array:
        return self.field("close")

    @property
    def high(self) -> Array:
        return self.field("high")

    @property
    def low(self) -> Array:
        return self.field("low")

    @property
    def volume(self) -> Array:
        return self.field("volume")

    def cached(self, key: Any, fn: Callable[[], Any]) -> Any:
        """Memoise ``fn()`` under ``key`` on the window (indicators shared between strategies)."""
        if key not in self.memo:
            self.memo[key] = fn()
        return self.memo[key]

    def at(self, a: Array, back: int = 0) -> Array:
        """Value of a left-aligned (T, N) array at each code's bar ``t - back``; NaN if none."""
        if self.full:
            r = self.T - 1 - back
            return a[r].copy() if r >= 0 else np.full(self.N, np.nan)
        rows = self.last - back
        v = a[np.maximum(rows, 0), self.cols]
        v[(rows < 0) | (self.n == 0)] = np.nan
        return v


@dataclass(frozen=True, slots=True)
class Hits:
    """The answer for the LAST row of a window, per code (arrays of shape (N,)).

    ``side`` 1 BUY, -1 SELL, 0 nothing. Where ``side`` is 0: price, stop_loss and take_profit are
    NaN, confidence is 0 and the reason is "".
    """

    side: Array
    price: Array
    confidence: Array
    stop_loss: Array
    take_profit: Array
    reasons: list[str]

    @property
    def hit_index(self) -> Array:
        return np.flatnonzero(self.side)


class StrategyParams(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


P = TypeVar("P", bound=StrategyParams)


class Strategy(ABC, Generic[P]):
    """One strategy: ``evaluate`` answers BUY / SELL / nothing for the last bar of every code."""

    key: ClassVar[str]
    name: ClassVar[str]
    params_type: ClassVar[type[StrategyParams]]
    confidence_doc: ClassVar[str]
    params: P

    def __init__(self, params: P | dict[str, Any] | None = None) -> None:
        if params is None or isinstance(params, dict):
            self.params = cast(P, self.params_type.model_validate(params or {}))
        else:
            self.params = params

    @property
    @abstractmethod
    def min_bars(self) -> int: ...

    @abstractmethod
    def evaluate(self, w: Window) -> Hits: ...

    def describe(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "min_bars": self.min_bars,
            "params": self.params.model_dump(),
            "confidence": self.confidence_doc,
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params!r})"


# --------------------------------------------------------------------------- helpers


def cross_over(a0: Array, a1: Array, b0: Array, b1: Array) -> Array:
    """``a[t-1] <= b[t-1] and a[t] > b[t]`` (a0, b0 at t-1; a1, b1 at t). NaN compares false."""
    return (a0 <= b0) & (a1 > b1)


def cross_under(a0: Array, a1: Array, b0: Array, b1: Array) -> Array:
    return (a0 >= b0) & (a1 < b1)


def sat(x: Array, scale: float) -> Array:
    """Saturating score in [0, 1): ``x / (x + scale)`` for x >= 0; 0 for x <= 0 or NaN;
    1 for +inf. Strictly increasing in x."""
    x = np.where(np.isnan(x), 0.0, np.maximum(x, 0.0))
    with np.errstate(invalid="ignore"):
        s = x / (x + scale)
    return np.where(np.isinf(x), 1.0, s)


def volume_ratio(a: Aligned) -> Array:
    """``volume[t] / volume[t-1]`` (inf if the previous volume is 0, NaN if both are)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return a.at(a.volume) / a.at(a.volume, 1)


def make_hits(
    a: Aligned,
    min_bars: int,
    buy: Array,
    sell: Array,
    price: Array,
    confidence: Array,
    reason: Callable[[int, int], str],
    stop_loss: Array | None = None,
    take_profit: Array | None = None,
) -> Hits:
    """Assemble Hits: codes with fewer than ``min_bars`` bars never fire; BUY wins over SELL."""
    enough = a.n >= min_bars
    side = np.zeros(a.N, dtype=np.int8)
    side[sell & enough] = -1
    side[buy & enough] = 1
    fired = side != 0
    nan = np.full(a.N, np.nan)
    conf = np.clip(np.nan_to_num(confidence, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)
    reasons = [""] * a.N
    for j in np.flatnonzero(fired):
        reasons[j] = reason(int(j), int(side[j]))
    return Hits(
        side=side,
        price=np.where(fired, price, nan),
        confidence=np.where(fired, conf, 0.0),
        stop_loss=nan.copy() if stop_loss is None else np.where(fired, stop_loss, nan),
        take_profit=nan.copy() if take_profit is None else np.where(fired, take_profit, nan),
        reasons=reasons,
    )
