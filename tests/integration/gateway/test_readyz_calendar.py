"""/readyz stays 200 but carries the calendar's warning, from the known last day in Redis."""

from __future__ import annotations

import datetime as dt

import redis

from marketbus import calendar

from .conftest import Gateway, create_signals_group


def test_readyz_warns_when_the_calendar_runs_out(gateway: Gateway, sync_redis: redis.Redis) -> None:
    create_signals_group(sync_redis, gateway.keys)
    today = calendar.market_today(None)  # the gateway runs on real time
    soon, later = today + dt.timedelta(days=10), today + dt.timedelta(days=90)
    with gateway.client() as c:
        body = c.get("/readyz").json()
        assert body["checks"]["calendar_last_day"] is None
        assert "no trading calendar in Redis yet" in body["checks"]["calendar_warning"]

        sync_redis.hset(gateway.keys.calendar, calendar.LAST_DAY_FIELD, soon.isoformat())
        r = c.get("/readyz")
        assert r.status_code == 200 and r.json()["reason"] is None
        checks = r.json()["checks"]
        assert checks["calendar_last_day"] == soon.isoformat()
        assert f"ends on {soon}" in checks["calendar_warning"]
        assert "marketbus import-calendar" in checks["calendar_warning"]

        sync_redis.hset(gateway.keys.calendar, calendar.LAST_DAY_FIELD, later.isoformat())
        r = c.get("/readyz")
        assert r.status_code == 200
        assert r.json()["checks"]["calendar_last_day"] == later.isoformat()
        assert r.json()["checks"]["calendar_warning"] is None
