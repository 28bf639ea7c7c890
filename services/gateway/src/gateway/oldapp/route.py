"""The old app's error shape on its routes: FastAPI's own ``{"detail": ...}``.

The gateway answers errors with its body ``{"error", "message", "param"}`` (gateway.errors, one
handler for the whole app). The old app's routes keep the old backend's FastAPI defaults instead:
an ``HTTPException`` is ``{"detail": <text>}`` with its status and headers, a bad parameter 422
``{"detail": [{"loc", "msg", "type"}, ...]}``, the store out of reach 503 ``{"detail": ...}``
(``Retry-After``), anything else 500 ``{"detail": ...}``. Use it as
``APIRouter(route_class=OldAppRoute)``; the failures of the route's dependencies (the token) and
of its parameters are caught too, as FastAPI solves them inside the route's handler.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from redis.exceptions import ReadOnlyError, RedisError, ResponseError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("gateway")

STORE_UNAVAILABLE = "the data store (Redis) cannot be reached right now; retry shortly"
INTERNAL = "an internal error occurred"


def detail(status: int, text: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """An old-style error answer: ``{"detail": text}``."""
    return JSONResponse({"detail": text}, status_code=status, headers=headers)


class OldAppRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def old_shaped(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                return await request_validation_exception_handler(request, exc)
            except StarletteHTTPException as exc:
                return await http_exception_handler(request, exc)
            except RedisError as exc:
                if isinstance(exc, ResponseError) and not isinstance(exc, ReadOnlyError):
                    log.exception("redis error reply", exc_info=exc)  # a defect, not an outage
                    return detail(500, INTERNAL)
                log.warning("redis unavailable: %s", exc)
                return detail(503, STORE_UNAVAILABLE, {"Retry-After": "2"})
            except Exception as exc:
                log.exception("unhandled error", exc_info=exc)
                return detail(500, INTERNAL)

        return old_shaped
