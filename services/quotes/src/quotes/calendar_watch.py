"""Holidays learned from the live feed, beyond what the trading calendar knows.

Providers keep serving the last session's snapshots on a day the exchange is closed. So a weekday
the calendar takes as a trading day, on which the feed answers but no snapshot dated that day has
arrived by 09:35 (market clock), is a closed day: it is recorded in Redis with
``marketbus.calendar.learn_closed`` and installed at once, so the bars (no bucket on a closed day)
and every other service's schedule (through ``marketbus.calendar.keep_fresh``) follow.

The rule is :func:`closed_day_to_learn` (pure); :func:`watch` is the thin coroutine around it.
A feed that does not answer at all (an outage) teaches nothing: silence is not a holiday.
Meant for the feeds that poll providers (:data:`marketbus.feeds.POLL_FEEDS`); the sim follows the
calendar by construction and a replay's timestamps are not today's, so neither should run it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any

from marketbus import calendar, sessions
from marketbus.keys import Keys

log = logging.getLogger("quotes.calendar")

LEARN_AFTER_MS = (9 * 60 + 35) * sessions.MINUTE_MS
"""Local time of day (ms after midnight) by which a trading day's first snapshot has arrived."""


def closed_day_to_learn(now_ms: int, last_tick_ms: int | None, answered_ms: int | None) -> dt.date | None:
    """The day to record as closed, or None.

    ``now_ms``: market time; ``last_tick_ms``: exchange time of the newest snapshot the feed has
    delivered (None: none yet); ``answered_ms``: market time at which the feed last answered (a
    poll that returned snapshots, whatever their date; None: not since the watch began).

    Today is learned closed when it is a weekday the calendar takes as a trading day, it is 09:35
    or later, the feed has answered since 09:35 and no snapshot it delivered is dated today.
    """
    local = now_ms + sessions.UTC_OFFSET_MS
    tod = local % sessions.DAY_MS
    today = sessions.trading_date(now_ms)
    if tod < LEARN_AFTER_MS or today.weekday() >= 5 or not sessions.is_trading_day(today):
        return None
    if answered_ms is None or answered_ms < sessions.day_start_ms(today) + LEARN_AFTER_MS:
        return None  # no evidence the feed is answering today: an outage is not a holiday
    if last_tick_ms is not None and sessions.trading_date(last_tick_ms) >= today:
        return None
    return today


async def watch(
    client: Any,
    keys: Keys,
    now_ms: Callable[[], int],
    last_tick_ms: Callable[[], int | None],
    stop: asyncio.Event,
    *,
    answered_ms: Callable[[], int | None] | None = None,
    every_s: float = 1.0,
    grace_s: float = 30.0,
) -> list[dt.date]:
    """Check the rule every ``every_s`` wall seconds until ``stop``; learn and install each closed
    day found. Returns the days learned (for tests and the log at stop).

    ``answered_ms`` should be given for the poll feeds (market time of the last poll that
    returned snapshots). Without it, the watch takes the feed as answering once it has run
    ``grace_s`` wall seconds (room for the first poll after a start). A server error is logged
    and the day is tried again at the next check.
    """
    started = time.monotonic()
    learned: list[dt.date] = []
    while not stop.is_set():
        now = now_ms()
        if answered_ms is not None:
            answered = answered_ms()
        else:
            answered = now if time.monotonic() - started >= grace_s else None
        day = closed_day_to_learn(now, last_tick_ms(), answered)
        if day is not None:
            try:
                await calendar.learn_closed(client, keys, day)
            except Exception as exc:  # the server may be gone; the rule still holds next time
                log.warning("could not record %s as closed (%s: %s)", day, type(exc).__name__, exc)
            else:
                learned.append(day)
                log.warning(
                    "no snapshot dated %s arrived by 09:35 although the feed answers: %s is "
                    "recorded as a closed day (a later `marketbus import-calendar` can reopen it)",
                    day,
                    day,
                )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)
    return learned
