"""Security: no default secret, constant-time token check, rate limit, size limits, loopback bind,
and a password in the server URL that works end to end and never shows.

- ``api_token`` has no default, and compose.yaml gives every secret-like variable an empty value
  unless the environment sets it;
- the trigger compares the token with ``hmac.compare_digest`` (a spy on it, in an in-process app on
  a real uvicorn server and a real Redis, sees it called with the token, and what it answers is what
  decides);
- with a low ``MARKETBUS_TRIGGER_RATE_PER_MINUTE`` the burst is followed by 429 with a Retry-After
  that follows that rate; a body over the limit gets 413, a too-long ``codes`` list 422 naming it;
- ``python -m gateway`` without ``MARKETBUS_HOST`` listens on 127.0.0.1 only;
- a valkey-server with ``--requirepass``: quotes, signals and gateway work through
  ``redis://:PASSWORD@...``; the password is in no log, not in /readyz (up or down) nor /metrics;
  ``marketbus up`` with a wrong password fails with one line, exit 2, without the password.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import psutil
import pytest
import redis
import uvicorn
import yaml

from marketbus.keys import SIGNALS_GROUP, Keys
from marketbus.redis import connect
from marketbus.server import binary_path, free_port
from marketbus.sessions import shanghai_ms
from marketbus.settings import Settings

from ._support import (
    Proc,
    Procs,
    golden_cross_bars,
    group_info,
    publish_bars,
    tick_rows,
    wait_for,
    write_csv,
)

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "tok-" + uuid.uuid4().hex


# --- no default secret ------------------------------------------------------------------------


def test_the_api_token_has_no_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MARKETBUS_API_TOKEN", raising=False)
    assert Settings.model_fields["api_token"].default is None
    assert Settings(_env_file=None).api_token is None  # type: ignore[call-arg]


def _interpolate(value: str, env: dict[str, str]) -> str:
    """docker compose interpolation of ${VAR}, ${VAR:-default}, ${VAR-default}."""

    def one(m: re.Match[str]) -> str:
        name, op, default = m[1], m[2], m[3] or ""
        if name in env and (env[name] or op != ":-"):
            return env[name]
        return default if op else ""

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:?-)?([^}]*)\}", one, value)


def compose_secrets(text: str, env: dict[str, str]) -> dict[str, str]:
    """service/VARIABLE -> value, for every secret-like variable of compose.yaml's services."""
    doc = yaml.safe_load(text)
    out = {}
    for name, svc in doc["services"].items():
        environment = svc.get("environment") or {}
        if isinstance(environment, list):
            environment = dict(item.partition("=")[::2] for item in environment)
        for var, value in environment.items():
            if re.search(r"TOKEN|PASSWORD|SECRET|_KEY$", var):
                out[f"{name}/{var}"] = _interpolate(str(value or ""), env)
        command = " ".join(map(str, svc.get("command") or []))
        assert "requirepass" not in command or "${" in command, f"{name}: a literal server password"
    return out


def test_compose_has_no_default_secret() -> None:
    text = (ROOT / "compose.yaml").read_text(encoding="utf-8")
    secrets = compose_secrets(text, {})
    assert "gateway/MARKETBUS_API_TOKEN" in secrets
    assert all(v == "" for v in secrets.values()), secrets
    # and it is passed through when set
    assert compose_secrets(text, {"MARKETBUS_API_TOKEN": "abc"})["gateway/MARKETBUS_API_TOKEN"] == "abc"
    # the documented default is "unset"
    readme = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    row = next(line for line in readme if line.startswith("| `MARKETBUS_API_TOKEN`"))
    assert "| (unset) |" in row, row


# --- constant-time comparison (in-process app, real uvicorn server, real Redis) ----------------


@asynccontextmanager
async def serve(settings: Settings) -> AsyncIterator[str]:
    from gateway.app import create_app

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, lifespan="on", log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    try:
        await wait_for(lambda: server.started or task.done(), 30, "uvicorn started")
        assert not task.done(), task.exception()
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)


