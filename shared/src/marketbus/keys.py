"""Every stream and key name of marketbus, in one place, under the configurable prefix.

Two kinds of key, for Redis Cluster:

- the bus: every stream and every piece of shared state carries the ``{prefix}`` hash tag, so it all
  lives in one slot. The writes that must be atomic span them (a quotes batch: ticks, bars, day
  state, snapshots and counters in one MULTI/EXEC; a dead letter: the XACK, the dead-letter entry and
  the job's failure; a signal: the stream entry, its seen marker and the latest hash, in one script);
- the trend series, one key per code and period (``{prefix}:trend:<period>:<code>``, no tag): the
  bulk of the data (250-500 bars of 48 bytes each, for every code and period) and of the reads (the
  signals service's windows, the scan, the k-line API), spread over every slot. Each is written by
  an idempotent single-key script before the bus transaction that publishes its bar.
"""

from __future__ import annotations

from dataclasses import dataclass

SIGNALS_GROUP = "signals"
COMMANDS_GROUP = "signals-commands"
QUERIES_GROUP = "signals-queries"
SCORECARD_GROUP = "scorecard"

JOB_TTL_S = 7 * 24 * 3600  # a JobStatus key lives a week after its last update
QUERY_REPLY_TTL_S = 60  # an answer nobody popped (its asker gave up) is gone a minute later


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: str = "mb"

    @property
    def tag(self) -> str:
        return "{" + self.prefix + "}"

    # streams -------------------------------------------------------------------------------
    @property
    def ticks(self) -> str:
        return f"{self.tag}:ticks"

    @property
    def bars(self) -> str:
        return f"{self.tag}:bars"

    @property
    def signals(self) -> str:
        return f"{self.tag}:signals"

    @property
    def commands(self) -> str:
        return f"{self.tag}:commands"

    @property
    def dlq(self) -> str:
        return f"{self.tag}:dlq"

    @property
    def queries(self) -> str:
        return f"{self.tag}:queries"

    @property
    def signals_history(self) -> str:
        """Stream: the history run's signals (SignalBatch entries, one per code and period)."""
        return f"{self.tag}:signals:history"

    # state ---------------------------------------------------------------------------------
    @property
    def snapshots(self) -> str:
        """Hash: code -> JSON of the latest quote snapshot."""
        return f"{self.tag}:snapshot"

    @property
    def universe(self) -> str:
        """Hash: code -> JSON {code, name, market}."""
        return f"{self.tag}:universe"

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

    def query_reply(self, query_id: str) -> str:
        """List: the answer (JSON of a QueryReply) to one query, pushed once, popped by the asker."""
        return f"{self.tag}:query:{query_id}:reply"

    def job(self, job_id: str) -> str:
        """String: JSON of a JobStatus."""
        return f"{self.tag}:job:{job_id}"

    @property
    def scheduler_state(self) -> str:
        """Hash: schedule description, last and next run of the scan."""
        return f"{self.tag}:scheduler"

    @property
    def scan_lock(self) -> str:
        return f"{self.tag}:lock:scan"

    @property
    def strategies(self) -> str:
        """Hash: strategy key -> JSON {key, name, min_bars, params, confidence} (written by signals)."""
        return f"{self.tag}:strategies"

    @property
    def metrics(self) -> str:
        """Hash: counter name -> integer (rejected ticks per reason, ...)."""
        return f"{self.tag}:metrics"

    @property
    def market_clock(self) -> str:
        """String: JSON {"ts": market epoch ms, "wall": wall epoch ms} written by quotes each second."""
        return f"{self.tag}:clock"

    @property
    def daystate(self) -> str:
        """Hash: code -> packed per-code day state of the bar aggregator (survives a restart)."""
        return f"{self.tag}:daystate"

    @property
    def calendar(self) -> str:
        """Hash: trading-calendar facts (sessions, imported and learned days, last known day)."""
        return f"{self.tag}:calendar"

    @property
    def poll_stats(self) -> str:
        """String: JSON of the quotes service's last full poll (duration, codes covered, providers)."""
        return f"{self.tag}:poll"

    @property
    def heartbeats(self) -> str:
        """Hash: service/consumer name -> last heartbeat epoch ms."""
        return f"{self.tag}:heartbeat"

    @property
    def layout(self) -> str:
        """String: the key layout this deployment's keys follow ("2": the bus hash tag)."""
        return f"{self.tag}:layout"

    @property
    def trend_epoch(self) -> str:
        """Counter: bumped when a trend series is created or bars are merged into one (an import,
        seeding), i.e. when the history run may have something new to run."""
        return f"{self.tag}:trend:epoch"

    @property
    def trend_rewrites(self) -> str:
        """Counter: bumped when stored bars were rewritten in place (an import merging bars into
        existing series), i.e. when windows kept by the signals workers may be stale. A new series
        or an appended bar does not bump it: those the workers see by themselves."""
        return f"{self.tag}:trend:rewrites"

    # the history run (signals) and the scorecard -------------------------------------------
    def backfill_done(self, period: str) -> str:
        """Hash: code -> first bar time of the series the history run last evaluated (signals)."""
        return f"{self.tag}:backfill:{period}"

    @property
    def backfill_lock(self) -> str:
        return f"{self.tag}:lock:backfill"

    def score_outcomes(self, period: str, strategy: str, market: str) -> str:
        """Hash: signal id -> packed float64 outcome record (see scorecard.outcomes)."""
        return f"{self.tag}:score:out:{period}:{strategy}:{market}"

    def score_cells(self, period: str) -> str:
        """Set: ``strategy|market`` of every outcome hash of the period."""
        return f"{self.tag}:score:cells:{period}"

    def score_pending(self, period: str, code: str) -> str:
        """Hash: signal id -> JSON of a signal whose horizons or market figures are still to come."""
        return f"{self.tag}:score:pending:{period}:{code}"

    @property
    def score_pending_index(self) -> str:
        """Set: ``period|code`` of every pending hash."""
        return f"{self.tag}:score:pending"

    def score_market(self, period: str, t0: int) -> str:
        """Hash: end bar time -> JSON of the market's returns from bar time ``t0`` (expires)."""
        return f"{self.tag}:score:market:{period}:{t0}"

    @property
    def score_newest(self) -> str:
        """Sorted set: period -> the newest bar time seen (score)."""
        return f"{self.tag}:score:newest"

    @property
    def score_dirty(self) -> str:
        """Set: periods whose outcomes changed since the scorecard was last computed."""
        return f"{self.tag}:score:dirty"

    def scorecard(self, period: str) -> str:
        """Hash: ``strategy|market|horizon`` -> JSON of a ScoreRow."""
        return f"{self.tag}:scorecard:{period}"

    def scorecard_distribution(self, period: str) -> str:
        """Hash: ``strategy|market|horizon`` -> JSON of a ReturnDistribution."""
        return f"{self.tag}:scorecard:dist:{period}"

    @property
    def scorecard_meta(self) -> str:
        """Hash: ``state`` -> JSON of the ScorecardState."""
        return f"{self.tag}:scorecard:meta"
