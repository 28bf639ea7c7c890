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

from redis.exceptions import WatchError

from marketbus import wire
from marketbus.contracts import Security
from quotes.boards import market_of, price_limit_pct, tick_size

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from marketbus.keys import Keys


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
        """The price step: the board's tick; 0.01 for an index (no tick, points to two decimals)."""
        return tick_size(self.market, self.code) or 0.01

    @property
    def limit_pct(self) -> float:
        """The board's limit under the rules in force now (undated, without new-listing days: what
        the simulated market moves within); an index has none and moves like a main-board stock."""
        return price_limit_pct(self.market, self.name) or 0.10


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
    known = {wire.text(k) for k in await client.hkeys(keys.universe)}
    new = [code for code in codes if code not in known]
    if new:
        await client.hset(
            keys.universe,
            mapping={c: Security(code=c, name=c, market=market_of(c)).model_dump_json() for c in new},
        )
    return new


async def replace_universe(
    client: Redis, keys: Keys, securities: list[Security]
) -> tuple[list[str], list[str]]:
    """Make ``securities`` the universe in ``keys.universe`` in one transaction (readers see the
    old or the new one, never a mix): codes no longer listed leave, new listings join. Returns
    (added, removed), sorted. An empty list is refused (ValueError): it is a failed fetch, not a
    market without securities."""
    if not securities:
        raise ValueError("refusing to replace the universe with an empty list")
    mapping = {s.code: s.model_dump_json() for s in securities}
    async with client.pipeline(transaction=True) as pipe:
        while True:
            try:
                await pipe.watch(keys.universe)
                raw = await pipe.hkeys(keys.universe)
                old = {wire.text(k) for k in raw}
                pipe.multi()
                pipe.delete(keys.universe)
                pipe.hset(keys.universe, mapping=mapping)
                await pipe.execute()
                break
            except WatchError:
                continue  # someone wrote the universe meanwhile: read it again
    return sorted(set(mapping) - old), sorted(old - set(mapping))
