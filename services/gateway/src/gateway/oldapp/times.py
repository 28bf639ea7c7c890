"""Dates and times as the old app reads them: Asia/Shanghai wall time without a zone
(``2025-06-13T14:50:02``), days as ``YYYY-MM-DD``; its date parameters are ``YYYYMMDD``."""

from __future__ import annotations

import datetime as dt
import re

from marketbus.sessions import from_ms, trading_date

_YYYYMMDD = re.compile(r"^[0-9]{8}$")


def local_time(ts_ms: int, timespec: str = "seconds") -> str:
    """``2025-06-13T14:50:02`` (``timespec="milliseconds"``: ``2025-06-13T14:50:02.100``)."""
    return from_ms(ts_ms).replace(tzinfo=None).isoformat(timespec=timespec)


def day(ts_ms: int) -> str:
    """The Asia/Shanghai date of ``ts_ms`` as ``YYYY-MM-DD`` (a daily bar's ``ts`` is its day's 00:00)."""
    return trading_date(ts_ms).isoformat()


def parse_day(field: str, raw: str | None) -> dt.date | None:
    """A ``YYYYMMDD`` parameter (None when absent or empty); ValueError names ``field``."""
    if raw is None or not raw.strip():
        return None
    value = raw.strip()
    if _YYYYMMDD.match(value):
        try:
            return dt.date(int(value[:4]), int(value[4:6]), int(value[6:]))
        except ValueError:
            pass
    raise ValueError(f"{field}: {raw!r} is not a date YYYYMMDD (like 20250613)")


def day_range(start: str | None, end: str | None) -> tuple[dt.date | None, dt.date | None]:
    """The ``start_date`` and ``end_date`` parameters (either may be absent); ValueError names the
    bad one, or both when the start comes after the end."""
    lo, hi = parse_day("start_date", start), parse_day("end_date", end)
    if lo is not None and hi is not None and lo > hi:
        raise ValueError(f"start_date {lo:%Y%m%d} is after end_date {hi:%Y%m%d}")
    return lo, hi
