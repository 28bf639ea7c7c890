"""Facts about a security that every service reads the same way (the one definition of each)."""

from __future__ import annotations

import re
import unicodedata

INDEX = "指数"
"""The market of an index: quoted and charted, no lot, tick or limit rules, not in the buy list."""

_ST = re.compile(r"^(?:XD|XR|DR)?(?:S\*ST|SST|\*ST|ST)")


def is_st(name: str) -> bool:
    """A risk-warning name: ST, *ST, S*ST or SST first (after an ex-rights XD/XR/DR mark), in
    half- or full-width letters, with or without spaces (``"*ST 金科"``, ``"ＳＴ辉丰"``)."""
    flat = "".join(unicodedata.normalize("NFKC", name).split()).upper()
    return _ST.match(flat) is not None
