"""The CLI's choices are the library's registries: every feed and period, nothing else."""

import pytest

from marketbus.cli import build_parser
from marketbus.contracts import PERIODS
from marketbus.feeds import FEED_NAMES


def test_up_accepts_every_feed_and_no_other() -> None:
    parser = build_parser()
    assert [parser.parse_args(["up", "--feed", name]).feed for name in FEED_NAMES] == list(FEED_NAMES)
    with pytest.raises(SystemExit):
        parser.parse_args(["up", "--feed", "nasdaq"])


@pytest.mark.parametrize("command", [["import-history", "bars.csv"], ["scan"]])
def test_period_options_accept_every_period_and_no_other(command: list[str]) -> None:
    parser = build_parser()
    assert [parser.parse_args([*command, "--period", p]).period for p in PERIODS] == list(PERIODS)
    assert parser.parse_args(command).period == "1d"
    with pytest.raises(SystemExit):
        parser.parse_args([*command, "--period", "2h"])
