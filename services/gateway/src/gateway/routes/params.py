"""Shared, validated parameters (a bad one is a 422 that names it)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import AfterValidator, ValidationError, ValidatorFunctionWrapHandler, WrapValidator

from gateway.queries import codes_max_length, codes_pattern, codes_problem, parse_stream_id

# marketbus.contracts.CODE_RE with ASCII digits: `\d` means any Unicode digit to Python's and
# pydantic's regex engines but only 0-9 to a JSON Schema (ECMA) one, and a parameter must mean the
# same to the server and to a client reading the OpenAPI document
CODE_PATTERN = r"^[0-9]{6}\.(SH|SZ|BJ)$"
MAX_CODES = 500

CodePath = Annotated[
    str,
    Path(
        pattern=CODE_PATTERN,
        description="tushare-style code: six digits and .SH/.SZ/.BJ",
        examples=["510300.SH"],
    ),
]
CodeQuery = Annotated[
    str | None,
    Query(pattern=CODE_PATTERN, description="only this code", examples=["510300.SH"]),
]


def _explain_codes(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """The declared pattern decides; a list it refuses gets a message naming what is wrong."""
    try:
        return handler(value)
    except ValidationError:
        if not isinstance(value, str):
            raise
        raise ValueError(codes_problem(value, MAX_CODES)) from None


CodesQuery = Annotated[
    str | None,
    Query(
        max_length=codes_max_length(MAX_CODES),
        pattern=codes_pattern(MAX_CODES),
        description=f"codes separated by commas (no spaces), at most {MAX_CODES}, in any case; "
        "empty: no code",
        examples=["510300.SH,159915.SZ"],
    ),
    WrapValidator(_explain_codes),
]


def _stream_id(value: str) -> str:
    """A cursor the server can read: each part at most 2**64 - 1 (else a 422, not a Redis error)."""
    parse_stream_id(value)
    return value


StreamIdQuery = Annotated[
    Annotated[str, AfterValidator(_stream_id)] | None,
    Query(
        pattern=r"^[0-9]{1,20}(-[0-9]{1,20})?$",
        description="stream entry id to continue after (from next_cursor)",
    ),
]
