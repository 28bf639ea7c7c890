"""Settings of every marketbus process, read from the environment (prefix ``MARKETBUS_``) or ``.env``.

Nothing reads settings at import time: a process calls :func:`load_settings` in its entry point
and passes the object down.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from marketbus.contracts import PERIODS, Period

FeedName = Literal["sim", "replay", "eastmoney", "sina", "tencent", "auto"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="MARKETBUS_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    # --- server -------------------------------------------------------------------------------
    redis_url: str | None = Field(
        default=None,
        description="Redis/Valkey URL (redis:// or rediss://, may carry a password; "
        "redis+sentinel://host:26379,.../<service>[/db] for Sentinel, redis+cluster://host:7000,... for a "
        "Cluster). Unset: `marketbus up` starts an embedded valkey-server.",
    )
    key_prefix: str = Field(default="mb", description="Prefix of every stream and key.")

    # --- quotes -------------------------------------------------------------------------------
    feed: FeedName = Field(default="sim", description="Tick source of the quotes service.")
    speed: float = Field(
        default=60.0, gt=0, description="Sim/replay clock speed: market seconds per wall second."
    )
    seed: int = Field(default=7, description="Seed of the simulated market (reproducible runs).")
    replay_file: str | None = Field(default=None, description="CSV/Parquet file for feed=replay.")
    codes: str | None = Field(
        default=None, description="Comma-separated codes to poll (feeds eastmoney/sina/tencent)."
    )
    poll_interval: float = Field(
        default=3.0, gt=0, description="Minimum seconds between polls of one quote provider."
    )
    seed_history: bool = Field(
        default=True,
        description="Sim feed: seed 1d and 1m history at start when a code has none.",
    )
    tick_batch: int = Field(default=500, gt=0, description="Ticks written per pipeline.")
    provider_url: str | None = Field(
        default=None,
        description="Base URL that replaces every quote provider's host (eastmoney, sina, tencent), "
        "e.g. the provider simulator's `http://127.0.0.1:8900`. Unset: the providers' own hosts.",
    )
    poll_concurrency: int = Field(
        default=8, gt=0, description="Requests in flight at once to one quote provider."
    )
    market_clock: str | None = Field(
        default=None,
        description="Market clock for demos and tests: `YYYY-MM-DDTHH:MM:SS@EPOCHxSPEED` (Asia/Shanghai "
        "wall time at wall-clock epoch seconds EPOCH, running SPEED times real time). Every process "
        "given the same value agrees on the market time, across restarts. Unset: real time.",
    )

    # --- streams ------------------------------------------------------------------------------
    ticks_maxlen: int = Field(default=200_000, gt=0, description="Approximate cap of {mb}:ticks.")
    bars_maxlen: int = Field(default=100_000, gt=0, description="Approximate cap of {mb}:bars.")
    signals_maxlen: int = Field(default=50_000, gt=0, description="Approximate cap of {mb}:signals.")
    dlq_maxlen: int = Field(default=10_000, gt=0, description="Approximate cap of {mb}:dlq.")
    commands_maxlen: int = Field(default=10_000, gt=0, description="Approximate cap of {mb}:commands.")
    queries_maxlen: int = Field(default=10_000, gt=0, description="Approximate cap of {mb}:queries.")
    query_timeout: float = Field(
        default=5.0,
        gt=0,
        le=60,
        description="Seconds the gateway waits for the signals service to answer a query (the old "
        "app's batch-check, the index analysis) before it answers 504.",
    )
    signals_history_maxlen: int = Field(
        default=100_000,
        gt=0,
        description="Approximate cap of {mb}:signals:history (entries: one per code and period of a "
        "history run).",
    )
    trend_max_bars: int = Field(
        default=500, ge=250, description="Bars kept per code and period in the trend series."
    )

    # --- signals ------------------------------------------------------------------------------
    consumer_name: str | None = Field(
        default=None, description="Consumer name in the signals group (default: host-pid)."
    )
    batch_size: int = Field(default=500, gt=0, description="Bars read per XREADGROUP.")
    window_cache: int = Field(
        default=16_384,
        ge=0,
        description="Trend windows (code and period) a signals worker keeps between batches and "
        "scans, each about 15 KB (the default: two periods of the whole market, about 240 MiB); "
        "0 reads every window whole.",
    )
    claim_idle_ms: int = Field(
        default=30_000,
        gt=0,
        description="Idle time after which a dead consumer's bars are claimed.",
    )
    max_deliveries: int = Field(
        default=3, gt=0, description="Deliveries after which a failing message goes to the DLQ."
    )
    auto_calculate_signals: bool = Field(
        default=True, description="Run the full-market scan on the schedule."
    )
    strategy_params: dict[str, dict[str, float | int]] = Field(
        default_factory=dict,
        description="Strategy parameters over their defaults, as JSON: "
        '{"volume_wave": {"devil": 30}, "ma_cross": {"slow": 30}}.',
    )
    signal_schedule: str = Field(
        default="every 20m in session; 17:30 on trading days",
        description="Scan schedule: `every <N>s|m|h [in session]` and/or `HH:MM on trading days`, "
        "parts separated by `;` (Asia/Shanghai).",
    )
    signal_periods: Annotated[tuple[Period, ...], NoDecode] = Field(
        default=PERIODS,
        description="Periods whose closed bars the signals workers evaluate as they arrive, "
        "comma-separated (`1d,60m`); bars of other periods are acknowledged and skipped. Empty: "
        "none (scans only). An unknown period stops the service at start.",
    )

    @field_validator("signal_periods", mode="before")
    @classmethod
    def _split_periods(cls, value: object) -> object:
        """``"1d, 60m"`` -> ("1d", "60m"); an unknown period is an error naming the known ones."""
        if isinstance(value, str):
            value = [p.strip() for p in value.split(",") if p.strip()]
        if isinstance(value, list | tuple):
            unknown = [p for p in value if p not in PERIODS]
            if unknown:
                raise ValueError(
                    f"unknown period {', '.join(map(repr, unknown))} in MARKETBUS_SIGNAL_PERIODS; "
                    f"known: {', '.join(PERIODS)}"
                )
        return value

    # --- gateway ------------------------------------------------------------------------------
    host: str = Field(default="127.0.0.1", description="Gateway bind address.")
    port: int = Field(default=8000, gt=0, lt=65536, description="Gateway port.")
    api_token: SecretStr | None = Field(
        default=None,
        description="Bearer token for POST /api/scheduler/trigger. No default: unset disables it.",
    )
    trigger_rate_per_minute: float = Field(
        default=30.0, gt=0, description="Scan triggers allowed per client per minute (then 429)."
    )
    ready_max_lag: int = Field(
        default=10_000, ge=0, description="/readyz fails when the signals group lags more bars."
    )
    sse_quote_rate: float = Field(
        default=4.0, gt=0, description="Quote SSE events per code per second (coalesced)."
    )
    oldapp_ws_push_interval: float = Field(
        default=5.0, gt=0, description="Seconds between two price_update pushes of the old app's WebSocket."
    )
    oldapp_ws_max_clients: int = Field(
        default=1000,
        gt=0,
        description="Clients the old app's WebSocket holds at once (more are closed, 1013).",
    )
    oldapp_ws_max_subscriptions: int = Field(
        default=500,
        gt=0,
        description="Subscriptions (strategies and codes) per client of the old app's WebSocket.",
    )

    # --- history run (signals) and scorecard --------------------------------------------------
    backfill_history: bool = Field(
        default=True,
        description="Signals: run every strategy over the stored history (for the scorecard) when a "
        "code's history was not run yet.",
    )
    scorecard_min_samples: int = Field(
        default=20,
        ge=1,
        description="Signals a scorecard figure needs; below it the figure says too few signals.",
    )
    scorecard_refresh: float = Field(
        default=2.0, gt=0, description="Seconds between two recomputations of the scorecard's figures."
    )


def load_settings(**overrides: object) -> Settings:
    """Read the settings now (environment and ``.env``), with explicit overrides on top."""
    return Settings(**overrides)  # type: ignore[arg-type]
