"""The generated market of the provider simulator: pure, deterministic from the seed.

A market of ``n_codes`` securities (SH/SZ main board, ChiNext 300/301, STAR 688/689, Beijing
920xxx, ETFs, LOFs and six main indices) with plausible names, list dates and reference prices.
A snapshot is a pure function of (seed, security, market time):

- the close of every trading day is ``ref * exp(slow waves + daily noise)``, so a day's previous
  close is the close of the previous trading day without simulating the days in between, and the
  day-to-day change stays well inside the tightest (5 %) limit band;
- inside a day, the price follows a Brownian bridge from the open to that close on one point per
  session minute (241 points, 09:30 ... 11:30 = 13:00 ... 15:00), rounded to the tick grid
  (0.01 yuan stocks and indices, 0.001 yuan funds) and clamped to the board's limit band;
  between two points it moves linearly, so the day's high and low are a running max and min;
- day-cumulative volume (whole lots) and amount never decrease: an auction volume at 09:25, then
  a U-shaped volume per minute, interpolated inside the minute;
- provider snapshots come every 3 seconds (a per-code phase of 0-2 s): 09:15-09:25 indicative
  auction prices with volume 0, the auction result at 09:25:0x, frozen stamps 11:30:0x over lunch
  and 15:00:0x after the close; before 09:15 and on non-trading days the last session's final
  snapshot is served.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from dataclasses import dataclass, replace

import numpy as np

from marketbus.sessions import (
    AFTERNOON_CLOSE,
    AFTERNOON_OPEN,
    AUCTION_OPEN,
    DAY_MS,
    MINUTE_MS,
    MORNING_CLOSE,
    MORNING_OPEN,
    UTC_OFFSET_MS,
    is_trading_day,
    previous_trading_day,
)
from quotes.boards import market_of, price_band, price_limit_pct

MINUTE = MINUTE_MS
AUCTION_MATCH = (9 * 60 + 25) * MINUTE  # the call auction's result
POINTS = 241  # one price point per session minute boundary
SNAPSHOT_MS = 3_000  # providers refresh a Level-1 snapshot every 3 seconds

INDICES: tuple[tuple[str, str, float], ...] = (
    ("000001.SH", "上证指数", 3300.0),
    ("399001.SZ", "深证成指", 10500.0),
    ("399006.SZ", "创业板指", 2150.0),
    ("000300.SH", "沪深300", 3900.0),
    ("000905.SH", "中证500", 5800.0),
    ("000688.SH", "科创50", 1000.0),
)
WELL_KNOWN: tuple[tuple[str, str, str, float], ...] = (
    ("600519.SH", "贵州茅台", "SH主板", 1500.0),
    ("600036.SH", "招商银行", "SH主板", 35.0),
    ("601318.SH", "中国平安", "SH主板", 48.0),
    ("000001.SZ", "平安银行", "SZ主板", 11.5),
    ("000858.SZ", "五粮液", "SZ主板", 140.0),
    ("300750.SZ", "宁德时代", "创业板", 210.0),
    ("688981.SH", "中芯国际", "科创板", 85.0),
    ("510300.SH", "沪深300ETF", "ETF", 3.9),
    ("510500.SH", "中证500ETF", "ETF", 5.8),
    ("159915.SZ", "创业板ETF", "ETF", 2.1),
    ("588000.SH", "科创50ETF", "ETF", 1.0),
)
# (board, share of the market, number ranges, exchange)
BOARDS: tuple[tuple[str, float, tuple[tuple[int, int, str], ...]], ...] = (
    ("SH主板", 0.26, ((600000, 602000, "SH"), (603000, 604000, "SH"), (605000, 605600, "SH"))),
    ("SZ主板", 0.23, ((1, 2000, "SZ"), (2001, 3000, "SZ"), (3000, 3100, "SZ"))),
    ("创业板", 0.21, ((300001, 302000, "SZ"),)),
    ("科创板", 0.09, ((688001, 689000, "SH"), (689001, 689020, "SH"))),
    ("北交所", 0.04, ((920000, 921000, "BJ"),)),
    (
        "ETF",
        0.14,
        ((510000, 519000, "SH"), (560000, 564000, "SH"), (588000, 589000, "SH"), (159000, 160000, "SZ")),
    ),
    ("LOF", 0.03, ((160100, 169999, "SZ"), (501000, 502000, "SH"))),
)
FUNDS = frozenset({"ETF", "LOF", "REIT"})

_TRADES = [
    "科技",
    "电子",
    "医药",
    "股份",
    "控股",
    "智能",
    "能源",
    "材料",
    "通信",
    "生物",
    "环保",
    "机械",
    "新材",
    "精工",
    "光电",
    "化工",
    "食品",
    "电气",
    "软件",
    "汽车",
    "重工",
    "药业",
    "传媒",
    "半导体",
    "信息",
    "装备",
    "航天",
    "矿业",
    "农业",
    "物流",
]
_TRACKS = [
    "沪深300",
    "中证500",
    "中证1000",
    "上证50",
    "创业板",
    "科创50",
    "红利",
    "医药",
    "券商",
    "半导体",
    "新能源",
    "消费",
    "军工",
    "黄金",
    "纳指",
    "恒生",
    "有色",
    "银行",
    "光伏",
    "芯片",
    "传媒",
    "酒",
    "家电",
    "汽车",
    "地产",
    "煤炭",
    "钢铁",
    "农业",
    "游戏",
    "机器人",
]
_HOUSES = [
    "华夏",
    "易方达",
    "南方",
    "嘉实",
    "广发",
    "华安",
    "国泰",
    "富国",
    "博时",
    "汇添富",
    "招商",
    "工银",
    "鹏华",
    "天弘",
    "银华",
]


def _h(*parts: object) -> int:
    """A 64-bit hash of the parts (deterministic across processes, unlike ``hash``)."""
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def _unit(*parts: object) -> float:
    """A deterministic number in [0, 1) from the parts."""
    return _h(*parts) / 2**64


def tick_of(market: str) -> float:
    return 0.001 if market in FUNDS else 0.01


def round_tick(value: float, tick: float) -> float:
    """Round half up to the tick grid, with the tick's decimals."""
    return round(math.floor(value / tick + 0.5 + 1e-9) * tick, 3 if tick < 0.005 else 2)


