"""SSE over real HTTP: delivery, filters, Last-Event-ID resume, quote coalescing, 422."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import pytest
import redis

from marketbus import wire
from marketbus.clock import wall_ms
from marketbus.contracts import Tick

from .conftest import SECURITIES, T0, Gateway, add_signal, make_quote, make_signal, seed_market


@dataclass
class Event:
    id: str | None
    event: str | None
    data: dict


class SSE:
    def __init__(self, response: httpx.Response) -> None:
        self.lines = response.iter_lines()

    def wait_open(self) -> None:
        """The server sends `retry:` once the client is subscribed."""
        for line in self.lines:
            if line.startswith("retry:"):
                return

    def next(self) -> Event:
        eid = event = None
        data: list[str] = []
        for line in self.lines:
            if line == "":
                if data:
                    return Event(eid, event, json.loads("\n".join(data)))
                eid = event = None
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "id":
                eid = value
            elif name == "event":
                event = value
            elif name == "data":
                data.append(value)
        raise EOFError("stream ended")

    def take(self, n: int) -> list[Event]:
        return [self.next() for _ in range(n)]


@contextmanager
def sse(gw: Gateway, path: str, **headers: str) -> Iterator[SSE]:
    timeout = httpx.Timeout(10.0, read=8.0)
    with (
        httpx.Client(base_url=gw.url, timeout=timeout) as c,
        c.stream("GET", path, headers=headers) as r,
    ):
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        s = SSE(r)
        s.wait_open()
        yield s


@pytest.fixture(scope="module")
def market(gateway: Gateway, sync_redis: redis.Redis) -> Gateway:
    seed_market(sync_redis, gateway.keys)
    return gateway


def test_signal_delivered_with_stream_id(market: Gateway, sync_redis: redis.Redis) -> None:
    with sse(market, "/api/stream/signals") as s:
        sig = make_signal("510300.SH", "ma_cross", "BUY", T0 + 1)
        entry = add_signal(sync_redis, market.keys, sig)
        ev = s.next()
    assert ev.event == "signal" and ev.id == entry
    assert ev.data == json.loads(sig.model_dump_json())


def test_signal_filters(market: Gateway, sync_redis: redis.Redis) -> None:
    with sse(market, "/api/stream/signals?strategy=kdj_cross&side=SELL") as s:
        add_signal(sync_redis, market.keys, make_signal("510300.SH", "kdj_cross", "BUY", T0 + 2))
        add_signal(sync_redis, market.keys, make_signal("510300.SH", "ma_cross", "SELL", T0 + 3))
        want = make_signal("159915.SZ", "kdj_cross", "SELL", T0 + 4)
        entry = add_signal(sync_redis, market.keys, want)
        ev = s.next()
    assert ev.id == entry and ev.data["id"] == want.id


def test_provisional_signal_then_its_withdrawal_arrive_marked(
    market: Gateway, sync_redis: redis.Redis
) -> None:
    """A consumer of the stream tells an in-session provisional signal and its withdrawal at the
    close from a closed-bar signal, by their fields."""
    from signals.provisional import as_provisional, withdrawal

    prov = as_provisional(make_signal("518880.SH", "dma_cross", "BUY", T0 + 30))
    gone = withdrawal(prov, None, 9.5, T0 + 40)
    with sse(market, "/api/stream/signals?strategy=dma_cross") as s:
        ids = [add_signal(sync_redis, market.keys, prov), add_signal(sync_redis, market.keys, gone)]
        got = s.take(2)
    assert [e.id for e in got] == ids
    assert got[0].data["provisional"] is True and got[0].data["status"] == "provisional"
    assert got[0].data["schema_version"] == 2
    assert got[1].data["status"] == "withdrawn" and got[1].data["withdraws"] == prov.id


def test_last_event_id_resumes_after_it(market: Gateway, sync_redis: redis.Redis) -> None:
    sigs = [make_signal("600519.SH", "rsi_reversal", "BUY", T0 + 10 + i) for i in range(4)]
    ids = [add_signal(sync_redis, market.keys, s) for s in sigs]
    with sse(market, "/api/stream/signals?strategy=rsi_reversal", **{"Last-Event-ID": ids[1]}) as s:
        got = s.take(2)
        assert [e.id for e in got] == ids[2:]
        # then live, without a gap or a repeat
        live = make_signal("600519.SH", "rsi_reversal", "BUY", T0 + 20)
        live_id = add_signal(sync_redis, market.keys, live)
        assert s.next().id == live_id


def test_many_clients_each_get_every_signal(market: Gateway, sync_redis: redis.Redis) -> None:
    timeout = httpx.Timeout(10.0, read=8.0)
    with httpx.Client(base_url=market.url, timeout=timeout) as c:
        streams = [c.stream("GET", "/api/stream/signals?strategy=boll_breakout") for _ in range(5)]
        responses = [cm.__enter__() for cm in streams]
        try:
            readers = [SSE(r) for r in responses]
            for rd in readers:
                rd.wait_open()
            ids = [
                add_signal(sync_redis, market.keys, make_signal("300750.SZ", "boll_breakout", "BUY", T0 + i))
                for i in range(3)
            ]
            for rd in readers:
                assert [e.id for e in rd.take(3)] == ids
        finally:
            for cm in streams:
                cm.__exit__(None, None, None)


def test_bad_last_event_id_is_422(market: Gateway) -> None:
    with httpx.Client(base_url=market.url) as c:
        r = c.get("/api/stream/signals", headers={"Last-Event-ID": "yesterday"})
        assert r.status_code == 422 and r.json()["param"] == "Last-Event-ID"
        r = c.get("/api/stream/quotes?codes=510300.SH,zzz")
        assert r.status_code == 422 and r.json()["param"] == "codes"


def _tick(r: redis.Redis, gw: Gateway, code: str, price: float) -> str:
    """What the quotes service does for one tick: the snapshot, then the ticks stream entry."""
    sec = next(s for s in SECURITIES if s.code == code)
    ts = wall_ms()
    r.hset(gw.keys.snapshots, code, make_quote(sec, price, ts).model_dump_json())
    tick = Tick(code=code, ts=ts, price=price, volume=1e6, amount=4e6)
    entry = r.xadd(gw.keys.ticks, wire.encode(tick))  # type: ignore[arg-type]
    return wire.text(entry)


def test_quotes_for_the_asked_codes_with_tick_ids(market: Gateway, sync_redis: redis.Redis) -> None:
    with sse(market, "/api/stream/quotes?codes=510300.SH") as s:
        _tick(sync_redis, market, "159915.SZ", 2.0)  # not asked for
        entry = _tick(sync_redis, market, "510300.SH", 4.25)
        ev = s.next()
    assert ev.event == "quote" and ev.id == entry
    assert ev.data["code"] == "510300.SH" and ev.data["price"] == 4.25


def test_quotes_are_coalesced_per_code(market: Gateway, sync_redis: redis.Redis) -> None:
    with sse(market, "/api/stream/quotes?codes=518880.SH,600519.SH") as s:
        pipe_ids = [_tick(sync_redis, market, "518880.SH", 5.0 + i / 100) for i in range(50)]
        other = _tick(sync_redis, market, "600519.SH", 1500.0)
        seen: dict[str, Event] = {}
        count = 0
        while (
            seen.get("518880.SH") is None or seen["518880.SH"].id != pipe_ids[-1] or ("600519.SH" not in seen)
        ):
            ev = s.next()
            count += 1
            seen[ev.data["code"]] = ev
    assert seen["518880.SH"].data["price"] == pytest.approx(5.49)
    assert seen["600519.SH"].id == other
    assert count < 20  # 51 ticks, far fewer events


def test_quote_resume_sends_codes_that_moved_after_the_id(market: Gateway, sync_redis: redis.Redis) -> None:
    first = _tick(sync_redis, market, "300750.SZ", 200.0)
    moved = _tick(sync_redis, market, "600519.SH", 1501.0)
    with sse(market, "/api/stream/quotes", **{"Last-Event-ID": first}) as s:
        ev = s.next()
    assert ev.id == moved and ev.data["code"] == "600519.SH" and ev.data["price"] == 1501.0
