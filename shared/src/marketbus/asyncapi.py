"""The AsyncAPI document of the bus: every stream, its message schema, who publishes it and which
consumer groups read it. Built by FastStream from a broker that declares the catalogue of
:mod:`marketbus.streams` (never connected); the subscribers are declared by the runtime's own
function, so the document shows what the services run. ``marketbus asyncapi`` prints it; the
gateway serves it at ``/api/asyncapi.json``."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from faststream.redis import RedisBroker, StreamSub
from faststream.specification import AsyncAPI

from marketbus.consumer import declare_subscriber
from marketbus.keys import Keys
from marketbus.streams import GROUPS, STREAMS

DESCRIPTION = (
    "Redis Streams of marketbus. Every entry is one field `data` holding the message's JSON "
    "(readable with XRANGE and any JSON parser), except the dead-letter stream, whose entries are "
    "flat fields. Streams are bounded with approximate MAXLEN; consumer groups acknowledge after "
    "the effect (at-least-once, idempotent effects)."
)


def _version() -> str:
    try:
        return version("marketbus")
    except PackageNotFoundError:
        return "0"


def document(prefix: str = "mb", url: str = "redis://localhost:6379/0") -> dict[str, Any]:
    """The AsyncAPI 3.0 document (as JSON-ready data) for the streams under ``prefix``."""
    keys = Keys(prefix)
    broker = RedisBroker(url)
    for stream in STREAMS:
        key = stream.key(keys)
        broker.publisher(
            stream=StreamSub(key),
            schema=stream.model,
            title=f"{key}:publish",
            description=f"{stream.description} (published by {stream.published_by})",
        )

    async def nothing(*_: Any) -> None:
        return None

    for group in GROUPS:
        declare_subscriber(broker, group, group.stream.key(keys), "<worker>", 1, nothing)
    spec = AsyncAPI(broker, title="marketbus", version=_version(), description=DESCRIPTION)
    doc: dict[str, Any] = spec.to_specification().to_jsonable()
    return doc
