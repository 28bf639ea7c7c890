"""JSON errors with a message a person understands; 422 names the parameter at fault."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import ReadOnlyError, RedisError, ResponseError
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway.models import ErrorBody

log = logging.getLogger("gateway")


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        error: str,
        message: str,
        *,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = ErrorBody(error=error, message=message, param=param)
        self.headers = headers


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", what)


def invalid(param: str, message: str) -> ApiError:
    return ApiError(422, "invalid_parameter", f"{param}: {message}", param=param)


def _json(status: int, body: ErrorBody, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status, headers=headers)


def _param_of(loc: Any) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("query", "path", "header", "cookie", "body"):
        parts = parts[1:]
    return ".".join(parts) or "body"


def _msg(error: Any) -> str:
    # pydantic prefixes the message of a validator's ValueError with "Value error, "
    return str(error.get("msg", "")).removeprefix("Value error, ")


async def _api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return _json(exc.status, exc.body, exc.headers)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    first = errors[0] if errors else {"loc": ("body",), "msg": "invalid request"}
    param = _param_of(first.get("loc", ()))
    details = [{"param": _param_of(e.get("loc", ())), "message": _msg(e)} for e in errors]
    body = ErrorBody(
        error="invalid_parameter",
        message=f"{param}: {_msg(first) or 'invalid value'}",
        param=param,
        details=details,
    )
    return _json(422, body)


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    try:
        phrase = HTTPStatus(exc.status_code).phrase
    except ValueError:
        phrase = "error"
    message = exc.detail if isinstance(exc.detail, str) else phrase
    if exc.status_code == 400 and "parsing the body" in message:
        # FastAPI answers 400 for a body that is not even text; it is a bad parameter like any other
        body = ErrorBody(error="invalid_parameter", message="body: not valid UTF-8 JSON", param="body")
        return _json(422, body)
    if exc.status_code == 404 and message == "Not Found":
        message = "no such route; see /docs for the API"
    error = phrase.lower().replace(" ", "_").replace("-", "_")
    if exc.status_code == 413:
        error = "payload_too_large"  # the same name as for a declared Content-Length
    headers = dict(exc.headers) if exc.headers else None
    return _json(exc.status_code, ErrorBody(error=error, message=message), headers)


async def _redis_error(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, ResponseError) and not isinstance(exc, ReadOnlyError):
        # the server answered, with an error: a defect (a wrong type under a key, a bad script),
        # not an outage, so no "retry shortly"
        return await _unexpected(request, exc)
    log.warning("redis unavailable: %s", exc)
    body = ErrorBody(
        error="store_unavailable",
        message="the data store (Redis) cannot be reached right now; retry shortly",
    )
    return _json(503, body, {"Retry-After": "2"})


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return _json(500, ErrorBody(error="internal_error", message="an internal error occurred"))


def install(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RedisError, _redis_error)
    app.add_exception_handler(Exception, _unexpected)


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the error codes a route can answer."""
    return {code: {"model": ErrorBody, "description": HTTPStatus(code).phrase} for code in codes}
