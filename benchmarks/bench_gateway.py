"""Gateway: GET /api/quotes/{code} at 50 connections vs a bare FastAPI route; SSE fan-out to 200.

The gateway is one ``python -m gateway`` process; the baseline ``benchmarks.bare_app`` runs under
``python -m uvicorn`` with the same settings (uvloop and httptools picked automatically by both,
no access log). The load generator is ``wrk -t1 -c50`` (C, one thread) when installed, rotating
over 1,000 codes; otherwise the ``http_load`` role (asyncio, its own process). Bare and gateway
runs alternate; the best run of each counts. The server's CPU use during the run (from its own
CPU time) and the client's show which side was the bottleneck: a server near 100% of one core
with the client well below means the figure is the server's.

SSE: 200 clients (one asyncio process, raw sockets) on /api/stream/signals; a generator writes
signals at 50/s with ``created_ts`` = write time; delivery = client receive time - created_ts.
"""

from __future__ import annotations

import asyncio
import re
import resource
import shutil
import subprocess
import tempfile
from pathlib import Path

import orjson

from benchmarks import procs
from benchmarks.data import codes as make_codes
from benchmarks.harness import Result
from benchmarks.workers import OPEN_MS
from marketbus.keys import Keys
from marketbus.redis import connect
from marketbus.server import free_port

PREFIX = "bg"
CONNECTIONS = 50


def quote(code: str, i: int) -> bytes:
    price = round(10 + i % 100 * 0.01, 2)
    return orjson.dumps(
        {
            "code": code,
            "name": code,
            "market": "SH主板",
            "price": price,
            "change_percent": 0.1,
            "volume": 1e5,
            "amount": 1e6,
            "open": 10.0,
            "high": price,
            "low": 9.9,
            "pre_close": 10.0,
            "turnover": None,
            "ts": OPEN_MS,
        }
    )


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def parse_wrk(text: str) -> dict[str, float]:
    out: dict[str, float] = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))}  # type: ignore[union-attr]
    for q in ("50", "99"):
        m = re.search(rf"^\s+{q}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
        out[f"p{q}"] = float(m.group(1)) * UNITS[m.group(2)] if m else float("nan")
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    out["errors"] = float(bad.group(1)) if bad else 0.0
    return out


async def load(port: int, codes: list[str], seconds: float, script: Path) -> dict[str, float]:
    url = f"http://127.0.0.1:{port}"
    if shutil.which("wrk"):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        run = await asyncio.to_thread(
            subprocess.run,
            ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds:.0f}s", "--latency", "-s", str(script), url],
            capture_output=True,
            text=True,
            check=True,
        )
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        out = parse_wrk(run.stdout)
        out["client_cpu"] = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) / seconds
        return out
    paths = [f"/api/quotes/{c}" for c in codes]
    params = {"port": port, "paths": paths, "seconds": seconds, "connections": CONNECTIONS}
    out = await procs.result_of(procs.role("http_load", params), seconds + 60)
    out["client_cpu"] = out.pop("cpu_s") / seconds
    return out


async def measured(
    proc: procs.subprocess.Popen[bytes], port: int, codes: list[str], seconds: float, script: Path
) -> dict[str, float]:
    cpu0 = procs.cpu_seconds(proc)
    out = await load(port, codes, seconds, script)
    out["server_cpu"] = (procs.cpu_seconds(proc) - cpu0) / seconds
    return out


