"""Async Redis clients, and the FastStream broker, for the three deployments ``MARKETBUS_REDIS_URL``
names. Always created inside the running loop (startup/lifespan), never at import.

- one server: ``redis://[:password@]host:port/db``, ``rediss://...`` (TLS), ``unix:///path.sock``;
- Sentinel: ``redis+sentinel://[:password@]host1:26379,host2:26379/<service>[/db]`` (``rediss+sentinel``
  for TLS to the primary); the primary is asked of the sentinels and asked again at every reconnect,
  so a failover is followed without a restart. ``?sentinel_password=...`` for password-protected
  sentinels (the URL's password is the primary's);
- Cluster: ``redis+cluster://[:password@]host1:7000,host2:7001`` (``rediss+cluster``): seed nodes;
  the client learns the slot map from them and follows MOVED/ASK.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, cast
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

import redis as sync_redis
from faststream.redis import RedisBroker, RedisClusterBroker, RedisSentinelBroker
from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import SSLConnection
from redis.asyncio.retry import Retry  # the async one: redis.retry.Retry never awaits, so never retries
from redis.asyncio.sentinel import Sentinel, SentinelManagedConnection
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

Kind = Literal["server", "sentinel", "cluster"]
SENTINEL_SCHEMES = {"redis+sentinel": False, "rediss+sentinel": True}
CLUSTER_SCHEMES = {"redis+cluster": False, "rediss+cluster": True}


@dataclass(frozen=True, slots=True)
class Target:
    """What a ``MARKETBUS_REDIS_URL`` names."""

    kind: Kind
    url: str
    nodes: tuple[tuple[str, int], ...] = ()
    service: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = None
    tls: bool = False
    sentinel_password: str | None = None


def _nodes(netloc: str, default_port: int, url: str) -> tuple[tuple[str, int], ...]:
    hosts = netloc.rpartition("@")[2]
    out = []
    for item in hosts.split(","):
        item = item.strip()
        if not item:
            continue
        if item.startswith("["):  # [::1]:26379
            host, _, rest = item[1:].partition("]")
            port_text = rest.lstrip(":")
        else:
            host, _, port_text = item.rpartition(":") if ":" in item else (item, "", "")
        try:
            port = int(port_text) if port_text else default_port
        except ValueError:
            raise ValueError(f"MARKETBUS_REDIS_URL: bad port {port_text!r} in {redact(url)}") from None
        out.append((host, port))
    if not out:
        raise ValueError(f"MARKETBUS_REDIS_URL: no host in {redact(url)}")
    return tuple(out)


def parse(url: str) -> Target:
    """The deployment a URL names; a clear ValueError naming the setting for a malformed one."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in SENTINEL_SCHEMES and scheme not in CLUSTER_SCHEMES:
        return Target("server", url)
    userinfo = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else ""
    user, _, password = userinfo.partition(":") if userinfo else ("", "", "")
    query = parse_qs(parts.query)
    common: dict[str, Any] = {
        "username": unquote(user) or None,
        "password": unquote(password) or None,
    }
    if scheme in CLUSTER_SCHEMES:
        return Target("cluster", url, _nodes(parts.netloc, 6379, url), tls=CLUSTER_SCHEMES[scheme], **common)
    path = [p for p in parts.path.split("/") if p]
    if not path:
        raise ValueError(f"MARKETBUS_REDIS_URL: a Sentinel URL needs /<service name>: {redact(url)}")
    try:
        db = int(path[1]) if len(path) > 1 else 0
    except ValueError:
        raise ValueError(f"MARKETBUS_REDIS_URL: bad database {path[1]!r} in {redact(url)}") from None
    return Target(
        "sentinel",
        url,
        _nodes(parts.netloc, 26379, url),
        service=path[0],
        db=db,
        tls=SENTINEL_SCHEMES[scheme],
        sentinel_password=next(iter(query.get("sentinel_password", [])), None),
        **common,
    )


class FollowingConnection(SentinelManagedConnection):
    """A Sentinel-managed connection that asks for the primary at EVERY (re)connect.

    redis-py 8.1's async ``Connection.send_packed_command`` reconnects a dropped connection through
    ``connect_check_health``, past ``SentinelManagedConnection.connect``, so after a failover the
    pooled connections dialled the dead primary's address for ever. Resolving in ``_connect``
    (the socket open every path goes through) makes them follow the promotion."""

    async def _connect(self) -> None:
        if self.connection_pool.is_master:
            self.host, self.port = await self.connection_pool.get_master_address()
        await super()._connect()


