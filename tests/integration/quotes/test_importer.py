"""History import into the real server: good rows in, bad rows named by line, idempotent."""

from pathlib import Path

import pandas as pd
from redis.asyncio import Redis

from marketbus.contracts import Security
from marketbus.keys import Keys
from marketbus.sessions import shanghai_ms as sh
from marketbus.settings import Settings
from marketbus.trend import AMOUNT, CLOSE, TS, VOLUME, TrendStore
from quotes.importer import import_history, parse_bars

HEADER = "ts_code,trade_date,open,high,low,close,pre_close,change,pct_chg,vol,amount"
GOOD = [
    "600519.SH,20240506,1500.0,1520.0,1490.0,1510.0,1495.0,15.0,1.0033,12345.67,1865432.1",
    "600519.SH,20240507,1510.0,1530.0,1500.0,1525.5,1510.0,15.5,1.0265,10000,1520000",
    "000001.SZ,20240506,10.5,10.8,10.4,10.7,10.5,0.2,1.9,500000,530000",
    "920999.BJ,20240506,5.0,5.2,4.9,5.1,5.0,0.1,2.0,100,51",
    "600519.SH,20240508,1525.5,1540,1515,1530,1525.5,4.5,0.29,9000,1377000",
]
BAD = {
    "60051.SH,20240509,1.0,1.0,1.0,1.0,1.0,0,0,1,1": "bad ts_code",
    "600519.SH,2024-13-45,1.0,1.0,1.0,1.0,1.0,0,0,1,1": "bad trade_date",
    "600519.SH,20240510,abc,1.0,1.0,1.0,1.0,0,0,1,1": "bad open",
    "600519.SH,20240513,1.0,1.0,1.0,0,1.0,0,0,1,1": "close 0.0 is not positive",
    "600519.SH,20240514,1.0,1.0,1.0,1.0,1.0,0,0,-1,1": "vol -1.0 is negative",
    "600519.SH,20240515,1.0,0.5,0.4,1.0,1.0,0,0,1,1": "high 0.5 is below",
    "600519.SH,20240511,1.0,1.0,1.0,1.0,1.0,0,0,1,1": "weekend",
    "600519.SH,20240507,1.0,1.0,1.0,1.0,1.0,0,0,1,1": "duplicate of line 4",
    "600519.SH,20240516,1.0,1.0,1.0,1.0,1.0,0,0,1,1,extra": "expected 11 fields",
    "": "empty row",
}


def write_csv(tmp_path: Path) -> tuple[Path, dict[int, str]]:
    lines = [HEADER]
    expected: dict[int, str] = {}
    bad = list(BAD.items())
    for i, row in enumerate(GOOD):
        lines.append(row)
        if i < len(bad):  # interleave a bad row after each good one (and the rest at the end)
            lines.append(bad[i][0])
            expected[len(lines)] = bad[i][1]
    for row, reason in bad[len(GOOD) :]:
        lines.append(row)
        expected[len(lines)] = reason
    lines.append(GOOD[-1].replace("20240508", "20240509"))  # a good row after the bad ones
    path = tmp_path / "daily.csv"
    path.write_text("\n".join(lines) + "\n")
    return path, expected


async def test_import_loads_exactly_the_good_rows_and_names_the_bad_ones(
    tmp_path: Path, client: Redis, keys: Keys, settings: Settings
) -> None:
    path, expected_bad = write_csv(tmp_path)
    seen: list[tuple[int, int]] = []
    summary = await import_history(path, settings, progress=lambda d, t: seen.append((d, t)))
    assert {row.line: row.reason for row in summary.rejected}.keys() == expected_bad.keys()
    for row in summary.rejected:
        assert expected_bad[row.line] in row.reason, (row, expected_bad[row.line])
    assert summary.bars == summary.added == len(GOOD) + 1
    assert summary.codes == 3 and summary.rows == len(GOOD) + 1 + len(BAD)
    assert seen[-1] == (3, 3)
    assert "rejected line 3:" in summary.render()

    store = TrendStore(client, keys)
    moutai = await store.tail("600519.SH", "1d", 10)
    assert moutai[:, TS].tolist() == [sh(2024, 5, d) for d in (6, 7, 8, 9)]
    assert moutai[0, CLOSE] == 1510.0
    assert moutai[0, VOLUME] == 1234567.0  # lots of 100 -> shares
    assert abs(moutai[0, AMOUNT] - 1865432100.0) < 1e-3  # thousand yuan -> yuan
    assert moutai[1, CLOSE] == 1525.5  # the later duplicate did not replace line 4
    universe = await client.hgetall(keys.universe)
    assert Security.model_validate_json(universe[b"920999.BJ"]).name == "920999.BJ"
    assert Security.model_validate_json(universe[b"920999.BJ"]).market == "北交所"
    assert sorted(summary.new_codes) == ["000001.SZ", "600519.SH", "920999.BJ"]

    before = {c: await client.get(keys.trend(c, "1d")) for c in ("600519.SH", "000001.SZ")}
    again = await import_history(path, settings, progress=False)
    assert again.added == 0 and again.new_codes == [] and again.bars == summary.bars
    after = {c: await client.get(keys.trend(c, "1d")) for c in ("600519.SH", "000001.SZ")}
    assert before == after


