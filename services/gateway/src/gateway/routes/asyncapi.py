"""The AsyncAPI document of the bus: every stream the services use, its message schema, who
publishes it and which consumer groups read it (built by marketbus.asyncapi)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from gateway.deps import KeysDep, SettingsDep
from marketbus.redis import redact

router = APIRouter(tags=["bus"])


@lru_cache(maxsize=4)
def _document(prefix: str, url: str) -> dict[str, Any]:
    # imported here: FastStream builds the document, and only this route needs it
    from marketbus import asyncapi

    return asyncapi.document(prefix, url)


@router.get(
    "/api/asyncapi.json",
    response_class=JSONResponse,
    responses={200: {"content": {"application/json": {"schema": {"type": "object"}}}}},
)
async def asyncapi_document(keys: KeysDep, settings: SettingsDep) -> JSONResponse:
    """The AsyncAPI 3.0 document of the streams under this gateway's key prefix."""
    return JSONResponse(_document(keys.prefix, redact(settings.redis_url or "")))
