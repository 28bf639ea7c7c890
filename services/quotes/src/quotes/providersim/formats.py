"""The providers' answer formats, as pure functions of snapshots (the simulator's wire side).

- eastmoney ``ulist.np`` and ``clist`` (JSON, ``fltt=2``: prices as yuan floats, ``"-"`` where a
  value does not exist, volume in lots of 100 shares, amount in yuan, ``f124`` epoch seconds);
- sina ``hq.sinajs.cn/list=`` (GBK, ``var hq_str_sh600000="..."``; ``""`` for an unknown code);
- tencent ``qt.gtimg.cn/q=`` (GBK, ``~``-separated; volume in lots except STAR 688/689 in shares;
  ``v_pv_none_match="1"`` for a code it never knew, a placeholder row for a delisted or
  suspended one).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson

from marketbus.sessions import from_ms
from quotes.providersim.market import SimSecurity, Snapshot

SHARES_PER_LOT = 100
DASH = "-"


def secid(code: str) -> str:
    """510300.SH -> 1.510300 (eastmoney: market 1 Shanghai, 0 Shenzhen and Beijing)."""
    num, _, exchange = code.partition(".")
    return f"{1 if exchange == 'SH' else 0}.{num}"


def code_of_secid(value: str) -> list[str]:
    """1.510300 -> [510300.SH]; 0.xxxxxx -> the SZ and BJ codes it may name."""
    market, _, num = value.partition(".")
    if market == "1":
        return [f"{num}.SH"]
    return [f"{num}.SZ", f"{num}.BJ"]


def prefixed(code: str) -> str:
    num, _, exchange = code.partition(".")
    return exchange.lower() + num


def unprefixed(symbol: str) -> str | None:
    if len(symbol) != 8 or symbol[:2] not in ("sh", "sz", "bj") or not symbol[2:].isdigit():
        return None
    return f"{symbol[2:]}.{symbol[:2].upper()}"


def _r(value: float | None, tick: float) -> float | str:
    if value is None:
        return DASH
    return round(value, 3 if tick < 0.005 else 2)


def em_fields(snap: Snapshot | None, security: SimSecurity) -> dict[str, Any]:
    """Every eastmoney field the simulator knows for one code (``snap`` None: no market data)."""
    tick = security.tick
    row: dict[str, Any] = {
        "f12": security.code.partition(".")[0],
        "f13": 1 if security.code.endswith(".SH") else 0,
        "f14": security.name,
        "f26": int(security.list_date) if security.list_date else DASH,
    }
    if snap is None:
        return row
    price = snap.price
    traded = price is not None and snap.open is not None
    change = None if price is None else price - snap.pre_close
    row.update(
        f2=_r(price, tick),
        f3=DASH if change is None else round(change / snap.pre_close * 100, 2),
        f4=_r(change, tick),
        f5=round(snap.volume / SHARES_PER_LOT) if price is not None else DASH,
        f6=round(snap.amount, 2) if price is not None else DASH,
        f8=round(snap.volume / (_float_shares(security)) * 100, 2) if price is not None else DASH,
        f15=_r(snap.high, tick) if traded else DASH,
        f16=_r(snap.low, tick) if traded else DASH,
        f17=_r(snap.open, tick) if traded else DASH,
        f18=_r(snap.pre_close, tick),
        f124=snap.ts // 1000,
    )
    return row


def _float_shares(security: SimSecurity) -> float:
    return max(2.0e9 / max(security.ref_price, 0.01), 1.0)


def em_answer(rows: list[dict[str, Any]] | dict[str, dict[str, Any]] | None, total: int) -> bytes:
    doc = {"rc": 0, "rt": 11, "svr": 181669, "lt": 1, "full": 1, "dlmkts": "",
           "data": None if rows is None else {"total": total, "diff": rows}}  # fmt: skip
    return orjson.dumps(doc)


def pick(row: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    """The requested fields of a row, in the request's order (unknown fields answer "-")."""
    return {f: row.get(f, DASH) for f in fields}


def _day(ts: int) -> tuple[str, str]:
    at = from_ms(ts)
    return f"{at:%Y-%m-%d}", f"{at:%H:%M:%S}"


