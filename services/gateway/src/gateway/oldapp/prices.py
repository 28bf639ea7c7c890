"""The old app's prices of its watchlist (OLD_API.md P5), from the latest snapshots."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gateway.oldapp.codes import from_old
from gateway.oldapp.models import Price
from marketbus.contracts import Quote

MAX_CODES = 100


@dataclass(frozen=True, slots=True)
class Wanted:
    """One code of the request: as sent, and its marketbus code (None when it is not a code)."""

    raw: str
    code: str | None
    error: str | None = None


def wanted_codes(raw: str) -> list[Wanted]:
    """The codes of ``codes=600519,000001`` in order, once each. A code that is not one stays, with
    its error, so the rest is answered. ValueError (a 400) for no code or more than 100."""
    parts = [p.strip() for p in raw.split(",") if p.strip()]
    if not parts:
        raise ValueError("codes: no code given (codes=600519,000001)")
    if len(parts) > MAX_CODES:
        raise ValueError(f"codes: at most {MAX_CODES} codes per request, got {len(parts)}")
    out: list[Wanted] = []
    seen: set[str] = set()
    for part in parts:
        if part in seen:
            continue
        seen.add(part)
        try:
            out.append(Wanted(part, from_old(part)))
        except ValueError as exc:
            out.append(Wanted(part, None, f"codes: {exc}"))
    return out


def price_item(w: Wanted, quote: Quote | None) -> Price:
    """The price of one code; a code without a quote has its ``error`` and nulls."""
    if quote is None:
        error = w.error or f"no quote for {w.raw}"
        return Price(
            code=w.raw, name=None, price=None, change=None, change_percent=None, volume=None, error=error
        )
    change = round(quote.price - quote.pre_close, 2) if quote.pre_close else None
    return Price(
        code=w.raw,  # as the app sent it: it finds its prices by the code it asked for
        name=quote.name,
        price=quote.price,
        change=change,
        change_percent=quote.change_percent,
        volume=round(quote.volume),
        error=None,
    )


def prices(wanted: list[Wanted], quotes: Mapping[str, Quote]) -> list[Price]:
    return [price_item(w, quotes.get(w.code) if w.code else None) for w in wanted]
