"""`marketbus up` as a user runs it: real server, three service processes, real HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from marketbus.server import free_port

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:
            last_exc = exc
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what} (last error: {last_exc!r})")


@pytest.fixture
def up_stack(tmp_path: Path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETBUS_")}
    env.update(MARKETBUS_API_TOKEN="e2e-token", PYTHONUNBUFFERED="1")
    log = open(tmp_path / "up.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "marketbus.cli", "up", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield proc, f"http://127.0.0.1:{port}", tmp_path / "up.log"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()


def test_quotes_and_signals_flow_through_three_processes_and_nothing_survives(up_stack) -> None:
    proc, base, log_path = up_stack
    try:
        wait_for(lambda: get_json(f"{base}/healthz"), 60, "the gateway")
        children = psutil.Process(proc.pid).children(recursive=True)
        cmdlines = [" ".join(c.cmdline()) for c in children]
        for module in ("-m quotes", "-m signals", "-m scorecard", "-m gateway"):
            assert any(module in c for c in cmdlines), cmdlines
        assert any("valkey-server" in c for c in cmdlines), cmdlines

        first = wait_for(lambda: get_json(f"{base}/api/etf/quotes")["items"], 60, "ETF quotes")
        codes = {q["code"] for q in first}
        assert {"510300.SH", "159915.SZ", "588000.SH", "518880.SH"} <= codes
        assert len(first) >= 50
        sample = next(q for q in first if q["code"] == "510300.SH")
        assert sample["name"] == "沪深300ETF" and sample["price"] > 0

        # quotes move
        def moved():
            now = {q["code"]: q for q in get_json(f"{base}/api/etf/quotes")["items"]}
            return any(
                now[c]["ts"] != q["ts"] or now[c]["price"] != q["price"]
                for c, q in ((q["code"], q) for q in first)
            )

        wait_for(moved, 30, "quotes to move")
        signals = wait_for(lambda: get_json(f"{base}/api/signals?limit=50")["items"], 90, "a signal")
        sig = signals[0]
        assert sig["side"] in ("BUY", "SELL") and 0 <= sig["confidence"] <= 1
        assert sig["strategy"] and sig["strategy_name"] and sig["name"]
        ready = get_json(f"{base}/readyz")
        assert ready

        # the scorecard: filled from the seeded history within a minute, then moving as bars close
        def scored() -> dict | None:
            card = get_json(f"{base}/api/scorecard?period=1d&strategy=*&market=*&horizon=5")
            return card if card["state"] and card["rows"] and card["rows"][0]["signals"] > 0 else None

        card = wait_for(scored, 60, "the scorecard from history")
        assert card["rows"][0]["mean_return"]["n"] > 0
        first_state = card["state"]
        wait_for(
            lambda: get_json(f"{base}/api/scorecard")["state"]["scored"] > first_state["scored"],
            60,
            "the scorecard to move as bars close",
        )
    finally:
        pids = [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
    assert code == 0, log_path.read_text(errors="replace")[-3000:]
    time.sleep(0.5)
    survivors = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"]
    assert survivors == [], f"processes left behind: {survivors}"
    text = log_path.read_text(errors="replace")
    assert "attached to a different loop" not in text and "Traceback" not in text, text[-3000:]


def test_port_in_use_is_a_one_line_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        res = subprocess.run(
            [sys.executable, "-m", "marketbus.cli", "up", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )
    assert res.returncode == 2
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"port {port}" in lines[0] and "--port" in lines[0], res.stderr
    assert "Traceback" not in res.stderr


def test_unreachable_server_is_a_one_line_error(tmp_path: Path) -> None:
    env = dict(os.environ, MARKETBUS_REDIS_URL=f"redis://:secret@127.0.0.1:{free_port()}/0")
    res = subprocess.run(
        [sys.executable, "-m", "marketbus.cli", "up", "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )
    assert res.returncode == 2
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "cannot reach the server" in lines[0], res.stderr
    assert "secret" not in res.stderr and "Traceback" not in res.stderr
