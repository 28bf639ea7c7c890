"""``python -m benchmarks.simwitness --codes N --seed S --clock SPEC``: the provider simulator with a
witness of what it served, for the full-market benchmark.

The real simulator app (:class:`quotes.providersim.app.SimApp` over the same generated
:class:`~quotes.providersim.market.Market`), served by uvicorn on 127.0.0.1 exactly as
``python -m quotes.providersim`` does. Beside it, every eastmoney ``ulist`` answer is read back
(parsed from the bytes actually sent) and, per code, each snapshot that differs from the one
served before for that code (its time or cumulative volume: what a poller must pass on) is noted.
``GET /_control/witness`` answers those notes: per code the stamps (epoch seconds, as ``f124``)
and cumulative volumes (shares) of the changed snapshots, plus the rows served, the rows without
a trade (suspended: ``"-"``) and the rows that repeated the previous one.

It prints the same ready line as the simulator (``{"url": ..., "codes": ...}``), so
:class:`quotes.providersim.launch.SimProcess` drives it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import orjson

from quotes.providersim.__main__ import main as providersim_main
from quotes.providersim.app import SimApp
from quotes.providersim.market import Market

SHARES_PER_LOT = 100


class Witness:
    """What the ulist answers served, per code (pure bookkeeping, no I/O)."""

    def __init__(self, code_of: Callable[[int, str], str]) -> None:
        self.code_of = code_of  # (f13, f12) -> 600000.SH
        self.last: dict[str, tuple[int, float]] = {}
        self.changed: dict[str, list[tuple[int, float]]] = {}
        self.rows = 0
        self.no_trade = 0
        self.repeated = 0

    def note(self, body: bytes) -> None:
        doc = orjson.loads(body)
        data = doc.get("data") or {}
        diff = data.get("diff") or []
        rows = diff.values() if isinstance(diff, dict) else diff
        for row in rows:
            self.rows += 1
            volume = row.get("f5")
            if not isinstance(volume, (int, float)) or not isinstance(row.get("f2"), (int, float)):
                self.no_trade += 1
                continue
            code = self.code_of(int(row["f13"]), str(row["f12"]))
            seen = (int(row["f124"]), float(volume) * SHARES_PER_LOT)
            if self.last.get(code) == seen:
                self.repeated += 1
                continue
            self.last[code] = seen
            self.changed.setdefault(code, []).append(seen)

    def report(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "no_trade": self.no_trade,
            "repeated": self.repeated,
            "changed": {code: [list(s) for s in seen] for code, seen in self.changed.items()},
        }


class WitnessApp(SimApp):
    def __init__(self, market: Market, now_ms: Any) -> None:
        super().__init__(market, now_ms)
        self.witness = Witness(self.code_of)

    def code_of(self, market: int, num: str) -> str:
        if market == 1:
            return f"{num}.SH"
        return f"{num}.SZ" if f"{num}.SZ" in self.market.securities else f"{num}.BJ"

    def ulist(self, params: dict[str, str], now: int) -> bytes:
        body = super().ulist(params, now)
        self.witness.note(body)
        return body

    def control(self, method: str, path: str, params: dict[str, str], body: bytes) -> tuple[int, Any]:
        if method == "GET" and path == "/_control/witness":
            return 200, self.witness.report()
        return super().control(method, path, params, body)


def main(argv: list[str] | None = None) -> int:
    return providersim_main(argv, WitnessApp, prog="python -m benchmarks.simwitness")


if __name__ == "__main__":
    sys.exit(main())