@dataclass(frozen=True, slots=True)
class SimSecurity:
    code: str
    name: str
    market: str
    ref_price: float
    list_date: str | None = None  # YYYYMMDD; None for indices
    suspended: bool = False

    @property
    def tick(self) -> float:
        return tick_of(self.market)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What a provider knows of one code at one moment (volume in shares, amount in yuan).

    ``open``/``high``/``low`` are None before the 09:25 auction result; ``ts`` is the provider's
    stamp (epoch ms). A suspended code has ``price`` None.
    """

    security: SimSecurity
    ts: int
    price: float | None
    pre_close: float
    open: float | None
    high: float | None
    low: float | None
    volume: float
    amount: float
    limit_up: float | None
    limit_down: float | None

    @property
    def code(self) -> str:
        return self.security.code


_CHARS = "恒瑞华泰金宏兴达安康德信丰盛鼎新天海中国东南北万联合长通永嘉博远正光明科大鑫隆源"


def _name(rng: np.random.Generator, market: str, used: set[str]) -> str:
    for _ in range(100):
        if market == "ETF":
            name = f"{_TRACKS[rng.integers(len(_TRACKS))]}ETF{_HOUSES[rng.integers(len(_HOUSES))]}"
        elif market == "LOF":
            name = f"{_HOUSES[rng.integers(len(_HOUSES))]}{_TRACKS[rng.integers(len(_TRACKS))]}LOF"
        else:
            a, b, t = rng.integers(len(_CHARS)), rng.integers(len(_CHARS)), rng.integers(len(_TRADES))
            name = f"{_CHARS[a]}{_CHARS[b]}{_TRADES[t]}"
            if market in ("SH主板", "SZ主板") and rng.random() < 0.03:
                name = ("*ST" if rng.random() < 0.5 else "ST") + name
        if name not in used:
            break
    else:
        name = f"{name}{len(used)}"
    used.add(name)
    return name


def _list_date(rng: np.random.Generator, market: str, num: int) -> str:
    first = {"SH主板": 1991, "SZ主板": 1991, "创业板": 2009, "科创板": 2019, "北交所": 2021,
             "ETF": 2005, "LOF": 2004}[market]  # fmt: skip
    year = int(rng.integers(first, 2026))
    day = dt.date(year, 1, 1) + dt.timedelta(days=int(rng.integers(0, 365)))
    return f"{min(day, dt.date(2025, 12, 31)):%Y%m%d}"


def generate(seed: int, n_codes: int = 6500) -> list[SimSecurity]:
    """The listed securities of a market of ``n_codes`` (at least the indices and well-known codes)."""
    rng = np.random.default_rng([seed, 20251124])
    out: list[SimSecurity] = [SimSecurity(c, n, "指数", p) for c, n, p in INDICES]
    used = {n for _, n, _ in INDICES}
    taken = {c for c, _, _ in INDICES}
    for code, name, market, price in WELL_KNOWN:
        out.append(SimSecurity(code, name, market, price, _list_date(rng, market, 0)))
        used.add(name)
        taken.add(code)
    rest = max(n_codes - len(out), 0)
    for b, (market, share, ranges) in enumerate(BOARDS):
        count = (
            rest - sum(round(rest * s) for _, s, _ in BOARDS[:-1])
            if b == len(BOARDS) - 1
            else round(rest * share)
        )
        pool = [(num, ex) for lo, hi, ex in ranges for num in range(lo, hi)]
        picks = rng.choice(len(pool), size=min(count + 20, len(pool)), replace=False)
        made = 0
        for i in sorted(int(p) for p in picks):
            num, exchange = pool[i]
            code = f"{num:06d}.{exchange}"
            if code in taken or made >= count:
                continue
            taken.add(code)
            made += 1
            if market in FUNDS:
                price = float(np.round(np.exp(rng.normal(0.2, 0.5)), 3))
            else:
                price = float(np.round(np.clip(np.exp(rng.normal(2.5, 0.8)), 2.0, 600.0), 2))
            out.append(
                SimSecurity(code, _name(rng, market, used), market, price, _list_date(rng, market, num))
            )
    # a few suspended stocks (eastmoney "-", sina price 0, tencent a placeholder row)
    known = {c for c, *_ in WELL_KNOWN}
    stocks = [i for i, s in enumerate(out) if s.market in ("SH主板", "SZ主板") and s.code not in known]
    if stocks:
        for i in rng.choice(stocks, size=max(1, len(stocks) // 400), replace=False):
            out[int(i)] = replace(out[int(i)], suspended=True)
    return out


@dataclass(frozen=True, slots=True)
class DayPath:
    pre_close: float
    open: float
    close: float
    auction_volume: float
    price: np.ndarray  # (POINTS,) on the tick grid, inside the band
    volume: np.ndarray  # (POINTS,) cumulative shares at each point
    amount: np.ndarray  # (POINTS,) cumulative yuan at each point
    limit_up: float | None
    limit_down: float | None


def _daynum(day: dt.date) -> int:
    return day.toordinal() - dt.date(1970, 1, 1).toordinal()


def _fromnum(n: int) -> dt.date:
    return dt.date.fromordinal(n + dt.date(1970, 1, 1).toordinal())


_U64 = np.uint64


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer on uint64 arrays (wrapping arithmetic)."""
    x = x + _U64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> _U64(27))) * _U64(0x94D049BB133111EB)
    return x ^ (x >> _U64(31))


