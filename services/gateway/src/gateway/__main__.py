"""``python -m gateway``: serve the app with uvicorn on settings.host:settings.port."""

from __future__ import annotations

import contextlib
import gc
import logging
import sys
from collections.abc import Iterator

import uvicorn

from marketbus.settings import load_settings


class Server(uvicorn.Server):
    """uvicorn re-raises a caught SIGTERM/SIGINT once it has shut down, so the process would die of
    the signal (exit -15). A gateway that stopped cleanly because it was asked to exits 0."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            try:
                yield
            finally:
                self._captured_signals.clear()


def main() -> int:
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

    config = uvicorn.Config(
        lambda: create_app(settings),
        factory=True,
        host=settings.host,
        port=settings.port,
        lifespan="on",
        timeout_graceful_shutdown=3,
        access_log=False,
        log_level="info",
    )
    server = Server(config)
    gc.freeze()  # the app's long-lived objects (imports, schemas) out of every GC pass
    try:
        server.run()
    except OSError as exc:  # e.g. the port is taken
        print(f"gateway: cannot serve on {settings.host}:{settings.port}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
