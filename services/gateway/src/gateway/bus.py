"""Publishing commands on ``mb:commands`` in the marketbus wire format.

The FastStream RedisBroker is created and connected in the app's lifespan. Its producer writes a
stream entry as one field ``__data__`` (FastStream's own key, whatever the message format), while
marketbus entries are one field ``data`` holding the model's JSON (:func:`marketbus.wire.encode`,
readable with bare XRANGE, decoded by the signals service). So commands go out with ``XADD`` on the
broker's own connection (the client that ``broker.connect()`` returns), in the wire format.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from faststream.redis import RedisBroker

from marketbus import wire
from marketbus.contracts import Command

if TYPE_CHECKING:
    from redis.asyncio import Redis


def make_broker(url: str) -> RedisBroker:
    """A broker for publishing; create it inside the running loop (lifespan), then ``connect()``."""
    return RedisBroker(url)


class CommandPublisher:
    def __init__(self, client: Redis, stream: str, maxlen: int) -> None:
        self.client = client
        self.stream = stream
        self.maxlen = maxlen

    async def publish(self, cmd: Command) -> str:
        fields: Any = wire.encode(cmd)
        entry_id = await self.client.xadd(self.stream, fields, maxlen=self.maxlen, approximate=True)
        return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
