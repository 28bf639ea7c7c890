"""The strategies as the old app lists them (OLD_API.md P1)."""

from __future__ import annotations

from collections.abc import Iterable

from gateway.oldapp.models import OldStrategy
from marketbus.contracts import StrategyInfo

# The app takes the first strategy as its default (its own fallback is volume_wave, then
# trend_continuation): the replaced system's strategies come first, volume_wave leading, then the
# other two its backend listed (in its order), then trend_continuation of the app's fallback.
FIRST = ("volume_wave", "volume_wave_enhanced", "volatility_conservation", "trend_continuation")


def old_order(items: Iterable[StrategyInfo]) -> list[StrategyInfo]:
    """The strategies of :data:`FIRST` in that order (those that run), then the others by key."""
    rank = {key: i for i, key in enumerate(FIRST)}
    return sorted(items, key=lambda s: (rank.get(s.key, len(FIRST)), s.key))


def old_strategies(items: Iterable[StrategyInfo]) -> list[OldStrategy]:
    """``{code, name, description}`` of every strategy, the app's default first. There is no
    description to give (the old backend sent ``""`` too)."""
    return [OldStrategy(code=s.key, name=s.name) for s in old_order(items)]
