"""The feed registry: every tick source the quotes service runs, and which of them poll providers.

The names are the settings' :data:`marketbus.settings.FeedName` (the one list: it validates
``MARKETBUS_FEED``); the CLI's ``--feed`` choices and every switch on "is this a polling feed"
derive from here. The quotes service implements each name as the module of the same name in
``quotes.feeds`` (its unit tests check that the two agree).
"""

from __future__ import annotations

from typing import get_args

from marketbus.settings import FeedName

FEED_NAMES: tuple[FeedName, ...] = get_args(FeedName)
"""Every feed, in the order the CLI lists them."""

POLL_FEEDS: frozenset[FeedName] = frozenset({"eastmoney", "sina", "tencent", "auto"})
"""The feeds that poll public quote providers: they serve the whole market from the list endpoint
(or ``MARKETBUS_CODES``), judge ticks by the market clock, learn holidays and refresh the universe
each morning. The others (sim, replay) stamp ticks by a clock of their own."""

__all__ = ["FEED_NAMES", "POLL_FEEDS", "FeedName"]
