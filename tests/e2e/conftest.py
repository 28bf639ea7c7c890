"""Start marketbus services as real subprocesses against the session's server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from marketbus.server import free_port


@dataclass
class Service:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"{self.name} did not stop within {timeout} s") from None


@dataclass
class Stack:
    env: dict[str, str]
    tmp: Path
    services: list[Service] = field(default_factory=list)
    port: int = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, module: str, name: str | None = None, **env: str) -> Service:
        name = name or module
        path = self.tmp / f"{name}.log"
        handle = open(path, "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [sys.executable, "-m", module],
            env={**self.env, **env},
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
        handle.close()
        svc = Service(name, proc, path)
        self.services.append(svc)
        return svc

    def start_gateway(self, **env: str) -> Service:
        self.port = free_port()
        svc = self.start("gateway", MARKETBUS_PORT=str(self.port), **env)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.base}/healthz", timeout=1):
                    return svc
            except OSError:
                if svc.proc.poll() is not None:
                    raise AssertionError(f"gateway exited: {svc.log()[-2000:]}") from None
                time.sleep(0.1)
        raise AssertionError("gateway did not start")


@pytest.fixture
def stack(redis_url: str, prefix: str, tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETBUS_")}
    env.update(
        MARKETBUS_REDIS_URL=redis_url,
        MARKETBUS_KEY_PREFIX=prefix,
        PYTHONUNBUFFERED="1",
    )
    stacks: list[Stack] = []

    def make(**extra: str) -> Stack:
        s = Stack({**env, **extra}, tmp_path)
        stacks.append(s)
        return s

    yield make
    for s in stacks:
        for svc in s.services:
            if svc.proc.poll() is None:
                svc.proc.kill()
                svc.proc.wait()
