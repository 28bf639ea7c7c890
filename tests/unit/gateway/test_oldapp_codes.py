"""The old app's 6-digit codes, both ways."""

from __future__ import annotations

import pytest

from gateway.oldapp.codes import from_old, to_old


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("600519", "600519.SH"),
        ("510300", "510300.SH"),
        ("000001", "000001.SZ"),  # 平安银行: a bare 000001 is the Shenzhen stock, as before
        ("300750", "300750.SZ"),
        ("159915", "159915.SZ"),
        ("430047", "430047.BJ"),
        ("830799", "830799.BJ"),
        ("920001", "920001.BJ"),
        ("900901", "900901.SH"),  # a Shanghai B share
        ("200002", "200002.SZ"),  # a Shenzhen B share
        ("000001.SH", "000001.SH"),  # 上证指数 keeps its suffix
        ("399006.sz", "399006.SZ"),
        (" 600519 ", "600519.SH"),
    ],
)
def test_from_old(raw: str, code: str) -> None:
    assert from_old(raw) == code


@pytest.mark.parametrize("raw", ["", "60051", "6005190", "600519.SS", "abcdef", "600519.SH.SH"])
def test_from_old_rejects_what_is_no_code(raw: str) -> None:
    with pytest.raises(ValueError, match="6-digit"):
        from_old(raw)


def test_to_old_keeps_an_index_suffix_only() -> None:
    assert to_old("600519.SH", "SH主板") == "600519"
    assert to_old("159915.SZ", "ETF") == "159915"
    assert to_old("000001.SH", "指数") == "000001.SH"
