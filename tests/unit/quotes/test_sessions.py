import datetime as dt

import pytest

from marketbus import sessions as s
from marketbus.sessions import shanghai_ms as sh


def test_trading_days_from_the_xshg_calendar() -> None:
    assert s.is_trading_day(dt.date(2024, 5, 10))  # a Friday
    assert not s.is_trading_day(dt.date(2024, 5, 11))  # Saturday
    assert not s.is_trading_day(dt.date(2024, 10, 1))  # National Day holiday, a Tuesday
    assert not s.is_trading_day(dt.date(2024, 2, 12))  # Spring Festival, a Monday
    assert s.next_trading_day(dt.date(2024, 9, 30)) == dt.date(2024, 10, 8)
    assert s.previous_trading_day(dt.date(2024, 10, 8)) == dt.date(2024, 9, 30)


def test_beyond_the_calendar_weekdays_trade() -> None:
    last = s.calendar_last_day()
    later = last + dt.timedelta(days=400)
    monday = later - dt.timedelta(days=later.weekday())
    assert s.is_trading_day(monday)
    assert not s.is_trading_day(monday + dt.timedelta(days=5))
    days = s.trading_days_before(monday + dt.timedelta(days=7), 5)
    assert days == [monday + dt.timedelta(days=i) for i in range(5)]


def test_conversions() -> None:
    ts = sh(2024, 5, 10, 9, 30)
    assert s.from_ms(ts).hour == 9 and s.from_ms(ts).minute == 30
    assert s.to_ms(dt.datetime(2024, 5, 10, 9, 30)) == ts
    assert s.day_start_ms(dt.date(2024, 5, 10)) == sh(2024, 5, 10)
    assert s.local_day_start_ms(ts) == sh(2024, 5, 10)
    assert s.trading_date(sh(2024, 5, 10, 23, 59)) == dt.date(2024, 5, 10)
    assert sh(2024, 5, 10) == 1715270400000  # 2024-05-09T16:00:00Z


@pytest.mark.parametrize(
    ("hms", "minute"),
    [
        ((9, 15, 0), (9, 30)),  # call auction folds into the 09:30 bar
        ((9, 25, 3), (9, 30)),
        ((9, 30, 0), (9, 30)),
        ((9, 30, 59), (9, 30)),
        ((10, 0, 0), (10, 0)),
        ((11, 29, 59), (11, 29)),
        ((11, 30, 0), (11, 29)),  # the closing print belongs to the last bar before lunch
        ((11, 30, 9), (11, 29)),
        ((13, 0, 0), (13, 0)),
        ((14, 59, 59), (14, 59)),
        ((15, 0, 0), (14, 59)),
        ((15, 0, 5), (14, 59)),
    ],
)
def test_minute_bucket(hms: tuple[int, int, int], minute: tuple[int, int]) -> None:
    assert s.minute_bucket(sh(2024, 5, 10, *hms)) == sh(2024, 5, 10, *minute)


@pytest.mark.parametrize(
    "hms", [(9, 14, 59), (11, 30, 10), (12, 0, 0), (12, 59, 59), (15, 0, 10), (20, 0, 0)]
)
def test_outside_sessions_has_no_bucket(hms: tuple[int, int, int]) -> None:
    assert s.minute_bucket(sh(2024, 5, 10, *hms)) is None
    assert not s.accepts_tick(sh(2024, 5, 10, *hms))


def test_no_bucket_on_holidays() -> None:
    assert s.minute_bucket(sh(2024, 10, 1, 10, 0)) is None
    assert s.minute_bucket(sh(2024, 5, 11, 10, 0)) is None