class FollowingSSLConnection(FollowingConnection, SSLConnection):
    pass


def _resilience() -> dict[str, Any]:
    return {
        "retry": Retry(ExponentialBackoff(cap=2.0, base=0.05), retries=5),
        "retry_on_error": [RedisConnectionError, RedisTimeoutError],
        "health_check_interval": 15,
        "socket_connect_timeout": 3,
    }


def _auth(t: Target) -> dict[str, Any]:
    return {k: v for k, v in (("username", t.username), ("password", t.password)) if v is not None}


def connect(url: str, **kwargs: object) -> Redis:
    """A client with retries and backoff on connection errors; no connection is made yet.

    On a Cluster URL this is a ``RedisCluster`` (typed as ``Redis``: the commands marketbus uses
    are the same, and every key a script or transaction touches shares one slot)."""
    t = parse(url)
    if t.kind == "server":
        return Redis.from_url(url, **_resilience(), **kwargs)  # type: ignore[arg-type]
    if t.kind == "sentinel":
        return _sentinel(t, kwargs).master_for(t.service, redis_class=Redis)
    opts = {**_resilience(), **_auth(t), **kwargs}
    opts.pop("retry_on_error")  # RedisCluster retries connection errors itself
    if t.tls:
        opts["ssl"] = True
    nodes = [ClusterNode(h, p) for h, p in t.nodes]
    return cast(Redis, RedisCluster(startup_nodes=nodes, **opts))


def _sentinel(t: Target, kwargs: dict[str, object]) -> Sentinel:
    sentinel_kwargs: dict[str, Any] = {"socket_connect_timeout": 1, "socket_timeout": 1}
    if t.sentinel_password:
        sentinel_kwargs["password"] = t.sentinel_password
    opts: dict[str, Any] = {**_resilience(), **_auth(t), "db": t.db, **kwargs}
    opts["connection_class"] = FollowingSSLConnection if t.tls else FollowingConnection
    return Sentinel(list(t.nodes), sentinel_kwargs=sentinel_kwargs, **opts)


def connect_sync(url: str, **kwargs: Any) -> sync_redis.Redis:
    """A synchronous client, for the CLI's short checks (status, the server probe)."""
    t = parse(url)
    if t.kind == "server":
        return sync_redis.Redis.from_url(url, **kwargs)
    if t.kind == "sentinel":
        from redis.sentinel import Sentinel as SyncSentinel

        sentinel_kwargs: dict[str, Any] = {"socket_connect_timeout": 1, "socket_timeout": 1}
        if t.sentinel_password:
            sentinel_kwargs["password"] = t.sentinel_password
        opts = {**_auth(t), "db": t.db, **kwargs}
        if t.tls:
            opts["ssl"] = True
        manager = SyncSentinel(list(t.nodes), sentinel_kwargs=sentinel_kwargs, **opts)
        return manager.master_for(t.service)
    from redis.cluster import ClusterNode as SyncNode
    from redis.cluster import RedisCluster as SyncCluster

    copts: dict[str, Any] = {**_auth(t), **kwargs}
    if t.tls:
        copts["ssl"] = True
    return cast(sync_redis.Redis, SyncCluster(startup_nodes=[SyncNode(h, p) for h, p in t.nodes], **copts))


def broker(url: str, **kwargs: Any) -> RedisBroker:
    """The FastStream broker for the deployment: on Sentinel FastStream's own Sentinel broker (its
    pool asks the sentinels for the primary at every reconnect), on a Cluster its Cluster broker."""
    t = parse(url)
    if t.kind == "server":
        return RedisBroker(url, **kwargs)
    scheme = "rediss" if t.tls else "redis"
    auth = ""
    if t.password is not None:
        auth = f"{t.username or ''}:{t.password}@"
    host, port = t.nodes[0]
    first = f"{scheme}://{auth}{host}:{port}/{t.db}"
    spec = redact(first)
    if t.kind == "sentinel":
        sentinel_kwargs = {"password": t.sentinel_password} if t.sentinel_password else None
        return RedisSentinelBroker(
            first,
            sentinels=list(t.nodes),
            sentinel_master_name=t.service,
            sentinel_kwargs=sentinel_kwargs,
            specification_url=spec,
            connection_class=FollowingSSLConnection if t.tls else FollowingConnection,
            **kwargs,
        )
    return RedisClusterBroker(first, startup_nodes=list(t.nodes[1:]), specification_url=spec, **kwargs)


