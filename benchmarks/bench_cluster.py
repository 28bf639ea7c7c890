"""Cluster: ingest and the scan on a three-master Cluster against one server, in the same run.

The Cluster's three masters are ``valkey-server --cluster-enabled yes`` processes started from the
same binary as the one server (:class:`marketbus.topology.ClusterDeployment`), on the same machine.
Ingest is the quotes service's batch path (the ingest role of :mod:`benchmarks.bench_ingest`, best
of the repeats), the scan is :func:`benchmarks.bench_scan.stored_scan` (server to signals written,
a worker's later scans: on a Cluster its windows are brought up to date by a pipeline, not a
script).
On one machine a Cluster cannot be faster (three servers share its cores and the client talks to
each); the rows show what the key layout costs: the trend series spread over the masters, the bus
keys in one slot.
"""

from __future__ import annotations

from benchmarks import procs
from benchmarks.bench_scan import stored_scan
from benchmarks.data import codes as make_codes
from benchmarks.data import daily_rows
from benchmarks.harness import Result
from marketbus.keys import Keys
from marketbus.redis import connect
from marketbus.topology import ClusterDeployment
from signals.strategies import WINDOW_BARS


async def measure(url: str, quick: bool) -> tuple[float, float, int]:
    """(ingest ticks/s, scan s (later scans), scan signals) on the deployment ``url`` names."""
    n_ticks, n_codes, repeats = (20_000, 1000, 1) if quick else (100_000, 2000, 2)
    client = connect(url)
    try:
        rate = 0.0
        for _ in range(repeats):
            await client.flushall()
            params = {"url": url, "prefix": "bc", "ticks": n_ticks, "codes": n_codes, "mode": "service"}
            out = await procs.result_of(procs.role("ingest", params), limit=300)
            rate = max(rate, out["ticks"] / out["seconds"])
        await client.flushall()
        scan_codes = 1000 if quick else 6000
        _, scan_s, found, _ = await stored_scan(
            client, Keys("bc"), make_codes(scan_codes), daily_rows(scan_codes, WINDOW_BARS)
        )
        await client.flushall()
        return rate, scan_s, found
    finally:
        await client.aclose()


async def run(url: str, quick: bool) -> list[Result]:
    one = await measure(url, quick)
    with ClusterDeployment() as cluster:
        spread = await measure(cluster.url, quick)
    return [
        Result(
            "cluster",
            "ingest, quotes path ticks/s on a 3-master Cluster",
            spread[0],
            "ticks/s",
            baseline="one server",
            baseline_value=one[0],
        ),
        Result(
            "cluster",
            f"scan server->signals written on a 3-master Cluster ({spread[2]} signals)",
            spread[1],
            "s",
            baseline=f"one server ({one[2]} signals)",
            baseline_value=one[1],
            higher_is_better=False,
        ),
    ]
