"""The simulator's HTTP side: a bare ASGI app serving the providers' paths and the control endpoints.

Provider paths (answered from :class:`~quotes.providersim.market.Market` at the market clock):

- ``GET /api/qt/clist/get`` eastmoney's list endpoint: ``pn`` (page, from 1), ``pz`` (page size,
  at most 100 as the real server), ``po`` (1 descending, 0 ascending), ``np`` (1: ``diff`` a list,
  otherwise an object keyed "0", "1", ...), ``fid`` (sort field, default f3), ``fs`` (filters:
  ``m:0 t:6`` SZ main, ``m:0 t:80`` ChiNext, ``m:1 t:2`` SH main, ``m:1 t:23`` STAR,
  ``m:0 t:81 s:2048`` Beijing, ``b:MK0021``-``b:MK0024`` ETFs, ``b:MK0404``-``b:MK0407`` LOFs,
  ``m:1 s:2`` / ``m:0 t:5`` indices, ``i:1.000001`` one security), ``fields``; past the last page
  ``data`` is null;
- ``GET /api/qt/ulist.np/get?secids=1.600000,0.000001&fields=...`` eastmoney snapshots;
- ``GET /list=sh600000,sz000001`` sina; ``GET /q=sh600000,sz000001`` tencent.

Control (JSON bodies; a bad body answers 400 with the reason):

- ``POST /_control/list`` ``{"code", "name"?, "market"?, "price"?, "list_date"?}``;
  ``POST /_control/delist`` ``{"code"}``; ``POST /_control/suspend`` ``{"code", "suspended"?}``;
- ``POST /_control/fault`` ``{"provider": eastmoney|sina|tencent, "kind": timeout|status|garbage|
  slow, "count"?: K (next K matching requests; default: until cleared), "code"?: only requests
  naming that code, "path"?: only that path (e.g. /api/qt/clist/get), "status"?: 503,
  "seconds"?: N}``. ``timeout`` holds the request until the client gives up (or ``seconds``,
  default 60); ``slow`` answers normally after ``seconds``; both end early on
  ``POST /_control/release``. ``POST /_control/clear`` drops every fault;
- ``POST /_control/plant`` ``{"code", "at": market epoch ms or "YYYY-MM-DDTHH:MM:SS" (Asia/
  Shanghai), "count"?: K (default 1), "shift_s"?: seconds added to the provider's stamp,
  "price"?, "open"?, "high"?, "low"?, "volume"? (shares), "amount"?}``: the next K snapshots of
  that code served by a snapshot endpoint (eastmoney ulist, sina, tencent; not the list endpoint)
  at or after market time ``at`` carry the overrides, e.g. a future stamp or a price outside the
  band. ``GET /_control/planted`` answers each plant (``pending``: snapshots still to alter) and
  every altered snapshot exactly as it was served (``served``: code, provider, market time,
  stamp, price, volume, ...), so a test knows what it planted;
- ``POST /_control/clock`` ``{"clock": "2026-11-20T14:59:40@1796192372.172x20"}`` (as
  ``MARKETBUS_MARKET_CLOCK``) sets the market clock from now on (a test anchors it once the
  simulator is up, and gives the same value to the processes it starts);
- ``GET /_control/counters`` requests served per provider and path, and faults applied
  (``?reset=1`` zeroes them); ``GET /_control/health`` the market time and the number of codes;
  ``GET /_control/listing`` every listed security and the suspended codes.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import math
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qs, unquote

import orjson

from marketbus.clock import parse_clock
from marketbus.contracts import CODE_RE
from marketbus.sessions import from_ms, to_ms
from quotes.boards import market_of
from quotes.providersim import formats
from quotes.providersim.market import Market, SimSecurity, Snapshot

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

PROVIDERS = ("eastmoney", "sina", "tencent")
KINDS = ("timeout", "status", "garbage", "slow")
CLIST = "/api/qt/clist/get"
ULIST = "/api/qt/ulist.np/get"
MAX_PAGE = 100
GARBAGE = b"<html><body>\xff\xfe 502 upstream garbage \x00</body></html>"


class BadRequest(ValueError):
    pass


@dataclass
class Fault:
    provider: str
    kind: str
    count: int | None = None
    code: str | None = None
    path: str | None = None
    status: int = 503
    seconds: float = 60.0

    def matches(self, provider: str, path: str, codes: set[str]) -> bool:
        if self.provider != provider or (self.count is not None and self.count <= 0):
            return False
        if self.path is not None and self.path != path:
            return False
        return self.code is None or self.code in codes


def parse_fault(doc: dict[str, Any]) -> Fault:
    provider, kind = doc.get("provider"), doc.get("kind")
    if provider not in PROVIDERS:
        raise BadRequest(f"provider {provider!r} is not one of {', '.join(PROVIDERS)}")
    if kind not in KINDS:
        raise BadRequest(f"kind {kind!r} is not one of {', '.join(KINDS)}")
    count = doc.get("count")
    if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 1):
        raise BadRequest(f"count {count!r} must be a positive integer")
    code = doc.get("code")
    if code is not None and not (isinstance(code, str) and CODE_RE.match(code)):
        raise BadRequest(f"code {code!r} is not like 600000.SH")
    status = doc.get("status", 503)
    if not isinstance(status, int) or not 400 <= status <= 599:
        raise BadRequest(f"status {status!r} must be an HTTP error status (400-599)")
    seconds = doc.get("seconds", 60.0)
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not 0 <= seconds <= 3600:
        raise BadRequest(f"seconds {seconds!r} must be a number from 0 to 3600")
    path = doc.get("path")
    if path is not None and path not in (CLIST, ULIST, "/list=", "/q="):
        raise BadRequest(f"path {path!r} is not one of {CLIST}, {ULIST}, /list=, /q=")
    return Fault(provider, kind, count, code, path, status, float(seconds))


PLANT_FIELDS = ("price", "open", "high", "low", "volume", "amount")


@dataclass
class Plant:
    """Overrides for the next ``count`` snapshots of ``code`` served at or after market time ``at``."""

    id: int
    code: str
    at: int
    count: int
    shift_s: float = 0.0
    fields: dict[str, float] | None = None

    def apply(self, snap: Snapshot) -> Snapshot:
        self.count -= 1
        return replace(snap, ts=snap.ts + round(self.shift_s * 1000), **(self.fields or {}))

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "code": self.code, "at": self.at, "pending": self.count,
                "shift_s": self.shift_s, **(self.fields or {})}  # fmt: skip


def _number(doc: dict[str, Any], name: str, low: float, high: float) -> float:
    value = doc[name]
    if (
        not isinstance(value, (int, float))
        or isinstance(value, bool)
        or not (math.isfinite(value) and low <= value <= high)
    ):
        raise BadRequest(f"{name} {value!r} must be a number from {low:g} to {high:g}")
    return float(value)


def parse_plant(doc: dict[str, Any], plant_id: int) -> Plant:
    unknown = sorted(set(doc) - {"code", "at", "count", "shift_s", *PLANT_FIELDS})
    if unknown:
        raise BadRequest(f"unknown plant field(s) {', '.join(unknown)} (known: code, at, count, shift_s, "
                         f"{', '.join(PLANT_FIELDS)})")  # fmt: skip
    code = doc.get("code")
    if not (isinstance(code, str) and CODE_RE.match(code)):
        raise BadRequest(f"code {code!r} is not like 600000.SH")
    at = doc.get("at")
    if isinstance(at, str):
        try:
            at = to_ms(dt.datetime.fromisoformat(at))
        except ValueError:
            raise BadRequest(f"at {at!r} is not YYYY-MM-DDTHH:MM:SS (Asia/Shanghai)") from None
    elif not isinstance(at, int) or isinstance(at, bool) or at < 0:
        raise BadRequest(f"at {at!r} must be market epoch ms or YYYY-MM-DDTHH:MM:SS")
    count = doc.get("count", 1)
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise BadRequest(f"count {count!r} must be a positive integer")
    shift = _number(doc, "shift_s", -86_400.0, 86_400.0) if "shift_s" in doc else 0.0
    fields = {name: _number(doc, name, 0.0, 1e15) for name in PLANT_FIELDS if name in doc}
    if not fields and shift == 0:
        raise BadRequest(f"a plant needs shift_s or at least one of {', '.join(PLANT_FIELDS)}")
    return Plant(plant_id, code, at, count, shift, fields)


def served_json(plant: Plant, provider: str, now: int, snap: Snapshot) -> dict[str, Any]:
    return {"plant": plant.id, "code": snap.code, "provider": provider, "served_at": now,
            "served_at_local": f"{from_ms(now):%Y-%m-%d %H:%M:%S}", "ts": snap.ts,
            "ts_local": f"{from_ms(snap.ts):%Y-%m-%d %H:%M:%S}", "price": snap.price,
            "open": snap.open, "high": snap.high, "low": snap.low, "volume": snap.volume,
            "amount": snap.amount, "pre_close": snap.pre_close}  # fmt: skip


# --- eastmoney filters ------------------------------------------------------------------------


def em_tags(security: SimSecurity) -> set[str]:
    """The eastmoney filter tokens a security answers to."""
    code, market = security.code, security.market
    sh = code.endswith(".SH")
    tags = {f"m:{1 if sh else 0}", f"i:{formats.secid(code)}"}
    tags |= {
        "SH主板": {"t:2"},
        "科创板": {"t:23"},
        "SZ主板": {"t:6"},
        "创业板": {"t:80"},
        "北交所": {"t:81", "s:2048"},
        "ETF": {"b:MK0021" if sh else "b:MK0022"},
        "LOF": {"b:MK0405" if sh else "b:MK0404"},
        "指数": {"s:2"} if sh else {"t:5"},
    }.get(market, set())
    return tags


def parse_fs(fs: str) -> list[frozenset[str]]:
    """``m:0 t:6,m:1 t:2`` (``+`` or spaces inside a clause) -> clauses of tokens."""
    clauses = []
    for clause in fs.replace("+", " ").split(","):
        tokens = frozenset(t for t in clause.split() if not t.startswith("f:"))
        if tokens:
            clauses.append(tokens)
    if not clauses:
        raise BadRequest(f"fs {fs!r} has no filter")
    return clauses


def _int(params: dict[str, str], name: str, default: int, low: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name}={raw!r} is not an integer") from None
    return max(value, low)


def _sort_key(value: Any) -> tuple[int, Any]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, value)
    if isinstance(value, str) and value != formats.DASH:
        return (1, value)
    return (2, 0)


# --- the app ----------------------------------------------------------------------------------


class SimApp:
    """The ASGI app over one market and one clock (``now_ms``: market epoch ms)."""

    def __init__(self, market: Market, now_ms: Callable[[], int]) -> None:
        self.market = market
        self.now_ms = now_ms
        self.faults: list[Fault] = []
        self.served: Counter[tuple[str, str]] = Counter()
        self.faulted: Counter[tuple[str, str]] = Counter()
        self.release = asyncio.Event()
        self.delisted: dict[str, tuple[SimSecurity, float]] = {}  # tencent answers these with placeholders
        self.plants: list[Plant] = []
        self.planted: list[dict[str, Any]] = []  # every altered snapshot, as served
        self.plant_ids = 0

    def snapshots(self, codes: list[str], now: int, provider: str) -> list[Snapshot | None]:
        """The market's snapshots of ``codes`` at ``now``, with the plants due applied."""
        snaps = self.market.snapshots(codes, now)
        if not self.plants:
            return snaps
        for i, snap in enumerate(snaps):
            if snap is None or snap.price is None:
                continue
            due = (p for p in self.plants if p.code == snap.code and p.at <= now and p.count > 0)
            plant = next(due, None)
            if plant is not None:
                snaps[i] = snap = plant.apply(snap)
                self.planted.append(served_json(plant, provider, now, snap))
        self.plants = [p for p in self.plants if p.count > 0]
        return snaps

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        path = unquote(scope["path"])
        query = scope.get("query_string", b"").decode("latin-1")
        params = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
        try:
            if path.startswith("/_control/"):
                body = await _read_body(receive)
                status, answer = self.control(scope["method"], path, params, body)
                await _respond(send, status, orjson.dumps(answer), b"application/json")
                return
            route = self.route(path)
            if route is None:
                await _respond(send, 404, b"not found", b"text/plain")
                return
            provider, key, codes = route[0], route[1], self.codes_of(path, params)
            self.served[provider, key] += 1
            fault = next((f for f in self.faults if f.matches(provider, key, codes)), None)
            if fault is not None:
                if fault.count is not None:
                    fault.count -= 1
                self.faulted[provider, fault.kind] += 1
                if fault.kind == "timeout":
                    await self._hold(receive, fault.seconds)
                    with contextlib.suppress(Exception):
                        await _respond(send, 504, b"gateway timeout", b"text/plain")
                    return
                if fault.kind == "status":
                    await _respond(send, fault.status, b"upstream error", b"text/plain")
                    return
                if fault.kind == "garbage":
                    await _respond(send, 200, GARBAGE, b"text/html")
                    return
                await self._hold(receive, fault.seconds)  # slow: then the normal answer
            body, kind = self.answer(path, params)
            await _respond(send, 200, body, kind)
        except BadRequest as exc:
            await _respond(send, 400, orjson.dumps({"error": str(exc)}), b"application/json")

    async def _hold(self, receive: Receive, seconds: float) -> None:
        """Wait ``seconds``, or until the client disconnects, or until released."""

        async def disconnected() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        waits = [asyncio.ensure_future(disconnected()), asyncio.ensure_future(self.release.wait())]
        try:
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    # --- routing ----------------------------------------------------------------------------
    @staticmethod
    def route(path: str) -> tuple[str, str] | None:
        if path == CLIST:
            return "eastmoney", CLIST
        if path == ULIST:
            return "eastmoney", ULIST
        if path.startswith("/list="):
            return "sina", "/list="
        if path.startswith("/q="):
            return "tencent", "/q="
        return None

    @staticmethod
    def symbols(path: str) -> list[str]:
        return [s for s in path.split("=", 1)[1].split(",") if s]

    def codes_of(self, path: str, params: dict[str, str]) -> set[str]:
        if path == ULIST:
            return {c for s in params.get("secids", "").split(",") if s for c in formats.code_of_secid(s)}
        if path.startswith(("/list=", "/q=")):
            return {c for s in self.symbols(path) if (c := formats.unprefixed(s)) is not None}
        return set()

    def answer(self, path: str, params: dict[str, str]) -> tuple[bytes, bytes]:
        now = self.now_ms()
        if path == CLIST:
            return self.clist(params, now), b"application/json; charset=utf-8"
        if path == ULIST:
            return self.ulist(params, now), b"application/json; charset=utf-8"
        symbols = self.symbols(path)
        codes = [formats.unprefixed(s) for s in symbols]
        snaps = self.snapshots(
            [c or "" for c in codes], now, "sina" if path.startswith("/list=") else "tencent"
        )
        if path.startswith("/list="):
            lines = [formats.sina_line(sym, snap) for sym, snap in zip(symbols, snaps, strict=True)]
        else:
            lines = [
                self.tencent(sym, code, snap, now)
                for sym, code, snap in zip(symbols, codes, snaps, strict=True)
            ]
        return ("\n".join(lines) + "\n").encode("gbk", errors="replace"), b"text/javascript; charset=GBK"

    def tencent(self, symbol: str, code: str | None, snap: Snapshot | None, now: int) -> str:
        if snap is None and code in self.delisted:
            security, last = self.delisted[code]
            return formats.tencent_placeholder(symbol, security, last, self.market.served_day(now)[0])
        return formats.tencent_line(symbol, snap)

    def ulist(self, params: dict[str, str], now: int) -> bytes:
        fields = [f for f in params.get("fields", "").split(",") if f]
        wanted: list[str] = []
        for s in params.get("secids", "").split(","):
            if s:
                wanted += [c for c in formats.code_of_secid(s) if c in self.market.securities]
        snaps = self.snapshots(wanted, now, "eastmoney")
        rows = [formats.pick(formats.em_fields(snap, snap.security), fields) for snap in snaps if snap]
        return formats.em_answer(rows if rows else None, len(rows))

    def clist(self, params: dict[str, str], now: int) -> bytes:
        clauses = parse_fs(params.get("fs", ""))
        fields = [f for f in params.get("fields", "").split(",") if f] or ["f12", "f14"]
        pn = _int(params, "pn", 1, 1)
        pz = min(_int(params, "pz", 20, 1), MAX_PAGE)
        fid = params.get("fid") or "f3"
        descending = params.get("po", "1") != "0"
        matched = [s for s in self.market.securities.values() if any(c <= em_tags(s) for c in clauses)]
        static = {"f12", "f13", "f14", "f26"}
        need_market = fid not in static or any(f not in static for f in fields)
        snaps: list[Snapshot | None] = (
            self.market.snapshots([s.code for s in matched], now) if need_market else [None] * len(matched)
        )
        rows = [formats.em_fields(snap, s) for s, snap in zip(matched, snaps, strict=True)]
        known = [r for r in rows if _sort_key(r.get(fid))[0] < 2]
        missing = [r for r in rows if _sort_key(r.get(fid))[0] == 2]
        known.sort(key=lambda r: (_sort_key(r.get(fid)), r["f13"], r["f12"]), reverse=descending)
        ordered = known + missing  # "-" sorts last either way
        page = ordered[(pn - 1) * pz : pn * pz]
        if not page:
            return formats.em_answer(None, 0)
        picked = [formats.pick(r, fields) for r in page]
        diff: list[dict[str, Any]] | dict[str, dict[str, Any]] = (
            picked if params.get("np") == "1" else {str(i): r for i, r in enumerate(picked)}
        )
        return formats.em_answer(diff, len(ordered))

    # --- control ----------------------------------------------------------------------------
    def control(self, method: str, path: str, params: dict[str, str], body: bytes) -> tuple[int, Any]:
        name = path.removeprefix("/_control/")
        if method == "GET" and name == "health":
            return 200, {"ok": True, "now_ms": self.now_ms(), "codes": len(self.market.securities)}
        if method == "GET" and name == "listing":
            securities = list(self.market.securities.values())
            return 200, {
                "securities": [{"code": x.code, "name": x.name, "market": x.market} for x in securities],
                "suspended": [x.code for x in securities if x.suspended],
            }
        if method == "GET" and name == "planted":
            return 200, {"pending": [p.to_json() for p in self.plants], "served": self.planted}
        if method == "GET" and name == "counters":
            out: dict[str, Any] = {p: {} for p in PROVIDERS}
            for (provider, key), n in sorted(self.served.items()):
                out[provider][key] = n
            faults = {f"{p}:{k}": n for (p, k), n in sorted(self.faulted.items())}
            if params.get("reset") in ("1", "true"):
                self.served.clear()
                self.faulted.clear()
            return 200, {"served": out, "faults": faults}
        if method != "POST":
            raise BadRequest(f"{method} {path}: unknown control endpoint")
        try:
            doc = orjson.loads(body) if body.strip() else {}
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"body is not JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise BadRequest("body must be a JSON object")
        if name == "fault":
            self.faults.append(parse_fault(doc))
            self.release.clear()
            return 200, {"faults": len(self.faults)}
        if name == "clear":
            self.faults.clear()
            return 200, {"faults": 0}
        if name == "release":
            self.release.set()
            return 200, {"released": True}
        if name == "clock":
            spec = doc.get("clock")
            try:
                clock = parse_clock(spec) if isinstance(spec, str) and spec else None
            except ValueError as exc:
                raise BadRequest(str(exc)) from None
            if clock is None:
                raise BadRequest(f"clock {spec!r} is not like 2026-11-20T09:10:00@1764650000x60")
            self.now_ms = clock.now_ms
            return 200, {"now_ms": self.now_ms()}
        if name == "plant":
            self.plant_ids += 1
            plant = parse_plant(doc, self.plant_ids)
            if plant.code not in self.market.securities:
                raise BadRequest(f"{plant.code} is not listed")
            self.plants.append(plant)
            return 200, plant.to_json()
        code = doc.get("code")
        if not (isinstance(code, str) and CODE_RE.match(code)):
            raise BadRequest(f"code {code!r} is not like 600000.SH")
        if name == "list":
            price = doc.get("price", 10.0)
            if (
                not isinstance(price, (int, float))
                or isinstance(price, bool)
                or not (math.isfinite(price) and price > 0)
            ):
                raise BadRequest(f"price {price!r} must be a positive number")
            market = doc.get("market") or market_of(code)
            name_ = doc.get("name") or code
            list_date = doc.get("list_date")
            if list_date is not None and not (
                isinstance(list_date, str) and len(list_date) == 8 and list_date.isdigit()
            ):
                raise BadRequest(f"list_date {list_date!r} is not YYYYMMDD")
            self.delisted.pop(code, None)
            security = self.market.list_code(code, str(name_), str(market), float(price), list_date)
            return 200, {"listed": security.code, "market": security.market}
        if name == "delist":
            security = self.market.securities.get(code)
            if security is None:
                raise BadRequest(f"{code} is not listed")
            last = self.market.snapshot(code, self.now_ms())
            self.market.delist(code)
            self.delisted[code] = (security, last.price or last.pre_close if last else security.ref_price)
            return 200, {"delisted": code}
        if name == "suspend":
            if not self.market.suspend(code, bool(doc.get("suspended", True))):
                raise BadRequest(f"{code} is not listed")
            return 200, {"suspended": code}
        raise BadRequest(f"POST {path}: unknown control endpoint")


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


async def _respond(send: Send, status: int, body: bytes, content_type: bytes) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