def describe(url: str) -> list[str]:
    """Lines for ``marketbus status`` about the deployment: on Sentinel the primary the sentinels
    name, the failovers they made (their config epoch), and each replica's replication lag, i.e.
    how many bytes of acknowledged writes a failover at this moment would lose; on a Cluster every
    master's slots and key count. Nothing for one server."""
    t = parse(url)
    if t.kind == "sentinel":
        return _describe_sentinel(t)
    if t.kind == "cluster":
        return _describe_cluster(url)
    return []


def _pairs(reply: Any) -> dict[str, str]:
    if isinstance(reply, dict):
        return {str(k): str(v) for k, v in reply.items()}
    return dict(zip(map(str, reply[::2]), map(str, reply[1::2]), strict=True))


def _describe_sentinel(t: Target) -> list[str]:
    last: Exception | None = None
    for host, port in t.nodes:
        kw: dict[str, Any] = {"socket_connect_timeout": 1, "socket_timeout": 2, "decode_responses": True}
        if t.sentinel_password:
            kw["password"] = t.sentinel_password
        try:
            with sync_redis.Redis(host=host, port=port, **kw) as s:
                master = _pairs(s.execute_command("SENTINEL", "MASTER", t.service))
                replicas = [_pairs(r) for r in s.execute_command("SENTINEL", "REPLICAS", t.service)]
        except sync_redis.RedisError as exc:
            last = exc
            continue
        lines = [
            f"sentinel service {t.service}: primary {master['ip']}:{master['port']} "
            f"({master['flags']}), failovers {master.get('config-epoch', '0')}, "
            f"{len(replicas)} replica(s), asked of sentinel {host}:{port}"
        ]
        try:
            with sync_redis.Redis(
                host=master["ip"], port=int(master["port"]), socket_connect_timeout=1, **_auth(t)
            ) as p:
                offset = int(p.info("replication").get("master_repl_offset", 0))
        except sync_redis.RedisError:
            offset = -1
        for r in replicas:
            head = (
                f"  replica {r['ip']}:{r['port']} ({r['flags']}, link {r.get('master-link-status', '?')}): "
            )
            flags = str(r["flags"]).split(",")
            if "s_down" in flags or "o_down" in flags or "disconnected" in flags:
                lines.append(head + "down (not a failover candidate; its offset means nothing)")
                continue
            at = int(r.get("slave-repl-offset", 0))
            behind = f"{offset - at} bytes behind" if offset >= 0 else "primary unreachable"
            lines.append(head + f"{behind}; a failover now would lose those writes")
        return lines
    return [f"sentinel service {t.service}: no sentinel answered ({last})"]


def _describe_cluster(url: str) -> list[str]:
    client = connect_sync(url, socket_connect_timeout=1, socket_timeout=2)
    lines = []
    try:
        cluster = cast(Any, client)
        for node in cluster.get_primaries():
            slots = cluster.execute_command("CLUSTER", "SLOTS", target_nodes=node)
            ranges = sorted(
                f"{r[0]}-{r[1]}"
                for r in slots
                if int(r[2][1]) == node.port and sync_redis.client.str_if_bytes(r[2][0]) in (node.host, "")
            )
            keys = cluster.dbsize(target_nodes=node)
            lines.append(
                f"cluster master {node.host}:{node.port}: slots {', '.join(ranges) or '?'}, {keys} keys"
            )
    finally:
        client.close()
    return lines


def redact(url: str) -> str:
    """The URL without its password, for logs and /readyz."""
    parts = urlsplit(url)
    if "sentinel_password=" in parts.query:
        hidden = "sentinel_password=***"
        query = "&".join(hidden if q.startswith("sentinel_password=") else q for q in parts.query.split("&"))
        parts = parts._replace(query=query)
        url = urlunsplit(parts)
    if "@" not in parts.netloc:
        return url
    userinfo, _, hosts = parts.netloc.rpartition("@")
    user, sep, _password = userinfo.partition(":")
    if not sep:
        return url
    netloc = f"{user}:***@{hosts}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
