"""The gateway's gzip: large answers compressed for clients that take gzip, small answers and
clients that do not sent as they are (and without the buffering of Starlette's responder)."""

import gzip

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from gateway.compress import GZipMiddleware

SMALL = b'{"code":"600000.SH","price":10.01}'
LARGE = b'{"rows":[' + b",".join(b'{"i":%d,"v":"abcdefgh"}' % i for i in range(400)) + b"]}"


def small(_request: object) -> Response:
    return Response(SMALL, media_type="application/json")


def large(_request: object) -> Response:
    return Response(LARGE, media_type="application/json")


def streamed(_request: object) -> StreamingResponse:
    async def chunks():  # type: ignore[no-untyped-def]
        for start in range(0, len(LARGE), 1000):
            yield LARGE[start : start + 1000]

    return StreamingResponse(chunks(), media_type="application/json")


def app() -> Starlette:
    routes = [Route("/small", small), Route("/large", large), Route("/streamed", streamed)]
    out = Starlette(routes=routes)
    out.add_middleware(GZipMiddleware, minimum_size=1000, compresslevel=6)
    return out


async def get(path: str, accept: str) -> tuple[httpx.Headers, bytes]:
    """The answer's headers and its body as sent (not decoded)."""
    transport = httpx.ASGITransport(app=app())
    client = httpx.AsyncClient(transport=transport, base_url="http://test")
    async with client, client.stream("GET", path, headers={"Accept-Encoding": accept}) as r:
        return r.headers, b"".join([chunk async for chunk in r.aiter_raw()])


@pytest.mark.parametrize("path", ["/large", "/streamed"])
async def test_large_answers_are_gzipped_for_a_gzip_client(path: str) -> None:
    headers, body = await get(path, "gzip, deflate")
    assert headers["content-encoding"] == "gzip"
    assert "Accept-Encoding" in headers["vary"]
    assert gzip.decompress(body) == LARGE


async def test_a_small_answer_is_sent_as_it_is_to_a_gzip_client() -> None:
    headers, body = await get("/small", "gzip")
    assert "content-encoding" not in headers
    assert headers["content-length"] == str(len(SMALL))
    assert body == SMALL


@pytest.mark.parametrize("path", ["/small", "/large", "/streamed"])
async def test_a_client_without_gzip_gets_every_answer_uncompressed(path: str) -> None:
    headers, body = await get(path, "identity")
    assert "content-encoding" not in headers
    assert body == (SMALL if path == "/small" else LARGE)