async def quotes_route(url: str, quick: bool) -> list[Result]:
    seconds, repeats = (2.0, 1) if quick else (10.0, 2)
    client = connect(url)
    codes = make_codes(1000)
    await client.hset(Keys(PREFIX).snapshots, mapping={c: quote(c, i) for i, c in enumerate(codes)})
    tmp = tempfile.TemporaryDirectory(prefix="marketbus-bench-")
    script = Path(tmp.name) / "quotes.lua"
    listed = ",".join(f'"{c}"' for c in codes)
    script.write_text(
        f"local codes = {{{listed}}}\nlocal i = 0\n"
        "request = function()\n  i = i % #codes + 1\n"
        '  return wrk.format("GET", "/api/quotes/" .. codes[i])\nend\n'
    )
    gw_port, bare_port = free_port(), free_port()
    gateway = await procs.start_http(["-m", "gateway"], procs.env_for(url, PREFIX, port=gw_port), gw_port)
    bare_args = [
        "-m",
        "uvicorn",
        "benchmarks.bare_app:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(bare_port),
        "--no-access-log",
        "--log-level",
        "warning",
        "--timeout-graceful-shutdown",
        "3",
    ]
    with procs.running(gateway):
        bare = await procs.start_http(bare_args, procs.env_for(url, PREFIX), bare_port)
        with procs.running(bare):
            await load(gw_port, codes, 1, script)  # warm up both
            await load(bare_port, codes, 1, script)
            best: dict[str, dict[str, float]] = {}
            for _ in range(repeats):
                for name, proc, port in (("bare", bare, bare_port), ("gateway", gateway, gw_port)):
                    out = await measured(proc, port, codes, seconds, script)
                    if name not in best or out["rps"] > best[name]["rps"]:
                        best[name] = out
        rss = procs.rss_mb(gateway)
    tmp.cleanup()
    await client.flushall()
    await client.aclose()
    gw, base = best["gateway"], best["bare"]
    tool = "wrk -t1" if shutil.which("wrk") else "asyncio client"
    cpu = f"server CPU {gw['server_cpu']:.0%} / {base['server_cpu']:.0%} bare, "
    cpu += f"client CPU {gw['client_cpu']:.0%} / {base['client_cpu']:.0%}"
    ok = gw["errors"] == 0
    return [
        Result(
            "gateway",
            f"GET /api/quotes/{{code}} req/s, {CONNECTIONS} conns, {tool} ({cpu})",
            gw["rps"],
            "req/s",
            baseline="bare FastAPI route",
            baseline_value=base["rps"],
            target=">= 0.8x (issue 14)",
            met=ok and gw["rps"] >= 0.8 * base["rps"],
        ),
        Result(
            "gateway",
            "GET /api/quotes/{code} p99",
            gw["p99"],
            "ms",
            baseline="bare FastAPI route",
            baseline_value=base["p99"],
            higher_is_better=False,
            target="p99 <= 1.5x the bare route's (issue 14)",
            met=ok and gw["p99"] <= 1.5 * base["p99"],
        ),
        Result("memory", "gateway RSS after the quotes run", rss, "MiB", higher_is_better=False),
    ]


async def sse(url: str, quick: bool) -> list[Result]:
    n_clients, rate = 200, 50
    count = 100 if quick else 500
    port = free_port()
    gateway = await procs.start_http(["-m", "gateway"], procs.env_for(url, PREFIX, port=port), port)
    with procs.running(gateway):
        params = {"port": port, "clients": n_clients, "expect": count, "timeout": count / rate + 30}
        clients = procs.role("sse_clients", params)
        with procs.running(clients):
            await procs.read_line(clients, 60)
            gen = procs.role("signal_gen", {"url": url, "prefix": PREFIX, "rate": rate, "count": count})
            sent = (await procs.result_of(gen, count / rate + 60))["sent"]
            got = await procs.result_of(clients, count / rate + 60)
    complete = got["complete"] == n_clients and sent == count
    what = f"{n_clients} clients x {sent} signals at {rate}/s; {got['complete']} clients got all, "
    what += f"fewest {got['min_events']}"
    return [
        Result("sse", f"delivery p50 ({what})", got["p50"], "ms", higher_is_better=False),
        Result(
            "sse",
            "delivery p99, every client every signal",
            got["p99"],
            "ms",
            higher_is_better=False,
            target="p99 <= 100 ms, all delivered",
            met=complete and got["p99"] <= 100,
        ),
    ]


async def run(url: str, quick: bool) -> list[Result]:
    out = await quotes_route(url, quick)
    await connect(url).flushall()
    return out + await sse(url, quick)
