"""Board rules of the Shanghai, Shenzhen and Beijing exchanges: which board a code is on, its tick,
its dated daily price limit, and whether a price respects both.

Pure functions; the dates at which rules changed are data (the constants below, each with its
source). Markets are the vocabulary of :data:`marketbus.contracts.MARKETS`.

Price limits (as a fraction of the previous close; the limit prices are rounded half up to the tick):

- main boards (SH主板, SZ主板) and B shares: 10%; risk-warning names (ST, *ST) 5% until
  :data:`MAIN_BOARD_ST_10PCT` and 10% since;
- ChiNext (创业板, 300/301/302): 20% since :data:`CHINEXT_REFORM` (ST included), 10% (ST 5%) before;
- STAR (科创板, 688/689): 20%; Beijing (北交所): 30%;
- ETFs 10%, 20% for those tracking ChiNext or STAR indices (judged by name); LOFs 10%;
  REITs 10%, 30% on their first day;
- no limit in a new listing's first days: five trading days on ChiNext and STAR, and on the main
  boards for listings since :data:`MAIN_BOARD_REGISTRATION`; the first day on the main boards before
  it (the band then was +44%/-36% of the offer price, which no previous close expresses) and on the
  Beijing exchange;
- indices (指数) have neither a tick nor a limit.
"""

from __future__ import annotations

import datetime as dt
import math
import unicodedata
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

from marketbus.contracts import CODE_RE, MARKETS, Security
from marketbus.securities import is_st
from marketbus.sessions import is_trading_day, next_trading_day

MAIN_BOARD_ST_10PCT = dt.date(2026, 7, 6)
"""First trading day on which main-board risk-warning stocks (ST, *ST) of SSE and SZSE trade
within ±10% instead of ±5%. The exchanges consulted on the change on 2025-06-27 (《关于调整主板风险
警示股票价格涨跌幅限制比例及有关事项的通知（征求意见稿）》), folded it into their revised trading
rules, and those took effect on Monday 6 July 2026: HKEX circular of 15 June 2026 to China Connect
participants ("amendments to the Trading Rules of SSE and SZSE will take effect on 6 July 2026
(Monday) ... increasing the daily price limit for risk alert stocks on the Main Board of SSE and
SZSE from 5% to 10%", reported by globalexchanges.com, 17 June 2026), and the exchanges'
announcement of 5 July 2026 ("new A-share trading rules ... officially come into effect on July 6,
2026"). In July 2025 the change was only proposed; ST stocks still traded within ±5%."""

CHINEXT_REFORM = dt.date(2020, 8, 24)
"""ChiNext registration reform: 20% limit (ST included) and five unlimited first days since."""

MAIN_BOARD_REGISTRATION = dt.date(2023, 4, 10)
"""Main-board registration system: IPOs listed since trade without a limit for five days."""

FIRST_DAYS_UNLIMITED = 5

_CHINEXT_OR_STAR_FUND = ("创业", "科创", "双创")


# --- boards ---------------------------------------------------------------------------------


def _split(code: str) -> tuple[str, str]:
    if not CODE_RE.match(code):
        raise ValueError(f"code {code!r} is not like 510300.SH (six digits, .SH/.SZ/.BJ)")
    num, _, exchange = code.partition(".")
    return num, exchange


def _fund_by_name(default: str, name: str) -> str:
    upper = unicodedata.normalize("NFKC", name).upper()
    if "REIT" in upper:
        return "REIT"
    if "LOF" in upper:
        return "LOF"
    if "ETF" in upper:
        return "ETF"
    return default


def market_of(code: str, name: str = "") -> str:
    """The market (one of :data:`marketbus.contracts.MARKETS`) of a code, from its number and
    exchange; the exchange decides (000001.SH is the SSE Composite index, 000001.SZ a stock).
    ``name`` only tells fund kinds apart where a number segment is shared (a name with REIT, LOF
    or ETF in it). A well-formed code in no known segment gets its exchange's main board (or
    北交所); a malformed code raises ValueError."""
    num, exchange = _split(code)
    if exchange == "BJ":
        return "指数" if num.startswith("899") else "北交所"  # 899050.BJ: 北证50
    if exchange == "SH":
        if num.startswith("000"):
            return "指数"  # SSE and CSI indices: 000001 上证指数, 000300 沪深300, 000905 中证500
        if num.startswith(("688", "689")):
            return "科创板"
        if num.startswith("6"):
            return "SH主板"  # 600, 601, 603, 605
        if num.startswith("900"):
            return "B股"
        if num.startswith(("51", "52", "56", "58")):
            return _fund_by_name("ETF", name)
        if num.startswith(("501", "502", "506")):
            return _fund_by_name("LOF", name)
        if num.startswith("508"):
            return "REIT"
        return "SH主板"
    if num.startswith("39"):
        return "指数"  # 399001 深证成指, 399006 创业板指
    if num.startswith("30"):
        return "创业板"  # 300, 301, 302
    if num.startswith("20"):
        return "B股"
    if num.startswith("15"):
        return _fund_by_name("ETF", name)
    if num.startswith("16"):
        return _fund_by_name("LOF", name)
    if num.startswith("180"):
        return "REIT"
    return "SZ主板"  # 000, 001, 002, 003


