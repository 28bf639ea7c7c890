"""GET /api/scorecard and /api/scorecard/{strategy} over real HTTP: a gateway process reading what a
scorecard service computed from planted signals."""

from __future__ import annotations

import statistics

import httpx
import pytest
from redis.asyncio import Redis

from marketbus.contracts import StrategyInfo
from marketbus.keys import Keys

from ..gateway.conftest import start_gateway, stop_gateway
from .test_scorecard_service import PERIOD, expected, make_market, plants, publish, seed, settled_all


async def test_the_routes_serve_the_figures_filter_them_and_name_a_bad_parameter(
    run_scorecard, until, client: Redis, keys: Keys, redis_url: str, prefix: str, tmp_path
) -> None:
    market = make_market(60, seed=21)
    signals = plants(market)
    await seed(client, keys, market, upto=60)
    info = StrategyInfo(key="volume_wave", name="动量守恒", min_bars=40)
    await client.hset(keys.strategies, "volume_wave", info.model_dump_json())  # known, never fired
    async with run_scorecard():
        await publish(client, keys.signals, signals)
        await until(lambda: settled_all(client, keys, market, signals, 60))

        async def computed() -> bool:
            return not await client.exists(keys.score_dirty) and bool(
                await client.exists(keys.scorecard(PERIOD))
            )

        await until(computed)
    gw = start_gateway(redis_url, prefix, str(tmp_path))
    try:
        async with httpx.AsyncClient(base_url=gw.url, timeout=10) as http:
            body = (await http.get("/api/scorecard")).json()
            assert body["state"]["scored"] == len(signals) and body["state"]["horizons"] == [1, 5, 10, 20]
            strategies = {r["strategy"] for r in body["rows"]}
            assert strategies == {"ma_cross", "trend_continuation", "*"}

            one = await http.get(
                "/api/scorecard", params={"strategy": "ma_cross", "market": "*", "horizon": 5}
            )
            assert one.status_code == 200
            [row] = one.json()["rows"]
            mine = [s for s in signals if s.strategy == "ma_cross"]
            rets = [o.ret for s in mine if (o := expected(market, s, 5, 60)) is not None]
            assert row["signals"] == len(mine) and row["mean_return"]["n"] == len(rets)
            assert row["mean_return"]["value"] == pytest.approx(statistics.fmean(rets), abs=1e-12)
            assert [b["bucket"] for b in row["buckets"]] == [
                "0.0-0.2",
                "0.2-0.4",
                "0.4-0.6",
                "0.6-0.8",
                "0.8-1.0",
            ]

            etf = (await http.get("/api/scorecard", params={"market": "ETF", "period": "1d"})).json()["rows"]
            assert etf and all(r["market"] == "ETF" for r in etf)
            assert (await http.get("/api/scorecard", params={"period": "5m"})).json()["rows"] == []

            for name, bad in (("period", "2d"), ("horizon", "3"), ("strategy", "Bad Key"), ("market", "")):
                answer = await http.get("/api/scorecard", params={name: bad})
                assert answer.status_code == 422, (name, answer.text)
                assert answer.json()["param"] == name

            dist = await http.get("/api/scorecard/ma_cross", params={"horizon": 20, "market": "*"})
            assert dist.status_code == 200
            d = dist.json()
            [h20] = d["distributions"]
            n20 = sum(1 for s in mine if expected(market, s, 20, 60) is not None)
            assert h20["n"] == n20 and sum(h20["counts"]) == n20
            assert len(h20["edges"]) == len(h20["counts"]) + 1
            assert [r["horizon"] for r in d["rows"]] == [20]

            quiet = await http.get("/api/scorecard/volume_wave")
            assert quiet.status_code == 200 and quiet.json()["rows"] == []
            assert (await http.get("/api/scorecard/no_such_strategy")).status_code == 404
            bad = await http.get("/api/scorecard/ma_cross", params={"horizon": 7})
            assert bad.status_code == 422 and bad.json()["param"] == "horizon"
    finally:
        stop_gateway(gw)
