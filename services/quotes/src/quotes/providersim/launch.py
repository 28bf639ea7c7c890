"""Start the provider simulator as a subprocess and talk to its control endpoints (tests, benchmarks)."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson


class SimProcess:
    """A running ``python -m quotes.providersim``; ``url`` is its base URL."""

    def __init__(self, proc: subprocess.Popen[bytes], url: str, codes: int) -> None:
        self.proc = proc
        self.url = url
        self.codes = codes

    def control(self, endpoint: str, /, **body: Any) -> Any:
        """POST ``/_control/<endpoint>`` with ``body`` as JSON; the decoded answer (raises on 4xx)."""
        response = httpx.post(f"{self.url}/_control/{endpoint}", json=body, timeout=10)
        response.raise_for_status()
        return response.json()

    def listing(self) -> dict[str, Any]:
        """Every listed security (code, name, market) and the suspended codes."""
        response = httpx.get(f"{self.url}/_control/listing", timeout=10)
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    def counters(self, reset: bool = False) -> dict[str, Any]:
        params = {"reset": "1"} if reset else {}
        response = httpx.get(f"{self.url}/_control/counters", params=params, timeout=10)
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    def stop(self, limit: float = 10.0) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(limit)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def start_simulator(codes: int = 6500, seed: int = 7, clock: str | None = None, port: int = 0,
                    deadline_s: float = 60.0) -> SimProcess:  # fmt: skip
    """Start the simulator on 127.0.0.1 and wait (up to ``deadline_s``) until it listens."""
    args = [sys.executable, "-m", "quotes.providersim", "--port", str(port), "--codes", str(codes),
            "--seed", str(seed)]  # fmt: skip
    if clock:
        args += ["--clock", clock]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, env=env, start_new_session=True)
    assert proc.stdout is not None
    end = time.monotonic() + deadline_s
    line = b""
    while not line.endswith(b"\n"):
        left = end - time.monotonic()
        if left <= 0 or proc.poll() is not None:
            sim = SimProcess(proc, "", 0)
            sim.stop()
            raise RuntimeError(f"provider simulator did not start (exit code {proc.returncode})")
        ready, _, _ = select.select([proc.stdout], [], [], min(left, 0.5))
        if ready:
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                continue
            line += chunk
    info = orjson.loads(line.splitlines()[0])
    return SimProcess(proc, info["url"], info["codes"])


@contextlib.contextmanager
def running_simulator(**kwargs: Any) -> Iterator[SimProcess]:
    sim = start_simulator(**kwargs)
    try:
        yield sim
    finally:
        sim.stop()
