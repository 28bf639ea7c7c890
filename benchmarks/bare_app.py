"""The gateway baseline: a bare FastAPI route returning a constant quote, served by uvicorn with the
gateway's settings (``python -m uvicorn benchmarks.bare_app:app``)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import Response

BODY = (
    b'{"code":"600000.SH","name":"600000.SH","market":"SH\xe4\xb8\xbb\xe6\x9d\xbf","price":10.01,'
    b'"change_percent":0.1,"volume":120000.0,"amount":1201200.0,"open":10.0,"high":10.02,'
    b'"low":9.99,"pre_close":10.0,"turnover":null,"ts":1717464600000}'
)

app = FastAPI()


@app.get("/api/quotes/{code}")
async def quote(code: str) -> Response:
    return Response(content=BODY, media_type="application/json")