def sina_line(symbol: str, snap: Snapshot | None) -> str:
    """One sina line; prices with three decimals, volume in shares, amount in yuan."""
    if snap is None:
        return f'var hq_str_{symbol}="";'
    s = snap.security
    tick = s.tick
    date, clock = _day(snap.ts)
    if snap.price is None:  # suspended: zeros, status 03
        fields = [s.name, "0.000", f"{snap.pre_close:.3f}", *["0.000"] * 5, "0", "0.000"]
        fields += ["0", "0.000"] * 10 + [date, clock, "03"]
        return f'var hq_str_{symbol}="{",".join(fields)},";'
    traded = snap.open is not None
    price = snap.price
    levels = []
    for i in range(5):
        levels += [str((i + 1) * 100), "%.3f" % (price - (i + 1) * tick)]
    for i in range(5):
        levels += [str((i + 1) * 100), "%.3f" % (price + i * tick)]
    fields = [
        s.name,
        f"{snap.open:.3f}" if traded and snap.open is not None else "0.000",
        f"{snap.pre_close:.3f}",
        f"{price:.3f}",
        f"{snap.high:.3f}" if traded and snap.high is not None else "0.000",
        f"{snap.low:.3f}" if traded and snap.low is not None else "0.000",
        f"{price - tick:.3f}",
        f"{price:.3f}",
        f"{round(snap.volume)}",
        f"{snap.amount:.3f}",
        *levels,
        date,
        clock,
        "00",
    ]
    return f'var hq_str_{symbol}="{",".join(fields)},";'


def _tencent_market(code: str) -> str:
    return {"SH": "1", "SZ": "51", "BJ": "62"}[code[-2:]]


def star(code: str) -> bool:
    return code.endswith(".SH") and code.startswith(("688", "689"))


def tencent_placeholder(symbol: str, security: SimSecurity, pre_close: float, day: dt.date) -> str:
    """What tencent answers for a delisted or suspended code: the previous close as the price,
    every other number 0, stamped 09:00:00."""
    f = "%.3f" if security.tick < 0.005 else "%.2f"
    fields = ["0"] * 50
    fields[0] = _tencent_market(security.code)
    fields[1] = security.name
    fields[2] = security.code[:6]
    fields[3] = fields[4] = f % pre_close
    fields[5] = "0.00"
    fields[29] = ""
    fields[30] = f"{day:%Y%m%d}090000"
    fields[35] = f"{f % pre_close}/0/0"
    fields[38] = fields[39] = ""
    return f'v_{symbol}="{"~".join(fields)}";'


def tencent_line(symbol: str, snap: Snapshot | None) -> str:
    if snap is None:
        return 'v_pv_none_match="1";'
    s = snap.security
    if snap.price is None:
        return tencent_placeholder(symbol, s, snap.pre_close, from_ms(snap.ts).date())
    tick = s.tick
    f = "%.3f" if tick < 0.005 else "%.2f"
    unit = 1 if star(s.code) else SHARES_PER_LOT
    lots = round(snap.volume / unit)
    volume = str(lots)
    traded = snap.open is not None
    price = snap.price
    change = price - snap.pre_close
    at = from_ms(snap.ts)
    fields = ["0"] * 53
    fields[0] = _tencent_market(s.code)
    fields[1] = s.name
    fields[2] = s.code[:6]
    fields[3] = f % price
    fields[4] = f % snap.pre_close
    fields[5] = f % snap.open if traded and snap.open is not None else "0.00"
    fields[6] = volume
    fields[7] = str(lots // 2)
    fields[8] = str(lots - lots // 2)
    for i in range(5):
        fields[9 + 2 * i] = f % (price - (i + 1) * tick)
        fields[10 + 2 * i] = str((i + 1) * 10)
        fields[19 + 2 * i] = f % (price + i * tick)
        fields[20 + 2 * i] = str((i + 1) * 10)
    fields[29] = ""
    fields[30] = f"{at:%Y%m%d%H%M%S}"
    fields[31] = f % change
    fields[32] = "%.2f" % (change / snap.pre_close * 100)
    fields[33] = f % snap.high if traded and snap.high is not None else "0.00"
    fields[34] = f % snap.low if traded and snap.low is not None else "0.00"
    fields[35] = f"{f % price}/{volume}/{snap.amount:.0f}"
    fields[36] = volume
    fields[37] = "%.0f" % (snap.amount / 10_000)
    fields[38] = "%.2f" % (snap.volume / _float_shares(s) * 100)
    fields[39] = "15.20"
    fields[40] = ""
    fields[41] = fields[33]
    fields[42] = fields[34]
    fields[43] = "0.00"
    fields[47] = f % snap.limit_up if snap.limit_up is not None else ""
    fields[48] = f % snap.limit_down if snap.limit_down is not None else ""
    return f'v_{symbol}="{"~".join(fields)}";'
