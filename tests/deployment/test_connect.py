"""The one connection factory on the three deployments, against real server processes."""

from __future__ import annotations

import pytest

from marketbus.redis import broker, connect, connect_sync, parse, redact
from marketbus.topology import ClusterDeployment, SentinelDeployment


def test_the_three_url_forms_are_parsed() -> None:
    one = parse("redis://:pw@127.0.0.1:6379/2")
    assert one.kind == "server"
    s = parse("redis+sentinel://:pw@h1:26379,h2/mymaster/3?sentinel_password=sp")
    assert (s.kind, s.nodes, s.service, s.db, s.password, s.sentinel_password) == (
        "sentinel",
        (("h1", 26379), ("h2", 26379)),
        "mymaster",
        3,
        "pw",
        "sp",
    )
    c = parse("rediss+cluster://u:pw@n1:7000,[::1]:7001")
    assert (c.kind, c.nodes, c.tls, c.username, c.password) == (
        "cluster",
        (("n1", 7000), ("::1", 7001)),
        True,
        "u",
        "pw",
    )
    shown = redact("redis+sentinel://:pw@h1:26379,h2:26379/mb?sentinel_password=sp")
    assert "pw" not in shown.replace("sentinel_password", "") and "sp" not in shown.split("?")[1][-3:]
    assert shown.startswith("redis+sentinel://:***@h1:26379,h2:26379/mb")


@pytest.mark.parametrize(
    "url, field",
    [("redis+sentinel://h1:26379", "service name"), ("redis+cluster://h1:x", "bad port")],
)
def test_a_malformed_url_names_the_setting(url: str, field: str) -> None:
    with pytest.raises(ValueError, match=f"MARKETBUS_REDIS_URL.*{field}"):
        parse(url)


async def test_sentinel_clients_follow_a_failover(sentinel: SentinelDeployment) -> None:
    client = connect(sentinel.url)
    try:
        await client.set("k", "before")
        assert sentinel.primary.port == sentinel.sentinels[0].master_port()
        old = sentinel.kill_primary()
        new = sentinel.wait_promoted(old)
        assert new != old
        await client.set("k", "after")  # the pool asks the sentinels again and writes to the new one
        assert await client.get("k") == b"after"
        assert connect_sync(sentinel.url).get("k") == b"after"
    finally:
        await client.aclose()


async def test_cluster_client_and_broker_reach_every_slot(cluster: ClusterDeployment) -> None:
    client = connect(cluster.url)
    try:
        for i in range(60):
            await client.set(f"spread:{i}", i)
        assert all(n > 0 for n in cluster.keys_per_node()), cluster.keys_per_node()
        assert int(await client.get("spread:7")) == 7
        assert connect_sync(cluster.url).get("spread:8") == b"8"
    finally:
        await client.aclose()
    b = broker(cluster.url)
    await b.connect()
    try:
        await b.publish({"x": 1}, stream="{mb}:probe")
    finally:
        await b.stop()
