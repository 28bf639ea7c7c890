"""The regression this project exists for.

The replaced system's scheduler thread borrowed the API's async Redis client and failed with
``Task got Future <Future pending> attached to a different loop``. Here: the gateway, the signals
service with its schedule firing every second, and the quotes feed run as separate processes while
the trigger endpoint is hammered concurrently for 20 seconds. Every job must finish, and no process
may log a loop error.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

pytestmark = pytest.mark.e2e
TOKEN = "regression-token"
DURATION_S = 20.0


async def hammer(base: str) -> list[str]:
    job_ids: list[str] = []
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:

        async def one(path: str) -> None:
            r = await http.post(path, json={"task_type": "calc_signals"}, headers=headers)
            if r.status_code == 429:  # the trigger is rate limited; that is an answer, not a loss
                return
            assert r.status_code == 202, r.text
            job_ids.append(r.json()["job_id"])

        deadline = time.monotonic() + DURATION_S
        while time.monotonic() < deadline:
            await asyncio.gather(
                *(one("/api/scheduler/trigger") for _ in range(4)),
                one("/api/stocks/scheduler/trigger"),
            )
            await asyncio.sleep(0.2)
    return job_ids


async def wait_jobs(base: str, job_ids: list[str], within_s: float) -> dict[str, dict]:
    final: dict[str, dict] = {}
    deadline = time.monotonic() + within_s
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        while time.monotonic() < deadline and len(final) < len(job_ids):
            for jid in job_ids:
                if jid in final:
                    continue
                r = await http.get(f"/api/scheduler/jobs/{jid}")
                assert r.status_code == 200, r.text
                if r.json()["state"] in ("done", "failed"):
                    final[jid] = r.json()
            await asyncio.sleep(0.5)
    return final


async def test_concurrent_triggers_and_a_one_second_schedule_never_cross_loops(stack) -> None:
    s = stack(
        MARKETBUS_API_TOKEN=TOKEN,
        MARKETBUS_SIGNAL_SCHEDULE="every 1s",
        MARKETBUS_TRIGGER_RATE_PER_MINUTE="6000",
    )
    quotes = s.start("quotes")
    signals = s.start("signals")
    gateway = s.start_gateway()
    job_ids = await hammer(s.base)
    assert len(job_ids) >= 20
    final = await wait_jobs(s.base, job_ids, within_s=90)
    unfinished = set(job_ids) - set(final)
    assert not unfinished, f"{len(unfinished)} job(s) never finished"
    assert all(j["state"] == "done" for j in final.values()), [
        j for j in final.values() if j["state"] != "done"
    ][:3]
    async with httpx.AsyncClient(base_url=s.base) as http:
        status = (await http.get("/api/scheduler/status")).json()
    assert status.get("last_run_ts"), status  # the schedule fired too
    for svc in (quotes, signals, gateway):
        assert svc.stop() == 0, svc.log()[-2000:]
        text = svc.log()
        assert "attached to a different loop" not in text, text[-3000:]
        assert "Future pending" not in text, text[-3000:]
