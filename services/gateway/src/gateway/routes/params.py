"""Shared, validated parameters (a bad one is a 422 that names it)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from marketbus.contracts import CODE_RE

CODE_PATTERN = CODE_RE.pattern
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
CodesQuery = Annotated[
    str | None,
    Query(
        max_length=5500,
        pattern=r"^[0-9A-Za-z., ]*$",
        description=f"comma-separated codes (at most {MAX_CODES})",
        examples=["510300.SH,159915.SZ"],
    ),
]
StreamIdQuery = Annotated[
    str | None,
    Query(
        pattern=r"^\d{1,20}(-\d{1,20})?$",
        description="stream entry id to continue after (from next_cursor)",
    ),
]
