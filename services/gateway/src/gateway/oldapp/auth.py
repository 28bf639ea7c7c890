"""The old app's token (OLD_API.md, "Auth"): the routes it marks "token" ask for it.

``dependencies=[Depends(require_app_token)]`` on a route (or a router): when MARKETBUS_API_TOKEN is
set, a request must carry it as ``X-API-Token: <token>`` (what the app sends) or
``Authorization: Bearer <token>`` (what the scan trigger takes, gateway.routes.scheduler); else 401
``{"detail": ...}``, the old FastAPI error. Unset, the routes are open, as the old backend was by
default (``API_TOKEN_ENABLED=false``).

The 401 is an ``HTTPException``: it comes out as ``{"detail": ...}`` on a router whose
``route_class`` is :class:`gateway.oldapp.route.OldAppRoute` (the old app's routers); elsewhere the
gateway's own error body answers.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials

from gateway.auth import bearer, token_matches
from gateway.deps import SettingsDep

app_token_header = APIKeyHeader(
    name="X-API-Token", auto_error=False, description="the old app's token: MARKETBUS_API_TOKEN"
)
UNAUTHORIZED = (
    "missing or wrong token: send X-API-Token: <MARKETBUS_API_TOKEN> "
    "(or Authorization: Bearer <MARKETBUS_API_TOKEN>)"
)


def accepted(token: str | None, header: str | None, bearer_token: str | None) -> bool:
    """Whether a request with these credentials passes: anything when no token is configured,
    else either credential equal to it (both are compared, whatever the first one gave)."""
    if not token:
        return True
    by_header = token_matches(header, token) if header else False
    by_bearer = token_matches(bearer_token, token) if bearer_token else False
    return by_header or by_bearer


async def require_app_token(
    settings: SettingsDep,
    header: Annotated[str | None, Depends(app_token_header)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """401 ``{"detail": ...}`` without the right token when MARKETBUS_API_TOKEN is set."""
    token = settings.api_token.get_secret_value() if settings.api_token is not None else None
    if not accepted(token, header, credentials.credentials if credentials is not None else None):
        raise HTTPException(401, detail=UNAUTHORIZED, headers={"WWW-Authenticate": "Bearer"})
