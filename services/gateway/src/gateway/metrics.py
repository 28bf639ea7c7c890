"""Prometheus metrics: HTTP requests and latency (middleware), stream lengths, consumer-group lag,
and the counters the services keep in Redis. One registry per app (tests build several apps)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from marketbus import wire
from marketbus.clock import wall_ms

if TYPE_CHECKING:
    from gateway.reads import BusStats

STREAMING_PREFIX = "/api/stream/"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "gateway_http_requests", "HTTP requests", ["method", "route", "status"], registry=r
        )
        self.latency = Histogram(
            "gateway_http_request_duration_seconds",
            "HTTP request latency (streaming responses excluded)",
            ["method", "route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=r,
        )
        self.sse_clients = Gauge("gateway_sse_clients", "open SSE connections", ["stream"], registry=r)
        self.stream_length = Gauge(
            "marketbus_stream_length", "entries in a stream (XLEN)", ["stream"], registry=r
        )
        self.group_lag = Gauge(
            "marketbus_group_lag", "entries not yet read by a group", ["stream", "group"], registry=r
        )
        self.group_pending = Gauge(
            "marketbus_group_pending", "delivered, not acknowledged", ["stream", "group"], registry=r
        )
        self.counter = Gauge("marketbus_counter", "counters the services keep in Redis", ["name"], registry=r)
        self.heartbeat_age = Gauge(
            "marketbus_heartbeat_age_seconds",
            "seconds since a service's heartbeat",
            ["service"],
            registry=r,
        )

    def render(self, stats: BusStats) -> bytes:
        """The registry's text, with the bus gauges set from ``stats`` (see gateway.reads)."""
        for name, length in stats.lengths.items():
            self.stream_length.labels(name).set(length)
        for name, groups in stats.groups.items():
            for group in groups:
                gname = str(group.get("name", ""))
                self.group_lag.labels(name, gname).set(_num(group.get("lag")))
                self.group_pending.labels(name, gname).set(_num(group.get("pending")))
        for field, value in stats.counters.items():
            self.counter.labels(field).set(_num(value))
        now_ms = wall_ms()
        for field, value in stats.heartbeats.items():
            self.heartbeat_age.labels(field).set(max(0.0, (now_ms - _num(value)) / 1000))
        return generate_latest(self.registry)


def _num(value: Any) -> float:
    """A stored number (bytes, text or a number); 0 when there is none or it does not parse."""
    try:
        return float(wire.text(value) if isinstance(value, bytes) else value)
    except (TypeError, ValueError):
        return 0.0


class MetricsMiddleware:
    """Counts every request by route template and status; times the non-streaming ones."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        # the labelled children, looked up once each (``labels()`` takes a lock and builds a key)
        self._counted: dict[tuple[str, str, int], Any] = {}
        self._timed: dict[tuple[str, str], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope.get("method", "GET")
            counted = self._counted.get((method, route, status))
            if counted is None:
                counted = self._counted[(method, route, status)] = self.metrics.requests.labels(
                    method, route, str(status)
                )
            counted.inc()
            if not route.startswith(STREAMING_PREFIX):
                timed = self._timed.get((method, route))
                if timed is None:
                    timed = self._timed[(method, route)] = self.metrics.latency.labels(method, route)
                timed.observe(time.perf_counter() - start)
