"""The per-thread array pool: inside :func:`recycle` the kernels reuse the previous call's
(T, N) arrays instead of allocating fresh memory."""

from __future__ import annotations

import ctypes
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np

Array = np.ndarray

# keep at most this much memory in the free lists between calls (only the last call's arrays)
POOL_MAX_BYTES = 1 << 30


class _Pool(threading.local):
    """Per-thread free lists of (T, N) float64 arrays, used inside :func:`recycle` only."""

    def __init__(self) -> None:
        self.depth = 0
        self.free: dict[tuple[int, int], list[Array]] = {}
        self.lent: list[Array] = []


_pool = _Pool()


@contextmanager
def recycle() -> Iterator[None]:
    """Inside this block the kernels take their (T, N) arrays from a per-thread pool, and on
    exit every array handed out goes back to it for the next call.

    Why: a full-market evaluation allocates ~30 arrays of 250 x 6,000 floats; fresh memory
    costs a page fault per few pages (expensive in a VM) and the allocator hands large blocks
    back to the OS when they are freed, so without reuse the faults cost more than the arithmetic.
    Only for callers that drop every array computed inside before leaving the block and keep
    copies of what they need (``evaluate_all`` does).
    """
    _pool.depth += 1
    try:
        yield
    finally:
        _pool.depth -= 1
        if _pool.depth == 0:
            # keep only what this call used: the next call of the same size reuses it all, and
            # a stream of differently sized batches never piles up arrays of old sizes
            lent, _pool.lent = _pool.lent, []
            _pool.free = {}
            kept = 0
            for a in lent:
                if kept + a.nbytes > POOL_MAX_BYTES:
                    break
                _pool.free.setdefault(a.shape, []).append(a)
                kept += a.nbytes


def empty(T: int, N: int) -> Array:
    """An uninitialised (T, N) float64 array (from the pool inside :func:`recycle`)."""
    if _pool.depth == 0:
        return np.empty((T, N))
    free = _pool.free.get((T, N))
    out = free.pop() if free else np.empty((T, N))
    _pool.lent.append(out)
    return out


def release() -> None:
    """Drop the arrays this thread's pool keeps and give the freed memory back to the system: for
    a thread whose evaluations are over for a long while (the history run's, once it has run).

    Dropping them is not enough: glibc keeps what a thread freed in that thread's arena (the
    history run left a worker at 650 MiB, 320 MiB of it free), so it is trimmed as well."""
    _pool.free = {}
    if _malloc_trim is not None:
        _malloc_trim(0)


def _find_malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, where the C library is glibc."""
    if sys.platform != "linux":
        return None
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # musl and others have none
        return None


_malloc_trim = _find_malloc_trim()