def tick_size(market: str, code: str = "") -> float | None:
    """Minimum price step in the security's currency: 0.01 for stocks, 0.001 for funds (ETF, LOF,
    REIT) and Shanghai B shares (USD), 0.01 for Shenzhen B shares (HKD); None for an index.
    A B share needs its code (the exchange decides)."""
    if market == "指数":
        return None
    if market in ("ETF", "LOF", "REIT"):
        return 0.001
    if market == "B股":
        if code.endswith(".SH"):
            return 0.001
        if code.endswith(".SZ"):
            return 0.01
        raise ValueError(f"the tick of a B share depends on its exchange; code {code!r} has none")
    if market in MARKETS:
        return 0.01
    raise ValueError(f"unknown market {market!r} (one of {', '.join(MARKETS)})")


# --- limits ---------------------------------------------------------------------------------


def _list_day(security: Security) -> dt.date | None:
    raw = security.list_date
    if not raw:
        return None
    try:
        return _parse_day(raw)
    except ValueError:
        raise ValueError(f"list_date {raw!r} of {security.code} is not YYYYMMDD") from None


@lru_cache(maxsize=16384)
def _parse_day(raw: str) -> dt.date:
    return dt.datetime.strptime(raw, "%Y%m%d").date()


def _within_first_days(listed: dt.date, day: dt.date, days: int) -> bool:
    """True when ``day`` is at most the ``days``-th trading day from the listing (or before it)."""
    session = listed if is_trading_day(listed) else next_trading_day(listed)
    for _ in range(days):
        if day <= session:
            return True
        session = next_trading_day(session)
    return False


def _unlimited_days(market: str, listed: dt.date) -> int:
    """How many first trading days of a listing have no limit."""
    if market == "科创板":
        return FIRST_DAYS_UNLIMITED
    if market == "创业板":
        return FIRST_DAYS_UNLIMITED if listed >= CHINEXT_REFORM else 1
    if market in ("SH主板", "SZ主板"):
        return FIRST_DAYS_UNLIMITED if listed >= MAIN_BOARD_REGISTRATION else 1
    if market == "北交所":
        return 1
    return 0  # funds and B shares trade within their limit from the first day


def _board_pct(market: str, name: str, day: dt.date) -> float | None:
    if market == "指数":
        return None
    if market == "北交所":
        return 0.30
    if market == "科创板":
        return 0.20
    if market == "创业板":
        if day >= CHINEXT_REFORM:
            return 0.20
        return 0.05 if is_st(name) else 0.10
    if market == "ETF":
        return 0.20 if any(word in name for word in _CHINEXT_OR_STAR_FUND) else 0.10
    if market in ("LOF", "REIT"):
        return 0.10
    if market in ("SH主板", "SZ主板", "B股"):
        if is_st(name) and day < MAIN_BOARD_ST_10PCT:
            return 0.05
        return 0.10
    raise ValueError(f"unknown market {market!r} (one of {', '.join(MARKETS)})")


@lru_cache(maxsize=65536)
def _limit_pct(market: str, name: str, listed: dt.date | None, day: dt.date) -> float | None:
    if listed is not None:
        if market == "REIT" and _within_first_days(listed, day, 1):
            return 0.30
        unlimited = _unlimited_days(market, listed)
        if unlimited and _within_first_days(listed, day, unlimited):
            return None
    return _board_pct(market, name, day)


def limit_pct(security: Security, day: dt.date) -> float | None:
    """The daily price limit of ``security`` on trading day ``day``, as a fraction of the previous
    close; None when it has none (an index, a new listing's first days). The listing's first days
    count from ``security.list_date`` (YYYYMMDD) in trading days; without a list date the security
    is taken as listed long ago."""
    return _limit_pct(security.market, security.name, _list_day(security), day)


def price_limit_pct(market: str, name: str = "", day: dt.date | None = None) -> float | None:
    """The board's limit for a name on ``day`` (default: the rules in force now, i.e. after the
    last dated change), ignoring new-listing days; None for an index."""
    return _board_pct(market, name, day or dt.date.max)


