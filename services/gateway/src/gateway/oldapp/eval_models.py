"""The old app's evaluating routes, field by field (OLD_API.md P4 batch-check, P9 index screen):
requests and answers (they make the OpenAPI document of those routes)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from marketbus.queries import KeyLevels, KeyMetrics, MarketSentiment, TechnicalAnalysis

MAX_CHECKS = 500  # a whole watchlist in one request (the evaluate query takes as many)


# P4 ------------------------------------------------------------------------------------------------
class CheckItem(BaseModel):
    """One watchlist entry: a code as the app keeps it and the strategy to check."""

    model_config = ConfigDict(extra="ignore")

    code: str = Field(max_length=32, description="6 digits (600519), an index with its suffix (000001.SH)")
    strategy: str = Field(max_length=64, description="strategy key, e.g. volume_wave")


class BatchCheckRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    stocks: list[CheckItem] = Field(max_length=MAX_CHECKS, description=f"at most {MAX_CHECKS} entries")


class CheckResult(BaseModel):
    code: str = Field(description="as the app sent it")
    name: str | None
    strategy: str
    signal: Literal["buy", "sell"] | None = Field(
        description="the strategy's signal on the code's last daily bar; null: none (or see error)"
    )
    signal_reason: str | None
    confidence: float
    price: float | None = Field(description="close of the code's last daily bar")
    change_percent: float | None = Field(description="that close against the one before, percent")
    kline_date: str | None = Field(description="the last daily bar, YYYY-MM-DD")
    error: str | None = Field(description="why the item has no answer (unknown code or strategy); else null")


class BatchCheckData(BaseModel):
    count: int
    results: list[CheckResult] = Field(description="one per entry sent, in order")


class BatchCheck(BaseModel):
    code: int = Field(default=200, description="200; the HTTP status when the signals service did not answer")
    message: str
    data: BatchCheckData


# P9 ------------------------------------------------------------------------------------------------
class IndexItem(BaseModel):
    code: str = Field(description="with its suffix, 000001.SH")
    name: str
    market: str = Field(description="上海, 深圳 or 北京")
    description: str
    symbol: str = Field(description="the index's English name for the three main ones, else its number")


class IndexList(BaseModel):
    success: bool = True
    data: list[IndexItem] = Field(description="上证指数, 深证成指, 创业板指 first (when known), then by code")
    count: int


class IndexAnalysisAnswer(BaseModel):
    """The analysis of one index (README "Index analysis fields" defines each field)."""

    success: Literal[True] = True
    index_code: str
    index_name: str
    days: int = Field(description="daily bars in the analysed period")
    kline_date: str = Field(description="the last daily bar analysed, YYYY-MM-DD")
    theme: str
    chart_url: str
    technical_analysis: TechnicalAnalysis
    market_sentiment: MarketSentiment
    key_metrics: KeyMetrics
    key_levels: KeyLevels


class IndexFailure(BaseModel):
    success: Literal[False] = False
    index_code: str
    error: str


class ValidationErrors(BaseModel):
    """FastAPI's answer to a bad parameter (``days`` out of range): what the old backend sent."""

    detail: list[dict[str, Any]]
