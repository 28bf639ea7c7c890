"""schemathesis against /openapi.json of a running gateway: no 5xx, no response against its schema."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request

import pytest

pytestmark = pytest.mark.e2e


def test_the_api_has_no_server_error_and_keeps_its_schema(stack, tmp_path) -> None:
    s = stack(MARKETBUS_API_TOKEN="schema-token", MARKETBUS_AUTO_CALCULATE_SIGNALS="false")
    s.start("quotes")
    s.start("signals")
    s.start_gateway()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # let real data arrive so routes answer with content
        with urllib.request.urlopen(f"{s.base}/api/etf/quotes", timeout=5) as r:
            if b'"code"' in r.read():
                break
        time.sleep(0.3)
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            f"{s.base}/openapi.json",
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
            "--exclude-path-regex",
            "^/api/stream/",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            "25",
            "--workers",
            "2",
            "--header",
            "Authorization: Bearer wrong-token",
            "--seed",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=400,
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stdout[-6000:] + res.stderr[-2000:]
