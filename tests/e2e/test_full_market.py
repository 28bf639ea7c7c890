"""`marketbus up --feed auto` on the whole market of the provider simulator (over real HTTP).

The simulator lists 6,000 codes (stocks of every board, ETFs, LOFs and the six main indices) at a
market clock set inside a real trading session; the stack takes its universe from the list
endpoint, polls every code, and the gateway serves them: the board, search, an index's quote.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import redis

from marketbus.keys import Keys
from marketbus.server import free_port
from quotes.providersim.launch import running_simulator

pytestmark = pytest.mark.e2e

CODES = 6000
INDICES = {"000001.SH", "399001.SZ", "399006.SZ", "000300.SH", "000905.SH", "000688.SH"}
# 10:00 of Friday 2026-11-20 (a trading day) at this moment, running at real speed
CLOCK_AT = "2026-11-20T10:00:00"


def get_json(url: str) -> object:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


def wait_for(predicate, timeout: float, what: str, proc: subprocess.Popen[bytes], log: Path):
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"marketbus up exited ({proc.returncode}): {log.read_text()[-3000:]}")
        try:
            last = predicate()
            if last:
                return last
        except (OSError, ValueError) as exc:
            last = exc
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r}); log: {log.read_text()[-3000:]}")


def test_up_with_feed_auto_covers_every_listed_code_with_indices(
    tmp_path: Path, redis_url: str, prefix: str
) -> None:
    clock = f"{CLOCK_AT}@{time.time():.3f}x1"
    with running_simulator(codes=CODES, clock=clock) as sim:
        listed = {row["code"] for row in sim.listing()["securities"]}
        assert len(listed) >= CODES and listed >= INDICES
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETBUS_")}
        env.update(
            MARKETBUS_REDIS_URL=redis_url,
            MARKETBUS_KEY_PREFIX=prefix,
            MARKETBUS_PROVIDER_URL=sim.url,
            MARKETBUS_MARKET_CLOCK=clock,
            MARKETBUS_POLL_INTERVAL="3",
            MARKETBUS_AUTO_CALCULATE_SIGNALS="false",
            PYTHONUNBUFFERED="1",
        )
        log = tmp_path / "up.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "marketbus.cli", "up", "--feed", "auto", "--port", str(port)],
                cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        r = redis.Redis.from_url(redis_url, decode_responses=True)
        try:
            wait_for(lambda: get_json(f"{base}/healthz"), 90, "the gateway", proc, log)
            # the universe is the simulator's list, not the bundled one
            codes = wait_for(
                lambda: {row["code"] for row in get_json(f"{base}/api/stocks/codes")["items"]} == listed,
                90, "the listed universe in /api/stocks/codes", proc, log,
            )  # fmt: skip
            assert codes
            suspended = set(sim.listing()["suspended"])
            quoted = listed - suspended
            wait_for(
                lambda: set(r.hkeys(Keys(prefix).snapshots)) >= quoted,
                120, "a snapshot of every traded code", proc, log,
            )  # fmt: skip
            index = get_json(f"{base}/api/quotes/000001.SH")
            assert index["market"] == "指数" and index["name"] == "上证指数" and index["price"] > 0
            query = urllib.parse.quote("沪深300")
            found = get_json(f"{base}/api/stocks/search?q={query}")["items"]
            assert "000300.SH" in {row["code"] for row in found}
            poll = wait_for(lambda: r.get(Keys(prefix).poll_stats), 60, "the poll report", proc, log)
            report = json.loads(poll)
            assert report["codes_requested"] == len(listed)
            assert report["codes_covered"] >= len(quoted)
            status = subprocess.run(
                [sys.executable, "-m", "marketbus.cli", "status"],
                env=env, capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert status.returncode == 0, status.stderr
            assert "last poll" in status.stdout and str(len(listed)) in status.stdout
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
