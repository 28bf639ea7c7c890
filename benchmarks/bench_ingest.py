"""Ingest: ticks/s through the quotes service's own batch path vs a bare pipelined XADD loop.

Both run in a fresh subprocess each (role ``ingest``), alternately, on the same pre-built ticks
(``make_tick`` objects, as the feeds hand them over), 500 per batch/pipeline (the service's
``tick_batch``). The service path is ``QuotesService.process``: validation, the batch's ticks
(one server-side XADD loop), snapshot HSET, aggregation into every period, closed bars to the
trend series (Lua) and ``{mb}:bars``, the day states, counters, in one MULTI/EXEC. The service's
start-up (the trading calendar loaded, the start-up objects frozen out of the GC, as
``quotes.app`` does) happens before the clock starts. Best of the repeats for each side
(throughput on a shared machine only ever loses to noise).

Also reports memory after the ingest run: the quotes process's RSS and the server's used_memory.
"""

from __future__ import annotations

from benchmarks import procs
from benchmarks.harness import Result
from marketbus.redis import connect


async def run(url: str, quick: bool) -> list[Result]:
    n_ticks, n_codes, repeats = (20_000, 1000, 1) if quick else (200_000, 2000, 3)
    client = connect(url)
    best: dict[str, dict] = {}
    used = 0
    for _ in range(repeats):
        for mode in ("bare", "service"):
            await client.flushall()
            params = {"url": url, "prefix": "bi", "ticks": n_ticks, "codes": n_codes, "mode": mode}
            out = await procs.result_of(procs.role("ingest", params), limit=300)
            out["rate"] = out["ticks"] / out["seconds"]
            if mode == "service":
                used = max(used, int((await client.info("memory"))["used_memory"]))
            if mode not in best or out["rate"] > best[mode]["rate"]:
                best[mode] = out
    await client.flushall()
    await client.aclose()
    svc, bare = best["service"], best["bare"]
    size = f"{n_ticks:,} ticks, {n_codes:,} codes, {svc['bars']:,} bars closed"
    return [
        Result(
            "ingest",
            f"quotes path ticks/s ({size})",
            svc["rate"],
            "ticks/s",
            baseline="bare pipelined XADD",
            baseline_value=bare["rate"],
            target=">= 0.7x (issue 14)",
            met=svc["rate"] >= 0.7 * bare["rate"],
        ),
        Result(
            "memory", "quotes process RSS after the ingest run", svc["rss_mb"], "MiB", higher_is_better=False
        ),
        Result(
            "memory", "server used_memory after the ingest run", used / 2**20, "MiB", higher_is_better=False
        ),
    ]
