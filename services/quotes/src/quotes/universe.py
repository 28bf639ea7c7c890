"""The bundled universe (real ETF and A-share codes with their names) and per-code market rules.

``data/universe.csv`` holds code, name, market (ETF or the board of a stock) and a plausible
reference price the simulated market starts from.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from marketbus.contracts import Security

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from marketbus.keys import Keys

BOARDS = ("ETF", "SH主板", "SZ主板", "创业板", "科创板", "北交所")


@dataclass(frozen=True, slots=True)
class Listing:
    """One security with what the quotes service needs to know about it."""

    security: Security
    ref_price: float

    @property
    def code(self) -> str:
        return self.security.code

    @property
    def name(self) -> str:
        return self.security.name

    @property
    def market(self) -> str:
        return self.security.market

    @property
    def tick_size(self) -> float:
        return tick_size(self.market)

    @property
    def limit_pct(self) -> float:
        return price_limit_pct(self.market, self.name)


def market_of(code: str) -> str:
    """The board of a code from its number (for codes that arrive without one)."""
    num, _, exchange = code.partition(".")
    if exchange == "BJ":
        return "北交所"
    if exchange == "SH":
        if num.startswith(("51", "52", "56", "58")):
            return "ETF"
        if num.startswith(("688", "689")):
            return "科创板"
        return "SH主板"
    if num.startswith("15"):
        return "ETF"
    if num.startswith(("300", "301")):
        return "创业板"
    return "SZ主板"


def is_st(name: str) -> bool:
    """Special treatment (ST, *ST): excluded from buy views; ±5% limit on the main boards."""
    return name.upper().lstrip("*").startswith("ST")


def tick_size(market: str) -> float:
    """Minimum price step: 0.001 yuan for funds, 0.01 yuan for stocks."""
    return 0.001 if market == "ETF" else 0.01


def price_limit_pct(market: str, name: str = "") -> float:
    """Daily price limit as a fraction of the previous close.

    10% on the main boards and for ETFs, 20% on ChiNext (创业板) and STAR (科创板) and for ETFs
    that track those boards, 30% on the Beijing exchange, 5% for ST stocks of the main boards.
    """
    if market == "北交所":
        return 0.30
    if market in ("创业板", "科创板"):
        return 0.20
    if market == "ETF":
        return 0.20 if ("创业板" in name or "科创" in name) else 0.10
    return 0.05 if is_st(name) else 0.10


def _rows(text: str, origin: str) -> list[Listing]:
    out: list[Listing] = []
    for line, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        try:
            market = row["market"] or market_of(row["code"])
            security = Security(code=row["code"], name=row["name"], market=market)
            out.append(Listing(security, float(row["price"])))
        except (KeyError, ValueError) as exc:
            raise ValueError(f"{origin}:{line}: bad universe row: {exc}") from None
    return out


def load_universe(path: str | Path | None = None) -> list[Listing]:
    """The bundled universe, or the CSV at ``path`` (columns code, name, market, price)."""
    if path is None:
        text = resources.files("quotes").joinpath("data/universe.csv").read_text("utf-8")
        return _rows(text, "quotes/data/universe.csv")
    return _rows(Path(path).read_text("utf-8"), str(path))


def select(universe: list[Listing], codes: str | None) -> list[Listing]:
    """The listings of a comma-separated code list (unknown codes get their code as name)."""
    if not codes:
        return universe
    known = {item.code: item for item in universe}
    out: list[Listing] = []
    for code in (c.strip().upper() for c in codes.split(",")):
        if not code:
            continue
        if code in known:
            out.append(known[code])
        else:
            out.append(Listing(Security(code=code, name=code, market=market_of(code)), 0.0))
    return out


async def publish(client: Redis, keys: Keys, universe: list[Listing]) -> None:
    """Write the universe to the hash ``keys.universe`` (code -> JSON of Security)."""
    if universe:
        await client.hset(
            keys.universe,
            mapping={item.code: item.security.model_dump_json() for item in universe},
        )


async def add_to_universe(client: Redis, keys: Keys, codes: list[str]) -> list[str]:
    """Add codes missing from the universe, named by their code; return them."""
    known = {k.decode() if isinstance(k, bytes) else k for k in await client.hkeys(keys.universe)}
    new = [code for code in codes if code not in known]
    if new:
        await client.hset(
            keys.universe,
            mapping={c: Security(code=c, name=c, market=market_of(c)).model_dump_json() for c in new},
        )
    return new
