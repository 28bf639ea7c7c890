"""``python -m gateway``: serve the app with uvicorn on settings.host:settings.port.

``--graceful-timeout S`` (default 3): how long a shutdown waits for requests still being answered
(the SSE streams end at once, see :class:`Server`).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import socket
import sys
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI

from marketbus.settings import load_settings

GRACEFUL_TIMEOUT_S = 3


class Server(uvicorn.Server):
    """uvicorn, with two changes for the gateway:

    - its shutdown ends the open SSE responses first (:func:`gateway.app.end_streams`): uvicorn
      waits for every open response before it runs the lifespan's shutdown, and an event stream
      never ends by itself, so without this a shutdown waited out the graceful timeout and then
      cancelled them, with a traceback for each;
    - uvicorn re-raises a caught SIGTERM/SIGINT once it has shut down, so the process would die of
      the signal (exit -15). A gateway that stopped cleanly because it was asked to exits 0.
    """

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self.app = app

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        from gateway.app import end_streams

        end_streams(self.app)
        await super().shutdown(sockets)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            try:
                yield
            finally:
                self._captured_signals.clear()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--graceful-timeout",
        type=int,
        default=GRACEFUL_TIMEOUT_S,
        metavar="S",
        help=f"seconds a shutdown waits for requests being answered (default {GRACEFUL_TIMEOUT_S:g})",
    )
    args = parser.parse_args(argv)
    settings = load_settings()
    if not settings.redis_url:
        print(
            "gateway: MARKETBUS_REDIS_URL is not set; point it at a server "
            "(redis://host:6379/0) or start everything with `uv run marketbus up`",
            file=sys.stderr,
        )
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from gateway.app import create_app

    app = create_app(settings)  # connects to nothing: the lifespan does, in uvicorn's loop
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        lifespan="on",
        timeout_graceful_shutdown=args.graceful_timeout,
        access_log=False,
        log_level="info",
    )
    server = Server(config, app)
    gc.freeze()  # the app's long-lived objects (imports, schemas) out of every GC pass
    try:
        server.run()
    except OSError as exc:  # e.g. the port is taken
        print(f"gateway: cannot serve on {settings.host}:{settings.port}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
