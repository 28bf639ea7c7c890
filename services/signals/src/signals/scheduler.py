"""When the full-market scan runs: a small schedule language, and the asyncio task that follows it.

``MARKETBUS_SIGNAL_SCHEDULE`` holds parts separated by ``;`` (times are Asia/Shanghai):

- ``every 20m in session``: every 20 minutes (aligned to the clock) while the market is open;
- ``every 1s``: every second, at any time;
- ``17:30 on trading days``: once a day at 17:30 on XSHG trading days (``daily`` for every day).

Times are market times (the clock the quotes service publishes, see ``signals.market_time``), so an
accelerated simulated market gets its scans at its own 20-minute marks and "in session" is the
market's session. The schedule is a task in the signals service's own loop; it publishes a
``calc_signals`` command, so a scheduled scan takes the same path as a triggered one, and with
several workers one slot is published once (a ``SET NX`` on the slot).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")
_EVERY = re.compile(r"^every\s+(\d+)\s*([smh])(\s+in\s+session)?$")
_DAILY = re.compile(r"^(\d{1,2}):(\d{2})\s+(on\s+trading\s+days|daily)$")
_UNIT_MS = {"s": 1000, "m": 60_000, "h": 3_600_000}


class Calendar(Protocol):
    def is_in_session(self, ts_ms: int) -> bool: ...
    def next_session_open(self, ts_ms: int) -> int: ...
    def is_trading_day(self, day: date) -> bool: ...


class ScheduleError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Every:
    interval_ms: int
    in_session: bool

    def next_after(self, ts_ms: int, cal: Calendar) -> int:
        t = (ts_ms // self.interval_ms + 1) * self.interval_ms
        if not self.in_session:
            return t
        for _ in range(10_000):
            if cal.is_in_session(t):
                return t
            opened = cal.next_session_open(t)
            t = -(-opened // self.interval_ms) * self.interval_ms  # first slot at/after the open
        raise ScheduleError("no session found ahead")


@dataclass(frozen=True, slots=True)
class Daily:
    hour: int
    minute: int
    trading_days_only: bool

    def next_after(self, ts_ms: int, cal: Calendar) -> int:
        now = datetime.fromtimestamp(ts_ms / 1000, SHANGHAI)
        day = now.date()
        for _ in range(400):
            at = datetime(day.year, day.month, day.day, self.hour, self.minute, tzinfo=SHANGHAI)
            ms = int(at.timestamp() * 1000)
            if ms > ts_ms and (not self.trading_days_only or cal.is_trading_day(day)):
                return ms
            day += timedelta(days=1)
        raise ScheduleError("no trading day found ahead")


Rule = Every | Daily


@dataclass(frozen=True, slots=True)
class Schedule:
    text: str
    rules: tuple[Rule, ...]

    def next_after(self, ts_ms: int, cal: Calendar) -> int:
        return min(rule.next_after(ts_ms, cal) for rule in self.rules)


def parse_schedule(text: str) -> Schedule:
    rules: list[Rule] = []
    for raw in text.split(";"):
        part = " ".join(raw.strip().lower().split())
        if not part:
            continue
        if m := _EVERY.match(part):
            n = int(m.group(1))
            if n <= 0:
                raise ScheduleError(f"interval must be positive in {raw.strip()!r}")
            rules.append(Every(n * _UNIT_MS[m.group(2)], bool(m.group(3))))
        elif m := _DAILY.match(part):
            hour, minute = int(m.group(1)), int(m.group(2))
            if hour > 23 or minute > 59:
                raise ScheduleError(f"no such time of day in {raw.strip()!r}")
            rules.append(Daily(hour, minute, m.group(3) != "daily"))
        else:
            raise ScheduleError(
                f"cannot read schedule part {raw.strip()!r}: expected 'every <N>s|m|h [in session]' "
                "or 'HH:MM on trading days' or 'HH:MM daily'"
            )
    if not rules:
        raise ScheduleError("the schedule is empty")
    return Schedule(text, tuple(rules))


REPLAN_BACKWARD_MS = 60_000


@dataclass(slots=True)
class Planner:
    """Follows a schedule on a clock read now and then (the market clock, which may run faster than
    the wall clock, start in the past, or jump): :meth:`step` returns the slot due at ``now``, once.

    A clock that moves back by more than ``REPLAN_BACKWARD_MS`` (a market clock that appeared, set in
    the past) plans again from there; a clock that jumps ahead fires the missed slot once, not every
    slot in between."""

    schedule: Schedule
    cal: Calendar
    planned: int | None = None
    seen: int | None = None

    def step(self, now: int) -> int | None:
        if self.planned is None or (self.seen is not None and now < self.seen - REPLAN_BACKWARD_MS):
            self.planned = self.schedule.next_after(now, self.cal)
        self.seen = now
        if now < self.planned:
            return None
        slot = self.planned
        self.planned = self.schedule.next_after(now, self.cal)
        return slot
