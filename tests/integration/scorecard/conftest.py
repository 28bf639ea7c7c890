"""The scorecard service in this test's loop, against the real server (tests/conftest.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from marketbus.settings import Settings
from scorecard.service import ScorecardService

Runner = Callable[[], "asynccontextmanager[ScorecardService]"]


@pytest.fixture
def scorecard_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"claim_idle_ms": 500, "scorecard_refresh": 0.1, "scorecard_min_samples": 3}
    )


@pytest.fixture
def run_scorecard(scorecard_settings: Settings) -> Callable[[], AsyncIterator[ScorecardService]]:
    """``async with run_scorecard() as svc``: a scorecard worker until the block ends (a stop as at
    SIGTERM); enter it again for a restart."""

    @asynccontextmanager
    async def run() -> AsyncIterator[ScorecardService]:
        svc = ScorecardService(scorecard_settings)
        task = asyncio.create_task(svc.run())
        await asyncio.wait_for(svc.runtime.ready.wait(), 30)
        try:
            yield svc
        finally:
            svc.stop()
            await asyncio.wait_for(task, 15)

    return run


async def wait_until(predicate: Callable[[], Awaitable[object]], within_s: float = 20.0) -> object:
    """Poll ``predicate`` until it answers something true (a condition, never a sleep)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while loop.time() < deadline:
        value = await predicate()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached in time")


@pytest.fixture
def until() -> Callable[..., Awaitable[object]]:
    return wait_until