async def test_import_keeps_known_names(client: Redis, keys: Keys, settings: Settings,
                                        tmp_path: Path) -> None:  # fmt: skip
    moutai = Security(code="600519.SH", name="贵州茅台", market="SH主板")
    await client.hset(keys.universe, "600519.SH", moutai.model_dump_json())
    path = tmp_path / "d.csv"
    path.write_text(HEADER + "\n" + GOOD[0] + "\n")
    summary = await import_history(path, settings, progress=False)
    assert summary.new_codes == []
    raw = await client.hget(keys.universe, "600519.SH")
    assert Security.model_validate_json(raw).name == "贵州茅台"  # type: ignore[arg-type]


def test_parquet_and_minute_layout(tmp_path: Path) -> None:
    frame = pd.DataFrame({
        "ts_code": ["510300.SH", "510300.SH", "510300.SH", "510300.SH"],
        "trade_time": ["2024-05-10 09:31:00", "2024-05-10 11:30:00", "2024-05-10 13:01:00",
                       "2024-05-10 12:00:00"],
        "open": [3.9, 3.91, 3.92, 3.9], "close": [3.91, 3.92, 3.93, 3.9],
        "high": [3.92, 3.93, 3.94, 3.9], "low": [3.89, 3.9, 3.91, 3.9],
        "vol": [1000.0, 2000.0, 3000.0, 1.0], "amount": [3910.0, 7840.0, 11790.0, 3.9],
    })  # fmt: skip
    path = tmp_path / "mins.parquet"
    frame.to_parquet(path)
    parsed = parse_bars(path, "1m")
    rows = parsed.rows_by_code["510300.SH"]
    assert rows[:, TS].tolist() == [sh(2024, 5, 10, 9, 30), sh(2024, 5, 10, 11, 29),
                                    sh(2024, 5, 10, 13)]  # fmt: skip
    assert rows[:, VOLUME].tolist() == [1000.0, 2000.0, 3000.0]  # stk_mins: already shares
    assert [(r.line, "session" in r.reason) for r in parsed.rejected] == [(5, True)]


def test_missing_columns_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("ts_code,trade_date,close\n600519.SH,20240506,1.0\n")
    try:
        parse_bars(path)
    except ValueError as exc:
        assert "missing column(s) open, high, low, vol, amount" in str(exc)
    else:
        raise AssertionError("no error")


async def test_minute_import_folds_the_opening_auction_into_the_first_bar(
    tmp_path: Path, client: Redis, keys: Keys, settings: Settings
) -> None:
    path = tmp_path / "stk_mins.csv"
    path.write_text(
        "ts_code,trade_time,open,close,high,low,vol,amount\n"
        "600519.SH,2024-05-10 09:30:00,1700.00,1700.00,1700.00,1700.00,5600,9520000\n"
        "600519.SH,2024-05-10 09:31:00,1700.50,1702.00,1703.00,1699.00,8100,13777000\n"
        "600519.SH,2024-05-10 09:30:00,1690.00,1690.00,1690.00,1690.00,1,1690\n"  # line 4
        "600519.SH,2024-05-10 15:00:00,1710.00,1712.00,1712.00,1709.00,9000,15399000\n"
    )
    summary = await import_history(path, settings, period="1m", progress=False)
    assert [(row.line, row.reason) for row in summary.rejected] == [(4, "duplicate of line 2")]
    assert summary.bars == summary.added == 2
    rows = await TrendStore(client, keys).tail("600519.SH", "1m", 10)
    assert rows[:, TS].tolist() == [sh(2024, 5, 10, 9, 30), sh(2024, 5, 10, 14, 59)]
    assert rows[0, 1:5].tolist() == [1700.0, 1703.0, 1699.0, 1702.0]  # open, high, low, close
    assert rows[0, VOLUME] == 13700.0 and rows[0, AMOUNT] == 23297000.0
    assert rows[1, CLOSE] == 1712.0