async def test_the_token_is_compared_with_hmac_compare_digest(
    redis_url: str, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(redis_url=redis_url, key_prefix=prefix, api_token=TOKEN, _env_file=None)  # type: ignore[call-arg]
    real = hmac.compare_digest
    calls: list[tuple[object, object]] = []
    verdict: dict[str, bool | None] = {"force": None}

    def spy(a: object, b: object) -> bool:
        calls.append((a, b))
        answer = real(a, b)  # type: ignore[arg-type]
        return answer if verdict["force"] is None else verdict["force"]

    monkeypatch.setattr(hmac, "compare_digest", spy)
    async with serve(settings) as base, httpx.AsyncClient(base_url=base, timeout=15) as http:
        wrong = await http.post("/api/scheduler/trigger", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401, wrong.text
        assert (b"nope", TOKEN.encode()) in calls
        calls.clear()
        right = await http.post("/api/scheduler/trigger", headers={"Authorization": f"Bearer {TOKEN}"})
        assert right.status_code == 202, right.text
        assert (TOKEN.encode(), TOKEN.encode()) in calls
        # what compare_digest answers is what decides
        verdict["force"] = False
        refused = await http.post("/api/scheduler/trigger", headers={"Authorization": f"Bearer {TOKEN}"})
        assert refused.status_code == 401, refused.text
        verdict["force"] = True
        let_in = await http.post("/api/scheduler/trigger", headers={"Authorization": "Bearer nope"})
        assert let_in.status_code == 202, let_in.text


# --- rate limit and size limits on a real `python -m gateway` ----------------------------------


async def test_trigger_rate_limit_and_size_limits(procs: Procs, redis_url: str, prefix: str) -> None:
    _, base = procs.start_gateway(
        url=redis_url, prefix=prefix, MARKETBUS_API_TOKEN=TOKEN, MARKETBUS_TRIGGER_RATE_PER_MINUTE="2"
    )
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=base, timeout=15) as http:
        # a body over 16 KiB: 413 before anything else (it does not use up the rate either)
        big = b'{"task_type": "calc_signals", "pad": "' + b"x" * 20_000 + b'"}'
        json_auth = {**auth, "content-type": "application/json"}
        r = await http.post("/api/scheduler/trigger", content=big, headers=json_auth)
        assert r.status_code == 413 and r.json()["error"] == "payload_too_large", r.text

        # a codes list over 500 codes (the string itself under its 5,500 characters): 422 naming it
        codes = ",".join(f"{600000 + i:06d}.SH" for i in range(501))
        assert len(codes) < 5_500
        r = await http.get("/api/stocks/quotes", params={"codes": codes})
        assert r.status_code == 422 and r.json()["param"] == "codes", r.text
        assert "at most 500" in r.json()["message"]
        r = await http.get("/api/stocks/quotes", params={"codes": codes[:4_999]})  # exactly 500 codes: fine
        assert r.status_code == 200, r.text
        r = await http.get("/api/stocks/quotes", params={"codes": "510300.SH," * 600})  # too long a string
        assert r.status_code == 422 and r.json()["param"] == "codes", r.text

        # the burst (10), then 429 with a Retry-After that follows 2 per minute (30 s per token)
        answers = [(await http.post("/api/scheduler/trigger", headers=auth)) for _ in range(12)]
        codes_seen = [a.status_code for a in answers]
        assert codes_seen == [202] * 10 + [429] * 2, codes_seen
        limited = answers[-1]
        assert limited.json()["error"] == "rate_limited"
        assert 20 <= int(limited.headers["Retry-After"]) <= 30, limited.headers


async def test_a_chunked_body_over_the_limit_is_refused(procs: Procs, redis_url: str, prefix: str) -> None:
    _, base = procs.start_gateway(url=redis_url, prefix=prefix, MARKETBUS_API_TOKEN=TOKEN)

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"task_type": "calc_signals"'
        for _ in range(64):
            yield b" " * 16_384  # 1 MiB of JSON whitespace: still a valid body
        yield b"}"

    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        r = await http.post(
            "/api/scheduler/trigger",
            content=chunks(),
            headers={"Authorization": f"Bearer {TOKEN}", "content-type": "application/json"},
        )
    assert r.status_code == 413, f"{r.status_code}: {r.text[:300]}"


# --- loopback by default ----------------------------------------------------------------------


def non_loopback_ipv4() -> str | None:
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family == socket.AF_INET and not a.address.startswith("127."):
                return a.address
    return None


async def test_the_gateway_binds_127_0_0_1_by_default(procs: Procs, redis_url: str, prefix: str) -> None:
    assert not (Path.cwd() / ".env").exists(), "an .env here would set the host"
    gateway, base = procs.start_gateway(url=redis_url, prefix=prefix)  # no MARKETBUS_HOST
    port = int(base.rsplit(":", 1)[1])
    listening = {
        (c.laddr.ip, c.laddr.port)
        for c in psutil.Process(gateway.proc.pid).net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN
    }
    assert listening == {("127.0.0.1", port)}, listening
    other = non_loopback_ipv4()
    if other is not None:  # a connection to this host's other address is refused
        with pytest.raises(OSError):
            socket.create_connection((other, port), timeout=2).close()


# --- a password in the server URL -------------------------------------------------------------


@pytest.fixture
def password_server(tmp_path: Path) -> Iterator[tuple[int, str]]:
    """A valkey-server of this test with ``--requirepass``: (port, password)."""
    password = "pw-" + uuid.uuid4().hex
    port = free_port()
    data = tmp_path / "valkey-pw"
    data.mkdir()
    proc = subprocess.Popen(
        [str(binary_path()), "--port", str(port), "--bind", "127.0.0.1", "--requirepass", password,
         "--dir", str(data), "--save", "", "--appendonly", "no", "--daemonize", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(port=port, password=password, socket_connect_timeout=0.5).ping()
                break
            except redis.ConnectionError:
                assert proc.poll() is None and time.monotonic() < deadline, "valkey-server did not start"
                time.sleep(0.05)
        yield port, password
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def test_a_password_in_the_url_works_and_never_shows(
    procs: Procs, password_server: tuple[int, str], prefix: str, tmp_path: Path
) -> None:
    port, password = password_server
    url = f"redis://:{password}@127.0.0.1:{port}/0"
    with pytest.raises(redis.AuthenticationError):  # the server really wants it
        redis.Redis(port=port).ping()
    keys = Keys(prefix)
    start = shanghai_ms(2025, 11, 25, 9, 30, 1)
    rows = tick_rows(["510300.SH", "159915.SZ"], start, steps=200, step_ms=3_000)
    replay = write_csv(tmp_path / "ticks.csv", rows)
    env = {"MARKETBUS_AUTO_CALCULATE_SIGNALS": "false"}
    services: list[Proc] = [
        procs.start("quotes", url=url, prefix=prefix, MARKETBUS_FEED="replay",
                    MARKETBUS_REPLAY_FILE=str(replay), MARKETBUS_SPEED="20", **env),
        procs.start("signals", url=url, prefix=prefix, **env),
    ]  # fmt: skip
    gateway, base = procs.start_gateway(url=url, prefix=prefix)
    services.append(gateway)
    client = connect(url)
    try:
        await wait_for(lambda: group_info(client, keys.bars, SIGNALS_GROUP), 30, "the signals group")
        await publish_bars(client, keys, golden_cross_bars("510500.SH"))
        async with httpx.AsyncClient(base_url=base, timeout=15) as http:

            async def quote() -> bool:
                r = await http.get("/api/quotes/510300.SH")
                return r.status_code == 200 and r.json()["price"] > 0

            async def a_signal() -> bool:
                r = await http.get("/api/signals", params={"code": "510500.SH"})
                return r.status_code == 200 and any(s["code"] == "510500.SH" for s in r.json()["items"])

            async def ready() -> httpx.Response:
                return await http.get("/readyz")

            await wait_for(quote, 30, "a quote through the API")
            await wait_for(a_signal, 30, "a signal through the API")
            up = await ready()
            assert up.status_code == 200 and password not in up.text and "***" in up.text, up.text
            metrics = await http.get("/metrics")
            assert metrics.status_code == 200 and password not in metrics.text
            # the server goes away: /readyz says so, still without the password
            await asyncio.to_thread(_stop_server, port, password)
            down = await ready()
            assert down.status_code == 503 and password not in down.text, down.text
            await asyncio.sleep(2)  # let the services log their reconnect attempts
        for svc in services:
            assert svc.alive, svc.log()[-3000:]
            svc.terminate()
    finally:
        await client.aclose()
    logs = {svc.name: svc.log() for svc in services}
    for name, text in logs.items():
        assert password not in text, f"the password is in the {name} log"
    assert "***" in logs["quotes"], "quotes no longer logs its (redacted) server URL"


def _stop_server(port: int, password: str) -> None:
    """SHUTDOWN NOSAVE through the server's own protocol (the fixture only waits for the exit)."""
    with contextlib.suppress(redis.ConnectionError):
        redis.Redis(port=port, password=password).shutdown(nosave=True)


def test_marketbus_up_with_a_wrong_password_says_so_in_one_line(
    password_server: tuple[int, str], tmp_path: Path
) -> None:
    port, password = password_server
    wrong = "wrong-" + uuid.uuid4().hex
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETBUS_")}
    env["MARKETBUS_REDIS_URL"] = f"redis://:{wrong}@127.0.0.1:{port}/0"
    res = subprocess.run(
        [sys.executable, "-m", "marketbus.cli", "up", "--port", str(free_port())],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    out = (res.stdout + res.stderr).strip()
    assert res.returncode == 2, out
    assert len(out.splitlines()) == 1, out
    assert wrong not in out and password not in out, out
    assert "***" in out and str(port) in out, out
