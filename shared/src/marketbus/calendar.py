"""The one trading calendar every service asks, kept in Redis.

``marketbus.sessions`` answers from an installed :class:`~marketbus.sessions.TradingCalendar`: the
XSHG sessions of ``exchange-calendars`` (which end on the package's last day, 2026-12-31 in
4.13.2) overlaid with the days kept here. This module reads and writes those days and installs
the result; every process runs :func:`load` at start and :func:`keep_fresh` as a task of its loop.

Redis layout: one hash, ``Keys.calendar`` (``{mb}:calendar``), fields

- ``day:YYYY-MM-DD`` -> ``1`` (open) or ``0`` (closed): imported from a Tushare ``trade_cal`` CSV;
- ``learned:YYYY-MM-DD`` -> epoch ms: a weekday learned closed from the feed (no snapshot dated
  that day by 09:35); it wins over an imported ``1``, and a later import of that day clears it;
- ``imported_last_day``, ``package_last_day`` -> ``YYYY-MM-DD``: the last imported day, and the
  last day of the newest ``exchange-calendars`` any process has loaded;
- ``package_holidays`` -> ``YYYY-MM-DD,YYYY-MM-DD,...``: the sessions of that newest package, as
  the weekdays it has closed from 2010 to its last day (every other weekday is a session). A process
  whose own package is older lays them under the imported days, so every service obeys the newest
  package's sessions whatever version it has installed;
- ``calendar_last_day`` -> ``YYYY-MM-DD``: the known last day, the later of the two above. Only
  ever moves forward. The gateway and ``marketbus status`` read it (they compute no sessions);
- ``rev`` -> integer, incremented by every change, so :func:`keep_fresh` reloads soon after one.

Beyond the known last day weekdays count as trading days (nothing better is known);
:func:`warning` says so from 30 days before that day on.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from marketbus import sessions, wire
from marketbus.clock import parse_clock
from marketbus.keys import Keys
from marketbus.sessions import TradingCalendar

log = logging.getLogger("marketbus.calendar")
_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()

WARN_DAYS = 30
"""Warn when the known calendar ends within this many days (inclusive)."""

DAY_FIELD = "day:"
LEARNED_FIELD = "learned:"
LAST_DAY_FIELD = "calendar_last_day"
IMPORTED_LAST_FIELD = "imported_last_day"
PACKAGE_LAST_FIELD = "package_last_day"
PACKAGE_HOLIDAYS_FIELD = "package_holidays"
REV_FIELD = "rev"
EXCHANGES = frozenset({"SSE", "SZSE"})  # the A-share exchanges; both keep one calendar

# Set a hash field to an ISO date unless it already holds a later one, and move the known last
# day forward with it (ISO dates compare as strings). KEYS[1] hash; ARGV field, date, rev field.
_SET_LATER = """
local cur = redis.call('HGET', KEYS[1], ARGV[1])
local changed = 0
if not cur or cur < ARGV[2] then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]); changed = 1 end
local last = redis.call('HGET', KEYS[1], ARGV[4])
if not last or last < ARGV[2] then redis.call('HSET', KEYS[1], ARGV[4], ARGV[2]); changed = 1 end
if changed == 1 then redis.call('HINCRBY', KEYS[1], ARGV[3], 1) end
return changed
"""


class CalendarFileError(ValueError):
    """The file cannot be read as a trade_cal CSV at all (missing, no header, missing columns)."""


# --- pure ------------------------------------------------------------------------------------


@dataclass
class TradeCal:
    """A parsed ``trade_cal`` CSV: day -> open, the rejected rows (by line), rows skipped."""

    days: dict[dt.date, bool] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    other_exchanges: int = 0


def _parse_yyyymmdd(text: str) -> dt.date:
    if len(text) != 8 or not text.isdigit():
        raise ValueError(f"is not YYYYMMDD: {text!r}")
    try:
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        raise ValueError(f"is not a real date: {text!r}") from None


def parse_trade_cal(text: str, name: str = "trade_cal") -> TradeCal:
    """Parse a Tushare ``trade_cal`` CSV (columns exchange, cal_date YYYYMMDD, is_open 0/1,
    pretrade_date; the exchange column may be absent). Rows of exchanges other than SSE and SZSE
    are skipped and counted; a bad row is reported by its line number (the header is line 1) and
    the other rows are kept. Raises :class:`CalendarFileError` when the header is unusable."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    try:
        header = next(reader)
    except StopIteration:
        raise CalendarFileError(f"{name} is empty: expected a header with cal_date and is_open") from None
    cols = {col.strip().lower(): i for i, col in enumerate(header)}
    missing = [c for c in ("cal_date", "is_open") if c not in cols]
    if missing:
        raise CalendarFileError(
            f"{name}: the header has no {' or '.join(missing)} column "
            f"(found: {', '.join(header) or 'nothing'}); expected a Tushare trade_cal CSV "
            "(exchange,cal_date,is_open,pretrade_date)"
        )
    i_date, i_open, i_exch = cols["cal_date"], cols["is_open"], cols.get("exchange")
    out = TradeCal()
    first_seen: dict[dt.date, tuple[bool, int]] = {}
    conflicted: set[dt.date] = set()
    for row in reader:
        line = reader.line_num
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) <= max(i_date, i_open, -1 if i_exch is None else i_exch):
            out.errors.append(f"line {line}: {len(row)} columns, the header has {len(header)}")
            continue
        if i_exch is not None:
            exchange = row[i_exch].strip().upper()
            if not exchange:
                out.errors.append(f"line {line}: the exchange is empty (SSE or SZSE expected)")
                continue
            if exchange not in EXCHANGES:
                out.other_exchanges += 1
                continue
        try:
            day = _parse_yyyymmdd(row[i_date].strip())
        except ValueError as exc:
            out.errors.append(f"line {line}: cal_date {exc}")
            continue
        flag = row[i_open].strip()
        if flag not in ("0", "1"):
            out.errors.append(f"line {line}: is_open must be 0 or 1, not {flag!r}")
            continue
        is_open = flag == "1"
        prev = first_seen.get(day)
        if prev is None:
            first_seen[day] = (is_open, line)
            out.days[day] = is_open
        elif day in conflicted or prev[0] != is_open:
            state = "open" if is_open else "closed"
            out.errors.append(
                f"line {line}: {day} is {state} here but {'open' if prev[0] else 'closed'} on line "
                f"{prev[1]}; the day is left out"
            )
            conflicted.add(day)
            out.days.pop(day, None)
        # else: the same day again with the same answer (SSE and SZSE rows): nothing new
    return out