def _uniforms(keys: np.ndarray, salt: int, size: int) -> np.ndarray:
    """(codes, size) numbers in (0, 1], a pure function of each code's key, the salt and the
    column: a code's numbers never depend on which other codes are computed with it."""
    cols = np.arange(size, dtype=_U64) * _U64(0xD1B54A32D192ED03)
    x = _mix(_mix(keys[:, None] ^ _U64(salt & 0xFFFFFFFFFFFFFFFF)) + cols)
    return ((x >> _U64(11)).astype(np.float64) + 1.0) * 2.0**-53


def _normals(keys: np.ndarray, salt: int, size: int) -> np.ndarray:
    u1 = _uniforms(keys, salt, size)
    u2 = _uniforms(keys, salt ^ 0x5BD1E995, size)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2 * np.pi * u2)


class Market:
    """The securities listed now and their snapshots at any market time."""

    def __init__(self, seed: int, n_codes: int = 6500) -> None:
        self.seed = seed
        self.securities: dict[str, SimSecurity] = {s.code: s for s in generate(seed, n_codes)}
        self._paths: dict[int, dict[str, DayPath]] = {}  # day number -> code -> path (two days kept)

    # --- listing ------------------------------------------------------------------------
    def list_code(self, code: str, name: str | None = None, market: str | None = None,
                  price: float | None = None, list_date: str | None = None) -> SimSecurity:  # fmt: skip
        market = market or market_of(code)
        security = SimSecurity(code, name or code, market, float(price or 10.0), list_date)
        self.securities[code] = security
        for day_paths in self._paths.values():
            day_paths.pop(code, None)
        return security

    def delist(self, code: str) -> bool:
        return self.securities.pop(code, None) is not None

    def suspend(self, code: str, suspended: bool = True) -> bool:
        if code not in self.securities:
            return False
        self.securities[code] = replace(self.securities[code], suspended=suspended)
        return True

    # --- prices -------------------------------------------------------------------------
    def close_of(self, security: SimSecurity, day: dt.date) -> float:
        """The close of ``security`` on trading day ``day`` (smooth waves plus daily noise)."""
        n = _daynum(day)
        phase1 = _unit(self.seed, security.code, "p1") * 2 * math.pi
        phase2 = _unit(self.seed, security.code, "p2") * 2 * math.pi
        noise = _unit(self.seed, security.code, "d", n) * 2 - 1
        logp = (math.log(security.ref_price) + 0.25 * math.sin(2 * math.pi * n / 250 + phase1)
                + 0.06 * math.sin(2 * math.pi * n / 40 + phase2) + 0.01 * noise)  # fmt: skip
        return round_tick(math.exp(logp), security.tick)

    def paths(self, securities: list[SimSecurity], day: dt.date) -> list[DayPath]:
        """The day paths of ``securities`` (the missing ones computed together, vectorized)."""
        n = _daynum(day)
        cache = self._paths.get(n)
        if cache is None:
            for old in sorted(self._paths)[:-1]:  # keep this day and the newest other one
                del self._paths[old]
            cache = self._paths[n] = {}
        missing = [s for s in securities if s.code not in cache]
        if missing:
            cache.update(zip([s.code for s in missing], self._make_paths(missing, day), strict=True))
        return [cache[s.code] for s in securities]

    def _make_paths(self, secs: list[SimSecurity], day: dt.date) -> list[DayPath]:
        m = len(secs)
        prev = previous_trading_day(day)
        ticks = np.array([s.tick for s in secs])
        pre = np.array([self.close_of(s, prev) for s in secs])
        close = np.array([self.close_of(s, day) for s in secs])
        limits = [price_limit_pct(s.market, s.name, day) for s in secs]
        bands = [price_band(float(p), lim, t) if lim is not None else (np.nan, np.nan)
                 for p, lim, t in zip(pre, limits, ticks, strict=True)]  # fmt: skip
        down = np.array([b[0] for b in bands])
        up = np.array([b[1] for b in bands])
        hi = np.where(np.isnan(up), pre * 1.2, up)
        lo = np.where(np.isnan(down), pre * 0.8, down)
        keys = np.array([_h(self.seed, s.code) for s in secs], dtype=_U64)
        salt = _daynum(day) * 0x100000001B3
        decimals = np.where(ticks < 0.005, 3, 2)[:, None]

        def grid(values: np.ndarray) -> np.ndarray:
            out = np.floor(values / ticks[:, None] + 0.5 + 1e-9) * ticks[:, None]
            return np.where(decimals == 3, np.round(out, 3), np.round(out, 2))

        gap = np.clip(_normals(keys, salt + 1, 1)[:, 0] * 0.006, -0.02, 0.02)
        open_ = np.clip(grid((pre * np.exp(gap))[:, None])[:, 0], lo, hi)
        steps = _normals(keys, salt + 2, POINTS - 1) * (0.012 / math.sqrt(POINTS - 1))
        walk = np.concatenate([np.zeros((m, 1)), np.cumsum(steps, axis=1)], axis=1)
        frac = np.linspace(0.0, 1.0, POINTS)[None, :]
        bridge = walk - frac * walk[:, -1:]
        logp = np.log(open_)[:, None] + frac * (np.log(close) - np.log(open_))[:, None] + bridge
        price = np.clip(grid(np.exp(logp)), lo[:, None], hi[:, None])
        price[:, 0] = open_
        price[:, -1] = np.clip(close, lo, hi)
        # volume: a base turnover per code, U-shaped over the day, in whole lots
        base = 2.0e8 * np.exp(_uniforms(keys, 7, 1)[:, 0] * 3 - 1.5)
        base = np.where(np.array([s.market == "指数" for s in secs]), base * 500, base)
        ref = np.array([s.ref_price for s in secs])
        day_shares = base / ref * np.exp(_normals(keys, salt + 3, 1)[:, 0] * 0.3)
        k = np.arange(POINTS - 1)[None, :]
        weights = (1 + 1.5 * np.exp(-k / 20) + np.exp(-(POINTS - 2 - k) / 20)) * np.exp(
            _normals(keys, salt + 4, POINTS - 1) * 0.4
        )
        lots = np.floor(day_shares[:, None] * 0.985 * weights / weights.sum(axis=1, keepdims=True) / 100)
        auction = np.maximum(np.floor(day_shares * 0.015 / 100), 1) * 100
        shares = lots * 100
        volume = auction[:, None] + np.concatenate([np.zeros((m, 1)), np.cumsum(shares, axis=1)], axis=1)
        minute_amount = shares * (price[:, :-1] + price[:, 1:]) / 2
        amount = (auction * open_)[:, None] + np.concatenate(
            [np.zeros((m, 1)), np.cumsum(minute_amount, axis=1)], axis=1
        )
        amount = np.round(amount, 2)
        return [
            DayPath(
                float(pre[i]),
                float(open_[i]),
                float(price[i, -1]),
                float(auction[i]),
                price[i],
                volume[i],
                amount[i],
                None if np.isnan(up[i]) else float(up[i]),
                None if np.isnan(down[i]) else float(down[i]),
            )
            for i in range(m)
        ]

    # --- snapshots ----------------------------------------------------------------------
    def served_day(self, now_ms: int) -> tuple[dt.date, int]:
        """(trading day whose data is served, time of day in ms) at market time ``now_ms``:
        before 09:15 and on non-trading days, the last session after its close."""
        local = now_ms + UTC_OFFSET_MS
        n, tod = divmod(local, DAY_MS)
        day = _fromnum(n)
        if is_trading_day(day) and tod >= AUCTION_OPEN:
            return day, tod
        return previous_trading_day(day), DAY_MS - 1

    def snapshot(self, code: str, now_ms: int) -> Snapshot | None:
        """The provider's snapshot of ``code`` at market time ``now_ms`` (None: not listed)."""
        return self.snapshots([code], now_ms)[0]

    def snapshots(self, codes: list[str], now_ms: int) -> list[Snapshot | None]:
        """The snapshots of ``codes`` at market time ``now_ms`` (None where a code is not listed)."""
        served, tod = self.served_day(now_ms)
        plan: list[tuple[SimSecurity, dt.date, int, int] | None] = []
        for code in codes:
            s = self.securities.get(code)
            if s is None:
                plan.append(None)
                continue
            phase = _h(s.code, "phase") % 3 * 1000
            stamp = (tod - phase) // SNAPSHOT_MS * SNAPSHOT_MS + phase
            day = served
            if stamp < AUCTION_OPEN:  # the first second(s) of a day, before this code's first snapshot
                day, stamp = previous_trading_day(served), DAY_MS - 1
            plan.append((s, day, stamp, phase))
        by_day: dict[dt.date, list[SimSecurity]] = {}
        for item in plan:
            if item is not None:
                by_day.setdefault(item[1], []).append(item[0])
        paths = {
            (day, s.code): p
            for day, secs in by_day.items()
            for s, p in zip(secs, self.paths(secs, day), strict=True)
        }
        return [
            None if item is None else _snap(item[0], paths[item[1], item[0].code], *item[1:]) for item in plan
        ]


