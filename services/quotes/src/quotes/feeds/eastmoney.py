"""Eastmoney ``push2`` snapshots (the ``ulist.np`` list endpoint).

Request: ``GET https://push2.eastmoney.com/api/qt/ulist.np/get?fltt=2&secids=1.510300,0.159915
&fields=f2,f3,f5,f6,f8,f12,f13,f14,f15,f16,f17,f18,f124``. ``secid`` = market.code with market 1
for Shanghai and 0 for Shenzhen and Beijing. ``fltt=2`` returns prices as yuan floats. Answer::

    {"rc":0,"rt":11,"svr":181669,"lt":1,"full":1,"dlmkts":"",
     "data":{"total":2,"diff":[{"f2":3.905,"f3":0.96,"f5":8433956,"f6":3285234567.0,"f8":0.52,
       "f12":"510300","f13":1,"f14":"沪深300ETF","f15":3.912,"f16":3.866,"f17":3.87,
       "f18":3.868,"f124":1715324403}, ...]}}

Fields: f2 price, f3 change %, f5 volume (lots of 100 shares), f6 amount (yuan), f8 turnover %,
f12 code, f13 market, f14 name, f15 high, f16 low, f17 open, f18 previous close, f124 update
time (epoch seconds). A suspended code shows ``"-"``; ``diff`` may come as an object keyed
"0", "1", ... instead of a list; an answer with no known code has ``"data": null``. The list
endpoint (``clist``) is read by :mod:`quotes.feeds.listing`.
"""

from __future__ import annotations

import datetime as dt

import orjson

from marketbus.contracts import Tick
from marketbus.sessions import trading_date
from quotes.feeds.base import Feed, FeedContext, make_tick
from quotes.feeds.poll import Provider, Request, create_poll_feed

FIELDS = "f2,f3,f5,f6,f8,f12,f13,f14,f15,f16,f17,f18,f124"
SHARES_PER_LOT = 100


def secid(code: str) -> str:
    num, _, exchange = code.partition(".")
    return f"{1 if exchange == 'SH' else 0}.{num}"


def _num(value: object) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None  # "-": suspended or not yet traded


class EastMoney(Provider):
    name = "eastmoney"
    max_codes = 200
    url = "https://push2.eastmoney.com/api/qt/ulist.np/get"

    def request(self, codes: list[str]) -> Request:
        return Request(
            url=self.url,
            params={
                "fltt": "2",
                "invt": "2",
                "secids": ",".join(secid(c) for c in codes),
                "fields": FIELDS,
            },
            headers={"Referer": "https://quote.eastmoney.com/"},
        )

    def parse(self, body: bytes, codes: list[str], day: dt.date | None = None) -> list[Tick]:
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"not JSON: {exc}") from None
        if not isinstance(doc, dict) or "data" not in doc:
            raise ValueError(f"not an eastmoney answer: {body[:80]!r}")
        data = doc["data"] or {}
        if not isinstance(data, dict):
            raise ValueError(f"not an eastmoney answer: data is {type(data).__name__}")
        diff = data.get("diff") or []
        if not isinstance(diff, (dict, list)):
            raise ValueError(f"not an eastmoney answer: diff is {type(diff).__name__}")
        rows = list(diff.values()) if isinstance(diff, dict) else list(diff)
        by_secid = {secid(c): c for c in codes}
        ticks = []
        for row in rows:
            if not isinstance(row, dict):
                continue
            code = by_secid.get(f"{row.get('f13')}.{row.get('f12')}")
            price, volume, amount = _num(row.get("f2")), _num(row.get("f5")), _num(row.get("f6"))
            stamp = _num(row.get("f124"))
            if code is None or price is None or price <= 0 or volume is None or stamp is None:
                continue
            if not 0 <= stamp < 1e11 or (day is not None and trading_date(int(stamp * 1000)) != day):
                continue  # another day's snapshot (before the day's first one, or stale)
            ticks.append(
                make_tick(
                    code,
                    int(stamp * 1000),
                    price,
                    volume * SHARES_PER_LOT,
                    amount or 0.0,
                    open=_num(row.get("f17")),
                    high=_num(row.get("f15")),
                    low=_num(row.get("f16")),
                    pre_close=_num(row.get("f18")),
                    turnover=_num(row.get("f8")),
                )
            )
        return ticks


def create(ctx: FeedContext) -> Feed:
    return create_poll_feed(ctx, [EastMoney()])