def warning_for(last_day: dt.date | None, today: dt.date) -> str | None:
    """The operator's warning when the known calendar ends within :data:`WARN_DAYS` days of
    ``today`` (or has ended, or is unknown); None while more is known."""
    hint = (
        "import the exchange's next calendar with `marketbus import-calendar FILE` (a Tushare trade_cal CSV)"
    )
    if last_day is None:
        return f"no trading calendar in Redis yet (the services write it at start); {hint}"
    left = (last_day - today).days
    if left > WARN_DAYS:
        return None
    if left >= 0:
        when = "today" if left == 0 else f"in {left} day{'s' if left != 1 else ''}"
        return (
            f"the trading calendar ends on {last_day} ({when}); after it every weekday counts as a "
            f"trading day: {hint}"
        )
    return (
        f"the trading calendar ended on {last_day}, {-left} day{'s' if left != -1 else ''} ago: every "
        f"weekday since counts as a trading day unless learned closed from the feed; {hint}"
    )


def days_left(today: dt.date) -> int:
    """Days from ``today`` to the installed calendar's known last day (negative once past it)."""
    return (sessions.calendar_last_day() - today).days


def warning(today: dt.date) -> str | None:
    """:func:`warning_for` the installed calendar's known last day."""
    return warning_for(sessions.calendar_last_day(), today)


def market_today(clock_spec: str | None = None) -> dt.date:
    """Today (Asia/Shanghai) on the market clock of ``MARKETBUS_MARKET_CLOCK`` (unset: real time)."""
    return sessions.trading_date(parse_clock(clock_spec).now_ms())


