"""A-share trading sessions: trading days (XSHG calendar), session bounds, bar buckets.

Sessions are 09:30–11:30 and 13:00–15:00 Asia/Shanghai on XSHG trading days. Asia/Shanghai has
had no daylight saving time since 1991, so the arithmetic here works on a fixed UTC+8 offset
(``ts + 8h`` is the local wall time) and stays fast enough for the tick path.

Trading days come from an installable :class:`TradingCalendar`: the XSHG sessions of
``exchange-calendars`` (built on first use and cached) overlaid with days kept in Redis (a
Tushare ``trade_cal`` import, closed days learned from the feed; see ``marketbus.calendar``,
which loads them and calls :func:`install_calendar`). The package ships holidays up to the end of
the current year only: dates beyond the known last day (and before the first) fall back to
Monday–Friday, and ``marketbus.calendar.warning`` says so well before that day comes.

Bars are labelled by their start. Periods (``marketbus.contracts.PERIODS``) and bucket rules
(A-share convention):

- intraday periods (1m, 5m, 15m, 30m, 60m) tile each session from its open: 5m, 15m and 30m bars
  start at 09:30 and 13:00 and every multiple of their length after; the four 60m bars are
  09:30-10:30, 10:30-11:30, 13:00-14:00 and 14:00-15:00 (they end at 10:30, 11:30, 14:00, 15:00);
- call-auction ticks (09:15–09:30) fold into the 09:30 bar;
- a tick stamped exactly at a session end (11:30:00 or 15:00:00, up to ``SESSION_END_GRACE_MS``
  later) belongs to the last bar before it, so no bar spans the lunch break;
- the 1d bar's time is 00:00 Asia/Shanghai of the trading day, as epoch ms UTC;
- a 1w bar holds the trading days of one calendar week (Monday to Sunday, Asia/Shanghai), a 1M bar
  those of one calendar month. Its time is 00:00 of the FIRST trading day in it by the calendar
  (as the 1d bar uses its day's start), and it closes at the close (15:00 plus the grace) of the
  LAST trading day in it: a week shortened by a holiday closes on its last trading day. A week or
  month without any trading day has no bar (its bucket falls back to the calendar bounds).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo

TZ = ZoneInfo("Asia/Shanghai")
UTC_OFFSET_MS = 8 * 3_600_000
DAY_MS = 86_400_000
MINUTE_MS = 60_000

AUCTION_OPEN = (9 * 60 + 15) * MINUTE_MS  # 09:15 local, ms after midnight
MORNING_OPEN = (9 * 60 + 30) * MINUTE_MS
MORNING_CLOSE = (11 * 60 + 30) * MINUTE_MS
AFTERNOON_OPEN = 13 * 60 * MINUTE_MS
AFTERNOON_CLOSE = 15 * 60 * MINUTE_MS
SESSIONS = ((MORNING_OPEN, MORNING_CLOSE), (AFTERNOON_OPEN, AFTERNOON_CLOSE))
SESSION_MS = sum(close - open_ for open_, close in SESSIONS)  # 4 h of trading per day
SESSION_END_GRACE_MS = 10_000
"""A tick less than this long after 11:30:00 / 15:00:00 still belongs to the session's last bar
(which closes at the session end plus this grace: a bar closing at C holds only ticks before C)."""

INTRADAY_MS = {"1m": MINUTE_MS, "5m": 5 * MINUTE_MS, "15m": 15 * MINUTE_MS, "30m": 30 * MINUTE_MS,
               "60m": 60 * MINUTE_MS}  # fmt: skip
"""The intraday periods and their length: their bars tile each session from its open."""
DAY_PERIODS = ("1d", "1w", "1M")
"""Periods whose bars are made of whole trading days (labelled by a day start)."""
MULTI_DAY_PERIODS = ("1w", "1M")
"""Periods whose bars span several trading days: a week (Monday to Sunday) or a month."""
PERIOD_MS = {**INTRADAY_MS, "1d": DAY_MS, "1w": 7 * DAY_MS, "1M": 30 * DAY_MS}
"""The length of a bar of each period; for 1w and 1M the nominal spacing of their bars only (their
starts and close times follow the calendar: :func:`bucket_of_day`, :func:`bar_close_ms`)."""
_PERIOD_NAMES = ", ".join(PERIOD_MS)
_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()


# --- trading days ---------------------------------------------------------------------------


def _weekday_daynum(daynum: int) -> bool:
    return (daynum + 3) % 7 < 5  # weekday (Monday = 0): 1970-01-01 was a Thursday


@dataclass(frozen=True, slots=True)
class TradingCalendar:
    """An installable trading calendar: trading days inside ``[first, cover_last]`` are exactly
    ``days``; outside that range (and before ``first``) Monday to Friday trade.

    ``known_last`` is the last day the calendar really knows (the package's last session or the
    last imported day, whichever is later); ``cover_last`` may reach further when a learned or
    imported day lies beyond it. Build one with :func:`build_calendar`.
    """

    days: frozenset[int]  # trading day numbers (days since 1970-01-01)
    first: int
    cover_last: int
    known_last: int
    package_last: int
    overrides: int = 0  # days that differ from the package (or from the weekday rule)
    source: str = "exchange-calendars XSHG"

    def is_trading_daynum(self, daynum: int) -> bool:
        if self.first <= daynum <= self.cover_last:
            return daynum in self.days
        return _weekday_daynum(daynum)

    @property
    def known_last_day(self) -> dt.date:
        return _date(self.known_last)

    @property
    def package_last_day(self) -> dt.date:
        return _date(self.package_last)


def _xshg_daynums() -> list[int]:
    """The package's XSHG trading days, as day numbers (imports exchange-calendars and pandas)."""
    import warnings

    import exchange_calendars as xc  # heavy import: only on first use

    with warnings.catch_warnings():  # the package trips pandas deprecation warnings
        warnings.simplefilter("ignore")
        cal = xc.get_calendar("XSHG", start="2010-01-01")
    return sorted({int(d.toordinal()) - _EPOCH_ORDINAL for d in cal.sessions.date})