@lru_cache(maxsize=65536)
def price_band(pre_close: float, pct: float, tick: float) -> tuple[float, float]:
    """``(limit_down, limit_up)``: ``pre_close × (1 ∓ pct)`` rounded half up to the tick, as the
    exchanges compute them (never below one tick)."""
    step = Decimal(str(tick))
    base = Decimal(str(pre_close))
    ratio = Decimal(str(pct))
    up = (base * (1 + ratio) / step).quantize(Decimal(1), ROUND_HALF_UP) * step
    down = (base * (1 - ratio) / step).quantize(Decimal(1), ROUND_HALF_UP) * step
    return float(max(down, step)), float(up)


# --- checks ---------------------------------------------------------------------------------

_TOLERANCE = 1e-6  # of a tick: float noise, not a price


def _decimals(tick: float) -> int:
    return len(f"{tick:.6f}".rstrip("0").partition(".")[2])


def _num(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".")


_ACCEPTED: dict[
    tuple[str, str, str, str | None, dt.date, float | None], tuple[float, float, float] | None
] = {}
_ACCEPTED_MAX = 65536


def _accepted(security: Security, day: dt.date, pre_close: float | None) -> tuple[float, float, float] | None:
    """``(lowest, highest, tick)``: the prices :func:`check_price` lets through on the grid of
    ``tick`` (the band with its slack, or unbounded); None for an index. Cached by everything it
    depends on (a security's market, code, name and list date; the day; the previous close)."""
    key = (security.market, security.code, security.name, security.list_date, day, pre_close)
    if key in _ACCEPTED:
        return _ACCEPTED[key]
    tick = tick_size(security.market, security.code)
    out: tuple[float, float, float] | None = None
    if tick is not None:
        pct = limit_pct(security, day)
        if pct is not None and pre_close is not None and pre_close > 0:
            down, up = price_band(pre_close, pct, tick)
            slack = tick * _TOLERANCE
            out = (down - slack, up + slack, tick)
        else:
            out = (-math.inf, math.inf, tick)
    if len(_ACCEPTED) >= _ACCEPTED_MAX:
        _ACCEPTED.clear()
    _ACCEPTED[key] = out
    return out


def check_price(
    price: float, pre_close: float | None, security: Security, day: dt.date
) -> tuple[str, str] | None:
    """``("limit_band", detail)`` when ``price`` is outside the day's limit band of ``security``,
    ``("tick_grid", detail)`` when it is not a multiple of the tick, else None. Nothing is checked
    for an index; the band is not checked without a positive ``pre_close`` or on a day without
    a limit (a new listing's first days), the tick grid still is."""
    accepted = _accepted(security, day, pre_close)
    if accepted is None:
        return None
    lowest, highest, tick = accepted
    if lowest <= price <= highest:  # the usual case, settled without the detail's work
        steps = price / tick
        if abs(steps - round(steps)) <= _TOLERANCE:
            return None
    return _rejection(price, pre_close, security, day)


def _rejection(
    price: float, pre_close: float | None, security: Security, day: dt.date
) -> tuple[str, str] | None:
    tick = tick_size(security.market, security.code)
    if tick is None:
        return None
    places = _decimals(tick)
    pct = limit_pct(security, day)
    if pct is not None and pre_close is not None and pre_close > 0:
        down, up = price_band(pre_close, pct, tick)
        slack = tick * _TOLERANCE
        if price > up + slack or price < down - slack:
            side = "above the limit-up" if price > up else "below the limit-down"
            limit = up if price > up else down
            rule = f"{security.market}{' ST' if is_st(security.name) else ''} ±{pct * 100:g}%"
            return "limit_band", (
                f"price {_num(price)} of {security.code} is {side} {limit:.{places}f}: band "
                f"{down:.{places}f}-{up:.{places}f} = pre_close {_num(pre_close)} ±{pct * 100:g}% "
                f"rounded half up to {tick:g} ({rule} rule on {day.isoformat()})"
            )
    steps = price / tick
    if abs(steps - round(steps)) > _TOLERANCE:
        below = math.floor(steps) * tick
        return "tick_grid", (
            f"price {_num(price)} of {security.code} is not a multiple of its tick {tick:g} "
            f"({security.market}); the nearest prices are {below:.{places}f} and "
            f"{below + tick:.{places}f}"
        )
    return None


__all__ = [
    "CHINEXT_REFORM",
    "MAIN_BOARD_REGISTRATION",
    "MAIN_BOARD_ST_10PCT",
    "check_price",
    "limit_pct",
    "market_of",
    "price_band",
    "price_limit_pct",
    "tick_size",
]
