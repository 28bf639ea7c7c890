"""The learned-holiday rule: a weekday the calendar takes as trading, the feed answering, no
snapshot dated that day by 09:35 -> that day is closed; an outage or a weekend teaches nothing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from marketbus import sessions
from marketbus.sessions import shanghai_ms as sh
from quotes.calendar_watch import closed_day_to_learn

MONDAY = dt.date(2027, 1, 4)
FRIDAY_CLOSE = sh(2026, 12, 31, 15, 0)  # the last snapshot of the previous session


@pytest.fixture(autouse=True)
def package_calendar_again() -> Iterator[None]:
    yield
    sessions.install_calendar(None)


def test_stale_snapshots_after_0935_mean_closed() -> None:
    now = sh(2027, 1, 4, 9, 35)
    assert closed_day_to_learn(now, FRIDAY_CLOSE, answered_ms=now) == MONDAY
    assert closed_day_to_learn(sh(2027, 1, 4, 13, 0), None, answered_ms=sh(2027, 1, 4, 12)) == MONDAY


def test_before_0935_nothing_is_decided() -> None:
    now = sh(2027, 1, 4, 9, 34, 59)
    assert closed_day_to_learn(now, FRIDAY_CLOSE, answered_ms=now) is None


def test_a_snapshot_dated_today_means_open() -> None:
    now = sh(2027, 1, 4, 9, 40)
    assert closed_day_to_learn(now, sh(2027, 1, 4, 9, 25), answered_ms=now) is None


def test_a_silent_feed_is_an_outage_not_a_holiday() -> None:
    now = sh(2027, 1, 4, 10, 0)
    assert closed_day_to_learn(now, FRIDAY_CLOSE, answered_ms=None) is None
    assert closed_day_to_learn(now, FRIDAY_CLOSE, answered_ms=sh(2027, 1, 4, 9, 30)) is None


def test_weekends_and_known_holidays_are_not_learned_again() -> None:
    saturday = sh(2027, 1, 9, 10)
    assert closed_day_to_learn(saturday, FRIDAY_CLOSE, answered_ms=saturday) is None
    national_day = sh(2026, 10, 1, 10)  # the package knows it
    assert closed_day_to_learn(national_day, FRIDAY_CLOSE, answered_ms=national_day) is None
    sessions.install_calendar(sessions.build_calendar({MONDAY: False}))
    now = sh(2027, 1, 4, 10)
    assert closed_day_to_learn(now, FRIDAY_CLOSE, answered_ms=now) is None
