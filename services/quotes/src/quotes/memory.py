"""Give freed heap memory back to the operating system.

CPython frees objects into the C allocator, which keeps most of the pages it got: the start-up's
temporaries (the universe pages of the list endpoint, the stored day states) and every poll's parsed
answers stay in the process's RSS long after they are garbage (the trading calendar is built by a
child process: :func:`marketbus.sessions._package_days`). glibc's ``malloc_trim`` returns the free
pages at the top of each arena and, since glibc 2.8, the whole free pages inside them. Elsewhere
(musl, macOS) this is a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def _libc() -> Any:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


def release_freed_memory() -> bool:
    """Return the allocator's free pages to the OS; True when the C library could do it."""
    libc = _libc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True
