"""`marketbus import-universe` against the real server: Tushare stock_basic and fund_basic files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from redis.asyncio import Redis

from marketbus.keys import Keys
from marketbus.settings import Settings
from quotes.universe_import import read_universe_file, store_universe

STOCK_BASIC = """ts_code,symbol,name,area,industry,market,exchange,list_status,list_date,delist_date
600519.SH,600519,贵州茅台,贵州,白酒,主板,SSE,L,20010827,
300750.SZ,300750,宁德时代,福建,电气设备,创业板,SZSE,L,20180611,
688981.SH,688981,中芯国际,上海,半导体,科创板,SSE,L,20200716,
920118.BJ,920118,太湖远大,浙江,塑料,北交所,BSE,L,20240108,
600001.SH,600001,邯郸钢铁,河北,普钢,主板,SSE,D,19980122,20091229
60051.SH,60051,坏代码,,,主板,SSE,L,20010827,
000001.SZ,000001,,深圳,银行,主板,SZSE,L,19910403,
000002.SZ,000002,万科A,深圳,全国地产,主板,SZSE,X,19910129,
"""

FUND_BASIC = """ts_code,name,management,fund_type,list_date,delist_date,status,market
510300.SH,沪深300ETF,华泰柏瑞基金,股票型,20120528,,L,E
161005.SZ,富国天惠LOF,富国基金,混合型,20050916,,L,E
000001.OF,华夏成长,华夏基金,混合型,,,L,O
159001.SZ,货币ETF,易方达基金,货币市场型,20140110,20200101,D,E
"""


async def _universe(client: Redis, keys: Keys) -> dict[str, dict[str, str]]:
    raw = await client.hgetall(keys.universe)
    return {k.decode(): json.loads(v) for k, v in raw.items()}


def test_stock_basic_rows_are_read_with_their_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "stock_basic.csv"
    path.write_text(STOCK_BASIC, encoding="utf-8")
    parsed = read_universe_file(path)
    assert parsed.kind == "stock_basic"
    assert [s.code for s in parsed.listed] == ["600519.SH", "300750.SZ", "688981.SH", "920118.BJ"]
    by_code = {s.code: s for s in parsed.listed}
    assert by_code["300750.SZ"].market == "创业板"
    assert by_code["688981.SH"].market == "科创板"
    assert by_code["920118.BJ"].market == "北交所"
    assert by_code["600519.SH"].list_date == "20010827"
    assert parsed.delisted == ["600001.SH"]
    assert [(bad.line, bad.reason.split(" ")[0]) for bad in parsed.rejected] == [
        (7, "ts_code"),
        (8, "000001.SZ:"),
        (9, "list_status"),
    ]


async def test_import_adds_updates_and_removes_delisted(tmp_path: Path, client: Redis, keys: Keys) -> None:
    await client.hset(
        keys.universe,
        mapping={
            "600001.SH": json.dumps({"code": "600001.SH", "name": "邯郸钢铁", "market": "SH主板"}),
            "600519.SH": json.dumps({"code": "600519.SH", "name": "old name", "market": "SH主板"}),
            "000333.SZ": json.dumps({"code": "000333.SZ", "name": "美的集团", "market": "SZ主板"}),
        },
    )
    path = tmp_path / "stock_basic.csv"
    path.write_text(STOCK_BASIC, encoding="utf-8")
    written, removed = await store_universe(client, keys, read_universe_file(path))
    assert (written, removed) == (4, 1)
    universe = await _universe(client, keys)
    assert "600001.SH" not in universe  # delisted: left the universe
    assert universe["600519.SH"]["name"] == "贵州茅台"  # updated
    assert "000333.SZ" in universe  # not in the file: kept as it was
    assert universe["920118.BJ"]["market"] == "北交所"


def test_cli_imports_fund_basic(tmp_path: Path, settings: Settings, redis_url: str) -> None:
    import redis

    path = tmp_path / "fund_basic.csv"
    path.write_text(FUND_BASIC, encoding="utf-8")
    sync = redis.Redis.from_url(redis_url, decode_responses=True)
    keys = Keys(settings.key_prefix)
    sync.hset(
        keys.universe, "159001.SZ", json.dumps({"code": "159001.SZ", "name": "货币ETF", "market": "ETF"})
    )
    env = dict(os.environ, MARKETBUS_REDIS_URL=redis_url, MARKETBUS_KEY_PREFIX=settings.key_prefix)
    done = subprocess.run(
        [sys.executable, "-m", "marketbus.cli", "import-universe", str(path)],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "2 securities listed or updated, 1 delisted codes removed" in done.stdout
    assert "1 not exchange-listed" in done.stdout
    universe = {k: json.loads(v) for k, v in sync.hgetall(keys.universe).items()}
    assert set(universe) == {"510300.SH", "161005.SZ"}
    assert universe["510300.SH"]["market"] == "ETF"
    assert universe["161005.SZ"]["market"] == "LOF"


def test_cli_reports_a_file_that_is_not_a_universe(
    tmp_path: Path, settings: Settings, redis_url: str
) -> None:
    path = tmp_path / "daily.csv"
    path.write_text("trade_date,open\n20240506,1.0\n", encoding="utf-8")
    env = dict(os.environ, MARKETBUS_REDIS_URL=redis_url, MARKETBUS_KEY_PREFIX=settings.key_prefix)
    done = subprocess.run(
        [sys.executable, "-m", "marketbus.cli", "import-universe", str(path)],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert "needs the columns ts_code and name" in done.stderr
