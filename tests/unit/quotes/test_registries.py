"""The quotes service implements exactly the library's registries: every feed the settings and the
CLI accept, polling where the library says it polls, and every period the bars are built for."""

import pkgutil
from pathlib import Path

import pytest

import quotes.feeds
from marketbus.contracts import PERIODS
from marketbus.feeds import FEED_NAMES, POLL_FEEDS
from marketbus.settings import Settings
from quotes.aggregate import BarAggregator
from quotes.daystate import PERIOD_IDS
from quotes.feeds import FEEDS, FeedContext, create_feed
from quotes.feeds.poll import PollFeed
from quotes.importer import LAYOUTS
from quotes.universe import load_universe

NOT_FEEDS = {"base", "listing", "poll"}  # the modules of quotes.feeds that build no feed


def test_every_feed_module_is_a_library_name_and_every_name_has_its_module() -> None:
    modules = {m.name for m in pkgutil.iter_modules(quotes.feeds.__path__)} - NOT_FEEDS
    assert modules == set(FEED_NAMES) == set(FEEDS)
    assert set(POLL_FEEDS) < set(FEED_NAMES)


def test_an_unknown_feed_names_the_known_ones() -> None:
    ctx = FeedContext(settings=Settings(), universe=[])
    with pytest.raises(ValueError, match="unknown feed 'nasdaq'; known: sim, replay, eastmoney"):
        create_feed("nasdaq", ctx)


async def test_a_feed_polls_providers_exactly_when_the_library_says_so(tmp_path: Path) -> None:
    replay = tmp_path / "ticks.csv"
    replay.write_text("code,ts,price,volume,amount\n510300.SH,2024-05-10 09:30:05,3.90,1000,3900\n")
    settings = Settings(replay_file=str(replay), provider_url="http://127.0.0.1:9")
    for name in FEED_NAMES:
        feed = create_feed(name, FeedContext(settings=settings, universe=load_universe()[:3]))
        try:
            assert isinstance(feed, PollFeed) == (name in POLL_FEEDS), name
        finally:
            await feed.aclose()  # built only: nothing was polled


def test_bars_their_stored_state_and_imports_cover_every_period() -> None:
    assert BarAggregator().periods == PERIODS
    assert set(PERIOD_IDS) == set(LAYOUTS) == set(PERIODS)
