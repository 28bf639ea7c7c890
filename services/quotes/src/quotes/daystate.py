"""The bar aggregator's per-code day state, and its compact encoding in ``Keys.daystate``.

One hash field per code holds everything the aggregator knows about the code's trading day: the
day, the last tick time, the cumulative volume and amount seen, and per period the forming bar
(open/high/low/close, the cumulative figures at its start and at its last tick), the time of the
last closed bar and where the next bar starts counting. A forming 1w or 1M bar outlives the day:
it is carried into the next day's state, its start figures lowered by what the earlier days
traded (so its volume is those days' volume plus the new day's cumulative figure), and marked
carried (its open is settled: the provider's open of a later day does not replace it). The quotes
service writes the state of every code a batch changed in the same pipeline as that batch's ticks
and bars, and builds its aggregator from the stored states at start, so a restart (SIGTERM or
SIGKILL) resumes exactly where the last written batch left off.

Encoding (little-endian, :mod:`struct`), about 820 bytes for a code with eight forming bars::

    header  B version, B periods, q day_ms, q last_ts, d volume, d amount
    period  B period id (1m 0, 5m 1, 1d 2, 15m 3, 30m 4, 60m 5, 1w 6, 1M 7), B flags (1 closed,
            2 base, 4 a forming bar follows, 8 that bar was carried from an earlier day),
            q last closed bar ts, d base volume, d base amount
    bar     q ts, d open, high, low, close, base volume, base amount, volume, amount

Pure: no I/O here but :func:`load`, which reads the hash.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from operator import attrgetter
from typing import TYPE_CHECKING

from marketbus.sessions import bar_close_ms
from marketbus.wire import text

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from marketbus.keys import Keys

VERSION = 1
PERIOD_IDS = {"1m": 0, "5m": 1, "1d": 2, "15m": 3, "30m": 4, "60m": 5, "1w": 6, "1M": 7}
PERIOD_NAMES = {v: k for k, v in PERIOD_IDS.items()}
_HEAD = struct.Struct("<BBqqdd")
_PERIOD = struct.Struct("<BBqdd")
_BAR = struct.Struct("<q8d")
_PERIOD_BAR = struct.Struct(_PERIOD.format + _BAR.format[1:])
_ORDER = tuple(PERIOD_IDS.items())
_CLOSED, _BASE, _OPEN, _CARRIED = 1, 2, 4, 8


class DayStateError(ValueError):
    """Stored day-state bytes that cannot be read (the message names the code and the fault)."""


@dataclass(slots=True)
class OpenBar:
    """A bar being built. Volume and amount are cumulative day figures: at the bar's start
    (``base_*``) and at its last tick; the bar's own volume is the difference. A 1w or 1M bar
    carried into a later day (``carried``) has the earlier days' volume and amount subtracted
    from its start figures."""

    ts: int
    close_at: int
    open: float
    high: float
    low: float
    close: float
    base_volume: float
    base_amount: float
    volume: float
    amount: float
    carried: bool = False  # a multi-day bar begun on an earlier day than the state's


@dataclass(slots=True)
class CodeState:
    day_ms: int  # 00:00 Asia/Shanghai of the code's trading day
    volume: float  # cumulative shares of the day seen so far (never decreases)
    amount: float
    last_ts: int = -1  # time of the last accepted tick
    bars: dict[str, OpenBar] = field(default_factory=dict)  # period -> forming bar
    closed: dict[str, int] = field(default_factory=dict)  # period -> ts of the last closed bar
    base: dict[str, tuple[float, float]] = field(default_factory=dict)  # period -> cumulative
    # volume and amount at the end of its last closed bar (where the next bar starts counting)
    # not stored: the 1m bucket all forming bars are current for (the aggregator's fast path for
    # a tick of the same minute), -1 when unknown
    minute: int = field(default=-1, compare=False, repr=False)


_LAYOUTS: dict[tuple[int, ...], struct.Struct] = {}
_bar_fields = attrgetter(
    "ts", "open", "high", "low", "close", "base_volume", "base_amount", "volume", "amount"
)  # a bar's packed fields, in the order of _BAR


def _layout(shape: tuple[int, ...]) -> struct.Struct:
    """The struct of a whole state whose periods are ``shape`` (1: period only, 2: with a bar)."""
    fmt = _HEAD.format + "".join(
        _PERIOD.format[1:] if kind == 1 else _PERIOD_BAR.format[1:] for kind in shape
    )
    packer = _LAYOUTS[shape] = struct.Struct(fmt)
    return packer


def encode(state: CodeState) -> bytes:
    bars, closed_at, bases = state.bars, state.closed, state.base
    values: list[int | float] = [VERSION, 0, state.day_ms, state.last_ts, state.volume, state.amount]
    shape: list[int] = []
    for period, pid in _ORDER:
        bar = bars.get(period)
        closed = closed_at.get(period)
        base = bases.get(period)
        if bar is None and closed is None and base is None:
            continue
        flags = (0 if closed is None else _CLOSED) | (0 if base is None else _BASE)
        base_v, base_a = (0.0, 0.0) if base is None else base
        if bar is None:
            shape.append(1)
            values += (pid, flags, -1 if closed is None else closed, base_v, base_a)
        else:
            shape.append(2)
            flags |= _OPEN | (_CARRIED if bar.carried else 0)
            values += (pid, flags, -1 if closed is None else closed, base_v, base_a)
            values += _bar_fields(bar)
    values[1] = len(shape)
    key = tuple(shape)
    packer = _LAYOUTS.get(key) or _layout(key)
    return packer.pack(*values)


def decode(raw: bytes, code: str = "?") -> CodeState:
    """The state :func:`encode` wrote; :class:`DayStateError` naming ``code`` when unreadable."""
    if len(raw) < _HEAD.size:
        raise DayStateError(f"day state of {code}: truncated ({len(raw)} bytes, header needs {_HEAD.size})")
    version = raw[0]
    if version != VERSION:
        raise DayStateError(f"day state of {code}: version {version} is not the known {VERSION}")
    _v, n, day_ms, last_ts, volume, amount = _HEAD.unpack_from(raw, 0)
    state = CodeState(day_ms, volume, amount, last_ts)
    pos = _HEAD.size
    for _ in range(n):
        if len(raw) < pos + _PERIOD.size:
            raise DayStateError(f"day state of {code}: truncated at byte {pos} of {len(raw)}")
        pid, flags, closed, base_v, base_a = _PERIOD.unpack_from(raw, pos)
        pos += _PERIOD.size
        period = PERIOD_NAMES.get(pid)
        if period is None:
            raise DayStateError(f"day state of {code}: unknown period id {pid} at byte {pos - _PERIOD.size}")
        if flags & _CLOSED:
            state.closed[period] = closed
        if flags & _BASE:
            state.base[period] = (base_v, base_a)
        if flags & _OPEN:
            if len(raw) < pos + _BAR.size:
                raise DayStateError(f"day state of {code}: truncated at byte {pos} of {len(raw)}")
            ts, o, h, lo, c, bv, ba, v, a = _BAR.unpack_from(raw, pos)
            pos += _BAR.size
            close_at = bar_close_ms(ts, period)
            state.bars[period] = OpenBar(ts, close_at, o, h, lo, c, bv, ba, v, a, bool(flags & _CARRIED))
    if pos != len(raw):
        raise DayStateError(f"day state of {code}: {len(raw) - pos} trailing bytes after byte {pos}")
    return state


async def load(client: Redis, keys: Keys) -> tuple[dict[str, CodeState], list[tuple[str, str]]]:
    """Every stored state, and ``(code, error)`` for each entry that cannot be read."""
    states: dict[str, CodeState] = {}
    bad: list[tuple[str, str]] = []
    for field_, raw in (await client.hgetall(keys.daystate)).items():
        code = text(field_)
        try:
            states[code] = decode(raw if isinstance(raw, bytes) else raw.encode(), code)
        except DayStateError as exc:
            bad.append((code, str(exc)))
    return states, bad
