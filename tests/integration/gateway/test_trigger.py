"""POST /api/scheduler/trigger: 202 with a job, 401, 422, 503 without a token, 429 over the rate."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import redis

from marketbus import wire
from marketbus.contracts import Command, JobStatus

from .conftest import TOKEN, Gateway

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


def test_no_body_means_calc_signals(api: httpx.Client) -> None:
    assert api.post("/api/scheduler/trigger", headers=AUTH).status_code == 202


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


def test_rate_limited_then_429(api: httpx.Client) -> None:
    codes = [api.post("/api/scheduler/trigger", headers=AUTH).status_code for _ in range(15)]
    assert 429 in codes
    r = api.post("/api/scheduler/trigger", headers=AUTH)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