def test_5m_and_1d_buckets() -> None:
    assert s.bucket(sh(2024, 5, 10, 9, 20), "5m") == sh(2024, 5, 10, 9, 30)
    assert s.bucket(sh(2024, 5, 10, 9, 34, 59), "5m") == sh(2024, 5, 10, 9, 30)
    assert s.bucket(sh(2024, 5, 10, 9, 35), "5m") == sh(2024, 5, 10, 9, 35)
    assert s.bucket(sh(2024, 5, 10, 11, 30), "5m") == sh(2024, 5, 10, 11, 25)
    assert s.bucket(sh(2024, 5, 10, 13, 4), "5m") == sh(2024, 5, 10, 13, 0)
    assert s.bucket(sh(2024, 5, 10, 15, 0, 2), "5m") == sh(2024, 5, 10, 14, 55)
    assert s.bucket(sh(2024, 5, 10, 14, 0), "1d") == sh(2024, 5, 10)
    assert s.bucket(sh(2024, 5, 10, 9, 16), "1d") == sh(2024, 5, 10)
    with pytest.raises(ValueError):
        s.bucket(sh(2024, 5, 10, 10, 0), "2m")


def test_bar_close_times() -> None:
    grace = s.SESSION_END_GRACE_MS
    assert s.bar_close_ms(sh(2024, 5, 10, 10, 0), "1m") == sh(2024, 5, 10, 10, 1)
    assert s.bar_close_ms(sh(2024, 5, 10, 11, 29), "1m") == sh(2024, 5, 10, 11, 30) + grace
    assert s.bar_close_ms(sh(2024, 5, 10, 11, 25), "5m") == sh(2024, 5, 10, 11, 30) + grace
    assert s.bar_close_ms(sh(2024, 5, 10, 14, 59), "1m") == sh(2024, 5, 10, 15) + grace
    assert s.bar_close_ms(sh(2024, 5, 10), "1d") == sh(2024, 5, 10, 15) + grace


def test_session_navigation() -> None:
    fri = (2024, 5, 10)
    assert s.is_in_session(sh(*fri, 9, 30))
    assert not s.is_in_session(sh(*fri, 11, 30))
    assert s.next_session_open(sh(*fri, 9, 0)) == sh(*fri, 9, 30)
    assert s.next_session_open(sh(*fri, 9, 30)) == sh(*fri, 9, 30)
    assert s.next_session_open(sh(*fri, 11, 30)) == sh(*fri, 13)
    assert s.next_session_open(sh(*fri, 15)) == sh(2024, 5, 13, 9, 30)  # over the weekend
    assert s.last_session_open(sh(*fri, 12, 0)) == sh(*fri, 9, 30)
    assert s.last_session_open(sh(*fri, 20, 0)) == sh(*fri, 13)
    assert s.last_session_open(sh(2024, 5, 12, 3, 0)) == sh(*fri, 13)  # Sunday night
    assert s.last_session_open(sh(2024, 5, 13, 9, 0)) == sh(*fri, 13)


def test_add_session_time_skips_lunch_and_nights() -> None:
    fri = (2024, 5, 10)
    start = sh(*fri, 9, 30)
    assert s.add_session_time(start, 0) == start
    assert s.add_session_time(start, 119 * 60_000) == sh(*fri, 11, 29)
    assert s.add_session_time(start, 120 * 60_000) == sh(*fri, 13)
    assert s.add_session_time(start, 150 * 60_000) == sh(*fri, 13, 30)
    assert s.add_session_time(start, 240 * 60_000) == sh(2024, 5, 13, 9, 30)
    assert s.add_session_time(sh(*fri, 12, 0), 60_000) == sh(*fri, 13, 1)


def test_session_minutes() -> None:
    minutes = s.session_minutes(dt.date(2024, 5, 10))
    assert len(minutes) == 240
    assert minutes[0] == sh(2024, 5, 10, 9, 30) and minutes[119] == sh(2024, 5, 10, 11, 29)
    assert minutes[120] == sh(2024, 5, 10, 13) and minutes[-1] == sh(2024, 5, 10, 14, 59)
    assert s.session_minutes(dt.date(2024, 5, 11)) == []
