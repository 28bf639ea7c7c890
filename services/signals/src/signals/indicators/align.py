"""Front padding and alignment: codes with fewer bars are NaN-padded at the front; the kernels
take every column shifted up to start at row 0 ("left-aligned")."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from signals.indicators.pool import empty

Array = np.ndarray


def first_valid(x: Array) -> Array:
    """Row of the first non-NaN value per column; ``T`` for an all-NaN column."""
    if x.shape[0] == 0:
        return np.zeros(x.shape[1], dtype=np.int64)
    finite = ~np.isnan(x)
    first = np.argmax(finite, axis=0)
    return np.where(finite.any(axis=0), first, x.shape[0])


def left_align(x: Array, start: Array) -> Array:
    """Shift column ``j`` up by ``start[j]`` rows so that its first bar lands on row 0.

    The rows freed at the back repeat the column's last value (1.0 for a column with no value):
    every computation here is causal, so they never change a real row, and keeping them finite
    keeps NaN out of the time loops (an ordered comparison with NaN sets the FP "invalid" flag,
    and numpy's per-call error handling then costs more than the arithmetic)."""
    if not start.any():
        return x
    T = x.shape[0]
    out = empty(*x.shape)
    np.copyto(out, x)
    cols = np.flatnonzero(start)
    rows = np.arange(T)[:, None] + start[cols][None, :]
    moved = x[np.minimum(rows, T - 1), cols[None, :]]
    no_bars = start[cols] >= T
    if no_bars.any():
        moved[:, no_bars] = 1.0
    out[:, cols] = moved
    return out


def right_align(y: Array, start: Array) -> Array:
    """Inverse of :func:`left_align`: column ``j`` moved down by ``start[j]`` rows, NaN in front."""
    if not start.any():
        return y
    out = y.copy()
    cols = np.flatnonzero(start)
    rows = np.arange(y.shape[0])[:, None] - start[cols][None, :]
    moved = y[np.maximum(rows, 0), cols[None, :]]
    moved[rows < 0] = np.nan
    out[:, cols] = moved
    return out


def nan_head(T: int, N: int, head: int) -> Array:
    """An uninitialised (T, N) array whose first ``head`` rows are NaN."""
    out = empty(T, N)
    out[: min(head, T)] = np.nan
    return out


def run_kernel(
    kernel: Callable[..., tuple[Array, ...]], inputs: tuple[Array, ...], left_aligned: bool
) -> tuple[Array, ...]:
    """Apply a left-aligned kernel to front-padded inputs (2-D or 1-D) and pad the outputs back."""
    one_d = inputs[0].ndim == 1
    arrs = tuple(
        np.asarray(a, dtype=np.float64).reshape(-1, 1) if one_d else np.asarray(a, dtype=np.float64)
        for a in inputs
    )
    if left_aligned:
        outs = kernel(*arrs)
    else:
        # every field of a code starts at the same row; the last input (close) decides
        start = first_valid(arrs[-1])
        start = np.minimum(start, arrs[-1].shape[0])
        outs = tuple(right_align(o, start) for o in kernel(*(left_align(a, start) for a in arrs)))
    if one_d:
        outs = tuple(o.ravel() for o in outs)
    return outs
