"""The chart pages' parameters as the old app sends them, checked: a bad strategy or period is a 400
``{"detail": ...}`` naming the field (as the old backend answered), a bad theme falls back to dark."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, cast

from marketbus.contracts import PERIODS, Period, StrategyInfo

Theme = Literal["light", "dark"]
THEMES: tuple[Theme, ...] = ("light", "dark")
DEFAULT_THEME: Theme = "dark"
DEFAULT_STRATEGY = "volume_wave"

# the old app's period names -> marketbus periods
OLD_PERIODS: dict[str, str] = {
    "15min": "15m",
    "30min": "30m",
    "60min": "60m",
    "daily": "1d",
    "weekly": "1w",
    "monthly": "1M",
}
DEFAULT_PERIOD = "daily"

# the three strategies the old app offers (OLD_API.md P1), with its names: accepted even before the
# signals service has published its strategies (a chart then has candles and no marker yet)
OLD_STRATEGIES: dict[str, str] = {
    "volume_wave": "量价突破",
    "volume_wave_enhanced": "量价进阶",
    "volatility_conservation": "趋势追踪",
}


class ChartParamError(ValueError):
    """A parameter the chart cannot be drawn with; the message names it."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class ChartPeriod:
    period: Period  # marketbus's name (15m ... 1M)
    name: str  # the old app's name (15min ... monthly)


def parse_period(raw: str | None) -> ChartPeriod:
    """The old name (``15min``, ``30min``, ``60min``, ``daily``, ``weekly``, ``monthly``; default
    daily) or marketbus's own (``1m`` ... ``1M``) -> both names. ChartParamError (400) for another
    value, or for a period the k-line store does not keep."""
    value = DEFAULT_PERIOD if raw is None or raw == "" else raw
    old_of = {mb: old for old, mb in OLD_PERIODS.items()}
    if value in OLD_PERIODS:
        mb, old = OLD_PERIODS[value], value
    elif value in old_of or value in PERIODS:
        mb, old = value, old_of.get(value, value)
    else:
        raise ChartParamError(400, f"period: {raw!r} is not one of {', '.join(OLD_PERIODS)}")
    if mb not in PERIODS:
        raise ChartParamError(400, f"period: {old} ({mb}) bars are not kept by this deployment")
    return ChartPeriod(cast(Period, mb), old)


def parse_theme(raw: str | None) -> Theme:
    """``light`` or ``dark``; anything else is dark (the old backend's rule)."""
    return cast(Theme, raw) if raw in THEMES else DEFAULT_THEME


@dataclass(frozen=True, slots=True)
class ChartStrategy:
    key: str
    name: str


def parse_strategy(raw: str | None, published: Iterable[StrategyInfo]) -> ChartStrategy:
    """The strategy whose signals are marked (default volume_wave): one the signals service publishes
    or one of the old app's three. ChartParamError (400) otherwise, listing the known ones."""
    value = DEFAULT_STRATEGY if raw is None or raw == "" else raw
    known = dict(OLD_STRATEGIES)
    known.update({s.key: s.name for s in published})
    if value not in known:
        raise ChartParamError(400, f"strategy: {raw!r} is not one of {', '.join(sorted(known))}")
    return ChartStrategy(value, known[value])
