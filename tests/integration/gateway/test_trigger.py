"""POST /api/scheduler/trigger: 202 with a job (calc_signals on 1d by default), 401, 422, 413, and 429
once a burst of TRIGGER_BURST requests is spent."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
import redis

from gateway.app import TRIGGER_BURST
from marketbus import wire
from marketbus.contracts import Command, JobStatus

from .conftest import TOKEN, Gateway, start_gateway, stop_gateway

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def api(gateway: Gateway) -> Iterator[httpx.Client]:
    with gateway.client() as c:
        yield c


def test_trigger_queues_a_job_and_publishes_the_command(
    api: httpx.Client, gateway: Gateway, sync_redis: redis.Redis
) -> None:
    r = api.post("/api/scheduler/trigger", json={"task_type": "calc_signals"}, headers=AUTH)
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    job = api.get(r.json()["status_url"]).json()
    assert JobStatus.model_validate(job).state == "queued"
    entries = sync_redis.xrange(gateway.keys.commands)
    cmd = wire.decode(Command, entries[-1][1])  # plain XRANGE + the wire format
    assert cmd.id == job_id and cmd.type == "calc_signals" and cmd.period == "1d"


def test_alias_and_period(api: httpx.Client, gateway: Gateway, sync_redis: redis.Redis) -> None:
    r = api.post(
        "/api/stocks/scheduler/trigger",
        json={"task_type": "calc_signals", "period": "5m"},
        headers=AUTH,
    )
    assert r.status_code == 202
    cmd = wire.decode(Command, sync_redis.xrange(gateway.keys.commands)[-1][1])
    assert cmd.id == r.json()["job_id"] and cmd.period == "5m"


def test_no_body_queues_calc_signals_on_1d(
    api: httpx.Client, gateway: Gateway, sync_redis: redis.Redis
) -> None:
    r = api.post("/api/scheduler/trigger", headers=AUTH)
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    cmd = wire.decode(Command, sync_redis.xrange(gateway.keys.commands)[-1][1])
    assert (cmd.id, cmd.type, cmd.period, cmd.source) == (job_id, "calc_signals", "1d", "api")
    job = JobStatus.model_validate(api.get(f"/api/scheduler/jobs/{job_id}").json())
    assert (job.task_type, job.period, job.state, job.created_ts) == (
        "calc_signals",
        "1d",
        "queued",
        cmd.issued_ts,
    )


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}],
)
def test_missing_or_wrong_token_is_401(api: httpx.Client, headers: dict[str, str]) -> None:
    r = api.post("/api/scheduler/trigger", json={"task_type": "calc_signals"}, headers=headers)
    assert r.status_code == 401
    assert "MARKETBUS_API_TOKEN" in r.json()["message"]


@pytest.mark.parametrize(
    ("body", "param"),
    [({"task_type": "rm_rf"}, "task_type"), ({"task_type": "calc_signals", "period": "1h"}, "period")],
)
def test_bad_body_is_422(api: httpx.Client, body: dict[str, str], param: str) -> None:
    r = api.post("/api/scheduler/trigger", json=body, headers=AUTH)
    assert r.status_code == 422
    assert r.json()["param"] == param


def test_huge_body_is_413(api: httpx.Client) -> None:
    r = api.post("/api/scheduler/trigger", content=b"x" * 100_000, headers=AUTH)
    assert r.status_code == 413


@pytest.fixture(scope="module")
def slow_refill_gateway(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A gateway whose trigger bucket refills one token in 100 minutes: a burst is all it has."""
    gw = start_gateway(
        redis_url,
        f"g{uuid.uuid4().hex[:10]}",
        str(tmp_path_factory.mktemp("burst")),
        trigger_rate_per_minute="0.01",
    )
    try:
        yield gw
    finally:
        stop_gateway(gw)


def test_a_burst_of_trigger_burst_requests_is_accepted_then_429(slow_refill_gateway: Gateway) -> None:
    with slow_refill_gateway.client() as c:
        codes = [c.post("/api/scheduler/trigger", headers=AUTH).status_code for _ in range(TRIGGER_BURST)]
        assert codes == [202] * TRIGGER_BURST
        r = c.post("/api/scheduler/trigger", headers=AUTH)
        assert r.status_code == 429 and r.json()["error"] == "rate_limited"
        assert int(r.headers["Retry-After"]) >= 1
        # a wrong token spends from the same bucket (the limit comes before the token check)
        assert c.post("/api/scheduler/trigger", headers={"Authorization": "Bearer wrong"}).status_code == 429