def _print_xshg_daynums() -> None:
    """The child process of :func:`_package_days`: the day numbers on stdout, comma-separated."""
    print(",".join(map(str, _xshg_daynums())))


def _xshg_daynums_in_child() -> list[int] | None:
    """:func:`_xshg_daynums` computed by a short-lived child interpreter; None when it fails."""
    import subprocess
    import sys

    if not sys.executable:
        return None
    code = "from marketbus.sessions import _print_xshg_daynums; _print_xshg_daynums()"
    try:
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
        )
        return [int(part) for part in done.stdout.strip().split(",")]
    except (OSError, ValueError, subprocess.SubprocessError) as exc:
        import logging

        logging.getLogger(__name__).warning("building the XSHG calendar in this process: %s", exc)
        return None


@lru_cache(maxsize=1)
def _package_days() -> tuple[frozenset[int], int, int]:
    """(trading day numbers, first, last) of the package's XSHG calendar.

    Built by a child process: exchange-calendars brings pandas and pyarrow along, and their
    modules and shared libraries, once imported, stay in a process for good (about 75 MiB of
    resident memory, the largest part of a quotes process at full-market size). In this
    process only when the child cannot run."""
    nums = _xshg_daynums_in_child() or _xshg_daynums()
    days = frozenset(nums)
    return days, min(days), max(days)


def package_calendar() -> TradingCalendar:
    """The package's XSHG sessions alone (built on first use, about 1.5 s; then cached)."""
    days, first, last = _package_days()
    return TradingCalendar(days, first, last, last, last)


def build_calendar(
    overrides: Mapping[dt.date, bool] | None = None,
    *,
    known_last: dt.date | None = None,
    source: str = "exchange-calendars XSHG + Redis",
) -> TradingCalendar:
    """The package's sessions overlaid with ``overrides`` (day -> open), a pure function.

    Days the package does not know and no override names follow the weekday rule. The known last
    day is the latest of the package's last day and ``known_last`` (the last imported day); an
    override beyond it (a learned closed day) is obeyed but does not extend what is known.
    """
    base, first, package_last = _package_days()
    overrides = overrides or {}
    nums = {_daynum(day): bool(is_open) for day, is_open in overrides.items()}
    known = max(package_last, _daynum(known_last)) if known_last is not None else package_last
    cover_last = max([known, *nums])
    first = min([first, *nums])
    days = set(base)
    days.update(n for n in range(package_last + 1, cover_last + 1) if _weekday_daynum(n))
    days.update(n for n in range(first, min(base)) if _weekday_daynum(n))
    changed = 0
    for n, is_open in nums.items():
        if is_open and n not in days:
            days.add(n)
            changed += 1
        elif not is_open and n in days:
            days.discard(n)
            changed += 1
    return TradingCalendar(frozenset(days), first, cover_last, known, package_last, changed, source)


_installed: TradingCalendar | None = None


