"""Issue 16: SIGKILL of the Sentinel primary under a live stack (quotes on a replay feed, signals,
gateway), all real processes on the ``redis+sentinel://`` URL.

- no service exits or restarts: each follows the promotion through its own clients;
- ``/readyz`` answers 503 while the primary is gone and 200 again after the promotion (a poller
  thread started before the kill records every answer);
- every 1m bar published after the failover (the bars stream of the new primary, entries whose id
  is later than the kill) is consumed (the group has nothing pending nor lagging) and gives exactly
  the signals the strategies give on its window;
- ``marketbus status`` names the new primary and one failover.

Replication is asynchronous: writes the old primary acknowledged but had not yet sent to the
replica are lost with it. The test reports what the failover window lost (entries of the bars,
ticks and signals streams, bytes of replication lag) and does not fail on it.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import redis
from redis.asyncio import Redis

from marketbus.contracts import Bar
from marketbus.keys import SIGNALS_GROUP, Keys
from marketbus.redis import connect
from marketbus.sessions import shanghai_ms
from marketbus.topology import SentinelDeployment
from marketbus.trend import TrendStore
from marketbus.wire import decode

from ..reliability._support import (
    MINUTE,
    Proc,
    Procs,
    expected_signal_ids,
    group_drained,
    random_walk_bars,
    signal_ids,
    tick_rows,
    wait_for,
    write_csv,
)

CODES = [f"{600000 + i:06d}.SH" for i in range(20)]
OPEN = shanghai_ms(2025, 11, 25, 9, 30)
SPEED = 60  # one market minute per wall second
POST_MINUTES = 6  # market minutes of 1m bars published after the failover that the test waits for


@dataclass
class ReadyPoller:
    """Asks ``/readyz`` in a loop from a thread of its own and records every answer."""

    base: str
    seen: list[tuple[float, int]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> ReadyPoller:
        self._thread = threading.Thread(target=self._run, name="readyz-poller", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with urllib.request.urlopen(f"{self.base}/readyz", timeout=10) as r:
                    code = r.status
            except urllib.error.HTTPError as exc:
                code = exc.code
            except OSError:
                code = -1  # the gateway did not answer at all
            self.seen.append((time.monotonic(), code))
            self._stop.wait(0.05)

    def recovered(self) -> bool:
        """A 503 was seen, and a 200 after it."""
        codes = [c for _, c in self.seen]
        return 503 in codes and 200 in codes[codes.index(503) :]

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(15)


async def seed_history(port: int, keys: Keys) -> None:
    """250 one-minute bars per code before the replay's first tick (a random walk with volume
    bursts), so the strategies have full windows from the first live bar on."""
    client = Redis(port=port)
    try:
        store = TrendStore(client, keys)
        for i, code in enumerate(CODES):
            await store.append(random_walk_bars(code, 250, seed=100 + i, t0=OPEN - 251 * MINUTE))
    finally:
        await client.aclose()


def entry_ids(r: redis.Redis, key: str, upto: str = "+") -> list[str]:
    return [str(i.decode() if isinstance(i, bytes) else i) for i, _ in r.xrange(key, max=upto) or []]


def lost_entries(old: redis.Redis, new: redis.Redis, keys: Keys) -> dict[str, tuple[int, int]]:
    """Per stream, (entries the killed primary had acknowledged, those of them the promoted one
    lacks)."""
    out = {}
    for name, key in (("bars", keys.bars), ("ticks", keys.ticks), ("signals", keys.signals)):
        acknowledged = entry_ids(old, key)
        kept = set(entry_ids(new, key, acknowledged[-1])) if acknowledged else set()
        out[name] = (len(acknowledged), sum(1 for i in acknowledged if i not in kept))
    return out


def post_failover_bars(r: redis.Redis, keys: Keys, kill_ms: int) -> list[Bar]:
    """The 1m bars the new primary took after the kill (entry ids are the server's wall clock)."""
    bars = [decode(Bar, f) for _, f in r.xrange(keys.bars, min=f"{kill_ms}-0") or [] if f]
    return [b for b in bars if b.period == "1m"]


def assert_alive(services: list[Proc]) -> None:
    for svc in services:
        assert svc.alive, f"{svc.name} exited ({svc.proc.returncode}):\n{svc.log()[-3000:]}"


async def test_the_stack_follows_a_sentinel_failover(
    sentinel_aof: SentinelDeployment, procs: Procs, prefix: str, tmp_path: Path
) -> None:
    sentinel = sentinel_aof
    t_start = time.monotonic()
    keys = Keys(prefix)
    url = sentinel.url
    old_port = sentinel.sentinels[0].master_port()
    await seed_history(old_port, keys)

    rows = tick_rows(CODES, OPEN + 1_500, steps=1_800, step_ms=3_000)  # 90 market minutes
    replay = write_csv(tmp_path / "ticks.csv", rows)
    env = {
        "MARKETBUS_AUTO_CALCULATE_SIGNALS": "false",
        "MARKETBUS_BACKFILL_HISTORY": "false",
        "MARKETBUS_SIGNAL_PERIODS": "1m",
        "MARKETBUS_CLAIM_IDLE_MS": "2000",
    }
    signals = procs.start("signals", url=url, prefix=prefix, **env)
    quotes = procs.start(
        "quotes", url=url, prefix=prefix, MARKETBUS_FEED="replay", MARKETBUS_REPLAY_FILE=str(replay),
        MARKETBUS_SPEED=str(SPEED), **env,
    )  # fmt: skip
    gateway, base = procs.start_gateway(url=url, prefix=prefix, **env)
    services = [quotes, signals, gateway]
    pids = {svc.name: svc.proc.pid for svc in services}

    client = connect(url)
    poller = ReadyPoller(base)
    try:

        async def signals_flowing() -> bool:
            assert_alive(services)
            return bool(await client.xlen(keys.signals))

        await wait_for(signals_flowing, 60, "signals from the live bars", every=0.2)
        poller.start()
        await wait_for(lambda: any(c == 200 for _, c in poller.seen), 30, "/readyz 200 before the kill")

        offset, replica_offset = sentinel.replication_offsets()
        kill_ms = int(time.time() * 1000)
        t_kill = time.monotonic()
        assert sentinel.kill_primary() == old_port
        new_port = sentinel.wait_promoted(old_port)
        t_promoted = time.monotonic()

        # what the failover window lost: the old primary's AOF holds every write it acknowledged
        revived = sentinel.revive_killed(old_port)
        with redis.Redis(port=revived.port) as old, redis.Redis(port=new_port) as new:
            lost = lost_entries(old, new, keys)
        assert all(n for n, _ in lost.values()), f"the old primary's AOF came back empty: {lost}"
        print(
            f"\nfailover: primary {old_port} -> {new_port} in {t_promoted - t_kill:.2f} s; the replica "
            f"was {offset - replica_offset} bytes behind just before the kill; entries the old primary "
            "had acknowledged, and of them lost: "
            + ", ".join(f"{name} {n} / {gone} lost" for name, (n, gone) in lost.items())
        )

        try:
            await wait_for(poller.recovered, 30, "/readyz 503 during the failover, then 200", every=0.2)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; answers: {summarize(poller.seen, t_kill)}") from None

        async def enough_after() -> bool:
            assert_alive(services)
            with redis.Redis(port=new_port) as r:
                return len(post_failover_bars(r, keys, kill_ms)) >= POST_MINUTES * len(CODES)

        await wait_for(enough_after, 60, f"{POST_MINUTES} market minutes of bars after the failover")
        poller.stop()
        assert_alive(services)
        assert {svc.name: svc.proc.pid for svc in services} == pids

        # quotes stops cleanly on the new primary; then every bar it published there is consumed
        code, _ = quotes.terminate()
        assert code == 0, quotes.log()[-3000:]
        await wait_for(lambda: group_drained(client, keys.bars, SIGNALS_GROUP), 30, "the bars consumed")
        with redis.Redis(port=new_port) as r:
            after = post_failover_bars(r, keys, kill_ms)
        expected = await expected_signal_ids(client, keys, after)
        got = await signal_ids(client, keys)
        missing = expected - set(got)
        assert not missing, f"{len(missing)} of the {len(expected)} signals of the post-failover bars"
        assert len(got) == len(set(got)), "a signal written twice"
        print(
            f"after the failover: {len(after)} 1m bars, {len(expected)} signals expected and written; "
            f"/readyz answers: {summarize(poller.seen, t_kill)}"
        )

        status = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "marketbus.cli", "status"],
            env={**procs.base_env, "MARKETBUS_REDIS_URL": url, "MARKETBUS_KEY_PREFIX": prefix},
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert status.returncode == 0, status.stderr
        said = " ".join(status.stdout.split())  # rich folds long lines
        assert f"primary 127.0.0.1:{new_port}" in said and "failovers 1," in said, status.stdout
        old_one = said[said.index(f"replica 127.0.0.1:{old_port} ") :]
        assert old_one.split("): ")[1].startswith("down (not a failover candidate"), said  # no "behind"
        shown = [line for line in status.stdout.splitlines() if "sentinel" in line or "replica" in line]
        print("marketbus status:\n" + "\n".join(shown))

        for svc in (signals, gateway):
            code, _ = svc.terminate()
            assert code == 0, svc.log()[-3000:]
        for svc in services:
            assert "different loop" not in svc.log()
    finally:
        poller.stop()
        await client.aclose()
    print(f"test took {time.monotonic() - t_start:.1f} s")


def summarize(seen: list[tuple[float, int]], t0: float) -> str:
    """Runs of equal answers with their start relative to ``t0``: ``200@-3.1s 503@+0.4s ...``."""
    out: list[str] = []
    last = None
    for t, code in seen:
        if code != last:
            out.append(f"{code}@{t - t0:+.1f}s")
            last = code
    return " ".join(out)
