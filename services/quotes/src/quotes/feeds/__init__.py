"""Feed registry: adding a feed is one module with a ``create(ctx) -> Feed`` plus one line here."""

from __future__ import annotations

from importlib import import_module

from quotes.feeds.base import DayState, Feed, FeedContext, FeedFactory

__all__ = ["FEEDS", "POLL_FEEDS", "DayState", "Feed", "FeedContext", "FeedFactory", "create_feed"]

FEEDS: dict[str, str] = {
    "sim": "quotes.feeds.sim",
    "replay": "quotes.feeds.replay",
    "eastmoney": "quotes.feeds.eastmoney",
    "sina": "quotes.feeds.sina",
    "tencent": "quotes.feeds.tencent",
    "auto": "quotes.feeds.auto",
}


POLL_FEEDS = frozenset({"eastmoney", "sina", "tencent", "auto"})
"""The feeds that poll public quote providers (whole-market universe, provider URL, market clock)."""


def create_feed(name: str, ctx: FeedContext) -> Feed:
    """Build the feed ``name`` (a key of :data:`FEEDS`); modules load only when chosen."""
    try:
        module = FEEDS[name]
    except KeyError:
        raise ValueError(f"unknown feed {name!r}; known: {', '.join(FEEDS)}") from None
    factory: FeedFactory = import_module(module).create
    return factory(ctx)
