"""The old app (OLD_API.md P1-P7, P9)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["oldapp"])
