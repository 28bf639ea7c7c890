"""``uv run python -m benchmarks [--quick] [--only NAME ...]``

Starts a private valkey-server (as the tests do), runs each benchmark, prints the table and rewrites
benchmarks/RESULTS.md. Load generators run in their own processes.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable

from benchmarks import (
    bench_cluster,
    bench_consume,
    bench_gateway,
    bench_import,
    bench_ingest,
    bench_latency,
    bench_load,
    bench_market,
    bench_poll,
    bench_scan,
    bench_scorecard,
)
from benchmarks.harness import RESULTS, Result, machine, markdown, show
from marketbus.redis import connect_sync
from marketbus.server import EmbeddedServer

Bench = Callable[[str, bool], Awaitable[list[Result]]]
BENCHES: dict[str, Bench] = {
    "ingest": bench_ingest.run,
    "consume": bench_consume.run,
    "latency": bench_latency.run,
    "gateway": bench_gateway.run,
    "scan": bench_scan.run,
    "load": bench_load.run,
    "import": bench_import.run,
    "poll": bench_poll.run,
    "market": bench_market.run,
    "scorecard": bench_scorecard.run,
    "cluster": bench_cluster.run,
}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--quick", action="store_true", help="small sizes, under a minute")
    parser.add_argument("--only", action="append", choices=sorted(BENCHES), help="run only these")
    args = parser.parse_args()
    names = args.only or list(BENCHES)
    results: list[Result] = []
    with EmbeddedServer() as server:
        info = connect_sync(server.url).info("server")
        version = f"valkey {info.get('valkey_version', info.get('redis_version'))}"
        for name in names:
            started = time.perf_counter()
            print(f"running {name} ...", file=sys.stderr, flush=True)
            connect_sync(server.url).flushall()
            results.extend(asyncio.run(BENCHES[name](server.url, args.quick)))
            print(f"  {name}: {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    show(results)
    if not args.only:
        RESULTS.write_text(markdown(results, machine(version), "quick" if args.quick else "full"))
        print(f"wrote {RESULTS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
