"""The old app's evaluating routes: batch-check (OLD_API.md P4) and the index screen (P9)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["oldapp"])