def parse_day(raw: bytes | str | None) -> dt.date | None:
    """An ISO date stored in the calendar hash, or None (absent or unreadable)."""
    if raw is None:
        return None
    try:
        return dt.date.fromisoformat(wire.text(raw))
    except ValueError:
        return None


@dataclass(frozen=True)
class StoredDays:
    """What the calendar hash says, parsed: overrides to lay over the package, and bad fields."""

    overrides: dict[dt.date, bool]
    imported_last: dt.date | None
    learned: tuple[dt.date, ...]
    bad_fields: tuple[str, ...]
    imported_days: int = 0


def parse_stored(fields: Mapping[Any, Any]) -> StoredDays:
    """Parse the calendar hash (bytes or str); a field that does not parse is named, not fatal."""
    imported: dict[dt.date, bool] = {}
    learned: list[dt.date] = []
    bad: list[str] = []
    imported_last: dt.date | None = None
    for raw_name, raw_value in fields.items():
        name, value = wire.text(raw_name), wire.text(raw_value)
        if name.startswith(DAY_FIELD):
            day = parse_day(name[len(DAY_FIELD) :])
            if day is None or value not in ("0", "1"):
                bad.append(name)
                continue
            imported[day] = value == "1"
        elif name.startswith(LEARNED_FIELD):
            day = parse_day(name[len(LEARNED_FIELD) :])
            if day is None:
                bad.append(name)
                continue
            learned.append(day)
        elif name == IMPORTED_LAST_FIELD:
            imported_last = parse_day(value)
            if imported_last is None:
                bad.append(name)
    overrides = dict(imported)
    overrides.update((day, False) for day in learned)  # what the feed showed wins
    if imported and (imported_last is None or max(imported) > imported_last):
        imported_last = max(imported)
    return StoredDays(overrides, imported_last, tuple(sorted(learned)), tuple(sorted(bad)), len(imported))


def _weekdays(first: dt.date, last: dt.date) -> list[dt.date]:
    days = (first + dt.timedelta(days=i) for i in range((last - first).days + 1))
    return [day for day in days if day.weekday() < 5]


def package_holidays(cal: TradingCalendar) -> list[dt.date]:
    """The weekdays a package calendar has closed, from its first to its last day."""
    first, last = dt.date.fromordinal(cal.first + _EPOCH_ORDINAL), cal.package_last_day
    return [
        day for day in _weekdays(first, last) if not cal.is_trading_daynum(cal.first + (day - first).days)
    ]


def stored_package(fields: Mapping[Any, Any]) -> tuple[dt.date | None, frozenset[dt.date]]:
    """The newest package's last day and holidays as stored (None, empty when absent or unreadable)."""

    def get(name: str) -> Any:
        return fields.get(name.encode(), fields.get(name))

    last = parse_day(get(PACKAGE_LAST_FIELD))
    raw = get(PACKAGE_HOLIDAYS_FIELD)
    if last is None or raw is None:
        return None, frozenset()
    days = [parse_day(part) for part in wire.text(raw).split(",") if part]
    if any(day is None for day in days):
        log.warning("calendar: the stored package holidays do not parse; ignoring them")
        return None, frozenset()
    return last, frozenset(day for day in days if day is not None)


# --- Redis ------------------------------------------------------------------------------------


async def _set_later(client: Any, keys: Keys, name: str, day: dt.date) -> None:
    await client.eval(_SET_LATER, 1, keys.calendar, name, day.isoformat(), REV_FIELD, LAST_DAY_FIELD)


