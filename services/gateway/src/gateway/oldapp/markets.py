"""The old app's market names, and its market types (OLD_API.md P2).

The old backend named the market of a stock by Tushare's board (``主板``, ``创业板``, ``科创板``,
``北交所``, ``CDR``) and of a fund ``ETF``; its list held A-shares and ETFs only. marketbus's markets
(``marketbus.contracts.MARKETS``) map to them so:

=========================  ===========  ===========================================================
marketbus                  old app      why
=========================  ===========  ===========================================================
``SH主板``, ``SZ主板``     ``主板``     one main board to the old app
``创业板``                 ``创业板``
``科创板``                 ``科创板``   CDRs on STAR (689xxx) are ``科创板`` in marketbus too
``北交所``                 ``北交所``
``ETF``                    ``ETF``
``LOF``, ``REIT``, ``B股``  ``其他``     the old list had none; they are not ETFs (the buy list
                                        puts ETFs last and the app's ``ETF`` filter matches ETFs
                                        only), and ``其他`` is the old market type ``other``
``指数``                   ``指数``     indices are not in the old lists; kept for completeness
anything else              ``其他``
=========================  ===========  ===========================================================
"""

from __future__ import annotations

from collections.abc import Iterable

from gateway.oldapp.models import MarketType
from marketbus.securities import INDEX

MAIN = "主板"
ETF = "ETF"
OTHER = "其他"
OLD_MARKET = {
    "SH主板": MAIN,
    "SZ主板": MAIN,
    "创业板": "创业板",
    "科创板": "科创板",
    "北交所": "北交所",
    "ETF": ETF,
    "LOF": OTHER,
    "REIT": OTHER,
    "B股": OTHER,
    INDEX: INDEX,
}

ALL = MarketType(code="all", name="全部")
# the old backend's categories, in its order
TYPES = (
    MarketType(code="main_board", name=MAIN),
    MarketType(code="gem", name="创业板"),
    MarketType(code="star", name="科创板"),
    MarketType(code="bse", name="北交所"),
    MarketType(code="etf", name=ETF),
    MarketType(code="other", name=OTHER),
)
# what the old backend answered when it could not read its list: all and five categories
DEFAULT_TYPES = (ALL, *TYPES[:5])


def old_market(market: str) -> str:
    """The old app's market name of a marketbus market."""
    return OLD_MARKET.get(market, OTHER)


def market_types(markets: Iterable[str]) -> list[MarketType]:
    """``全部``, then the old categories some of ``markets`` (marketbus names) fall in, in the old
    order; indices are in none (the old lists had none)."""
    present = {old_market(m) for m in markets if m != INDEX}
    return [ALL, *(t for t in TYPES if t.name in present)]
