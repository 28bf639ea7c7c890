"""The old app's answers, field by field as OLD_API.md gives them (they make the OpenAPI document
of its routes)."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from pydantic import BaseModel, Field


class Detail(BaseModel):
    """The old backend's error: FastAPI's ``{"detail": ...}``."""

    detail: str = Field(description="what went wrong, in words")


def old_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` of an old route's error codes (422 keeps FastAPI's own)."""
    return {code: {"model": Detail, "description": HTTPStatus(code).phrase} for code in codes}


# P1 ------------------------------------------------------------------------------------------------
class OldStrategy(BaseModel):
    """A strategy as the old app lists it: ``code`` its value, ``name`` its label."""

    code: str = Field(description="the strategy's key, e.g. volume_wave")
    name: str
    description: str = ""


# P2 ------------------------------------------------------------------------------------------------
class MarketType(BaseModel):
    code: str = Field(description="all, main_board, gem, star, bse, etf or other")
    name: str = Field(description="全部, or the market name the signals carry (主板, ETF, …)")


class MarketTypesData(BaseModel):
    market_types: list[MarketType]
    count: int


class MarketTypes(BaseModel):
    code: int = Field(default=200, description="always 200 (the app requires it)")
    message: str
    data: MarketTypesData


# P3 ------------------------------------------------------------------------------------------------
class BuySignal(BaseModel):
    code: str = Field(description="6 digits, no suffix")
    ts_code: str = Field(description="the code with its suffix, 600519.SH")
    name: str
    industry: str = Field(description="not in the universe: always empty")
    market: str = Field(description="主板, 创业板, 科创板, 北交所, ETF or 其他")
    strategy: str
    strategy_name: str
    confidence: float
    kline_date: str = Field(description="the signal's daily bar, YYYY-MM-DD")
    calculated_time: str = Field(description="when the signal was written, Asia/Shanghai, no zone")
    timestamp: float = Field(description="when the signal was written, epoch seconds")
    price: float
    volume: int | None = Field(description="lots (100 shares) of the signal's bar; null unknown")
    volume_ratio: float | None
    change_percent: float | None
    reason: str
    signal_index: int | None = Field(description="never known here: null")
    is_latest: bool = True
    volume_display: str | None = Field(description="the bar's volume in shares, e.g. 310.0万股")


class BuySignalsData(BaseModel):
    strategy: str | None
    count: int
    signals: list[BuySignal]


class BuySignals(BaseModel):
    code: int = Field(description="200, or 500 (still HTTP 200) when the list could not be read")
    message: str
    data: BuySignalsData


# P5 ------------------------------------------------------------------------------------------------
class Price(BaseModel):
    code: str = Field(description="as the app sent it")
    name: str | None
    price: float | None
    change: float | None = Field(description="price - previous close, 2 decimals")
    change_percent: float | None
    volume: int | None = Field(description="shares traded today")
    error: str | None = Field(description="why this code has no price; null when it has one")


class BatchPrices(BaseModel):
    success: bool = True
    total: int
    data: list[Price]
    timestamp: str = Field(description="when answered, Asia/Shanghai, no zone")


# P6 ------------------------------------------------------------------------------------------------
class HistoryBar(BaseModel):
    trade_date: str = Field(description="YYYY-MM-DD")
    open: float
    high: float
    low: float
    close: float
    volume: float = Field(description="shares")
    amount: float = Field(description="yuan")


class History(BaseModel):
    stock_code: str = Field(description="as the app sent it")
    total: int
    data: list[HistoryBar] = Field(description="oldest first")


# P7 ------------------------------------------------------------------------------------------------
class Stock(BaseModel):
    ts_code: str
    symbol: str = Field(description="6 digits")
    name: str
    area: str = Field(description="not in the universe: always empty")
    industry: str = Field(description="not in the universe: always empty")
    market: str = Field(description="主板, 创业板, 科创板, 北交所, ETF or 其他")


class Stocks(BaseModel):
    total: int
    returned: int
    stocks: list[Stock]
    timestamp: str = Field(description="when answered, Asia/Shanghai, no zone")
