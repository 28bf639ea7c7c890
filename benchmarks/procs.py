"""Processes for the benchmarks: services and load generators, each in its own process and loop.

The harness starts a service (``python -m signals``, ``python -m gateway``) or one of the roles of
:mod:`benchmarks.workers` as a subprocess, waits for it to be ready, and stops it with SIGTERM
(SIGKILL only if it does not exit). A role prints one JSON object as the last line of its stdout.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
import psutil
from redis.asyncio import Redis

ROOT = Path(__file__).resolve().parent.parent


def env_for(url: str, prefix: str, **extra: object) -> dict[str, str]:
    """The environment of a service process: the private server, a prefix, no schedule."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETBUS_")}
    env.update(
        MARKETBUS_REDIS_URL=url,
        MARKETBUS_KEY_PREFIX=prefix,
        MARKETBUS_AUTO_CALCULATE_SIGNALS="false",
        PYTHONUNBUFFERED="1",
    )
    env.update({f"MARKETBUS_{k.upper()}": str(v) for k, v in extra.items()})
    return env


def spawn(
    args: Sequence[str],
    env: dict[str, str] | None = None,
    quiet: bool = os.environ.get("BENCH_VERBOSE") is None,
) -> subprocess.Popen[bytes]:
    """``python <args>`` from the repository root, in its own session."""
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL if quiet else None,
        start_new_session=True,
    )


def role(name: str, params: dict[str, Any], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """A role of :mod:`benchmarks.workers` as a subprocess, its parameters as JSON."""
    return spawn(["-m", "benchmarks.workers", name, orjson.dumps(params).decode()], env=env)


def stop(proc: subprocess.Popen[bytes], limit: float = 10.0) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(limit)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def running(*procs: subprocess.Popen[bytes]) -> Iterator[list[subprocess.Popen[bytes]]]:
    out = list(procs)
    try:
        yield out
    finally:
        for p in out:
            stop(p)


def rss_mb(proc: subprocess.Popen[bytes]) -> float:
    """Resident memory of a process and its children, MiB."""
    p = psutil.Process(proc.pid)
    total = p.memory_info().rss
    for child in p.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            total += child.memory_info().rss
    return total / 2**20


def cpu_seconds(proc: subprocess.Popen[bytes]) -> float:
    t = psutil.Process(proc.pid).cpu_times()
    return float(t.user + t.system)


async def result_of(proc: subprocess.Popen[bytes], limit: float) -> Any:
    """Wait for a role to exit and parse the JSON of its last stdout line."""
    out, _ = await asyncio.to_thread(proc.communicate, None, limit)
    lines = [ln for ln in out.decode().splitlines() if ln.strip()]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{proc.args} exited {proc.returncode}: {out.decode()[-500:]}")
    return orjson.loads(lines[-1])


async def read_line(proc: subprocess.Popen[bytes], limit: float) -> str:
    """The next stdout line of a role (e.g. its ``ready``)."""
    assert proc.stdout is not None
    stdout = proc.stdout
    line = await asyncio.wait_for(asyncio.to_thread(stdout.readline), limit)
    if not line:
        raise RuntimeError(f"{proc.args} exited {proc.poll()} before it was ready")
    return line.decode().strip()


async def wait_until(
    check: Callable[[], Awaitable[bool]], limit: float, what: str, every: float = 0.05
) -> None:
    deadline = time.monotonic() + limit
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {limit:.0f} s waiting for {what}")
        await asyncio.sleep(every)


async def group_info(client: Redis, stream: str, group: str) -> dict[str, Any]:
    for g in await client.xinfo_groups(stream):
        name = g["name"].decode() if isinstance(g["name"], bytes) else g["name"]
        if name == group:
            return dict(g)
    raise KeyError(group)


async def drained(client: Redis, stream: str, group: str, limit: float, every: float = 0.01) -> float:
    """Wait until the group has no lag and nothing pending; the monotonic time it was seen so."""

    async def done() -> bool:
        g = await group_info(client, stream, group)
        return g.get("lag") == 0 and g["pending"] == 0

    await wait_until(done, limit, f"group {group} on {stream} to drain", every)
    return time.monotonic()


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))
    return s[k]


async def start_signals(
    client: Redis, url: str, prefix: str, workers: int, **settings: object
) -> list[subprocess.Popen[bytes]]:
    """``python -m signals`` x workers (no schedule; ``settings`` as in :func:`env_for`); returns
    once every worker's heartbeat is in."""
    from marketbus.keys import Keys

    names = [f"bench-{i}" for i in range(workers)]
    out = [spawn(["-m", "signals"], env_for(url, prefix, consumer_name=n, **settings)) for n in names]
    key = Keys(prefix).heartbeats

    async def up() -> bool:
        for p in out:
            if p.poll() is not None:
                raise RuntimeError(f"signals worker exited {p.returncode} at start")
        return all(await client.hmget(key, [f"signals:{n}" for n in names]))

    try:
        await wait_until(up, 60, "signals workers to start", every=0.1)
    except BaseException:
        for p in out:
            stop(p)
        raise
    return out


async def start_http(args: Sequence[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    """An HTTP server subprocess; returns once ``GET /healthz`` (or anything) answers."""
    import httpx

    proc = spawn(args, env)

    async def up() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"{args} exited {proc.returncode} at start")
        try:
            async with httpx.AsyncClient() as c:
                await c.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return True
        except httpx.HTTPError:
            return False

    try:
        await wait_until(up, 60, f"{args} to serve", every=0.1)
    except BaseException:
        stop(proc)
        raise
    return proc
