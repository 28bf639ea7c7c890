"""The dead-letter stream: messages that could not be parsed or kept failing, with their error.

A DLQ entry's fields: ``error`` (why), ``stream`` (where it came from), ``entry_id`` (its id
there, "" for a message rejected before it was ever written), ``data`` (the original ``data``
field, or JSON of all original fields), ``ts`` (epoch ms when it was dead-lettered).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson

from marketbus.wire import DATA_FIELD
from marketbus.wire import text as _text


def dlq_fields(
    stream: str, entry_id: bytes | str, fields: Mapping[Any, Any] | bytes | str, error: str
) -> dict[str, str]:
    if isinstance(fields, bytes | str):
        data = _text(fields)
    else:
        decoded = {_text(k): _text(v) for k, v in fields.items()}
        data = decoded[DATA_FIELD] if set(decoded) == {DATA_FIELD} else orjson.dumps(decoded).decode()
    return {
        "error": error[:2000],
        "stream": stream,
        "entry_id": _text(entry_id),
        "data": data,
        "ts": str(time.time_ns() // 1_000_000),
    }


def dead_letter(
    pipe: Any,
    dlq_stream: str,
    maxlen: int,
    stream: str,
    entry_id: bytes | str,
    fields: Mapping[Any, Any] | bytes | str,
    error: str,
) -> None:
    """Queue the XADD of one dead letter on a pipeline or client (await the client's call)."""
    return pipe.xadd(dlq_stream, dlq_fields(stream, entry_id, fields, error), maxlen=maxlen, approximate=True)
