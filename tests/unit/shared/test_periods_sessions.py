"""The session rules of the new periods (marketbus.sessions) against expectations written here:
explicit bar boundaries, and the weeks and months of the exchange's own 2024 sessions."""

from __future__ import annotations

import datetime as dt
import warnings

import pytest

from marketbus import sessions as s
from marketbus.contracts import PERIODS
from marketbus.sessions import shanghai_ms as sh
from marketbus.settings import Settings

DAY = dt.date(2024, 10, 9)
GRACE = 10_000


def at(hour: int, minute: int = 0, second: int = 0, day: dt.date = DAY) -> int:
    return sh(day.year, day.month, day.day, hour, minute, second)


@pytest.mark.parametrize(
    ("period", "bars"),
    [
        ("60m", [((9, 30), (10, 30)), ((10, 30), (11, 30)), ((13, 0), (14, 0)), ((14, 0), (15, 0))]),
        ("30m", [((9, 30), (10, 0)), ((10, 0), (10, 30)), ((10, 30), (11, 0)), ((11, 0), (11, 30)),
                 ((13, 0), (13, 30)), ((13, 30), (14, 0)), ((14, 0), (14, 30)), ((14, 30), (15, 0))]),
    ],
)  # fmt: skip
def test_intraday_bars_tile_the_sessions(period: str, bars: list) -> None:  # type: ignore[type-arg]
    for (h0, m0), (h1, m1) in bars:
        start, end = at(h0, m0), at(h1, m1)
        for second in range(0, (end - start) // 1000, 20):
            assert s.bucket(start + second * 1000, period) == start
        grace = GRACE if (h1, m1) in ((11, 30), (15, 0)) else 0
        assert s.bar_close_ms(start, period) == end + grace
    assert s.bucket(at(11, 30, 9), period) == s.bucket(at(11, 29, 59), period)  # the session-end grace
    assert s.bucket(at(15, 0, 9), period) == s.bucket(at(14, 59, 59), period)
    assert s.bucket(at(11, 30, 10), period) is None and s.bucket(at(15, 0, 10), period) is None
    assert s.bucket(at(9, 25), period) == at(9, 30)  # the auction folds into the first bar


def test_fifteen_minute_bars_start_every_quarter_from_each_open() -> None:
    starts = sorted({s.bucket_of_minute(m, "15m") for m in s.session_minutes(DAY)})
    want = [at(9, 30) + k * 900_000 for k in range(8)] + [at(13) + k * 900_000 for k in range(8)]
    assert starts == want


def xshg_sessions() -> list[dt.date]:
    """The exchange's trading days from December 2023 to January 2025 (exchange-calendars itself)."""
    import exchange_calendars as xc

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cal = xc.get_calendar("XSHG", start="2023-12-01", end="2025-01-31")
    return [d.date() for d in cal.sessions]


@pytest.mark.parametrize("period", ["1w", "1M"])
def test_week_and_month_bars_follow_the_exchange_calendar(period: str) -> None:
    """Every trading day of 2024: its bar starts at 00:00 of the first session of its ISO week
    (or month) and closes at 15:00:10 of the last one."""
    days = xshg_sessions()

    def group(d: dt.date) -> tuple[int, int]:
        return d.isocalendar()[:2] if period == "1w" else (d.year, d.month)

    members: dict[tuple[int, int], list[dt.date]] = {}
    for d in days:
        members.setdefault(group(d), []).append(d)
    for d in (d for d in days if d.year == 2024):
        first, last = members[group(d)][0], members[group(d)][-1]
        start = s.bucket(at(10, 0, 0, d), period)
        assert start == sh(first.year, first.month, first.day), (d, period)
        assert s.bar_close_ms(start, period) == at(15, 0, 0, last) + GRACE, (d, period)
        assert s.period_trading_days(d, period) == (first, last)


def test_a_holiday_week_and_its_neighbours() -> None:
    monday = dt.date(2024, 9, 30)  # National Day: the only trading day of its week
    assert s.period_trading_days(monday, "1w") == (monday, monday)
    assert s.bar_close_ms(s.bucket_of_day(at(0, 0, 0, monday), "1w"), "1w") == at(15, 0, 0, monday) + GRACE
    assert s.bucket_of_day(at(0, 0, 0, dt.date(2024, 10, 10)), "1w") == sh(2024, 10, 8)  # starts Tuesday
    assert s.bucket_of_day(at(0, 0, 0, dt.date(2024, 10, 31)), "1M") == sh(2024, 10, 8)
    assert s.bucket_of_day(at(0, 0, 0, dt.date(2024, 11, 1)), "1w") == sh(2024, 10, 28)  # across months


def test_an_installed_calendar_moves_the_week() -> None:
    """A holiday learned or imported later (here: the Monday) moves the week's start at once."""
    monday = dt.date(2024, 10, 28)
    try:
        s.install_calendar(s.build_calendar({monday: False}))
        assert s.bucket_of_day(at(0, 0, 0, dt.date(2024, 10, 30)), "1w") == sh(2024, 10, 29)
    finally:
        s.install_calendar(None)
    assert s.bucket_of_day(at(0, 0, 0, dt.date(2024, 10, 30)), "1w") == sh(2024, 10, 28)


def test_an_unknown_period_is_named() -> None:
    with pytest.raises(ValueError, match="unknown period '2h'"):
        s.bucket_of_minute(at(10, 0), "2h")
    with pytest.raises(ValueError, match="unknown period '2h'"):
        s.bar_close_ms(at(10, 0), "2h")
    assert tuple(s.PERIOD_MS) == PERIODS


def test_signal_periods_setting() -> None:
    assert Settings(_env_file=None).signal_periods == PERIODS  # type: ignore[call-arg]
    picked = Settings(signal_periods=" 1d, 60m ,1w", _env_file=None)  # type: ignore[call-arg]
    assert picked.signal_periods == ("1d", "60m", "1w")
    assert Settings(signal_periods="", _env_file=None).signal_periods == ()  # type: ignore[call-arg]
    with pytest.raises(ValueError, match=r"unknown period '2h', '1y' in MARKETBUS_SIGNAL_PERIODS; known: 1m"):
        Settings(signal_periods="1d,2h,1y", _env_file=None)  # type: ignore[call-arg]
