"""Concurrent reads of one hash become one HMGET per loop turn; each caller gets its own field."""

import asyncio

import pytest

from gateway.batching import HashFieldLoader


class FakeHash:
    """Counts HMGET calls (a stand-in for the client: this unit tests the batching only)."""

    def __init__(self, data: dict[str, bytes], fail: bool = False) -> None:
        self.data = data
        self.calls: list[list[str]] = []
        self.fail = fail

    async def hmget(self, key: str, fields: list[str]) -> list[bytes | None]:
        self.calls.append(fields)
        await asyncio.sleep(0)
        if self.fail:
            raise ConnectionError("server gone")
        return [self.data.get(f) for f in fields]


async def test_concurrent_gets_share_one_hmget() -> None:
    fake = FakeHash({"a": b"1", "b": b"2"})
    loader = HashFieldLoader(fake, "h")  # type: ignore[arg-type]
    got = await asyncio.gather(*(loader.get(f) for f in ["a", "b", "a", "zz"]))
    assert got == [b"1", b"2", b"1", None]
    assert fake.calls == [["a", "b", "zz"]]
    assert await loader.get("b") == b"2"  # a later turn reads again: nothing is cached
    assert len(fake.calls) == 2


async def test_an_error_reaches_every_waiter() -> None:
    loader = HashFieldLoader(FakeHash({}, fail=True), "h")  # type: ignore[arg-type]
    results = await asyncio.gather(loader.get("a"), loader.get("b"), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    with pytest.raises(ConnectionError):
        await loader.get("c")
