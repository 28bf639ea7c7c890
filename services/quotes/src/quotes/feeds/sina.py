"""Sina Finance ``hq.sinajs.cn`` snapshots.

Request: ``GET https://hq.sinajs.cn/list=sh510300,sz159915`` with a ``Referer`` of
finance.sina.com.cn. Answer (GBK), one line per code::

    var hq_str_sh510300="沪深300ETF,3.870,3.868,3.905,3.912,3.866,3.904,3.905,843395628,
    3285234567.000,<10 bid/ask volume,price pairs...>,2024-05-10,15:00:03,00,";

Fields: 0 name, 1 open, 2 previous close, 3 price, 4 high, 5 low, 6 bid, 7 ask, 8 volume
(shares), 9 amount (yuan), 10–29 five bid and five ask levels, 30 date, 31 time. An unknown code
answers ``""``; a suspended one has price 0.
"""

from __future__ import annotations

import datetime as dt
import logging
import re

from marketbus.contracts import Tick
from quotes.feeds.base import Feed, FeedContext, make_tick
from quotes.feeds.poll import Provider, Request, create_poll_feed, prefixed, unprefixed, wall_ms

LINE = re.compile(r'var hq_str_(\w+)="([^"]*)";?')
log = logging.getLogger("quotes.sina")


class Sina(Provider):
    name = "sina"
    max_codes = 200

    def request(self, codes: list[str]) -> Request:
        return Request(
            url="https://hq.sinajs.cn/list=" + ",".join(prefixed(c) for c in codes),
            params={},
            headers={"Referer": "https://finance.sina.com.cn/"},
        )

    def parse(self, body: bytes, codes: list[str], day: dt.date | None = None) -> list[Tick]:
        text = body.decode("gbk", errors="replace")
        matches = LINE.findall(text)
        if not matches and text.strip():
            raise ValueError(f"not a sina hq answer: {text[:80]!r}")
        wanted = set(codes)
        stamp_day = None if day is None else f"{day:%Y-%m-%d}"
        ticks = []
        for symbol, payload in matches:
            if unprefixed(symbol) not in wanted:
                continue
            fields = payload.split(",")
            if len(fields) < 32:
                continue  # unknown code: empty payload
            try:
                price, volume = float(fields[3]), float(fields[8])
                if price <= 0:
                    continue  # suspended, or no trade yet
                if stamp_day is not None and fields[30] != stamp_day:
                    continue  # another day's snapshot
                ticks.append(
                    make_tick(
                        unprefixed(symbol),
                        wall_ms(fields[30], fields[31]),
                        price,
                        volume,
                        float(fields[9]),
                        open=float(fields[1]) or None,
                        high=float(fields[4]) or None,
                        low=float(fields[5]) or None,
                        pre_close=float(fields[2]) or None,
                    )
                )
            except ValueError as exc:
                log.warning("sina: skipping the row of %s: %s", symbol, exc)
        return ticks


def create(ctx: FeedContext) -> Feed:
    return create_poll_feed(ctx, [Sina()])
