"""Stream entry <-> model. One field ``data`` holding JSON: readable with bare XRANGE anywhere."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

import orjson
from pydantic import BaseModel, ValidationError

DATA_FIELD = "data"
M = TypeVar("M", bound=BaseModel)


class BadMessage(ValueError):
    """An entry that cannot become the expected model; carries a precise reason."""


def encode(model: BaseModel) -> dict[str, bytes]:
    return {DATA_FIELD: model.__pydantic_serializer__.to_json(model)}


def payload(model: BaseModel) -> bytes:
    """The ``data`` field :func:`encode` writes (the model's JSON), alone."""
    return model.__pydantic_serializer__.to_json(model)


def decode(cls: type[M], fields: Mapping[bytes | str, bytes | str]) -> M:
    raw = fields.get(DATA_FIELD.encode()) if DATA_FIELD.encode() in fields else fields.get(DATA_FIELD)
    if raw is None:
        raise BadMessage(f"entry has no '{DATA_FIELD}' field (fields: {sorted(map(str, fields))})")
    try:
        return cls.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "message"
        raise BadMessage(
            f"not a valid {cls.__name__}: {where}: {first['msg']} ({exc.error_count()} error(s))"
        ) from None


def text(value: bytes | str) -> str:
    """A Redis reply (bytes, or str from a decoding client) as text."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def dumps(obj: object) -> bytes:
    return orjson.dumps(obj)


def loads(raw: bytes | str) -> object:
    return orjson.loads(raw)
