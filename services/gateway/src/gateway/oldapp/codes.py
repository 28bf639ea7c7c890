"""The old app's codes: 6 digits without a suffix (``600519``), except index codes, which keep
theirs (``000001.SH``). The exchange of a bare number follows the old backend's rule."""

from __future__ import annotations

import re

from marketbus.securities import INDEX

_BARE = re.compile(r"^\d{6}$")
_SUFFIXED = re.compile(r"^(\d{6})\.(SH|SZ|BJ)$")
_BJ_PREFIXES = ("43", "83", "87", "88", "92")


def exchange_of(number: str) -> str:
    """The old backend's suffix of a 6-digit number: 6 and 5 are Shanghai; 43, 83, 87, 88 and 92
    Beijing; the rest Shenzhen; and, where the old rule was wrong, 900 (Shanghai's B shares, which
    the universe lists on SH) is Shanghai."""
    if number.startswith(("6", "5", "900")):
        return "SH"
    if number.startswith(_BJ_PREFIXES):
        return "BJ"
    return "SZ"


def from_old(raw: str) -> str:
    """The marketbus code (``600519.SH``) of a code as the app sends it (``600519``, or an index's
    ``000001.SH``); ValueError names what is wrong."""
    value = raw.strip().upper()
    if _BARE.match(value):
        return f"{value}.{exchange_of(value)}"
    if _SUFFIXED.match(value):
        return value
    raise ValueError(f"{raw!r} is not a 6-digit code (600519) or a suffixed index code (000001.SH)")


def to_old(code: str, market: str | None) -> str:
    """The app's code of a marketbus code: the number, or the whole code for an index."""
    if market == INDEX:
        return code
    return code.split(".", 1)[0]
