"""Shaping of the old app's evaluating routes (OLD_API.md P4, P9): pure functions from what was read
or what the signals service answered to the old answers. Nothing here evaluates or computes a
signal or an indicator: the signals service does (marketbus.queries)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

import numpy as np

from gateway.oldapp.codes import from_old
from gateway.oldapp.eval_models import (
    BatchCheck,
    BatchCheckData,
    CheckItem,
    CheckResult,
    IndexAnalysisAnswer,
    IndexFailure,
    IndexItem,
    IndexList,
)
from gateway.oldapp.times import day
from marketbus.contracts import Security, Signal
from marketbus.queries import IndexAnalysis, Outcome
from marketbus.securities import INDEX
from marketbus.trend import CLOSE, TS

PERIOD = "1d"
CHECKED = "批量查询信号成功"
REASONS = {"BUY": "买入信号", "SELL": "卖出信号"}

# the old index screen's three indices, first in its list, with their English names
MAIN_INDICES = {"000001.SH": "SSE Composite", "399001.SZ": "SZSE Component", "399006.SZ": "ChiNext"}
EXCHANGES = {"SH": "上海", "SZ": "深圳", "BJ": "北京"}
THEMES = ("light", "dark")


# P4 ------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Wanted:
    """One entry of a batch-check: as sent, its marketbus code, or why it cannot be checked."""

    raw: str
    strategy: str
    code: str | None
    error: str | None = None


def wanted_items(items: Iterable[CheckItem]) -> list[Wanted]:
    """Every entry, in order; one that is not a code (or has no strategy) keeps its error."""
    out = []
    for item in items:
        strategy = item.strategy.strip()
        try:
            code: str | None = from_old(item.code)
            error = None if strategy else "strategy: empty"
        except ValueError as exc:
            code, error = None, f"code: {exc}"
        out.append(Wanted(item.code, strategy, code if error is None else None, error))
    return out


def answers_last_bar(sig: Signal | None, last_rows: np.ndarray) -> bool:
    """A stored signal answers the check when it is the closed bar's signal of the code's last stored
    daily bar (not a provisional one, not a withdrawal, not of an older bar)."""
    return (
        sig is not None
        and not sig.provisional
        and sig.status != "withdrawn"
        and len(last_rows) > 0
        and sig.bar_ts == int(last_rows[-1, TS])
    )


def _reason(side: str, reason: str | None) -> str:
    return reason or REASONS[side]


def from_stored(w: Wanted, sig: Signal, last_rows: np.ndarray) -> CheckResult:
    return CheckResult(
        code=w.raw,
        name=sig.name,
        strategy=w.strategy,
        signal="buy" if sig.side == "BUY" else "sell",
        signal_reason=_reason(sig.side, sig.reason),
        confidence=sig.confidence,
        price=float(last_rows[-1, CLOSE]),
        change_percent=sig.change_percent,
        kline_date=day(sig.bar_ts),
        error=None,
    )


def from_outcome(w: Wanted, o: Outcome) -> CheckResult:
    return CheckResult(
        code=w.raw,
        name=o.name,
        strategy=w.strategy,
        signal=None if o.side is None else ("buy" if o.side == "BUY" else "sell"),
        signal_reason=None if o.side is None else _reason(o.side, o.reason),
        confidence=o.confidence,
        price=o.price,
        change_percent=o.change_percent,
        kline_date=None if o.bar_ts is None else day(o.bar_ts),
        error=o.error,
    )


def unchecked(w: Wanted, error: str) -> CheckResult:
    return CheckResult(
        code=w.raw,
        name=None,
        strategy=w.strategy,
        signal=None,
        signal_reason=None,
        confidence=0.0,
        price=None,
        change_percent=None,
        kline_date=None,
        error=error,
    )


def check_answer(results: Sequence[CheckResult]) -> BatchCheck:
    return BatchCheck(
        code=200, message=CHECKED, data=BatchCheckData(count=len(results), results=list(results))
    )


def check_failure(status: int, message: str) -> BatchCheck:
    """The old envelope of a batch-check the signals service did not answer (no result: the app
    keeps what it shows rather than clearing every signal)."""
    return BatchCheck(code=status, message=message, data=BatchCheckData(count=0, results=[]))


# P9 ------------------------------------------------------------------------------------------------
def index_list(securities: Iterable[Security]) -> IndexList:
    """The indices of the universe: the old three first (those the universe has), then by code."""
    rank = {code: i for i, code in enumerate(MAIN_INDICES)}
    indices = sorted(
        (s for s in securities if s.market == INDEX), key=lambda s: (rank.get(s.code, len(rank)), s.code)
    )
    items = [
        IndexItem(
            code=s.code,
            name=s.name,
            market=EXCHANGES.get(s.code.rsplit(".", 1)[-1], ""),
            description=f"{s.name} ({s.code})",
            symbol=MAIN_INDICES.get(s.code, s.code.split(".", 1)[0]),
        )
        for s in indices
    ]
    return IndexList(success=True, data=items, count=len(items))


def theme_of(raw: str | None) -> str:
    """light or dark; anything else is dark (the old backend's rule)."""
    value = (raw or "").strip().lower()
    return value if value in THEMES else "dark"


def chart_url(code: str, days: int, theme: str) -> str:
    return "/api/index/chart?" + urlencode({"index_code": code, "days": days, "theme": theme})


def analysis_answer(a: IndexAnalysis, name: str, days: int, theme: str) -> IndexAnalysisAnswer:
    """The old screen's answer: the service's analysis, its four parts at the top level."""
    return IndexAnalysisAnswer(
        index_code=a.code,
        index_name=name,
        days=a.days,
        kline_date=day(a.bar_ts),
        theme=theme,
        chart_url=chart_url(a.code, days, theme),
        technical_analysis=a.technical_analysis,
        market_sentiment=a.market_sentiment,
        key_metrics=a.key_metrics,
        key_levels=a.key_levels,
    )


def index_failure(index_code: str, error: str) -> IndexFailure:
    return IndexFailure(index_code=index_code, error=error)
