"""The whole market from eastmoney's list endpoint (``clist``), as akshare and efinance read it.

``GET https://push2.eastmoney.com/api/qt/clist/get?pn=1&pz=100&po=0&np=1&fltt=2&invt=2&fid=f12
&fs=...&fields=f12,f13,f14,f26`` answers one page::

    {"rc":0,"data":{"total":5432,"diff":[{"f12":"000001","f13":0,"f14":"平安银行","f26":19910403},...]}}

``pn`` is the page (from 1), ``pz`` the page size (the server gives at most 100 rows whatever is
asked, so the page count is ``ceil(total / len(first page))``), ``po=0`` ascending, ``fid=f12``
sorts by code (a stable order while paging; the default, f3, moves with the prices), ``np=1``
makes ``diff`` a list. Past the last page ``data`` is null. Fields: f12 code, f13 market (1
Shanghai, 0 Shenzhen and Beijing), f14 name, f26 listing date (YYYYMMDD, ``"-"`` when unknown).

Filters (``fs``): A-shares ``m:0 t:6`` (SZ main), ``m:0 t:80`` (ChiNext), ``m:1 t:2`` (SH main),
``m:1 t:23`` (STAR), ``m:0 t:81 s:2048`` (Beijing); ETFs ``b:MK0021,b:MK0022,b:MK0023,b:MK0024``;
LOFs ``b:MK0404,b:MK0405,b:MK0406,b:MK0407``; single securities ``i:1.000001`` (the indices).
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass

import httpx
import orjson
from pydantic import ValidationError

from marketbus.contracts import Security
from quotes.feeds.poll import USER_AGENT, rebase

log = logging.getLogger("quotes.listing")

CLIST_URL = "https://push2.eastmoney.com/api/qt/clist/get"
PAGE_SIZE = 100
PAGE_CONCURRENCY = 4
MAX_PAGES = 200
INDICES: dict[str, str] = {
    "000001.SH": "上证指数",
    "399001.SZ": "深证成指",
    "399006.SZ": "创业板指",
    "000300.SH": "沪深300",
    "000905.SH": "中证500",
    "000688.SH": "科创50",
}


@dataclass(frozen=True, slots=True)
class Group:
    name: str
    fs: str
    kind: str  # "stock" (board from the code), "ETF", "LOF", "指数"


def _index_secid(code: str) -> str:
    num, _, exchange = code.partition(".")
    return f"{1 if exchange == 'SH' else 0}.{num}"


GROUPS = (
    Group("A-shares", "m:0 t:6,m:0 t:80,m:1 t:2,m:1 t:23,m:0 t:81 s:2048", "stock"),
    Group("ETFs", "b:MK0021,b:MK0022,b:MK0023,b:MK0024", "ETF"),
    Group("LOFs", "b:MK0404,b:MK0405,b:MK0406,b:MK0407", "LOF"),
    Group("indices", ",".join(f"i:{_index_secid(c)}" for c in INDICES), "指数"),
)


def board(code: str) -> str:
    """The board of an A-share code (SH主板, SZ主板, 创业板, 科创板, 北交所)."""
    num, _, exchange = code.partition(".")
    if exchange == "BJ":
        return "北交所"
    if exchange == "SH":
        return "科创板" if num.startswith(("688", "689")) else "SH主板"
    return "创业板" if num.startswith(("300", "301")) else "SZ主板"


def code_of(num: str, market: object) -> str:
    """eastmoney (f12, f13) -> tushare code: market 1 is Shanghai; market 0 is Shenzhen, or Beijing
    for its numbers (920xxx since October 2025, 43/83/87xxxx before)."""
    if market == 1:
        return f"{num}.SH"
    if market == 0:
        return f"{num}.BJ" if num.startswith(("92", "43", "83", "87")) else f"{num}.SZ"
    raise ValueError(f"market f13={market!r} is neither 0 nor 1")


def parse_page(body: bytes, group: Group, page: int) -> tuple[int, list[Security], list[str]]:
    """(total rows of the query, the page's securities, the page's bad rows, each described with
    its group, page and row). Raises ValueError when the body is not a clist answer."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"clist {group.name} page {page}: not JSON: {exc}") from None
    if not isinstance(doc, dict) or "data" not in doc:
        raise ValueError(f"clist {group.name} page {page}: not a clist answer: {body[:80]!r}")
    data = doc["data"]
    if data is None:
        return 0, [], []
    if not isinstance(data, dict):
        raise ValueError(f"clist {group.name} page {page}: data is {type(data).__name__}")
    diff = data.get("diff") or []
    rows = list(diff.values()) if isinstance(diff, dict) else diff
    total = data.get("total")
    if not isinstance(rows, list) or not isinstance(total, int):
        raise ValueError(f"clist {group.name} page {page}: no diff list or total")
    out: list[Security] = []
    bad: list[str] = []
    for i, row in enumerate(rows, start=1):
        where = f"clist {group.name} page {page} row {i}"
        try:
            if not isinstance(row, dict):
                raise ValueError(f"row is {type(row).__name__}, not an object")
            num, name = row.get("f12"), row.get("f14")
            if not (isinstance(num, str) and len(num) == 6 and num.isdigit()):
                raise ValueError(f"code f12={num!r} is not six digits")
            if not (isinstance(name, str) and name.strip()):
                raise ValueError(f"name f14={name!r} is empty")
            code = code_of(num, row.get("f13"))
            market = board(code) if group.kind == "stock" else group.kind
            listed = row.get("f26")
            list_date = str(listed) if isinstance(listed, int) and 19000101 <= listed <= 29991231 else None
            out.append(Security(code=code, name=name.strip(), market=market, list_date=list_date))
        except (ValueError, ValidationError) as exc:
            reason = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
            bad.append(f"{where}: {reason}: {row!r}"[:300])
    return total, out, bad


