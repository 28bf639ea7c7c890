from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from signals.scheduler import ScheduleError, parse_schedule

SH = ZoneInfo("Asia/Shanghai")


def ms(y: int, mo: int, d: int, h: int, mi: int, s: int = 0) -> int:
    return int(datetime(y, mo, d, h, mi, s, tzinfo=SH).timestamp() * 1000)


def at(t: int) -> datetime:
    return datetime.fromtimestamp(t / 1000, SH)


class WeekdayCalendar:
    """Sessions 09:30-11:30 and 13:00-15:00 on weekdays; 2026-10-01 is a holiday."""

    def is_trading_day(self, day: date) -> bool:
        return day.weekday() < 5 and day != date(2026, 10, 1)

    def is_in_session(self, ts_ms: int) -> bool:
        t = at(ts_ms)
        if not self.is_trading_day(t.date()):
            return False
        hm = t.hour * 60 + t.minute
        return 570 <= hm < 690 or 780 <= hm < 900

    def next_session_open(self, ts_ms: int) -> int:
        t = ts_ms
        while True:
            t += 60_000
            if self.is_in_session(t):
                return t


CAL = WeekdayCalendar()


def test_default_schedule_every_20_minutes_in_session_and_17_30() -> None:
    s = parse_schedule("every 20m in session; 17:30 on trading days")
    # Friday 2026-11-27 10:05 -> 10:20
    assert at(s.next_after(ms(2026, 11, 27, 10, 5), CAL)) == datetime(2026, 11, 27, 10, 20, tzinfo=SH)
    # lunch: 11:25 -> 13:00
    assert at(s.next_after(ms(2026, 11, 27, 11, 25), CAL)) == datetime(2026, 11, 27, 13, 0, tzinfo=SH)
    # after the close: 15:00 -> 17:30 the same day
    assert at(s.next_after(ms(2026, 11, 27, 15, 0), CAL)) == datetime(2026, 11, 27, 17, 30, tzinfo=SH)
    # Friday evening -> Monday's open (the weekend has neither sessions nor 17:30 runs)
    assert at(s.next_after(ms(2026, 11, 27, 18, 0), CAL)) == datetime(2026, 11, 30, 9, 40, tzinfo=SH)


def test_holidays_are_skipped_by_the_daily_rule() -> None:
    s = parse_schedule("17:30 on trading days")
    assert at(s.next_after(ms(2026, 9, 30, 18, 0), CAL)).date() == date(2026, 10, 2)
    assert at(parse_schedule("17:30 daily").next_after(ms(2026, 9, 30, 18, 0), CAL)).date() == date(
        2026, 10, 1
    )


def test_every_second_fires_at_any_time() -> None:
    s = parse_schedule("every 1s")
    t = ms(2026, 11, 28, 3, 0, 0) + 250
    assert s.next_after(t, CAL) == t - 250 + 1000


@pytest.mark.parametrize("text", ["", "every 0s", "sometimes", "25:00 daily", "every 5 minutes"])
def test_bad_schedules_are_rejected_with_a_reason(text: str) -> None:
    with pytest.raises(ScheduleError):
        parse_schedule(text)
