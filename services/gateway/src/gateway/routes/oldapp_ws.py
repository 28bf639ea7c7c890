"""The old app's WebSocket (OLD_API.md P10): live prices of subscribed strategies and codes.
No auth, as the old WebSocket had none. The protocol and the pushes are gateway.oldapp.ws."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

from gateway.oldapp.ws import OldAppWsHub

router = APIRouter(tags=["oldapp_ws"])


@router.websocket("/ws/stock/prices")
async def stock_prices(websocket: WebSocket) -> None:
    """``connected`` first; then ``subscribe``/``unsubscribe`` (``subscription_type`` strategy or
    stock, ``target``) and ``ping``; ``price_update`` every push interval while the market is in
    session."""
    hub: OldAppWsHub = websocket.app.state.oldapp_ws
    await hub.serve(websocket)
