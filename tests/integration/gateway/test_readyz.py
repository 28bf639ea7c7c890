"""/readyz: 503 with a reason until the signals group exists and while it lags more than
`ready_max_lag` bars; the password never shows; a gateway without a token refuses the trigger with
503 and says how to enable it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from marketbus import streams
from marketbus.contracts import Bar
from marketbus.keys import SIGNALS_GROUP
from marketbus.server import free_port
from marketbus.settings import Settings

from .conftest import DAY, T0, TOKEN, Gateway, create_signals_group, start_gateway, stop_gateway

SECRET = "hunter2secret"
MAX_LAG = 2


@pytest.fixture(scope="module")
def down_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """No server listens at this URL (with a password in it), and no token is configured."""
    url = f"redis://:{SECRET}@127.0.0.1:{free_port()}/0"
    gw = start_gateway(url, "gdown", str(tmp_path_factory.mktemp("down")), token=None)
    try:
        yield gw
    finally:
        stop_gateway(gw)


def test_not_ready_until_the_group_exists(gateway: Gateway, sync_redis: redis.Redis) -> None:
    with gateway.client() as c:
        r = c.get("/readyz")
        assert r.status_code == 503
        assert SIGNALS_GROUP in r.json()["reason"]
        sync_redis.xgroup_create(gateway.keys.bars, SIGNALS_GROUP, id="0", mkstream=True)
        r = c.get("/readyz")
        assert r.status_code == 200 and r.json()["reason"] is None


@pytest.fixture(scope="module")
def lag_gateway(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    gw = start_gateway(
        redis_url,
        f"g{uuid.uuid4().hex[:10]}",
        str(tmp_path_factory.mktemp("lag")),
        ready_max_lag=str(MAX_LAG),
    )
    try:
        yield gw
    finally:
        stop_gateway(gw)


def test_ready_up_to_the_lag_limit_then_503(lag_gateway: Gateway, sync_redis: redis.Redis) -> None:
    keys = lag_gateway.keys
    create_signals_group(sync_redis, keys)
    bar = Bar(code="510300.SH", period="1d", ts=T0, open=1, high=1, low=1, close=1, volume=1, amount=1)
    publisher = streams.Publisher.of(streams.BARS, keys, Settings(_env_file=None))  # type: ignore[call-arg]
    with lag_gateway.client() as c:
        for lag in range(MAX_LAG + 2):
            r = c.get("/readyz")
            assert r.json()["checks"]["signals_group_lag"] == lag
            if lag <= MAX_LAG:
                assert r.status_code == 200 and r.json()["reason"] is None, r.text
            else:
                assert r.status_code == 503
                assert r.json()["reason"] == f"consumer group 'signals' lags {lag} entries (limit {MAX_LAG})"
            publisher.add(sync_redis, bar.model_copy(update={"ts": T0 + lag * DAY}))


def test_unreachable_server_is_503_and_password_redacted(down_gateway: Gateway) -> None:
    with down_gateway.client() as c:
        assert c.get("/healthz").status_code == 200
        r = c.get("/readyz")
        assert r.status_code == 503
        assert SECRET not in r.text
        assert "***" in r.json()["redis"]
        for path in ("/api/etf/quotes", "/api/quotes/510300.SH"):
            r = c.get(path)
            assert r.status_code == 503 and SECRET not in r.text, path
            assert r.json()["error"] == "store_unavailable" and r.headers["retry-after"] == "2", path
    assert SECRET not in down_gateway.log()


def test_no_token_configured_is_503(down_gateway: Gateway) -> None:
    with down_gateway.client() as c:
        r = c.post(
            "/api/scheduler/trigger",
            json={"task_type": "calc_signals"},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert r.status_code == 503
        assert "MARKETBUS_API_TOKEN" in r.json()["message"]
