"""The old app's list of securities for its search (OLD_API.md P7), from the universe."""

from __future__ import annotations

from collections.abc import Iterable

from gateway.oldapp.codes import to_old
from gateway.oldapp.markets import old_market
from gateway.oldapp.models import Stock
from marketbus.contracts import Security
from marketbus.securities import INDEX

UNAVAILABLE = "股票代码数据不可用"


def stock_list(universe: Iterable[Security]) -> list[Stock]:
    """Every stock and fund of the universe (indices left out: the old list had none, and the app
    keys its table by 6-digit symbol), by code. The universe has no area or industry: ``""``."""
    return [
        Stock(
            ts_code=s.code,
            symbol=to_old(s.code, s.market),
            name=s.name,
            area="",
            industry="",
            market=old_market(s.market),
        )
        for s in sorted(universe, key=lambda s: s.code)
        if s.market != INDEX
    ]