def current_calendar() -> TradingCalendar:
    """The calendar in force: the installed one, or the package's until one is installed."""
    cal = _installed
    if cal is None:
        cal = package_calendar()
    return cal


def _lookup_of(cal: TradingCalendar) -> Callable[[int], bool]:
    return lru_cache(maxsize=8192)(cal.is_trading_daynum)


def _first_lookup(daynum: int) -> bool:
    """Until a calendar is installed: the package's, installed on first use."""
    install_calendar(package_calendar())
    return _is_trading_daynum(daynum)


_is_trading_daynum: Callable[[int], bool] = _first_lookup
"""The per-tick question, day number -> trading day; a cached lookup of the calendar in force,
rebound (one assignment) by :func:`install_calendar`."""


def install_calendar(cal: TradingCalendar | None) -> None:
    """Make ``cal`` the calendar every function here answers from (None: the package's alone,
    built again on first use).

    The cached per-day lookup is replaced in one assignment, so a reader gets the old calendar's
    answer or the new one's, never a stale cached one after the swap.
    """
    global _installed, _is_trading_daynum, _trading_spans
    _is_trading_daynum = _first_lookup if cal is None else _lookup_of(cal)
    _trading_spans = {}
    _installed = cal


def load_calendar() -> None:
    """Build the package calendar now (about 1.5 s), e.g. in a thread at start-up, so the first
    tick or schedule check does not pay for it inside the event loop."""
    _package_days()


def _daynum(day: dt.date) -> int:
    return day.toordinal() - _EPOCH_ORDINAL


def _date(daynum: int) -> dt.date:
    return dt.date.fromordinal(daynum + _EPOCH_ORDINAL)


def calendar_last_day() -> dt.date:
    """The last day the calendar in force knows; after it, weekdays are taken as trading days."""
    return _date(current_calendar().known_last)


def is_known_day(day: dt.date) -> bool:
    """False for a day after the calendar's known last day: its answer is only the weekday rule."""
    return _daynum(day) <= current_calendar().known_last


def is_trading_day(day: dt.date) -> bool:
    return _is_trading_daynum(_daynum(day))


def next_trading_day(day: dt.date) -> dt.date:
    """The first trading day strictly after ``day``."""
    n = _daynum(day) + 1
    while not _is_trading_daynum(n):
        n += 1
    return _date(n)


def previous_trading_day(day: dt.date) -> dt.date:
    """The last trading day strictly before ``day``."""
    n = _daynum(day) - 1
    while not _is_trading_daynum(n):
        n -= 1
    return _date(n)


def _calendar_span(daynum: int, period: str) -> tuple[int, int]:
    """The first and last day numbers of the calendar week (Monday to Sunday) or month of a day."""
    if period == "1w":
        monday = daynum - (daynum + 3) % 7  # 1970-01-01 was a Thursday (weekday 3)
        return monday, monday + 6
    if period == "1M":
        first = _date(daynum).replace(day=1)
        following = (first + dt.timedelta(days=32)).replace(day=1)
        return _daynum(first), _daynum(following) - 1
    raise ValueError(f"period {period!r} spans no calendar week or month (1w, 1M)")


_trading_spans: dict[tuple[str, int], tuple[int, int]] = {}
"""(period, day number) -> the first and last trading day numbers of its week or month; emptied
(replaced) whenever a calendar is installed."""


def _trading_span(daynum: int, period: str) -> tuple[int, int]:
    cache = _trading_spans  # a calendar installed meanwhile replaces the dict, never reads this entry
    key = (period, daynum)
    span = cache.get(key)
    if span is None:
        lo, hi = _calendar_span(daynum, period)
        days = [n for n in range(lo, hi + 1) if _is_trading_daynum(n)]
        span = (days[0], days[-1]) if days else (lo, hi)
        if len(cache) > 100_000:
            cache.clear()
        cache[key] = span
    return span


def period_trading_days(day: dt.date, period: str) -> tuple[dt.date, dt.date]:
    """The first and last trading day of the 1w bar (calendar week, Monday to Sunday) or the 1M bar
    (calendar month) that ``day`` falls in, by the calendar in force. A week or month without a
    trading day answers its own first and last calendar day."""
    first, last = _trading_span(_daynum(day), period)
    return _date(first), _date(last)


def trading_days_before(day: dt.date, count: int) -> list[dt.date]:
    """The ``count`` trading days strictly before ``day``, oldest first."""
    out: list[dt.date] = []
    n = _daynum(day)
    while len(out) < count:
        n -= 1
        if _is_trading_daynum(n):
            out.append(_date(n))
    out.reverse()
    return out


