"""Fixtures of the reliability suite: real processes against a real server.

- ``procs``: starts services (``python -m quotes|signals|gateway``) as subprocesses against any
  server URL, one log file per process; every process still running at the end is killed.
- ``private_server``: a valkey-server of this test alone (AOF on, own port and data dir) that a
  test may stop and start again; the session server is never touched.

Helpers (bars, expected signals, waiting) live in ``_support.py``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from marketbus.server import EmbeddedServer, free_port

from ._support import Procs


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: a reliability test that takes several seconds")


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Procs]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETBUS_")}
    p = Procs(tmp_path, env)
    yield p
    for proc in p.started:
        if proc.alive:
            proc.proc.kill()
            proc.proc.wait()


@pytest.fixture
def private_server(tmp_path: Path) -> Iterator[EmbeddedServer]:
    """A valkey-server for this test only, with AOF, restartable on the same port and data dir."""
    data = tmp_path / "valkey-data"
    data.mkdir()
    server = EmbeddedServer(port=free_port(), data_dir=data, appendonly=True).start()
    try:
        yield server
    finally:
        server.stop()
