"""Chart pages (OLD_API.md P8, the index chart)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["chart"])
