"""One full poll of the market against the provider simulator (6,500 codes; quick: 1,500).

The simulator (``python -m quotes.providersim``, its own process) serves a continuous-trading
market clock. The universe is read from its list endpoint (``quotes.feeds.listing``), then after
one warm-up poll each measured poll is ``PollFeed.poll`` end to end: chunks of the provider's
batch size requested concurrently (``poll_concurrency`` 8), parsed, handed over. Baseline in the
same run: the same requests made one after another (the same feed with a concurrency of 1).
Reported: the median of three polls, for eastmoney (200 codes per request) and tencent (60).
"""

from __future__ import annotations

import statistics
import time

import httpx

from benchmarks.harness import Result
from marketbus.clock import MarketClock, parse_clock, wall_ms
from marketbus.sessions import shanghai_ms
from quotes.feeds.eastmoney import EastMoney
from quotes.feeds.listing import fetch_universe
from quotes.feeds.poll import PollFeed, Provider
from quotes.feeds.tencent import Tencent
from quotes.providersim.launch import running_simulator

ROUNDS = 3


async def timed_poll(feed: PollFeed, http: httpx.AsyncClient) -> tuple[float, int]:
    t0 = time.perf_counter()
    ticks = 0
    async for batch in feed.poll(http):
        ticks += len(batch)
    return time.perf_counter() - t0, ticks


async def measure(
    url: str, spec: str, provider: Provider, codes: list[str], concurrency: int
) -> tuple[float, int]:
    feed = PollFeed([provider], codes, concurrency=concurrency, clock=parse_clock(spec), base_url=url)
    async with httpx.AsyncClient(timeout=30) as http:
        await timed_poll(feed, http)  # warm-up: connections, the simulator's day paths
        runs = [await timed_poll(feed, http) for _ in range(ROUNDS)]
    assert feed.last_report is not None and feed.last_report.failed_chunks == 0
    return statistics.median(r[0] for r in runs), feed.last_report.codes_covered


async def run(url: str, quick: bool) -> list[Result]:
    del url  # no Redis here: the poll path only
    n_codes = 1500 if quick else 6500
    spec = MarketClock(shanghai_ms(2026, 3, 10, 10, 0), wall_ms(), 1.0).spec()
    results: list[Result] = []
    with running_simulator(codes=n_codes, seed=7, clock=spec) as sim:
        async with httpx.AsyncClient(timeout=60) as http:
            codes = [s.code for s in await fetch_universe(http, sim.url)]
        for provider in (EastMoney(), Tencent()):
            concurrent, covered = await measure(sim.url, spec, provider, codes, 8)
            sequential, _ = await measure(sim.url, spec, provider, codes, 1)
            requests = -(-len(codes) // provider.max_codes)
            results.append(
                Result(
                    "poll",
                    f"full poll, {provider.name}, {len(codes):,} codes in {requests} requests "
                    f"(8 in flight), {covered:,} covered",
                    concurrent,
                    "s",
                    baseline="the same requests one after another",
                    baseline_value=sequential,
                    higher_is_better=False,
                    target="<= 1 s (6,500 codes)" if provider.name == "eastmoney" else "",
                    met=(concurrent <= 1.0) if (provider.name == "eastmoney" and not quick) else None,
                )
            )
    return results
