"""`marketbus import-history` as a user runs it: good rows in, bad rows named by line, idempotent."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from redis.asyncio import Redis

from marketbus.keys import Keys
from marketbus.trend import CLOSE, VOLUME, TrendStore

CSV = """ts_code,trade_date,open,high,low,close,pre_close,change,pct_chg,vol,amount
510300.SH,20261125,3.900,3.950,3.880,3.920,3.900,0.020,0.51,1000.5,392.1
510300.SH,20261126,3.920,3.990,3.910,3.980,3.920,0.060,1.53,2000,796.0
510300.SH,2026-11-27,3.980,4.000,3.950,3.990,3.980,0.010,0.25,1500,598.5
999999.XX,20261126,1,1,1,1,1,0,0,1,1
688981.SH,20261126,90.1,92.0,89.5,abc,90.0,1.5,1.67,300000,2712300
688981.SH,20261127,91.5,93.0,90.8,92.4,91.5,0.9,0.98,280000,2587200
"""


def run_cli(path: Path, redis_url: str, prefix: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, MARKETBUS_REDIS_URL=redis_url, MARKETBUS_KEY_PREFIX=prefix)
    return subprocess.run(
        [sys.executable, "-m", "marketbus.cli", "import-history", str(path)],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip


async def test_import_history_command(tmp_path: Path, redis_url: str, prefix: str, client: Redis) -> None:
    path = tmp_path / "daily.csv"
    path.write_text(CSV, encoding="utf-8")
    first = run_cli(path, redis_url, prefix)
    assert first.returncode == 0, first.stderr
    out = first.stdout
    assert "3 rejected" in out
    for line in (4, 5, 6):  # the header is line 1
        assert f"line {line}" in out, out
    store = TrendStore(client, Keys(prefix))
    hs300 = await store.tail("510300.SH", "1d", 10)
    assert hs300[:, CLOSE].tolist() == [3.92, 3.98]
    assert hs300[0, VOLUME] == 100_050  # lots of 100 -> shares
    assert (await store.tail("688981.SH", "1d", 10))[:, CLOSE].tolist() == [92.4]
    again = run_cli(path, redis_url, prefix)
    assert again.returncode == 0 and "(0 new)" in again.stdout, again.stdout
    missing = run_cli(tmp_path / "nope.csv", redis_url, prefix)
    assert missing.returncode == 2 and "nope.csv" in missing.stderr
    assert "Traceback" not in missing.stderr
