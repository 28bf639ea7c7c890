"""Pure pieces of the read side: stream ids, signal filters, the buy view's order, search, code lists."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from marketbus.contracts import CODE_RE, Security, Signal
from marketbus.securities import INDEX, is_st

STREAM_ID_RE = re.compile(r"^\d{1,20}(-\d{1,20})?$")
STREAM_ID_MAX = 2**64 - 1  # each part of a stream id is an unsigned 64-bit integer
ETF = "ETF"
# one code of a list, in any case (ASCII digits: the schema's regex must mean the same in every engine)
LIST_CODE = r"[0-9]{6}\.(?:[Ss][Hh]|[Ss][Zz]|[Bb][Jj])"
LIST_CODE_LEN = 9


def parse_stream_id(value: str) -> tuple[int, int]:
    """``"1700000000000-3"`` -> ``(1700000000000, 3)``; a bare ms counts as ``ms-0``."""
    if not STREAM_ID_RE.match(value):
        raise ValueError(f"{value!r} is not a stream id like 1700000000000-0")
    ms, _, seq = value.partition("-")
    parts = int(ms), int(seq or 0)
    if max(parts) > STREAM_ID_MAX:
        raise ValueError(f"{value!r} is beyond the largest stream id {STREAM_ID_MAX}-{STREAM_ID_MAX}")
    return parts


@dataclass(frozen=True, slots=True)
class SignalFilter:
    strategy: str | None = None
    side: str | None = None
    code: str | None = None
    market: str | None = None
    period: str | None = None
    since: int | None = None  # epoch ms; compared with created_ts
    provisional: bool | None = None  # true: provisional signals and withdrawals; false: closed bars
    status: str | None = None  # provisional | confirmed | withdrawn | closed (status null)

    def matches(self, s: Signal) -> bool:
        return (
            (self.strategy is None or s.strategy == self.strategy)
            and (self.side is None or s.side == self.side)
            and (self.code is None or s.code == self.code)
            and (self.market is None or s.market == self.market)
            and (self.period is None or s.period == self.period)
            and (self.since is None or s.created_ts >= self.since)
            and (self.provisional is None or s.provisional == self.provisional)
            and (self.status is None or (s.status or "closed") == self.status)
        )


def buy_view(signals: Iterable[Signal], include_indices: bool = False) -> list[Signal]:
    """The old system's buy list: BUY only, no ST names, no withdrawn signal (provisional ones stay,
    marked: the old system listed intraday signals), no index unless ``include_indices`` (an index
    cannot be bought), stocks before ETFs, then by confidence (highest first), then by time (newest
    bar first, newest written first)."""
    buys = [
        s
        for s in signals
        if s.side == "BUY"
        and not is_st(s.name)
        and s.status != "withdrawn"
        and (include_indices or s.market != INDEX)
    ]
    buys.sort(key=lambda s: (s.market == ETF, -s.confidence, -s.bar_ts, -s.created_ts, s.code))
    return buys


def latest_view(signals: Iterable[Signal]) -> list[Signal]:
    """The latest signal per code, strategy and period, newest bar first, then newest written."""
    return sorted(signals, key=lambda s: (-s.bar_ts, -s.created_ts, s.code, s.strategy, s.period))


def search_securities(items: Iterable[Security], q: str, limit: int) -> list[Security]:
    """Code prefix matches first (``5103`` or ``510300.S``), then name matches (case-folded,
    Chinese included), each group ordered by code."""
    needle = q.strip().casefold()
    if not needle:
        return []
    by_code: list[Security] = []
    by_name: list[Security] = []
    for sec in items:
        if sec.code.casefold().startswith(needle):
            by_code.append(sec)
        elif needle in sec.name.casefold():
            by_name.append(sec)
    by_code.sort(key=lambda s: s.code)
    by_name.sort(key=lambda s: s.code)
    return (by_code + by_name)[:limit]


def codes_pattern(max_codes: int) -> str:
    """The regex of a list :func:`parse_codes` accepts: up to ``max_codes`` codes (duplicates
    counted) separated by commas; or the empty list."""
    return rf"^(?:{LIST_CODE}(?:,{LIST_CODE}){{0,{max_codes - 1}}})?$"


def codes_max_length(max_codes: int) -> int:
    """The longest text :func:`codes_pattern` matches."""
    return max_codes * (LIST_CODE_LEN + 1) - 1


def codes_problem(raw: str, max_codes: int) -> str:
    """Why ``raw`` is not a list :func:`codes_pattern` matches, in words (naming the first bad code)."""
    try:
        parse_codes(raw, max_codes)
    except ValueError as exc:
        return str(exc)
    if (count := raw.count(",") + 1) > max_codes:
        return f"at most {max_codes} codes per request, got {count}"
    return "not a list like 510300.SH,159915.SZ (codes separated by commas, and nothing else)"


def parse_codes(raw: str, max_codes: int) -> list[str]:
    """``"510300.SH, 159915.sz"`` -> ``["510300.SH", "159915.SZ"]`` (order kept, duplicates out).

    Raises ValueError naming the first bad code, or when there are more than ``max_codes``.
    """
    out: list[str] = []
    seen: set[str] = set()
    for part in raw.split(","):
        code = part.strip().upper()
        if not code:
            continue
        if not CODE_RE.match(code):
            raise ValueError(f"{part.strip()!r} is not a code like 510300.SH")
        if code not in seen:
            seen.add(code)
            out.append(code)
    if len(out) > max_codes:
        raise ValueError(f"at most {max_codes} codes per request, got {len(out)}")
    return out
