"""Poison messages on each stream the signals service consumes (``{mb}:bars``, ``{mb}:commands``).

- unparseable (not JSON, JSON of the wrong schema, no ``data`` field): to ``{mb}:dlq`` at once;
- parseable but its processing keeps failing: to ``{mb}:dlq`` after K = max_deliveries deliveries.
  The failure is made for one entry only: its code's trend key (a bar) or its job key (a
  command) holds a hash, so reading it raises WRONGTYPE; the entries around it are processed.
- a DLQ entry holds the error, the original data, the stream and the original id; the original is
  acknowledged; ``marketbus dlq list`` shows it and ``marketbus dlq replay ID`` puts it back.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter

import orjson
import pytest
from redis.asyncio import Redis

from marketbus.contracts import Command, JobStatus
from marketbus.keys import COMMANDS_GROUP, SIGNALS_GROUP, Keys
from marketbus.trend import TrendStore
from marketbus.wire import encode

from ._support import Procs, golden_cross_bars, group_drained, group_info, publish_bars, wait_for

pytestmark = pytest.mark.slow

IDLE_MS = 700
MAX_DELIVERIES = 3


def cli(redis_url: str, prefix: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETBUS_")}
    env.update(MARKETBUS_REDIS_URL=redis_url, MARKETBUS_KEY_PREFIX=prefix, COLUMNS="300")
    return subprocess.run(
        [sys.executable, "-m", "marketbus.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def dlq_entries(client: Redis, keys: Keys) -> dict[str, dict[str, str]]:
    """DLQ entries by ``stream/original entry id``."""
    out = {}
    for dlq_id, f in await client.xrange(keys.dlq):
        fields = {k.decode(): v.decode("utf-8", "replace") for k, v in f.items()}
        fields["dlq_id"] = dlq_id.decode()
        out[f"{fields['stream']}/{fields['entry_id']}"] = fields
    return out


async def xadd(client: Redis, stream: str, fields: dict[str, bytes]) -> str:
    """Add an entry; its key in :func:`dlq_entries`."""
    entry_id = await client.xadd(stream, fields)  # type: ignore[arg-type]
    return f"{stream}/{entry_id.decode()}"


async def signalled(client: Redis, keys: Keys, code: str) -> bool:
    return any(orjson.loads(f[b"data"])["code"] == code for _, f in await client.xrange(keys.signals))


async def test_poison_bars_and_commands_go_to_the_dlq_and_can_be_replayed(
    procs: Procs, redis_url: str, prefix: str, keys: Keys, client: Redis
) -> None:
    worker = procs.start(
        "signals",
        url=redis_url,
        prefix=prefix,
        MARKETBUS_CLAIM_IDLE_MS=str(IDLE_MS),
        MARKETBUS_MAX_DELIVERIES=str(MAX_DELIVERIES),
        MARKETBUS_AUTO_CALCULATE_SIGNALS="false",
    )
    await wait_for(lambda: group_info(client, keys.commands, COMMANDS_GROUP), 30, "the groups")

    # --- bars -----------------------------------------------------------------------------------
    good, poison = "510300.SH", "600519.SH"
    await client.hset(keys.trend(poison, "1m"), "not", "a string")  # GETRANGE -> WRONGTYPE
    poison_bar = golden_cross_bars(poison)[-1]
    t0 = time.monotonic()
    bad_ids = [
        await xadd(client, keys.bars, {"data": b"{not json"}),
        await xadd(client, keys.bars, {"data": b'{"code": "510300.SH", "period": "2h"}'}),
        await xadd(client, keys.bars, {"something": b"else"}),
    ]
    poison_id = await xadd(client, keys.bars, encode(poison_bar))
    await TrendStore(client, keys).append(golden_cross_bars(good)[:-1])
    [good_id] = await publish_bars(client, keys, golden_cross_bars(good)[-1:])
    good_id = f"{keys.bars}/{good_id}"

    # --- commands -------------------------------------------------------------------------------
    now = int(time.time() * 1000)
    good_cmd = Command(id="good-job", type="calc_signals", period="1d", issued_ts=now)
    bad_cmd = Command(id="poison-job", type="calc_signals", period="1d", issued_ts=now)
    await client.hset(keys.job(bad_cmd.id), "not", "a string")  # GET -> WRONGTYPE
    cmd_bad_ids = [
        await xadd(client, keys.commands, {"data": b"\xff\xfe not json"}),
        await xadd(client, keys.commands, {"data": b'{"id": "x", "type": "rm -rf"}'}),
    ]
    cmd_poison_id = await xadd(client, keys.commands, encode(bad_cmd))
    await client.xadd(keys.commands, encode(good_cmd))  # type: ignore[arg-type]

    # unparseable entries: dead-lettered at once, before any redelivery could have happened
    unparseable = [*bad_ids, *cmd_bad_ids]

    async def all_unparseable_dead() -> bool:
        return set(unparseable) <= set(await dlq_entries(client, keys))

    await wait_for(all_unparseable_dead, 10, "unparseable entries in the DLQ", every=0.02)
    assert time.monotonic() - t0 < IDLE_MS / 1000, "unparseable entries waited for a redelivery"

    async def poison_dead() -> bool:
        return {poison_id, cmd_poison_id} <= set(await dlq_entries(client, keys))

    await wait_for(poison_dead, 30, "the failing bar and command in the DLQ")
    # K deliveries, each after IDLE_MS idle: not before (K - 1) idle periods
    assert time.monotonic() - t0 >= (MAX_DELIVERIES - 1) * IDLE_MS / 1000

    dead = await dlq_entries(client, keys)
    originals = Counter((f[b"stream"], f[b"entry_id"]) for _, f in await client.xrange(keys.dlq))
    assert max(originals.values()) == 1, f"dead-lettered more than once: {originals}"
    for entry_id in bad_ids:
        assert dead[entry_id]["stream"] == keys.bars
    for entry_id in cmd_bad_ids:
        assert dead[entry_id]["stream"] == keys.commands
    assert "Invalid JSON" in dead[bad_ids[0]]["error"] and dead[bad_ids[0]]["data"] == "{not json"
    assert "period" in dead[bad_ids[1]]["error"]
    assert "no 'data' field" in dead[bad_ids[2]]["error"]
    assert orjson.loads(dead[bad_ids[2]]["data"]) == {"something": "else"}
    assert "Command" in dead[cmd_bad_ids[1]]["error"]
    for entry_id, stream in ((poison_id, keys.bars), (cmd_poison_id, keys.commands)):
        entry = dead[entry_id]
        assert entry["stream"] == stream
        assert f"failed {MAX_DELIVERIES} times" in entry["error"], entry["error"]
    assert orjson.loads(dead[poison_id]["data"]) == orjson.loads(poison_bar.model_dump_json())
    assert good_id not in dead

    # the others went on; every original is acknowledged
    await wait_for(lambda: signalled(client, keys, good), 10, "the good bar's signal")

    async def good_job_done() -> bool:
        raw = await client.get(keys.job(good_cmd.id))
        return raw is not None and JobStatus.model_validate_json(raw).state == "done"

    await wait_for(good_job_done, 20, "the good command's job")
    await wait_for(lambda: group_drained(client, keys.bars, SIGNALS_GROUP), 10, "bars acknowledged")
    await wait_for(lambda: group_drained(client, keys.commands, COMMANDS_GROUP), 10, "commands acknowledged")
    assert not await signalled(client, keys, poison)
    # the dead-lettered command's job is answered as failed (nobody waits on it for ever)
    failed = JobStatus.model_validate_json(await client.get(keys.job(bad_cmd.id)))  # type: ignore[arg-type]
    assert failed.state == "failed" and "dead-lettered" in (failed.error or "")

    # --- the operator: list, repair the cause, replay ---------------------------------------------
    listed = cli(redis_url, prefix, "dlq", "list", "--limit", "50")
    assert listed.returncode == 0, listed.stderr
    dlq_id = dead[poison_id]["dlq_id"]
    assert dlq_id in listed.stdout and poison_id.split("/")[1] in listed.stdout, listed.stdout
    await client.delete(keys.trend(poison, "1m"))
    await TrendStore(client, keys).append(golden_cross_bars(poison))
    replayed = cli(redis_url, prefix, "dlq", "replay", dlq_id)
    assert replayed.returncode == 0, replayed.stderr
    await wait_for(lambda: signalled(client, keys, poison), 15, "the replayed bar's signal")
    assert dlq_id not in {f["dlq_id"] for f in (await dlq_entries(client, keys)).values()}
    missing = cli(redis_url, prefix, "dlq", "replay", "1-1")
    assert missing.returncode == 2 and "no DLQ entry" in missing.stderr

    assert worker.alive
    code, _ = worker.terminate()
    assert code == 0, worker.log()[-3000:]
