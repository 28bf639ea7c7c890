"""``python -m quotes`` as a real process: ticks, snapshots and bars appear; SIGTERM flushes."""

import os
import signal
import subprocess
import sys
import time

import redis

from marketbus import wire
from marketbus.contracts import Bar, Quote, Tick
from marketbus.keys import Keys
from marketbus.sessions import bucket
from marketbus.trend import RECORD_BYTES, TS, unpack


def wait_for(check: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.1)


def test_process_publishes_and_flushes_on_sigterm(redis_url: str, keys: Keys) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETBUS_")}
    env |= {"MARKETBUS_REDIS_URL": redis_url, "MARKETBUS_KEY_PREFIX": keys.prefix,
            "MARKETBUS_SPEED": "60"}  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "quotes"], env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    r = redis.Redis.from_url(redis_url)
    try:
        wait_for(lambda: r.xlen(keys.bars) > 0 and r.hlen(keys.snapshots) >= 100)
        assert r.xlen(keys.ticks) > 0
        assert r.hexists(keys.heartbeats, "quotes")
        Quote.model_validate_json(r.hget(keys.snapshots, "510300.SH"))  # type: ignore[arg-type]
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out
    assert "redis://" in out and "stopped:" in out
    # the last tick of every code is in a stored 1m bar and its day's 1d bar: flushed to the
    # trend series; the day's bar is still being built, so it is stored but not published
    ticks = [wire.decode(Tick, f) for _i, f in r.xrevrange(keys.ticks, count=2000)]
    last: dict[str, Tick] = {}
    for tick in ticks:
        last.setdefault(tick.code, tick)
    published = {(b.code, b.period, b.ts) for b in
                 (wire.decode(Bar, f) for _i, f in r.xrange(keys.bars))}  # fmt: skip
    for code, tick in last.items():
        for period in ("1m", "1d"):
            raw = r.getrange(keys.trend(code, period), -RECORD_BYTES, -1)
            assert unpack(raw)[-1, TS] == bucket(tick.ts, period), (code, period)
        assert (code, "1d", bucket(tick.ts, "1d")) not in published
    r.close()
