"""Background tasks of a service's own loop: periodic calls, and stopping tasks without losing
the caller's own cancellation.

``task.cancel(); with suppress(CancelledError): await task`` is the usual way to stop a task and
it is wrong: if the caller itself is cancelled while it waits, the caller's cancellation is
swallowed too and it runs on (a stop that never ends). :func:`cancel_and_wait` waits with
:func:`asyncio.wait`, which never raises the tasks' outcomes and lets the caller's own
cancellation through.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

log = logging.getLogger("marketbus.tasks")


async def every(seconds: float, fn: Callable[[], Awaitable[Any]], name: str | None = None) -> None:
    """Call ``fn`` now and then every ``seconds`` (after each call ends) until cancelled. A failing
    call is logged and the next one comes on time: a server away for a while stops nothing."""
    label = name or getattr(fn, "__qualname__", repr(fn))
    while True:
        try:
            await fn()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("%s failed: %r", label, exc)
        await asyncio.sleep(seconds)


async def cancel_and_wait(
    tasks: Iterable[asyncio.Task[Any]], within_s: float | None = None
) -> list[asyncio.Task[Any]]:
    """Cancel ``tasks`` and wait until they have ended, or ``within_s`` seconds. Returns the tasks
    still running then (each logged with where it is stuck). Their exceptions are logged, not
    raised; the caller's own cancellation is never swallowed."""
    tasks = [t for t in tasks if not t.done()]
    for task in tasks:
        task.cancel()
    if not tasks:
        return []
    done, pending = await asyncio.wait(tasks, timeout=within_s)
    for task in done:
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.warning("task %s ended with %r", task.get_name(), exc)
    for task in pending:
        frames = task.get_stack(limit=3)
        where = " <- ".join(f"{f.f_code.co_name}:{f.f_lineno}" for f in frames) or "?"
        log.error("task %s did not stop within %.1f s (at %s)", task.get_name(), within_s or 0, where)
    return list(pending)
