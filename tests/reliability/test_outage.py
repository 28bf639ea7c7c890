"""The server goes away and comes back, under a running stack (quotes on a replay feed, signals,
gateway), on a private valkey-server of this test.

- same data (AOF): every service reconnects with backoff, ``/readyz`` is 503 during the outage and
  200 after, no process exits, and every tick of the replay file is accounted for afterwards:
  accepted + rejected (+ dropped, counted) == the rows of the file;
- restarted EMPTY: the consumer groups are re-created and bars published afterwards still give
  their signals; ``/readyz`` goes green again. The bars are of a code the running feed does not
  quote: the trend series keeps only bars newer than its last one, so a feed writing the same code
  after the restart would drop the test's (older) bars, and the check would then rest on whatever
  signal the feed's own bars happen to give.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import httpx
import pytest

from marketbus.keys import SIGNALS_GROUP, Keys
from marketbus.redis import connect
from marketbus.server import EmbeddedServer
from marketbus.sessions import shanghai_ms

from ._support import (
    Procs,
    expected_signal_ids,
    golden_cross_bars,
    group_drained,
    group_info,
    metrics,
    publish_bars,
    signal_ids,
    tick_rows,
    wait_for,
    write_csv,
)

pytestmark = pytest.mark.slow

OUTAGE_S = 10.0
CODES = [f"{600000 + i:06d}.SH" for i in range(20)]
UNQUOTED = "512345.SH"  # a valid code outside the bundled universe the sim feed quotes


async def ready(base: str) -> int:
    async with httpx.AsyncClient(base_url=base, timeout=15) as http:
        r = await http.get("/readyz")
        assert "pw" not in r.text
        return r.status_code


async def stack(procs: Procs, server: EmbeddedServer, prefix: str, replay: Path | None) -> dict:
    env = {"MARKETBUS_CLAIM_IDLE_MS": "2000", "MARKETBUS_AUTO_CALCULATE_SIGNALS": "false"}
    quotes_env = (
        {"MARKETBUS_FEED": "replay", "MARKETBUS_REPLAY_FILE": str(replay), "MARKETBUS_SPEED": "15"}
        if replay
        else {"MARKETBUS_SEED_HISTORY": "false"}
    )
    out = {
        "quotes": procs.start("quotes", url=server.url, prefix=prefix, **env, **quotes_env),
        "signals": procs.start("signals", url=server.url, prefix=prefix, **env),
    }
    out["gateway"], out["base"] = procs.start_gateway(url=server.url, prefix=prefix)
    return out


async def outage(server: EmbeddedServer, base: str, services: list, empty: bool) -> list[int]:
    """Stop the server for OUTAGE_S; the /readyz answers seen meanwhile."""
    server.stop()
    if empty:
        assert server.data_dir is not None
        shutil.rmtree(server.data_dir)
        server.data_dir.mkdir()
    seen = []
    deadline = time.monotonic() + OUTAGE_S
    while time.monotonic() < deadline:
        seen.append(await ready(base))
        await asyncio.sleep(0.5)
        for svc in services:
            assert svc.alive, f"{svc.name} exited during the outage:\n{svc.log()[-3000:]}"
    server.start()
    return seen


async def test_a_10s_outage_with_the_same_data_loses_nothing(
    procs: Procs, private_server: EmbeddedServer, prefix: str, tmp_path: Path
) -> None:
    rows = tick_rows(CODES, shanghai_ms(2025, 11, 25, 9, 30, 1) + 500, steps=90, step_ms=3_000)
    replay = write_csv(tmp_path / "ticks.csv", rows)  # 270 market seconds = 18 s at speed 15
    keys = Keys(prefix)
    client = connect(private_server.url)
    try:
        s = await stack(procs, private_server, prefix, replay)
        services = [s["quotes"], s["signals"], s["gateway"]]

        async def ready_ok() -> bool:
            return await ready(s["base"]) == 200

        await wait_for(ready_ok, 30, "/readyz 200 before the outage")
        await wait_for(lambda: client.xlen(keys.ticks), 30, "ticks flowing")
        before = await client.xlen(keys.ticks)
        assert before < len(rows), "the replay ended before the outage"

        seen = await outage(private_server, s["base"], services, empty=False)
        assert seen and all(code == 503 for code in seen), seen
        await wait_for(ready_ok, 30, "/readyz 200 after the restart")
        for svc in services:
            assert svc.alive, svc.log()[-3000:]

        # the replay goes on to its end; every row is accounted for
        async def all_counted() -> bool:
            m = await metrics(client, keys)
            counted = sum(v for k, v in m.items() if k.startswith(("ticks_accepted", "ticks_rejected")))
            return counted >= len(rows)

        await wait_for(all_counted, 60, "every tick of the file counted")
        m = await metrics(client, keys)
        assert not any(k.startswith("ticks_dropped") for k in m), m
        assert m["ticks_accepted"] == len(rows) == await client.xlen(keys.ticks), m
        await wait_for(lambda: group_drained(client, keys.bars, SIGNALS_GROUP), 30, "bars consumed")
        for svc in services:
            assert "different loop" not in svc.log()
            code, _ = svc.terminate()
            assert code == 0, svc.log()[-3000:]
        reconnects = s["signals"].log() + s["quotes"].log()
        assert "retry" in reconnects.lower(), "no reconnect with backoff was logged"
    finally:
        await client.aclose()


async def test_a_server_restarted_empty_gets_its_groups_back_and_signals_go_on(
    procs: Procs, private_server: EmbeddedServer, prefix: str
) -> None:
    keys = Keys(prefix)
    client = connect(private_server.url)
    try:
        s = await stack(procs, private_server, prefix, replay=None)
        services = [s["quotes"], s["signals"], s["gateway"]]
        await wait_for(lambda: group_info(client, keys.bars, SIGNALS_GROUP), 30, "the group")
        await wait_for(lambda: client.xlen(keys.ticks), 60, "quotes running")
        assert await client.hlen(keys.universe), "quotes published no universe"
        assert not await client.hexists(keys.universe, UNQUOTED), f"the feed quotes {UNQUOTED}"

        seen = await outage(private_server, s["base"], services, empty=True)
        assert all(code == 503 for code in seen), seen
        await wait_for(lambda: group_info(client, keys.bars, SIGNALS_GROUP), 30, "the group re-created")

        async def ready_ok() -> bool:
            return await ready(s["base"]) == 200

        await wait_for(ready_ok, 30, "/readyz 200 after the restart")
        # what the services publish once at start comes back too: the gateway serves both
        await wait_for(lambda: client.hlen(keys.universe), 30, "the universe published again")
        await wait_for(lambda: client.hlen(keys.strategies), 30, "the strategies described again")
        bars = golden_cross_bars(UNQUOTED)
        await publish_bars(client, keys, bars)
        expected = await expected_signal_ids(client, keys, bars[-1:])
        assert expected, "the golden cross defines no signal"

        async def signalled() -> bool:
            return expected <= set(await signal_ids(client, keys))

        await wait_for(signalled, 30, "the golden cross's signals after the empty restart")
        for svc in services:
            assert svc.alive, svc.log()[-3000:]
            code, _ = svc.terminate()
            assert code == 0, svc.log()[-3000:]
    finally:
        await client.aclose()
