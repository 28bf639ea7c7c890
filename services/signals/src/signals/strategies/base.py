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

from marketbus.contracts import StrategyInfo
from signals.indicators import first_valid, left_align
from signals.strategies.confidence import Confidence

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

    @property
    def shape(self) -> tuple[int, int]:
        t, n = self.close.shape
        return int(t), int(n)

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


class StrategyParams(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


P = TypeVar("P", bound=StrategyParams)


class Strategy(ABC, Generic[P]):
    """One strategy: ``evaluate`` answers BUY / SELL / nothing for the last bar of every code."""

    key: ClassVar[str]
    name: ClassVar[str]
    params_type: ClassVar[type[StrategyParams]]
    # the score of a hit; its ``doc`` is the text ``describe()`` publishes
    confidence: ClassVar[Confidence]
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

    def describe(self) -> StrategyInfo:
        return StrategyInfo(
            key=self.key,
            name=self.name,
            min_bars=self.min_bars,
            params=self.params.model_dump(),
            confidence=self.confidence.doc,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params!r})"


# --------------------------------------------------------------------------- helpers


@dataclass(frozen=True, slots=True)
class Crossing:
    """Line x against line y on each code's bars t-1 (``x0``, ``y0``) and t (``x1``, ``y1``)."""

    x0: Array
    x1: Array
    y0: Array
    y1: Array

    @classmethod
    def last_bars(cls, a: Aligned, x: Array, y: Array) -> Crossing:
        """From left-aligned (T, N) lines."""
        return cls(a.at(x, 1), a.at(x), a.at(y, 1), a.at(y))

    @property
    def up(self) -> Array:
        """``cross_over(x, y)``: ``x[t-1] <= y[t-1] and x[t] > y[t]``. NaN compares false."""
        return (self.x0 <= self.y0) & (self.x1 > self.y1)

    @property
    def down(self) -> Array:
        """``cross_under(x, y)``: ``x[t-1] >= y[t-1] and x[t] < y[t]``."""
        return (self.x0 >= self.y0) & (self.x1 < self.y1)


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


# --------------------------------------------------------------------------- line crosses


class CrossStrategy(Strategy[P]):
    """Line x crossing line y on each code's last bar: BUY on ``cross_over(x, y)``, SELL on
    ``cross_under(x, y)`` (narrowed by :meth:`sides` where a subclass says so); the price is the
    close and the reason reads ``"<x> 1.2345 crossed above <y> 1.2300"``.

    A subclass states what differs: its lines, their labels, the digits of the reason and the
    confidence with its values (by default :func:`~signals.strategies.confidence.cross_confidence`
    values: the gap ``|x - y| / close`` after the cross and the volume ratio)."""

    # decimals of the line values in the reason
    digits: ClassVar[int] = 4

    @abstractmethod
    def lines(self, a: Aligned) -> tuple[Array, Array]:
        """(x, y), left-aligned (T, N) like the fields of ``a``."""

    @abstractmethod
    def labels(self) -> tuple[str, str]:
        """The names of x and y in the reason."""

    def sides(self, c: Crossing) -> tuple[Array, Array]:
        """(buy, sell) masks from the crossing."""
        return c.up, c.down

    def scores(self, a: Aligned, c: Crossing, buy: Array, close: Array) -> tuple[Array, ...]:
        """The values of the ``confidence`` terms, in order, for the codes' last bars."""
        return np.abs((c.x1 - c.y1) / close), volume_ratio(a)

    def evaluate(self, w: Window) -> Hits:
        a = w.aligned()
        c = Crossing.last_bars(a, *self.lines(a))
        buy, sell = self.sides(c)
        close = a.at(a.close)
        conf = self.confidence(*self.scores(a, c, buy, close))
        x_label, y_label = self.labels()
        digits = self.digits

        def reason(j: int, side: int) -> str:
            verb = "crossed above" if side > 0 else "crossed below"
            return f"{x_label} {c.x1[j]:.{digits}f} {verb} {y_label} {c.y1[j]:.{digits}f}"

        return make_hits(a, self.min_bars, buy, sell, close, conf, reason)