def _params(group: Group, page: int) -> dict[str, str]:
    return {
        "pn": str(page), "pz": str(PAGE_SIZE), "po": "0", "np": "1", "fltt": "2", "invt": "2",
        "fid": "f12", "fs": group.fs, "fields": "f12,f13,f14,f26",
    }  # fmt: skip


async def _page(
    http: httpx.AsyncClient, url: str, group: Group, page: int
) -> tuple[int, list[Security], list[str]]:
    response = await http.get(
        url, params=_params(group, page),
        headers={"Referer": "https://quote.eastmoney.com/", "User-Agent": USER_AGENT},
    )  # fmt: skip
    response.raise_for_status()
    return parse_page(response.content, group, page)


async def fetch_group(
    http: httpx.AsyncClient, base_url: str | None, group: Group
) -> tuple[list[Security], list[str]]:
    """Every page of one group: the first, then the rest concurrently (bounded)."""
    url = rebase(CLIST_URL, base_url)
    total, first, bad = await _page(http, url, group, 1)
    if not first:
        return [], bad
    pages = min(math.ceil(total / len(first)), MAX_PAGES)
    limit = asyncio.Semaphore(PAGE_CONCURRENCY)

    async def one(page: int) -> tuple[int, list[Security], list[str]]:
        async with limit:
            return await _page(http, url, group, page)

    rest = await asyncio.gather(*(one(p) for p in range(2, pages + 1)))
    out = list(first)
    for _total, securities, problems in rest:
        out.extend(securities)
        bad.extend(problems)
    return out, bad


async def fetch_universe(http: httpx.AsyncClient, base_url: str | None) -> list[Security]:
    """Every listed A-share (SH, SZ, BJ), ETF, LOF and the main indices from eastmoney's list
    endpoint (``base_url`` replaces its host, e.g. the provider simulator). A bad row is logged
    with its group, page and row and skipped; a failed page raises (``httpx.HTTPError`` or
    ``ValueError``): a partial list must never replace the stored universe."""
    found: dict[str, Security] = {}
    problems: list[str] = []
    for group in GROUPS:
        securities, bad = await fetch_group(http, base_url, group)
        problems.extend(bad)
        for security in securities:
            found.setdefault(security.code, security)  # an ETF listed in two boards counts once
    for problem in problems:
        log.warning("universe: skipped %s", problem)
    return list(found.values())
