"""The old app's WebSocket (OLD_API.md P10)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["oldapp_ws"])