def _snap(s: SimSecurity, p: DayPath, day: dt.date, stamp: int, phase: int) -> Snapshot:
    base = _daynum(day) * DAY_MS - UTC_OFFSET_MS
    if s.suspended:
        return Snapshot(s, base + min(stamp, AFTERNOON_CLOSE + phase), None, p.pre_close,
                        None, None, None, 0.0, 0.0, p.limit_up, p.limit_down)  # fmt: skip
    if stamp < AUCTION_MATCH:  # indicative auction price, no trade yet
        j = (stamp - AUCTION_OPEN) / (AUCTION_MATCH - AUCTION_OPEN)
        wobble = 0.002 * math.sin(stamp / 7000 + _unit(s.code))
        indicative = p.pre_close * math.exp(math.log(p.open / p.pre_close) * (0.3 + 0.7 * j) + wobble)
        lo = p.limit_down if p.limit_down is not None else 0.0
        hi = p.limit_up if p.limit_up is not None else math.inf
        price = min(max(round_tick(indicative, s.tick), lo), hi)
        return Snapshot(s, base + stamp, price, p.pre_close, None, None, None, 0.0, 0.0,
                        p.limit_up, p.limit_down)  # fmt: skip
    if stamp < MORNING_OPEN:  # the auction result, frozen until 09:30
        return Snapshot(s, base + AUCTION_MATCH + phase, p.open, p.pre_close, p.open, p.open,
                        p.open, p.auction_volume, round(p.auction_volume * p.open, 2),
                        p.limit_up, p.limit_down)  # fmt: skip
    if stamp < MORNING_CLOSE:
        point = (stamp - MORNING_OPEN) / MINUTE
    elif stamp < AFTERNOON_OPEN:
        point, stamp = 120.0, MORNING_CLOSE + phase
    elif stamp < AFTERNOON_CLOSE:
        point = 120 + (stamp - AFTERNOON_OPEN) / MINUTE
    else:
        point, stamp = 240.0, AFTERNOON_CLOSE + phase
    k = min(int(point), POINTS - 2)
    f = point - k
    price = round_tick(float(p.price[k] + (p.price[k + 1] - p.price[k]) * f), s.tick)
    volume = float(p.volume[k]) + math.floor(float(p.volume[k + 1] - p.volume[k]) * f / 100) * 100
    amount = round(float(p.amount[k] + (p.amount[k + 1] - p.amount[k]) * f), 2)
    seen = p.price[: k + 1]
    high = max(float(seen.max()), price)
    low = min(float(seen.min()), price)
    return Snapshot(s, base + stamp, price, p.pre_close, p.open, high, low, float(volume), amount,
                    p.limit_up, p.limit_down)  # fmt: skip
