"""Feed registry: each feed the library names (:data:`marketbus.feeds.FEED_NAMES`) is the module of
the same name here, with a ``create(ctx) -> Feed``. Adding a feed is that module plus its name in
:data:`marketbus.settings.FeedName` (and in :data:`marketbus.feeds.POLL_FEEDS` if it polls
providers)."""

from __future__ import annotations

from importlib import import_module

from marketbus.feeds import FEED_NAMES
from quotes.feeds.base import DayState, Feed, FeedContext, FeedFactory

__all__ = ["FEEDS", "DayState", "Feed", "FeedContext", "FeedFactory", "create_feed"]

FEEDS: dict[str, str] = {name: f"{__name__}.{name}" for name in FEED_NAMES}
"""Feed name -> the module that builds it (loaded only when chosen)."""


def create_feed(name: str, ctx: FeedContext) -> Feed:
    """Build the feed ``name`` (a key of :data:`FEEDS`); modules load only when chosen."""
    try:
        module = FEEDS[name]
    except KeyError:
        raise ValueError(f"unknown feed {name!r}; known: {', '.join(FEEDS)}") from None
    factory: FeedFactory = import_module(module).create
    return factory(ctx)
