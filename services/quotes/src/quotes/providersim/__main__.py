"""``python -m quotes.providersim [--host 127.0.0.1] [--port 0] [--codes 6500] [--seed 7] [--clock SPEC]``

Binds the port (0: a free one), prints one JSON line ``{"url": ..., "codes": ...}`` on stdout once
it listens, and serves until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys

import orjson
import uvicorn

from marketbus.clock import parse_clock
from marketbus.sessions import load_calendar
from quotes.providersim.app import SimApp
from quotes.providersim.market import Market


def main(
    argv: list[str] | None = None,
    app_class: type[SimApp] = SimApp,
    prog: str = "python -m quotes.providersim",
) -> int:
    """Serve ``app_class`` (the simulator app, or a subclass that adds to it) until stopped."""
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument("--codes", type=int, default=6500, help="securities in the generated market")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--clock", default=None, help="market clock, as MARKETBUS_MARKET_CLOCK (default: real time)"
    )
    args = parser.parse_args(argv)
    try:
        clock = parse_clock(args.clock)
    except ValueError as exc:
        parser.error(str(exc))
    load_calendar()
    market = Market(args.seed, args.codes)
    app = app_class(market, clock.now_ms)
    market.snapshots(list(market.securities), clock.now_ms())  # the day's paths, before the first request
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(512)
    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", backlog=512)
    server = uvicorn.Server(config)
    sys.stdout.write(
        orjson.dumps({"url": f"http://{host}:{port}", "codes": len(market.securities)}).decode() + "\n"
    )
    sys.stdout.flush()
    asyncio.run(server.serve(sockets=[sock]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
