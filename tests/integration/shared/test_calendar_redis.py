"""The calendar in Redis, against the real server: an imported trade_cal and a learned day are
obeyed by a process that only loads the calendar; `marketbus import-calendar` and `status` as a
user runs them; a running process picks up another process's change."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from marketbus import calendar, sessions
from marketbus.keys import Keys

D = dt.date

TRADE_CAL = "exchange,cal_date,is_open,pretrade_date\n" + "".join(
    f"SSE,{day:%Y%m%d},{0 if day.weekday() >= 5 or D(2027, 2, 8) <= day <= D(2027, 2, 12) else 1},\n"
    for day in (D(2027, 1, 1) + dt.timedelta(days=i) for i in range(90))
)  # 2027-01-01 .. 2027-03-31, a closed week in February

PROBE = """
import asyncio, datetime as dt, json, sys
from marketbus import calendar, sessions
from marketbus.keys import Keys
from marketbus.redis import connect

async def main():
    client = connect(sys.argv[1])
    try:
        cal = await calendar.load(client, Keys(sys.argv[2]), today=dt.date(2026, 12, 2))
    finally:
        await client.aclose()
    days = [dt.date.fromisoformat(d) for d in sys.argv[3:]]
    print(json.dumps({"last": str(cal.known_last_day),
                      "open": {str(d): sessions.is_trading_day(d) for d in days}}))

asyncio.run(main())
"""


@pytest.fixture(autouse=True)
def package_calendar_again() -> Iterator[None]:
    yield
    sessions.install_calendar(None)


def env_for(redis_url: str, prefix: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETBUS_")}
    env.update(MARKETBUS_REDIS_URL=redis_url, MARKETBUS_KEY_PREFIX=prefix, **extra)
    return env


def probe(redis_url: str, prefix: str, *days: str) -> dict[str, object]:
    """A fresh process that loads the calendar from Redis and answers for ``days``."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE, redis_url, prefix, *days],
        capture_output=True, text=True, timeout=120, env=env_for(redis_url, prefix),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    result: dict[str, object] = json.loads(out.stdout)
    return result


def cli(redis_url: str, prefix: str, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "marketbus.cli", *args],
        capture_output=True, text=True, timeout=120, env=env_for(redis_url, prefix, **extra),
    )  # fmt: skip


async def test_a_service_start_writes_the_known_last_day(client: Redis, keys: Keys) -> None:
    cal = await calendar.load(client, keys, today=D(2026, 12, 2))
    assert cal.known_last_day == D(2026, 12, 31)
    assert await client.hget(keys.calendar, calendar.LAST_DAY_FIELD) == b"2026-12-31"
    assert sessions.is_trading_day(D(2027, 2, 8))  # nothing known yet: a weekday


async def test_a_reader_loads_the_calendar_without_writing_it(client: Redis, keys: Keys) -> None:
    # the gateway reads the calendar; recording the package's days is the services' part
    cal = await calendar.load(client, keys, today=D(2026, 12, 2), record=False)
    assert cal.known_last_day == D(2026, 12, 31)
    assert not await client.exists(keys.calendar)


async def test_an_import_is_obeyed_by_a_fresh_process(
    tmp_path: Path, client: Redis, keys: Keys, redis_url: str
) -> None:
    path = tmp_path / "trade_cal.csv"
    path.write_text(TRADE_CAL, encoding="utf-8")
    result = await calendar.import_trade_cal(client, keys, path)
    assert (result.imported, result.first, result.last) == (90, D(2027, 1, 1), D(2027, 3, 31))
    assert result.calendar_last_day == D(2027, 3, 31) and not result.errors
    assert not sessions.is_trading_day(D(2027, 2, 8))  # installed here too
    seen = probe(redis_url, keys.prefix, "2027-02-08", "2027-02-15", "2027-04-05")
    assert seen == {
        "last": "2027-03-31",
        "open": {"2027-02-08": False, "2027-02-15": True, "2027-04-05": True},
    }
    # an older import never moves the known last day back
    older = tmp_path / "old.csv"
    older.write_text("cal_date,is_open\n20261230,1\n", encoding="utf-8")
    assert (await calendar.import_trade_cal(client, keys, older)).calendar_last_day == D(2027, 3, 31)


async def test_a_learned_day_is_obeyed_and_an_import_can_reopen_it(
    tmp_path: Path, client: Redis, keys: Keys, redis_url: str
) -> None:
    learned = D(2027, 4, 5)  # a Monday beyond the known calendar
    cal = await calendar.learn_closed(client, keys, learned)
    assert not cal.is_trading_daynum(sessions._daynum(learned))
    assert sessions.minute_bucket(sessions.shanghai_ms(2027, 4, 5, 10)) is None
    assert probe(redis_url, keys.prefix, "2027-04-05")["open"] == {"2027-04-05": False}
    path = tmp_path / "reopen.csv"
    path.write_text("cal_date,is_open\n20270405,1\n", encoding="utf-8")
    await calendar.import_trade_cal(client, keys, path)
    assert sessions.is_trading_day(learned)
    assert probe(redis_url, keys.prefix, "2027-04-05")["open"] == {"2027-04-05": True}


