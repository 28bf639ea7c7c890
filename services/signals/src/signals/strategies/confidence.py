"""Confidence scores: each strategy's score is one :class:`Confidence`, a weighted sum of
:class:`Term` s. The same definition computes the score and writes the text ``describe()``
publishes, so the two cannot disagree."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Array = np.ndarray

# the volume term's scale: v = volume[t]/volume[t-1] scores v/(v+1.5) (1 -> 0.4, 3 -> 0.67)
VOLUME_SCALE = 1.5


def sat(x: Array, scale: float) -> Array:
    """Saturating score in [0, 1): ``x / (x + scale)`` for x >= 0; 0 for x <= 0 or NaN;
    1 for +inf. Strictly increasing in x."""
    x = np.where(np.isnan(x), 0.0, np.maximum(x, 0.0))
    with np.errstate(invalid="ignore"):
        s = x / (x + scale)
    return np.where(np.isinf(x), 1.0, s)


@dataclass(frozen=True, slots=True)
class Term:
    """``weight * x/(x+scale)`` (:func:`sat`), or ``weight * x`` with x clipped to [0, 1] when
    ``scale`` is None; ``symbol`` and ``meaning`` name x in the text."""

    weight: float
    symbol: str
    meaning: str
    scale: float | None = None

    def score(self, x: Array) -> Array:
        part = np.clip(x, 0.0, 1.0) if self.scale is None else sat(x, self.scale)
        return self.weight * part

    @property
    def formula(self) -> str:
        s = self.symbol
        if self.scale is None:
            return f"{self.weight:g} * {s}"
        return f"{self.weight:g} * {s}/({s}+{self.scale:g})"


@dataclass(frozen=True, slots=True)
class Confidence:
    """A score as the sum of its terms, in order; called with one value array per term."""

    terms: tuple[Term, ...]

    def __call__(self, *values: Array) -> Array:
        if len(values) != len(self.terms):
            raise TypeError(f"{len(self.terms)} values expected, got {len(values)}")
        total = self.terms[0].score(values[0])
        for term, x in zip(self.terms[1:], values[1:], strict=True):
            total = total + term.score(x)
        return total

    @property
    def doc(self) -> str:
        """``"0.6 * g/(g+0.01) + 0.4 * v/(v+1.5), where g = ... and v = ..."``."""
        meanings = [f"{t.symbol} = {t.meaning}" for t in self.terms]
        where = meanings[0] if len(meanings) == 1 else ", ".join(meanings[:-1]) + " and " + meanings[-1]
        return " + ".join(t.formula for t in self.terms) + ", where " + where


def volume_term(weight: float) -> Term:
    """The volume ratio's term, shared by every strategy that scores it."""
    return Term(weight, "v", "volume[t]/volume[t-1]", VOLUME_SCALE)


def cross_confidence(gap_scale: float, gap: str) -> Confidence:
    """The score of a cross: ``0.6 * g/(g+gap_scale) + 0.4 * v/(v+1.5)``, g the gap after the
    cross relative to price (described by ``gap``), v the volume ratio."""
    return Confidence((Term(0.6, "g", gap, gap_scale), volume_term(0.4)))
