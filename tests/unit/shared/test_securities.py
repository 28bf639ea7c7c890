"""The one risk-warning rule (``is_st``), on real names as the exchanges and providers spell them."""

import pytest

from marketbus.securities import is_st


@pytest.mark.parametrize(
    "name",
    [
        "ST康美", "*ST海润", "S*ST前锋", "SST前锋",  # the four marks (S: share reform not done)
        "*ST 金科", " ST辉丰", "* ST金科",  # spaces some providers put in or around the mark
        "ＳＴ辉丰", "＊ＳＴ金科",  # full-width letters and asterisk
        "st辉丰",  # lower case
        "XD*ST金科", "XRST辉丰", "DR*ST海润",  # ex-dividend / ex-rights marks before it
        "*ST东电B",  # a B share
    ],
)  # fmt: skip
def test_risk_warning_names(name: str) -> None:
    assert is_st(name)


@pytest.mark.parametrize(
    "name",
    [
        "贵州茅台", "沪深300ETF", "石头科技", "中国石化", "首钢股份",
        "TCL科技", "GQY视讯",  # Latin letters first, no mark
        "S兰铝",  # share reform pending, no risk warning
        "华夏MSCI中国A50互联互通ETF", "科创50ETF",  # ST-free fund names with Latin letters
        "中ST科技",  # the mark counts only at the start
        "",
    ],
)  # fmt: skip
def test_other_names(name: str) -> None:
    assert not is_st(name)