async def test_keep_fresh_follows_another_process(client: Redis, keys: Keys, redis_url: str) -> None:
    await calendar.load(client, keys, today=D(2026, 12, 2))
    stop = asyncio.Event()
    task = asyncio.create_task(calendar.keep_fresh(client, keys, stop, check_s=0.05))
    try:
        day = D(2027, 4, 6)
        assert sessions.is_trading_day(day)
        other = Redis.from_url(redis_url)
        try:  # another process learns a day: what it writes, nothing installed here
            await other.hset(keys.calendar, f"learned:{day}", "1")
            await other.hincrby(keys.calendar, "rev", 1)
        finally:
            await other.aclose()
        deadline = time.monotonic() + 30
        while sessions.is_trading_day(day):
            assert time.monotonic() < deadline, "keep_fresh did not reload the calendar"
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    assert task.result() is None


BAD_CAL = (
    "exchange,cal_date,is_open,pretrade_date\n"
    "SSE,20270104,1,20261231\n"
    "SSE,2027-01-05,1,20270104\n"  # line 3
    "SSE,20270106,yes,20270105\n"  # line 4
    "CFFEX,20270107,1,20270106\n"
    "SSE,20270108,0,20270107\n"
)


def test_import_calendar_command(tmp_path: Path, redis_url: str, keys: Keys) -> None:
    clock = f"2027-01-04T10:00:00@{time.time():.0f}x1"  # the user's today: 2027-01-04
    before = cli(redis_url, keys.prefix, "status", MARKETBUS_MARKET_CLOCK=clock)
    assert before.returncode == 0, before.stderr
    assert "no trading calendar in Redis yet" in before.stdout

    path = tmp_path / "trade_cal.csv"
    path.write_text(BAD_CAL, encoding="utf-8")
    out = cli(redis_url, keys.prefix, "import-calendar", str(path))
    assert out.returncode == 0, out.stderr
    assert "imported 2 days from 2027-01-04 to 2027-01-08 (1 open, 1 closed)" in out.stdout
    assert "2 rejected" in out.stdout and "line 3" in out.stdout and "line 4" in out.stdout
    assert "skipped 1 rows of other exchanges" in out.stdout
    assert "known up to 2027-01-08" in out.stdout

    status = cli(redis_url, keys.prefix, "status", MARKETBUS_MARKET_CLOCK=clock)
    assert status.returncode == 0, status.stderr
    assert "known up to 2027-01-08" in status.stdout
    assert "warning: the trading calendar ends on 2027-01-08 (in 4 days)" in " ".join(status.stdout.split())

    (tmp_path / "full.csv").write_text(TRADE_CAL, encoding="utf-8")
    assert cli(redis_url, keys.prefix, "import-calendar", str(tmp_path / "full.csv")).returncode == 0
    status = cli(redis_url, keys.prefix, "status", MARKETBUS_MARKET_CLOCK=clock)
    assert "known up to 2027-03-31" in status.stdout and "warning" not in status.stdout

    nothing = tmp_path / "nothing.csv"
    nothing.write_text("exchange,cal_date,is_open\nSSE,2027011,1\n", encoding="utf-8")
    out = cli(redis_url, keys.prefix, "import-calendar", str(nothing))
    assert out.returncode == 1 and "imported nothing" in out.stdout and "line 2" in out.stdout
    missing = cli(redis_url, keys.prefix, "import-calendar", str(tmp_path / "nope.csv"))
    assert missing.returncode == 1 and "nope.csv" in missing.stderr and "Traceback" not in missing.stderr
    wrong = tmp_path / "daily.csv"
    wrong.write_text("ts_code,trade_date,close\n510300.SH,20270104,3.9\n", encoding="utf-8")
    out = cli(redis_url, keys.prefix, "import-calendar", str(wrong))
    assert out.returncode == 1 and "cal_date" in out.stderr and "Traceback" not in out.stderr


async def test_the_package_sessions_are_kept_and_a_newer_package_wins(client: Redis, keys: Keys) -> None:
    await calendar.load(client, keys, today=D(2026, 12, 2), warn=False)
    stored_last, holidays = calendar.stored_package(await client.hgetall(keys.calendar))
    assert stored_last == sessions.package_calendar().package_last_day
    assert D(2026, 10, 1) in holidays and D(2026, 10, 8) not in holidays  # National Day week
    # another process had a newer package that knows 2027 (Spring Festival week closed)
    newer = sorted(holidays | {D(2027, 2, 8), D(2027, 2, 9), D(2027, 2, 10)})
    await client.hset(
        keys.calendar,
        mapping={"package_last_day": "2027-12-31", "package_holidays": ",".join(map(str, newer))},
    )
    cal = await calendar.load(client, keys, today=D(2026, 12, 2), warn=False)
    assert cal.known_last_day == D(2027, 12, 31)
    assert not sessions.is_trading_day(D(2027, 2, 9)) and sessions.is_trading_day(D(2027, 2, 11))
    assert calendar.warning(D(2026, 12, 2)) is None
    # the older package never overwrites the newer one's sessions
    assert calendar.stored_package(await client.hgetall(keys.calendar)) == (D(2027, 12, 31), frozenset(newer))