# --- time conversions -----------------------------------------------------------------------


def local_day_start_ms(ts_ms: int) -> int:
    """00:00 Asia/Shanghai of the local day containing ``ts_ms``, as epoch ms UTC."""
    local = ts_ms + UTC_OFFSET_MS
    return local - local % DAY_MS - UTC_OFFSET_MS


def day_start_ms(day: dt.date) -> int:
    """00:00 Asia/Shanghai of ``day`` as epoch ms UTC (the ts of that day's 1d bar)."""
    return _daynum(day) * DAY_MS - UTC_OFFSET_MS


def trading_date(ts_ms: int) -> dt.date:
    """The local (Asia/Shanghai) calendar date of ``ts_ms``."""
    return _date((ts_ms + UTC_OFFSET_MS) // DAY_MS)


def to_ms(when: dt.datetime) -> int:
    """A datetime to epoch ms; naive datetimes are taken as Asia/Shanghai wall time."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=TZ)
    return round(when.timestamp() * 1000)


def from_ms(ts_ms: int) -> dt.datetime:
    """Epoch ms to an aware Asia/Shanghai datetime."""
    return dt.datetime.fromtimestamp(ts_ms / 1000, TZ)


def shanghai_ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> int:
    """Epoch ms of a wall time in Asia/Shanghai (handy in tests and parsers)."""
    return (
        _daynum(dt.date(year, month, day)) * DAY_MS
        - UTC_OFFSET_MS
        + ((hour * 60 + minute) * 60 + second) * 1000
    )


# --- sessions -------------------------------------------------------------------------------


def session_bounds(day: dt.date) -> list[tuple[int, int]]:
    """The (open, close) epoch-ms pairs of the sessions of ``day``; empty on a non-trading day."""
    if not is_trading_day(day):
        return []
    base = day_start_ms(day)
    return [(base + open_, base + close) for open_, close in SESSIONS]


def is_in_session(ts_ms: int) -> bool:
    """True inside 09:30–11:30 or 13:00–15:00 (end excluded) of a trading day."""
    local = ts_ms + UTC_OFFSET_MS
    tod = local % DAY_MS
    if not (MORNING_OPEN <= tod < MORNING_CLOSE or AFTERNOON_OPEN <= tod < AFTERNOON_CLOSE):
        return False
    return _is_trading_daynum(local // DAY_MS)


def accepts_tick(ts_ms: int) -> bool:
    """True when a tick at ``ts_ms`` belongs to a bar: the sessions, the 09:15 call auction and
    the grace after each session end."""
    return minute_bucket(ts_ms) is not None


def next_session_open(ts_ms: int) -> int:
    """The first session open at or after ``ts_ms`` (epoch ms)."""
    local = ts_ms + UTC_OFFSET_MS
    daynum, tod = divmod(local, DAY_MS)
    if _is_trading_daynum(daynum):
        for open_, _close in SESSIONS:
            if tod <= open_:
                return daynum * DAY_MS + open_ - UTC_OFFSET_MS
    daynum += 1
    while not _is_trading_daynum(daynum):
        daynum += 1
    return daynum * DAY_MS + MORNING_OPEN - UTC_OFFSET_MS


def last_session_open(ts_ms: int) -> int:
    """The latest session open at or before ``ts_ms`` (epoch ms)."""
    local = ts_ms + UTC_OFFSET_MS
    daynum, tod = divmod(local, DAY_MS)
    if _is_trading_daynum(daynum):
        for open_, _close in reversed(SESSIONS):
            if tod >= open_:
                return daynum * DAY_MS + open_ - UTC_OFFSET_MS
    daynum -= 1
    while not _is_trading_daynum(daynum):
        daynum -= 1
    return daynum * DAY_MS + AFTERNOON_OPEN - UTC_OFFSET_MS


def session_end_at_or_after(ts_ms: int) -> int:
    """The end of the session containing ``ts_ms``, or of the next one if between sessions."""
    open_ = last_session_open(ts_ms)
    end = open_ + (MORNING_CLOSE - MORNING_OPEN)  # both sessions last 2 h
    if ts_ms < end:
        return end
    return next_session_open(ts_ms) + (MORNING_CLOSE - MORNING_OPEN)


def add_session_time(start_ms: int, session_ms: int) -> int:
    """Move forward ``session_ms`` of trading time from ``start_ms``, skipping lunch and
    nights instantly. A result that falls on a session end is moved to the next session open."""
    ts = start_ms
    if not is_in_session(ts):
        ts = next_session_open(ts)
    remaining = session_ms
    while True:
        end = session_end_at_or_after(ts)
        if ts + remaining < end:
            return ts + remaining
        remaining -= end - ts
        ts = next_session_open(end)


# --- bar buckets ----------------------------------------------------------------------------


def minute_bucket(ts_ms: int) -> int | None:
    """Start (epoch ms) of the 1-minute bar a tick at ``ts_ms`` belongs to, or None when the
    tick is outside every session (and its grace, end excluded) or on a non-trading day."""
    local = ts_ms + UTC_OFFSET_MS
    daynum, tod = divmod(local, DAY_MS)
    if AUCTION_OPEN <= tod < MORNING_OPEN:
        tod = MORNING_OPEN
    elif MORNING_CLOSE <= tod < MORNING_CLOSE + SESSION_END_GRACE_MS:
        tod = MORNING_CLOSE - MINUTE_MS
    elif AFTERNOON_CLOSE <= tod < AFTERNOON_CLOSE + SESSION_END_GRACE_MS:
        tod = AFTERNOON_CLOSE - MINUTE_MS
    elif not (MORNING_OPEN <= tod < MORNING_CLOSE or AFTERNOON_OPEN <= tod < AFTERNOON_CLOSE):
        return None
    if not _is_trading_daynum(daynum):
        return None
    return daynum * DAY_MS + tod - tod % MINUTE_MS - UTC_OFFSET_MS


def bucket_of_minute(minute_ms: int, period: str) -> int:
    """The bar start of ``period`` that contains the 1-minute bar starting at ``minute_ms``.

    Intraday periods count from their session's open (09:30 or 13:00); 1d, 1w and 1M bars start
    at 00:00 of a trading day (:func:`bucket_of_day`)."""
    if period == "1m":
        return minute_ms
    step = INTRADAY_MS.get(period)
    if step is not None:
        tod = (minute_ms + UTC_OFFSET_MS) % DAY_MS
        open_ = AFTERNOON_OPEN if tod >= AFTERNOON_OPEN else MORNING_OPEN
        return minute_ms - (tod - open_) % step
    return bucket_of_day(minute_ms, period)


def bucket_of_day(day_ms: int, period: str) -> int:
    """The start of the 1d, 1w or 1M bar holding the local (Asia/Shanghai) day of ``day_ms``: that
    day's 00:00 for 1d; 00:00 of the first trading day of its calendar week (Monday to Sunday) or
    month for 1w and 1M."""
    daynum = (day_ms + UTC_OFFSET_MS) // DAY_MS
    if period == "1d":
        return daynum * DAY_MS - UTC_OFFSET_MS
    if period in MULTI_DAY_PERIODS:
        return _trading_span(daynum, period)[0] * DAY_MS - UTC_OFFSET_MS
    raise ValueError(f"unknown period {period!r} ({_PERIOD_NAMES})")


def bucket(ts_ms: int, period: str) -> int | None:
    """Start of the ``period`` bar that a tick at ``ts_ms`` belongs to, or None."""
    minute = minute_bucket(ts_ms)
    if minute is None:
        return None
    return bucket_of_minute(minute, period)


def bar_close_ms(bar_ts: int, period: str) -> int:
    """When a bar starting at ``bar_ts`` is complete: its end, plus the grace at a session end
    (a tick stamped 11:30:00 or 15:00:00 still belongs to it). A 1w or 1M bar closes with the last
    trading day of its week or month (15:00 plus the grace)."""
    if period == "1d":
        return bar_ts + AFTERNOON_CLOSE + SESSION_END_GRACE_MS
    if period in MULTI_DAY_PERIODS:
        last = _trading_span((bar_ts + UTC_OFFSET_MS) // DAY_MS, period)[1]
        return last * DAY_MS - UTC_OFFSET_MS + AFTERNOON_CLOSE + SESSION_END_GRACE_MS
    step = INTRADAY_MS.get(period)
    if step is None:
        raise ValueError(f"unknown period {period!r} ({_PERIOD_NAMES})")
    end = bar_ts + step
    tod = (end + UTC_OFFSET_MS) % DAY_MS
    if tod in (MORNING_CLOSE, AFTERNOON_CLOSE):
        return end + SESSION_END_GRACE_MS
    return end


def session_minutes(day: dt.date) -> list[int]:
    """The starts of the 240 one-minute bars of a trading day (empty otherwise)."""
    return [minute for open_, close in session_bounds(day) for minute in range(open_, close, MINUTE_MS)]
