"""The gateway's token: MARKETBUS_API_TOKEN, sent as a Bearer token (the scan trigger, the old
app's routes) or as the old app's X-API-Token header; compared in one place, in constant time."""

from __future__ import annotations

import hmac

from fastapi.security import HTTPBearer

bearer = HTTPBearer(auto_error=False, description="MARKETBUS_API_TOKEN")


def token_matches(given: str | None, token: str) -> bool:
    """``given`` is ``token``, compared in constant time (no length or prefix leaks by timing)."""
    return hmac.compare_digest((given or "").encode(), token.encode())
