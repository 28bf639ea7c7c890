"""The trading calendar beyond its package: imported and learned days are obeyed by the session
functions, the warning comes within 30 days of the known end, bad trade_cal rows are named."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from collections.abc import Iterator

import pytest

from marketbus import calendar, sessions
from marketbus.calendar import CalendarFileError, parse_stored, parse_trade_cal, warning_for
from marketbus.sessions import shanghai_ms as sh

D = dt.date

# Spring Festival 2027 (a plausible holiday week; the real one is for the exchange to publish)
TRADE_CAL_2027 = "exchange,cal_date,is_open,pretrade_date\n" + "".join(
    f"SSE,{day:%Y%m%d},{0 if day.weekday() >= 5 or D(2027, 2, 8) <= day <= D(2027, 2, 12) else 1},\n"
    for day in (D(2027, 1, 1) + dt.timedelta(days=i) for i in range(90))
).replace("SSE,20270101,1", "SSE,20270101,0")  # New Year's Day, a Friday


@pytest.fixture(autouse=True)
def package_calendar_again() -> Iterator[None]:
    yield
    sessions.install_calendar(None)


def install_trade_cal(text: str) -> sessions.TradingCalendar:
    parsed = parse_trade_cal(text)
    cal = sessions.build_calendar(parsed.days, known_last=max(parsed.days))
    sessions.install_calendar(cal)
    return cal


def test_the_package_alone_ends_in_2026_and_then_every_weekday_trades() -> None:
    assert sessions.calendar_last_day() == D(2026, 12, 31)
    assert sessions.is_trading_day(D(2027, 2, 8))  # nothing better known: a Monday trades
    assert not sessions.is_known_day(D(2027, 2, 8))
    assert sessions.is_known_day(D(2026, 12, 31))


def test_the_package_days_come_from_a_child_process_and_match_the_package() -> None:
    """Building the calendar leaves exchange-calendars and pandas out of the calling process
    (about 75 MiB of RSS for good), with the very days the package gives in-process."""
    probe = (
        "import sys; from marketbus import sessions; sessions.load_calendar(); "
        "print(len(sessions._package_days()[0]), *(m in sys.modules for m in "
        "('exchange_calendars', 'pandas', 'pyarrow')))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    count, *imported = out.stdout.split()
    assert imported == ["False", "False", "False"]
    days, first, last = sessions._package_days()
    assert int(count) == len(days)
    assert days == frozenset(sessions._xshg_daynums())
    assert (first, last) == (min(days), max(days))


def test_without_a_child_interpreter_the_days_are_built_in_process(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(sys, "executable", "")
    assert sessions._xshg_daynums_in_child() is None
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    assert sessions._xshg_daynums_in_child() is None
    assert "building the XSHG calendar in this process" in caplog.text


def test_an_imported_2027_holiday_is_obeyed() -> None:
    cal = install_trade_cal(TRADE_CAL_2027)
    assert cal.known_last_day == D(2027, 3, 31)
    assert sessions.calendar_last_day() == D(2027, 3, 31)
    assert not sessions.is_trading_day(D(2027, 1, 1))
    assert not sessions.is_trading_day(D(2027, 2, 8))
    assert sessions.is_trading_day(D(2027, 2, 5)) and sessions.is_trading_day(D(2027, 2, 15))
    assert sessions.next_trading_day(D(2027, 2, 5)) == D(2027, 2, 15)
    assert sessions.previous_trading_day(D(2027, 2, 15)) == D(2027, 2, 5)
    assert sessions.next_session_open(sh(2027, 2, 5, 15, 30)) == sh(2027, 2, 15, 9, 30)
    assert sessions.last_session_open(sh(2027, 2, 10, 10)) == sh(2027, 2, 5, 13, 0)
    assert sessions.minute_bucket(sh(2027, 2, 10, 10, 0)) is None
    assert sessions.minute_bucket(sh(2027, 2, 15, 10, 0, 30)) == sh(2027, 2, 15, 10, 0)
    assert not sessions.is_in_session(sh(2027, 2, 9, 10))
    assert sessions.trading_days_before(D(2027, 2, 16), 3) == [D(2027, 2, 4), D(2027, 2, 5), D(2027, 2, 15)]
    assert sessions.session_minutes(D(2027, 2, 8)) == []
    # the package's own days still hold
    assert not sessions.is_trading_day(D(2024, 10, 1)) and sessions.is_trading_day(D(2024, 5, 10))


def test_installing_another_calendar_replaces_the_answers_at_once() -> None:
    assert sessions.minute_bucket(sh(2027, 2, 10, 10)) is not None  # weekday rule, cached or not
    install_trade_cal(TRADE_CAL_2027)
    assert sessions.minute_bucket(sh(2027, 2, 10, 10)) is None
    sessions.install_calendar(None)
    assert sessions.minute_bucket(sh(2027, 2, 10, 10)) is not None


def test_a_learned_closed_day_is_obeyed_without_extending_what_is_known() -> None:
    learned = D(2027, 4, 5)  # a Monday beyond every known day
    sessions.install_calendar(sessions.build_calendar({learned: False}))
    assert not sessions.is_trading_day(learned)
    assert sessions.minute_bucket(sh(2027, 4, 5, 10)) is None
    assert sessions.next_session_open(sh(2027, 4, 2, 16)) == sh(2027, 4, 6, 9, 30)
    assert sessions.is_trading_day(D(2027, 4, 6))
    assert sessions.calendar_last_day() == D(2026, 12, 31)


def test_a_learned_day_wins_over_an_imported_open_day() -> None:
    stored = parse_stored(
        {
            b"day:2027-03-01": b"1",
            b"day:2027-03-02": b"1",
            b"learned:2027-03-01": b"1798000000000",
            b"imported_last_day": b"2027-03-02",
            b"day:2027-13-01": b"1",
            b"day:2027-03-03": b"yes",
            b"rev": b"4",
        }
    )
    assert stored.overrides == {D(2027, 3, 1): False, D(2027, 3, 2): True}
    assert stored.learned == (D(2027, 3, 1),)
    assert stored.imported_last == D(2027, 3, 2)
    assert stored.bad_fields == ("day:2027-03-03", "day:2027-13-01")


@pytest.mark.parametrize(
    ("today", "warned"),
    [
        (D(2026, 11, 30), False),  # 31 days before the end
        (D(2026, 12, 1), True),  # 30 days
        (D(2026, 12, 2), True),
        (D(2026, 12, 31), True),
        (D(2027, 1, 4), True),  # past the end
    ],
)
def test_the_warning_comes_within_30_days_and_not_before(today: dt.date, warned: bool) -> None:
    text = calendar.warning(today)
    assert (text is not None) == warned
    if text:
        assert "2026-12-31" in text and "marketbus import-calendar" in text


def test_the_warning_says_how_long_is_left() -> None:
    assert calendar.days_left(D(2026, 12, 2)) == 29
    assert "in 29 days" in (warning_for(D(2026, 12, 31), D(2026, 12, 2)) or "")
    assert "today" in (warning_for(D(2026, 12, 31), D(2026, 12, 31)) or "")
    assert "3 days ago" in (warning_for(D(2026, 12, 31), D(2027, 1, 3)) or "")
    assert "no trading calendar" in (warning_for(None, D(2026, 12, 2)) or "")


def test_an_import_moves_the_warning_away() -> None:
    install_trade_cal(TRADE_CAL_2027)
    assert calendar.warning(D(2026, 12, 2)) is None
    assert calendar.warning(D(2027, 3, 2)) is not None


def test_bad_rows_are_named_by_line_and_the_rest_kept() -> None:
    text = (
        "exchange,cal_date,is_open,pretrade_date\n"  # line 1
        "SSE,20270104,1,20261231\n"  # 2 ok
        "SSE,2027015,1,20270104\n"  # 3 not YYYYMMDD
        "SSE,20270230,0,20270104\n"  # 4 no such date
        "SSE,20270106,2,20270105\n"  # 5 is_open not 0/1
        "SHFE,20270107,1,20270106\n"  # 6 another exchange: skipped, not an error
        "SZSE,20270104,1,20261231\n"  # 7 the same day again, same answer: fine
        "SZSE,20270108,1\n"  # 8 no pretrade_date: fine
        "SSE,20270108,0,\n"  # 9 contradicts line 8
        "SSE\n"  # 10 too short
        "\n"  # an empty line is no row
        ",20270111,1,\n"  # 12 no exchange
        "SSE,20270112,0,20270111\n"  # 13 ok
    )
    parsed = parse_trade_cal(text)
    assert parsed.days == {D(2027, 1, 4): True, D(2027, 1, 12): False}
    assert parsed.other_exchanges == 1
    lines = [e.split(":")[0] for e in parsed.errors]
    assert lines == ["line 3", "line 4", "line 5", "line 9", "line 10", "line 12"]
    assert "'2027015'" in parsed.errors[0]
    assert "'2'" in parsed.errors[2]
    assert "line 8" in parsed.errors[3]


def test_a_file_without_the_columns_is_refused_whole() -> None:
    with pytest.raises(CalendarFileError, match="is_open"):
        parse_trade_cal("exchange,cal_date,open\nSSE,20270104,1\n", "cal.csv")
    with pytest.raises(CalendarFileError, match="empty"):
        parse_trade_cal("", "cal.csv")


def test_no_exchange_column_and_a_bom_are_fine() -> None:
    parsed = parse_trade_cal("\ufeffcal_date,is_open\n20270104,1\n20270105,0\n")
    assert parsed.days == {D(2027, 1, 4): True, D(2027, 1, 5): False} and not parsed.errors
