"""`marketbus up` keeps its services running: a killed service is restarted, a crash loop stops it all.

Real processes throughout: the `marketbus up` command on free ports, and the Supervisor on small
Python children (with a tiny backoff passed to its constructor).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import redis

from marketbus.keys import Keys
from marketbus.server import free_port
from marketbus.supervisor import ChildSpec, RestartPolicy, Supervisor, restart_counter

pytestmark = pytest.mark.e2e

HEALTHY = RestartPolicy(initial_backoff_s=0.01, max_backoff_s=0.05)


def wait_for(predicate: Callable[[], Any], timeout: float, what: str | Callable[[], str]) -> Any:
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:
            last_exc = exc
        time.sleep(0.1)
    text = what() if callable(what) else what
    raise AssertionError(f"timed out waiting for {text} (last error: {last_exc!r})")


def healthz(base: str) -> bool:
    import urllib.request

    with urllib.request.urlopen(f"{base}/healthz", timeout=2) as resp:
        return resp.status == 200


def child_pids(proc: subprocess.Popen[bytes], needle: str) -> list[int]:
    out = []
    for c in psutil.Process(proc.pid).children(recursive=True):
        try:
            if needle in " ".join(c.cmdline()) and c.status() != psutil.STATUS_ZOMBIE:
                out.append(c.pid)
        except psutil.NoSuchProcess:
            pass
    return out


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


class Up:
    """`marketbus up` as a user starts it, its log in a file."""

    def __init__(self, tmp: Path, **env: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp / "up.log"
        full = {k: v for k, v in os.environ.items() if not k.startswith("MARKETBUS_")}
        full.update(PYTHONUNBUFFERED="1", **env)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "marketbus.cli", "up", "--port", str(self.port)],
                cwd=tmp,
                env=full,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def pids(self) -> list[int]:
        return [c.pid for c in psutil.Process(self.proc.pid).children(recursive=True)]


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Callable[..., Up]]:
    started: list[Up] = []

    def make(**env: str) -> Up:
        u = Up(tmp_path, **env)
        started.append(u)
        return u

    yield make
    for u in started:
        if u.proc.poll() is None:
            pids = u.pids()
            u.proc.kill()
            u.proc.wait()
            for pid in pids:  # children die with their parent (PDEATHSIG); make sure of it
                with contextlib.suppress(psutil.NoSuchProcess):
                    psutil.Process(pid).kill()


def test_a_killed_quotes_process_is_restarted_and_ticks_flow_again(
    up: Callable[..., Up], redis_url: str, prefix: str
) -> None:
    keys = Keys(prefix)
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    stack = up(MARKETBUS_REDIS_URL=redis_url, MARKETBUS_KEY_PREFIX=prefix)
    wait_for(lambda: healthz(stack.base), 90, lambda: f"the gateway; log: {stack.log()[-3000:]}")
    wait_for(lambda: r.xlen(keys.ticks) > 0, 90, "the first ticks")
    (old_quotes,) = child_pids(stack.proc, "-m quotes")
    others = sorted(child_pids(stack.proc, "-m signals") + child_pids(stack.proc, "-m gateway"))

    os.kill(old_quotes, signal.SIGKILL)
    wait_for(lambda: gone(old_quotes), 30, "the killed quotes process to end")
    last_before = r.xrevrange(keys.ticks, count=1)[0][0]

    new_quotes = wait_for(
        lambda: [p for p in child_pids(stack.proc, "-m quotes") if p != old_quotes], 60, "a new quotes"
    )
    assert len(new_quotes) == 1
    wait_for(lambda: r.hget(keys.metrics, "restarts:quotes") == "1", 30, "the restart to be counted")

    def ticks_after_restart() -> bool:
        newest = r.xrevrange(keys.ticks, count=1)
        return bool(newest) and tuple(map(int, newest[0][0].split("-"))) > tuple(
            map(int, last_before.split("-"))
        )

    wait_for(ticks_after_restart, 90, "ticks from the restarted quotes")
    assert stack.proc.poll() is None, stack.log()[-3000:]
    assert healthz(stack.base)
    # only quotes was restarted; the other services ran on untouched
    assert sorted(child_pids(stack.proc, "-m signals") + child_pids(stack.proc, "-m gateway")) == others
    assert r.hget(keys.metrics, "restarts:signals-1") is None
    assert "quotes exited with signal SIGKILL (code -9); restarting it in 0.5 s" in stack.log()

    status = subprocess.run(
        [sys.executable, "-m", "marketbus.cli", "status"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "MARKETBUS_REDIS_URL": redis_url, "MARKETBUS_KEY_PREFIX": prefix},
    )
    assert status.returncode == 0, status.stderr
    lines = [line.strip() for line in status.stdout.splitlines()]
    table = lines[lines.index("restarts") : lines.index("counters")]
    rows = [line.strip("│ ").split() for line in table if "│" in line]
    assert rows == [["quotes", "│", "1"]], status.stdout

    pids = stack.pids()
    stack.proc.send_signal(signal.SIGTERM)
    assert stack.proc.wait(60) == 0, stack.log()[-3000:]
    wait_for(lambda: all(gone(p) for p in pids), 15, "every child to end")
    r.close()


def test_the_embedded_server_dying_stops_the_stack_with_the_reason(up: Callable[..., Up]) -> None:
    stack = up()
    wait_for(lambda: healthz(stack.base), 90, lambda: f"the gateway; log: {stack.log()[-3000:]}")
    (server,) = child_pids(stack.proc, "valkey-server")
    pids = stack.pids()
    os.kill(server, signal.SIGKILL)
    assert stack.proc.wait(60) == 1, stack.log()[-3000:]
    text = stack.log()
    assert (
        "the embedded valkey-server exited with signal SIGKILL (code -9) and is not restarted; "
        "stopping marketbus" in text
    ), text[-3000:]
    assert "restarted " not in text and "restarting" not in text
    wait_for(lambda: all(gone(p) for p in pids), 15, "every child to end")


# --- the Supervisor on small children ---------------------------------------------------------


def spec(name: str, code: str, *args: str) -> ChildSpec:
    return ChildSpec(name, (sys.executable, "-c", code, *args))


SLEEP = "import time; time.sleep(120)"
FAIL_ONCE = (
    "import os, sys, time\n"
    "if not os.path.exists(sys.argv[1]):\n"
    "    open(sys.argv[1], 'w').close()\n"
    "    sys.exit(4)\n"
    "time.sleep(120)\n"
)


def supervise(sup: Supervisor, until: Callable[[], bool], timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    code = sup.run(lambda: until() or time.monotonic() > deadline)
    assert time.monotonic() <= deadline or until(), "the supervisor neither stopped nor gave up in time"
    return code


def test_a_child_that_keeps_exiting_is_a_crash_loop_that_stops_everything() -> None:
    messages: list[str] = []
    restarted: list[str] = []
    sup = Supervisor(
        [spec("flaky", "raise SystemExit(3)"), spec("steady", SLEEP)],
        policy=HEALTHY,
        on_restart=restarted.append,
        log=messages.append,
        poll_interval_s=0.02,
    )
    try:
        sup.start()
        steady = sup.procs["steady"]
        code = supervise(sup, lambda: False)
    finally:
        stopped = sup.stop_all()
    assert code == 1
    assert sup.reason == "flaky exited with code 3: a crash loop (5 exits within 60 s)"
    assert messages[-1] == f"{sup.reason}; stopping marketbus"
    assert restarted == ["flaky"] * 4
    assert steady.returncode == -signal.SIGTERM  # the healthy one was stopped, not left behind
    assert stopped == 1  # the flaky child's own exit code 3


def test_a_restart_is_counted_in_the_metrics_hash(tmp_path: Path, redis_url: str, keys: Keys) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    messages: list[str] = []
    sup = Supervisor(
        [spec("quotes", FAIL_ONCE, str(tmp_path / "ran")), spec("gateway", SLEEP)],
        policy=HEALTHY,
        on_restart=restart_counter(client, keys.metrics, log=messages.append),
        log=messages.append,
        poll_interval_s=0.02,
    )
    try:
        sup.start()
        supervise(sup, lambda: sup.restarts["quotes"] == 1)
    finally:
        assert sup.stop_all() == 0  # the exit that was restarted does not count as a failure
    assert client.hgetall(keys.metrics) == {"restarts:quotes": "1"}
    assert messages[0] == "quotes exited with code 4; restarting it in 0.01 s"
    assert messages[1].startswith("restarted quotes (pid ")
    client.close()


def test_a_server_that_is_down_does_not_stop_the_restart(tmp_path: Path) -> None:
    down = redis.Redis(port=free_port(), socket_connect_timeout=0.5, socket_timeout=0.5)
    messages: list[str] = []
    sup = Supervisor(
        [spec("signals-1", FAIL_ONCE, str(tmp_path / "ran"))],
        policy=HEALTHY,
        on_restart=restart_counter(down, "mb:metrics", log=messages.append),
        log=messages.append,
        poll_interval_s=0.02,
    )
    try:
        sup.start()
        supervise(sup, lambda: any("could not count" in m for m in messages))
        assert sup.procs["signals-1"].poll() is None  # restarted and running
    finally:
        sup.stop_all()
    assert any(m.startswith("could not count the restart of signals-1 in mb:metrics: ") for m in messages)


def test_a_stop_during_the_backoff_restarts_nothing(tmp_path: Path) -> None:
    messages: list[str] = []
    sup = Supervisor(
        [spec("quotes", FAIL_ONCE, str(tmp_path / "ran"))],
        policy=RestartPolicy(initial_backoff_s=0.5),
        log=messages.append,
        poll_interval_s=0.02,
    )
    try:
        sup.start()
        first = sup.procs["quotes"]
        code = supervise(sup, lambda: any("restarting it in" in m for m in messages))
    finally:
        assert sup.stop_all() == 0
    assert code == 0
    assert sup.procs["quotes"] is first and sup.restarts["quotes"] == 0
    assert not any(m.startswith("restarted") for m in messages)


def test_a_child_that_ignores_sigterm_is_killed_after_the_stop_timeout(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    code = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "open(sys.argv[1], 'w').close()\n"
        "time.sleep(120)\n"
    )
    messages: list[str] = []
    sup = Supervisor([spec("stubborn", code, str(ready))], log=messages.append, stop_timeout_s=0.5)
    sup.start()
    try:
        wait_for(ready.exists, 30, "the child to ignore SIGTERM")
    finally:
        result = sup.stop_all()
    assert sup.procs["stubborn"].returncode == -signal.SIGKILL
    assert result == 1
    assert messages == ["stubborn did not stop within 0.5 s; killing it"]