async def load(
    client: Any, keys: Keys, today: dt.date | None = None, *, warn: bool = True, record: bool = True
) -> TradingCalendar:
    """Read the calendar hash, build the calendar (in a thread: the package takes about 1.5 s the
    first time) and install it; record the package's last day so the known last day is in Redis
    (``record``: a reader such as the gateway leaves that to the services); log the warning
    (``warn``) when the known calendar ends within 30 days of ``today`` (default: real today in
    Asia/Shanghai)."""
    fields = await client.hgetall(keys.calendar)
    stored = parse_stored(fields)
    theirs_last, theirs_holidays = stored_package(fields)
    if stored.bad_fields:
        log.warning(
            "calendar %s: ignoring %d unreadable field(s): %s",
            keys.calendar,
            len(stored.bad_fields),
            ", ".join(stored.bad_fields[:10]),
        )
    ours = await asyncio.to_thread(sessions.package_calendar)
    overrides = dict(stored.overrides)
    known_last = stored.imported_last
    if theirs_last is not None and theirs_last > ours.package_last_day:
        # a newer package seen by another process: its sessions under the imported days
        for day in _weekdays(ours.package_last_day + dt.timedelta(days=1), theirs_last):
            overrides.setdefault(day, day not in theirs_holidays)
        known_last = max(known_last or theirs_last, theirs_last)
    cal = await asyncio.to_thread(
        sessions.build_calendar, overrides, known_last=known_last, source=f"XSHG + {keys.calendar}"
    )
    sessions.install_calendar(cal)
    if record:
        if theirs_last is None or ours.package_last_day >= theirs_last:
            holidays = ",".join(day.isoformat() for day in package_holidays(ours))
            if fields.get(PACKAGE_HOLIDAYS_FIELD.encode(), fields.get(PACKAGE_HOLIDAYS_FIELD)) != holidays:
                await client.hset(keys.calendar, PACKAGE_HOLIDAYS_FIELD, holidays)
        await _set_later(client, keys, PACKAGE_LAST_FIELD, cal.package_last_day)
        if stored.imported_last is not None:  # heals an import that stopped before writing it
            await _set_later(client, keys, IMPORTED_LAST_FIELD, stored.imported_last)
    if warn:
        text = warning_for(cal.known_last_day, today or market_today())
        if text:
            log.warning("%s", text)
    return cal


@dataclass
class ImportResult:
    imported: int  # days written
    open_days: int
    closed_days: int
    first: dt.date | None
    last: dt.date | None
    errors: list[str]
    other_exchanges: int
    calendar_last_day: dt.date | None

    def render(self) -> list[str]:
        """What ``marketbus import-calendar`` prints."""
        out = []
        if self.imported:
            out.append(
                f"imported {self.imported} days from {self.first} to {self.last} "
                f"({self.open_days} open, {self.closed_days} closed)"
            )
        else:
            out.append("imported nothing: no usable SSE/SZSE row")
        if self.other_exchanges:
            out.append(f"skipped {self.other_exchanges} rows of other exchanges (only SSE and SZSE count)")
        if self.errors:
            out.append(f"{len(self.errors)} rejected:")
            out.extend(f"  {e}" for e in self.errors)
        if self.calendar_last_day is not None:
            out.append(f"the trading calendar is now known up to {self.calendar_last_day}")
        return out


