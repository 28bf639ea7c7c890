"""Tencent ``qt.gtimg.cn`` snapshots.

Request: ``GET https://qt.gtimg.cn/q=sh510300,sz159915``. Answer (GBK), one line per code,
fields separated by ``~``::

    v_sh510300="1~沪深300ETF~510300~3.905~3.868~3.870~8433956~4200000~4233956~...
    ~20240510150003~0.037~0.96~3.912~3.866~3.905/8433956/3285234567~8433956~328523~0.52~...";

Fields: 1 name, 2 code, 3 price, 4 previous close, 5 open, 6 volume (lots of 100 shares),
30 time (yyyymmddHHMMSS), 31 change, 32 change %, 33 high, 34 low,
35 ``price/volume(lots)/amount(yuan)``, 36 volume (lots), 37 amount (10k yuan), 38 turnover %.
An unknown code answers ``v_pv_none_match="1";``.
"""

from __future__ import annotations

import re

from marketbus.contracts import Tick
from quotes.feeds.base import Feed, FeedContext, make_tick
from quotes.feeds.poll import Provider, Request, create_poll_feed, prefixed, unprefixed, wall_ms

LINE = re.compile(r'v_(\w+)="([^"]*)";?')
SHARES_PER_LOT = 100


class Tencent(Provider):
    name = "tencent"
    max_codes = 60

    def request(self, codes: list[str]) -> Request:
        return Request(
            url="https://qt.gtimg.cn/q=" + ",".join(prefixed(c) for c in codes),
            params={},
            headers={},
        )

    def parse(self, body: bytes, codes: list[str]) -> list[Tick]:
        text = body.decode("gbk", errors="replace")
        matches = LINE.findall(text)
        if not matches and text.strip():
            raise ValueError(f"not a tencent qt answer: {text[:80]!r}")
        wanted = set(codes)
        ticks = []
        for symbol, payload in matches:
            if unprefixed(symbol) not in wanted:
                continue
            fields = payload.split("~")
            if len(fields) < 39 or symbol[:2] not in ("sh", "sz", "bj"):
                continue  # v_pv_none_match and the like
            price = float(fields[3])
            if price <= 0:
                continue
            amount = (
                float(fields[35].split("/")[2])
                if fields[35].count("/") >= 2
                else (float(fields[37]) * 10_000)
            )
            turnover = float(fields[38]) if fields[38] else None
            ticks.append(
                make_tick(
                    unprefixed(symbol),
                    wall_ms(fields[30][:8], fields[30][8:14]),
                    price,
                    float(fields[6]) * SHARES_PER_LOT,
                    amount,
                    open=float(fields[5]) or None,
                    high=float(fields[33]) or None,
                    low=float(fields[34]) or None,
                    pre_close=float(fields[4]) or None,
                    turnover=turnover,
                )
            )
        return ticks


def create(ctx: FeedContext) -> Feed:
    return create_poll_feed(ctx, [Tencent()])
