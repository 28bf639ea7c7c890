"""Tencent ``qt.gtimg.cn`` snapshots.

Request: ``GET https://qt.gtimg.cn/q=sh510300,sz159915``. Answer (GBK), one line per code,
fields separated by ``~``::

    v_sh510300="1~沪深300ETF~510300~3.905~3.868~3.870~8433956~4200000~4233956~...
    ~20240510150003~0.037~0.96~3.912~3.866~3.905/8433956/3285234567~8433956~328523~0.52~...";

Fields (as easyquotation's tencent parser reads them): 0 market, 1 name, 2 code, 3 price,
4 previous close, 5 open, 6 volume, 7 outer, 8 inner, 9-28 five bid and five ask levels,
30 time (yyyymmddHHMMSS), 31 change, 32 change %, 33 high, 34 low,
35 ``price/volume/amount(yuan)``, 36 volume, 37 amount (10k yuan), 38 turnover %, 47/48 the
limit prices. Volumes are in lots of 100 shares, except STAR Market codes (688xxx, 689xxx), which
tencent gives in shares.

Not ticks: ``v_pv_none_match="1";`` (a code it never knew), and the placeholder rows it answers
for delisted, old or suspended codes: the previous close as the price, every other number 0,
stamped 09:00:00; nor any row dated another day than the snapshot's trading day.
"""

from __future__ import annotations

import datetime as dt
import logging
import re

from marketbus.contracts import Tick
from quotes.feeds.base import Feed, FeedContext, make_tick
from quotes.feeds.poll import Provider, Request, create_poll_feed, prefixed, unprefixed, wall_ms

LINE = re.compile(r'v_(\w+)="([^"]*)";?')
SHARES_PER_LOT = 100
log = logging.getLogger("quotes.tencent")


def is_star(symbol: str) -> bool:
    """STAR Market (科创板) codes: tencent reports their volume in shares."""
    return symbol.startswith(("sh688", "sh689"))


def is_placeholder(fields: list[str]) -> bool:
    """The row tencent answers for a code with no trading: price = previous close, volume,
    amount, open, high and low 0, stamped 09:00:00."""
    return (
        float(fields[3]) == float(fields[4])
        and float(fields[6]) == 0
        and float(fields[5] or 0) == 0
        and float(fields[33] or 0) == 0
        and float(fields[34] or 0) == 0
        and fields[30][8:14] == "090000"
    )


class Tencent(Provider):
    name = "tencent"
    max_codes = 60

    def request(self, codes: list[str]) -> Request:
        return Request(
            url="https://qt.gtimg.cn/q=" + ",".join(prefixed(c) for c in codes),
            params={},
            headers={},
        )

    def parse(self, body: bytes, codes: list[str], day: dt.date | None = None) -> list[Tick]:
        text = body.decode("gbk", errors="replace")
        matches = LINE.findall(text)
        if not matches and text.strip():
            raise ValueError(f"not a tencent qt answer: {text[:80]!r}")
        wanted = set(codes)
        stamp_day = None if day is None else f"{day:%Y%m%d}"
        ticks = []
        for symbol, payload in matches:
            if unprefixed(symbol) not in wanted:
                continue
            fields = payload.split("~")
            if len(fields) < 39 or symbol[:2] not in ("sh", "sz", "bj"):
                continue  # v_pv_none_match and the like
            try:
                price = float(fields[3])
                if price <= 0 or is_placeholder(fields):
                    continue
                if stamp_day is not None and fields[30][:8] != stamp_day:
                    continue  # an old code's row, or yesterday's snapshot
                unit = 1 if is_star(symbol) else SHARES_PER_LOT
                parts = fields[35].split("/")
                amount = float(parts[2]) if len(parts) >= 3 else float(fields[37]) * 10_000
                turnover = float(fields[38]) if fields[38] else None
                ticks.append(
                    make_tick(
                        unprefixed(symbol),
                        wall_ms(fields[30][:8], fields[30][8:14]),
                        price,
                        float(fields[6]) * unit,
                        amount,
                        open=float(fields[5]) or None,
                        high=float(fields[33]) or None,
                        low=float(fields[34]) or None,
                        pre_close=float(fields[4]) or None,
                        turnover=turnover,
                    )
                )
            except ValueError as exc:
                log.warning("tencent: skipping the row of %s: %s", symbol, exc)
        return ticks


def create(ctx: FeedContext) -> Feed:
    return create_poll_feed(ctx, [Tencent()])
