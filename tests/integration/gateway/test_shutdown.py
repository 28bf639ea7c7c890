"""A gateway asked to stop while browsers hold SSE streams (Ctrl-C of `marketbus up`, or SIGTERM)
ends every stream at once, cleanly, and exits 0: it does not wait out uvicorn's graceful timeout
and cancel the streams with a traceback."""

from __future__ import annotations

import signal
import subprocess
import uuid
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from .conftest import start_gateway, stop_gateway

GRACEFUL_S = 30  # what an SSE stream that did not end would hold the shutdown for
WAIT_S = 20  # well inside it


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_open_streams_end_at_shutdown_and_the_gateway_exits_cleanly(
    redis_url: str, tmp_path: Path, sig: signal.Signals
) -> None:
    gw = start_gateway(
        redis_url, f"g{uuid.uuid4().hex[:10]}", str(tmp_path), args=("--graceful-timeout", str(GRACEFUL_S))
    )
    try:
        with ExitStack() as stack:
            client = stack.enter_context(
                httpx.Client(base_url=gw.url, timeout=httpx.Timeout(10.0, read=60.0))
            )
            streams = []
            for path in ("/api/stream/signals", "/api/stream/quotes", "/api/stream/quotes?codes=510300.SH"):
                response = stack.enter_context(client.stream("GET", path))
                assert response.status_code == 200
                lines = response.iter_lines()
                assert next(lines).startswith("retry:")  # subscribed: the stream is open
                streams.append(lines)
            gw.proc.send_signal(sig)
            try:
                code = gw.proc.wait(WAIT_S)
            except subprocess.TimeoutExpired:
                pytest.fail(f"the gateway still runs {WAIT_S} s after {sig.name}: {gw.log()[-3000:]}")
            assert code == 0, gw.log()[-3000:]
            for lines in streams:
                assert [line for line in lines if line] == []  # then the response ended, whole
    finally:
        if gw.proc.poll() is None:
            stop_gateway(gw)
    log = gw.log()
    assert "Traceback" not in log and "CancelledError" not in log, log[-3000:]
    assert "timeout graceful shutdown exceeded" not in log, log[-3000:]
