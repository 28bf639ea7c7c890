"""Every stream and key name of marketbus, in one place, under the configurable prefix.

Keys that a Lua script touches together share the ``{prefix}`` hash tag so they live in
one slot on Redis Cluster.
"""

from __future__ import annotations

from dataclasses import dataclass

SIGNALS_GROUP = "signals"
COMMANDS_GROUP = "signals-commands"

JOB_TTL_S = 7 * 24 * 3600  # a JobStatus key lives a week after its last update


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: str = "mb"

    @property
    def tag(self) -> str:
        return "{" + self.prefix + "}"

    # streams -------------------------------------------------------------------------------
    @property
    def ticks(self) -> str:
        return f"{self.prefix}:ticks"

    @property
    def bars(self) -> str:
        return f"{self.prefix}:bars"

    @property
    def signals(self) -> str:
        return f"{self.tag}:signals"

    @property
    def commands(self) -> str:
        return f"{self.prefix}:commands"

    @property
    def dlq(self) -> str:
        return f"{self.prefix}:dlq"

    # state ---------------------------------------------------------------------------------
    @property
    def snapshots(self) -> str:
        """Hash: code -> JSON of the latest quote snapshot."""
        return f"{self.prefix}:snapshot"

    @property
    def universe(self) -> str:
        """Hash: code -> JSON {code, name, market}."""
        return f"{self.prefix}:universe"

    def trend(self, code: str, period: str) -> str:
        """String: packed float64 bar records of one code and period (see marketbus.trend)."""
        return f"{self.prefix}:trend:{period}:{code}"

    def signal_seen(self, signal_id: str) -> str:
        """Marker that a signal id was written once (expires)."""
        return f"{self.tag}:signal:seen:{signal_id}"

    def signal_provisional(self, period: str, bar_ts: int, code: str) -> str:
        """Hash: strategy -> JSON of the provisional signal on a forming bar; field ``~closed`` set
        once the closed bar was handled (no provisional signal after it). Expires."""
        return f"{self.tag}:signals:prov:{period}:{bar_ts}:{code}"

    @property
    def signals_latest(self) -> str:
        """Hash: ``code|strategy|period`` -> JSON of the latest signal."""
        return f"{self.tag}:signals:latest:v2"

    def job(self, job_id: str) -> str:
        """String: JSON of a JobStatus."""
        return f"{self.prefix}:job:{job_id}"

    @property
    def scheduler_state(self) -> str:
        """Hash: schedule description, last and next run of the scan."""
        return f"{self.prefix}:scheduler"

    @property
    def scan_lock(self) -> str:
        return f"{self.prefix}:lock:scan"

    @property
    def strategies(self) -> str:
        """Hash: strategy key -> JSON {key, name, min_bars, params, confidence} (written by signals)."""
        return f"{self.prefix}:strategies"

    @property
    def metrics(self) -> str:
        """Hash: counter name -> integer (rejected ticks per reason, ...)."""
        return f"{self.prefix}:metrics"

    @property
    def market_clock(self) -> str:
        """String: JSON {"ts": market epoch ms, "wall": wall epoch ms} written by quotes each second."""
        return f"{self.prefix}:clock"

    @property
    def daystate(self) -> str:
        """Hash: code -> packed per-code day state of the bar aggregator (survives a restart)."""
        return f"{self.prefix}:daystate"

    @property
    def calendar(self) -> str:
        """Hash: trading-calendar facts (sessions, imported and learned days, last known day)."""
        return f"{self.prefix}:calendar"

    @property
    def poll_stats(self) -> str:
        """String: JSON of the quotes service's last full poll (duration, codes covered, providers)."""
        return f"{self.prefix}:poll"

    @property
    def heartbeats(self) -> str:
        """Hash: service/consumer name -> last heartbeat epoch ms."""
        return f"{self.prefix}:heartbeat"