async def import_trade_cal(client: Any, keys: Keys, path: str | Path) -> ImportResult:
    """Import a Tushare ``trade_cal`` CSV into the calendar hash and install the result here.

    Bad rows are reported by line (see :func:`parse_trade_cal`) and the rest imported; an imported
    day clears a learned mark of that day. Raises :class:`CalendarFileError` when the file cannot
    be read as such a CSV (nothing is written then)."""
    p = Path(path)
    try:
        raw = await asyncio.to_thread(p.read_bytes)
    except OSError as exc:
        raise CalendarFileError(f"cannot read {p}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CalendarFileError(f"{p} is not UTF-8 text (byte {exc.start})") from None
    parsed = parse_trade_cal(text, str(p))
    days = parsed.days
    if days:
        mapping = {f"{DAY_FIELD}{d.isoformat()}": "1" if o else "0" for d, o in days.items()}
        async with client.pipeline(transaction=True) as pipe:
            pipe.hset(keys.calendar, mapping=mapping)
            pipe.hdel(keys.calendar, *(f"{LEARNED_FIELD}{d.isoformat()}" for d in days))
            pipe.hincrby(keys.calendar, REV_FIELD, 1)
            await pipe.execute()
        await _set_later(client, keys, IMPORTED_LAST_FIELD, max(days))
        await load(client, keys, warn=False)
    last = parse_day(await client.hget(keys.calendar, LAST_DAY_FIELD))
    n_open = sum(days.values())
    return ImportResult(
        imported=len(days),
        open_days=n_open,
        closed_days=len(days) - n_open,
        first=min(days) if days else None,
        last=max(days) if days else None,
        errors=parsed.errors,
        other_exchanges=parsed.other_exchanges,
        calendar_last_day=last,
    )


async def import_file(redis_url: str, keys: Keys, path: str | Path) -> ImportResult:
    """:func:`import_trade_cal` with a client of its own (for the CLI, inside ``asyncio.run``)."""
    from marketbus.redis import connect

    client = connect(redis_url)
    try:
        return await import_trade_cal(client, keys, path)
    finally:
        await client.aclose()


def readiness_checks(raw_last_day: bytes | str | None, clock_spec: str | None) -> dict[str, str | None]:
    """The calendar's part of ``/readyz``: the known last day as stored, and the warning (never
    raises: a market clock that does not parse counts from real today)."""
    last = parse_day(raw_last_day)
    try:
        today = market_today(clock_spec)
    except ValueError:
        today = market_today(None)
    return {
        "calendar_last_day": last.isoformat() if last else None,
        "calendar_warning": warning_for(last, today),
    }


def describe(fields: Mapping[Any, Any], today: dt.date) -> list[str]:
    """Lines for ``marketbus status`` from the calendar hash (bytes or str): the known last day,
    the days imported and learned, and the warning."""
    stored = parse_stored(fields)
    raw_last = next((v for k, v in fields.items() if k in (LAST_DAY_FIELD, LAST_DAY_FIELD.encode())), None)
    last = parse_day(raw_last)
    lines = []
    if last is not None:
        lines.append(f"trading calendar: known up to {last} ({(last - today).days} days from {today})")
    imported = stored.imported_days
    if imported or stored.learned:
        learned = ", ".join(str(d) for d in stored.learned[-5:])
        lines.append(
            f"  {imported} days imported (last {stored.imported_last}); {len(stored.learned)} learned closed"
            + (f" (latest: {learned})" if learned else "")
        )
    text = warning_for(last, today)
    if text:
        lines.append(f"warning: {text}")
    return lines


async def learn_closed(client: Any, keys: Keys, day: dt.date) -> TradingCalendar:
    """Record ``day`` as closed (learned from the feed), then reload and install the calendar."""
    async with client.pipeline(transaction=True) as pipe:
        pipe.hsetnx(keys.calendar, f"{LEARNED_FIELD}{day.isoformat()}", str(int(time.time() * 1000)))
        pipe.hincrby(keys.calendar, REV_FIELD, 1)
        await pipe.execute()
    return await load(client, keys, today=day)


async def _rev(client: Any, keys: Keys) -> bytes | str | None:
    rev: bytes | str | None = await client.hget(keys.calendar, REV_FIELD)
    return rev


async def keep_fresh(
    client: Any,
    keys: Keys,
    stop: asyncio.Event,
    every_s: float = 300.0,
    check_s: float = 5.0,
    today: Callable[[], dt.date] | None = None,
    record: bool = True,
) -> None:
    """Reload the calendar every ``every_s`` seconds, and within ``check_s`` of a change made by
    another process (an import, a learned day), until ``stop`` is set. Run it as a task in the
    service's own loop after :func:`load`. A server error is logged and retried at the next check.
    ``today`` returns the date the warning counts from (default: real today, Asia/Shanghai); the
    warning is logged when its text changes (about once a day)."""
    last_rev = await _safe_rev(client, keys)
    last_full = time.monotonic()
    last_warning: str | None = None
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=min(check_s, every_s))
            return
        except TimeoutError:
            pass
        try:
            rev = await _rev(client, keys)
            if rev == last_rev and time.monotonic() - last_full < every_s:
                continue
            day = today() if today is not None else market_today()
            cal = await load(client, keys, warn=False, record=record)  # the warning: below, once per text
            last_rev, last_full = rev, time.monotonic()
            text = warning_for(cal.known_last_day, day)
            if text and text != last_warning:
                log.warning("%s", text)
            last_warning = text
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the server may be gone for a while; the old calendar stays
            log.warning(
                "calendar reload failed (%s: %s); keeping the calendar in force", type(exc).__name__, exc
            )


async def _safe_rev(client: Any, keys: Keys) -> bytes | str | None:
    try:
        return await _rev(client, keys)
    except Exception:
        return None
