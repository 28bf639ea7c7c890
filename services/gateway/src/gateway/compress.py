"""Gzip for large answers at no cost to small ones.

Starlette's :class:`~starlette.middleware.gzip.GZipMiddleware` wraps every response in a responder
that holds back the start message until it has seen the body, even when the client does not
accept gzip or the answer is a few hundred bytes (most of this API). :class:`GZipMiddleware` here
compresses exactly what Starlette's does, but sends a response straight through when the request
does not accept gzip, or when its start message declares a ``Content-Length`` under the minimum
size (Starlette leaves those uncompressed too); only the rest go through Starlette's responder.
"""

from __future__ import annotations

from starlette.middleware import gzip
from starlette.types import Message, Receive, Scope, Send


def accepts_gzip(scope: Scope) -> bool:
    """True when the request's ``Accept-Encoding`` names gzip."""
    headers = scope.get("headers", ())
    return any(name == b"accept-encoding" and b"gzip" in value for name, value in headers)


def declared_length(message: Message) -> int | None:
    """The ``Content-Length`` a response start message declares, or None."""
    for name, value in message.get("headers", ()):
        if name.lower() == b"content-length":
            return int(value) if value.isdigit() else None
    return None


class GZipMiddleware(gzip.GZipMiddleware):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not accepts_gzip(scope):
            await self.app(scope, receive, send)
            return
        responder: gzip.GZipResponder | None = None
        small = False

        async def send_or_compress(message: Message) -> None:
            nonlocal responder, small
            if message["type"] == "http.response.start":
                length = declared_length(message)
                small = length is not None and length < self.minimum_size
            if small:
                await send(message)
                return
            if responder is None:
                responder = gzip.GZipResponder(
                    self.app,
                    self.minimum_size,
                    compresslevel=self.compresslevel,
                    thread_minimum_size=self.thread_minimum_size,
                    exclude_content_types=self.exclude_content_types,
                )
                responder.send = send
            await responder.send_with_compression(message)

        await self.app(scope, receive, send_or_compress)
