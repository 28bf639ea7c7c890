"""The scorecard service against a real server: planted signals on a generated market, their forward
returns computed here from the bars (plain Python, not the service's code) and compared exactly;
live bars, redelivery, a restart mid-stream, provisional signals, the aggregates."""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pytest
from redis.asyncio import Redis

from marketbus.contracts import Bar, ScoreRow, Security, Signal, signal_id
from marketbus.keys import Keys
from marketbus.trend import TrendStore
from marketbus.wire import encode
from scorecard.outcomes import FIRST, HORIZONS, MAE, MFE, RET, SETTLED, VS_MKT, col, unpack

DAY = 86_400_000
T0 = 1_767_196_800_000  # 2026-01-01 00:00 +08:00
PERIOD = "1d"
CODES = ("600000.SH", "600001.SH", "000001.SZ", "300001.SZ", "510300.SH", "000300.SH")
MARKETS = {
    "600000.SH": "SH主板",
    "600001.SH": "SH主板",
    "000001.SZ": "SZ主板",
    "300001.SZ": "创业板",
    "510300.SH": "ETF",
    "000300.SH": "指数",
}


def make_market(n_bars: int, seed: int = 3) -> dict[str, list[Bar]]:
    """Random daily bars for every code (prices on a 0.01 grid), the same for a seed."""
    rng = np.random.default_rng(seed)
    out: dict[str, list[Bar]] = {}
    for code in CODES:
        close = 10.0 * np.exp(np.cumsum(rng.normal(0, 0.02, n_bars)))
        bars = []
        for i in range(n_bars):
            c = round(float(close[i]), 2)
            o = round(c * (1 + float(rng.normal(0, 0.005))), 2)
            h = round(max(o, c) * (1 + abs(float(rng.normal(0, 0.01)))), 2)
            lo = round(min(o, c) * (1 - abs(float(rng.normal(0, 0.01)))), 2)
            bars.append(
                Bar(
                    code=code,
                    period=PERIOD,
                    ts=T0 + i * DAY,
                    open=o,
                    high=h,
                    low=lo,
                    close=c,
                    volume=1e6,
                    amount=c * 1e6,
                )
            )
        out[code] = bars
    return out


def planted(
    market: dict[str, list[Bar]],
    at: Sequence[tuple[str, int, str]],
    strategy: str = "ma_cross",
    **extra: object,
) -> list[Signal]:
    """Signals at (code, bar index, side), confidence spread over the buckets."""
    out = []
    for n, (code, i, side) in enumerate(at):
        bar = market[code][i]
        out.append(
            Signal(
                id=signal_id(code, strategy, PERIOD, bar.ts),
                code=code,
                name=code,
                market=MARKETS[code],
                strategy=strategy,
                strategy_name="均线金叉",
                side=side,
                price=bar.close,
                period=PERIOD,
                bar_ts=bar.ts,
                confidence=round((n * 0.17) % 1.0, 4),
                volume_ratio=1.0,
                change_percent=0.0,
                reason="planted",
                created_ts=bar.ts,
                **extra,  # type: ignore[arg-type]
            )
        )
    return out


@dataclass
class Expected:
    ret: float
    mae: float
    mfe: float
    first: str | None
    vs_mkt: float | None  # None: not final yet


def expected(market: dict[str, list[Bar]], sig: Signal, h: int, bars_known: int) -> Expected | None:
    """The outcome of ``sig`` at horizon ``h``, computed from the bars alone (the first
    ``bars_known`` bars of every code are stored)."""
    bars = market[sig.code][:bars_known]
    i0 = next(i for i, b in enumerate(bars) if b.ts == sig.bar_ts)
    if i0 + h >= len(bars):
        return None
    side = 1 if sig.side == "BUY" else -1
    c0 = bars[i0].close
    span = bars[i0 + 1 : i0 + h + 1]
    raw = bars[i0 + h].close / c0 - 1
    highs = max(b.high for b in span) / c0 - 1
    lows = min(b.low for b in span) / c0 - 1
    mfe, mae = (highs, lows) if side > 0 else (-lows, -highs)
    first = None
    if side > 0 and (sig.stop_loss is not None or sig.take_profit is not None):
        first = "neither"
        for b in span:
            stop = sig.stop_loss is not None and b.low <= sig.stop_loss
            take = sig.take_profit is not None and b.high >= sig.take_profit
            if stop or take:
                first = "both" if stop and take else ("stop" if stop else "target")
                break
    t1 = bars[i0 + h].ts
    vs = None
    if t1 < bars[-1].ts:  # a later bar exists: the span's market figure is final
        rets = []
        for code, series in market.items():
            if MARKETS[code] == "指数":
                continue
            have = {b.ts: b.close for b in series[:bars_known]}
            if sig.bar_ts in have and t1 in have:
                rets.append(have[t1] / have[sig.bar_ts] - 1)
        vs = side * (raw - sum(rets) / len(rets))
    return Expected(side * raw, mae, mfe, first, vs)


FIRST_CODES = {0: "neither", 1: "target", 2: "stop", 3: "both"}


async def outcome(client: Redis, keys: Keys, sig: Signal) -> np.ndarray | None:
    raw = await client.hget(keys.score_outcomes(sig.period, sig.strategy, sig.market), sig.id)
    return None if raw is None else unpack([raw])[0]


def check(rec: np.ndarray, exp: Expected | None, h_index: int) -> None:
    if exp is None:
        assert math.isnan(rec[col(h_index, RET)])
        return
    assert rec[col(h_index, RET)] == exp.ret  # exactly: the same two closes, one division
    assert rec[col(h_index, MAE)] == exp.mae
    assert rec[col(h_index, MFE)] == exp.mfe
    first = rec[col(h_index, FIRST)]
    assert (None if math.isnan(first) else FIRST_CODES[int(first)]) == exp.first
    if exp.vs_mkt is None:
        assert rec[col(h_index, SETTLED)] != 1
    else:
        assert rec[col(h_index, SETTLED)] == 1
        assert rec[col(h_index, VS_MKT)] == pytest.approx(exp.vs_mkt, abs=1e-12)


async def seed(client: Redis, keys: Keys, market: dict[str, list[Bar]], upto: int) -> None:
    for code in CODES:
        await client.hset(
            keys.universe, code, Security(code=code, name=code, market=MARKETS[code]).model_dump_json()
        )
    await TrendStore(client, keys).append([b for code in CODES for b in market[code][:upto]])


async def publish(client: Redis, key: str, messages: Sequence[Bar | Signal]) -> None:
    pipe = client.pipeline(transaction=False)
    for m in messages:
        pipe.xadd(key, encode(m))  # type: ignore[arg-type]
    await pipe.execute()


async def settled_all(
    client: Redis, keys: Keys, market: dict[str, list[Bar]], signals: Sequence[Signal], bars_known: int
) -> bool:
    """Every planted outcome is what the bars say (the service caught up)."""
    for sig in signals:
        rec = await outcome(client, keys, sig)
        if rec is None:
            return False
        for i, h in enumerate(HORIZONS):
            exp = expected(market, sig, h, bars_known)
            known = not math.isnan(rec[col(i, RET)])
            if known != (exp is not None):
                return False
            if exp is not None and (exp.vs_mkt is not None) != (rec[col(i, SETTLED)] == 1):
                return False
    return True


def plants(market: dict[str, list[Bar]]) -> list[Signal]:
    buys = [(c, i, "BUY") for c in CODES[:5] for i in (3, 11, 20, 33)]
    sells = [(c, i, "SELL") for c in CODES[:5] for i in (7, 25)]
    out = planted(market, buys + sells)
    # BUYs with a stop and a target around the entry (trend_continuation's kind of signal)
    levels = []
    for n, (code, i) in enumerate([(c, i) for c in CODES[:4] for i in (5, 15, 28)]):
        c = market[code][i].close
        levels.extend(
            planted(
                market,
                [(code, i, "BUY")],
                strategy="trend_continuation",
                stop_loss=round(c * (0.97 - 0.01 * (n % 3)), 2),
                take_profit=round(c * (1.02 + 0.01 * (n % 4)), 2),
            )
        )
    return out + levels


async def test_forward_returns_of_planted_signals_are_exact_and_follow_the_bars(
    run_scorecard, until, client: Redis, keys: Keys
) -> None:
    market = make_market(60)
    signals = plants(market)
    await seed(client, keys, market, upto=30)  # the bars up to day 29 are stored when they come
    async with run_scorecard():
        await publish(client, keys.signals, [s for s in signals if s.bar_ts < market[s.code][30].ts])
        early = [s for s in signals if s.bar_ts < market[s.code][30].ts]
        await until(lambda: settled_all(client, keys, market, early, 30))
        for sig in early:
            rec = await outcome(client, keys, sig)
            assert rec is not None
            for i, h in enumerate(HORIZONS):
                check(rec, expected(market, sig, h, 30), i)
        # the rest of the month closes bar by bar: trend first, then the bars stream (as quotes does)
        trend = TrendStore(client, keys)
        for i in range(30, 60):
            day = [market[c][i] for c in CODES]
            await trend.append(day)
            await publish(client, keys.bars, day)
        await publish(client, keys.signals, [s for s in signals if s not in early])
        await until(lambda: settled_all(client, keys, market, signals, 60))
        for sig in signals:
            rec = await outcome(client, keys, sig)
            assert rec is not None
            for i, h in enumerate(HORIZONS):
                check(rec, expected(market, sig, h, 60), i)


async def snapshot(client: Redis, keys: Keys) -> dict[str, object]:
    """Every outcome and every figure the scorecard keeps (the time of the last computation aside)."""
    out: dict[str, object] = {}
    for cell in sorted(await client.smembers(keys.score_cells(PERIOD))):
        strategy, _, market = cell.decode().partition("|")
        out[cell.decode()] = await client.hgetall(keys.score_outcomes(PERIOD, strategy, market))
    out["rows"] = await client.hgetall(keys.scorecard(PERIOD))
    out["dist"] = await client.hgetall(keys.scorecard_distribution(PERIOD))
    return out


async def groups_idle(client: Redis, keys: Keys) -> bool:
    for stream in (keys.signals, keys.bars):
        for g in await client.xinfo_groups(stream):
            if g["name"] == b"scorecard" and (g["pending"] or g["lag"]):
                return False
    return True


async def test_redelivered_bars_and_signals_change_nothing(
    run_scorecard, until, client: Redis, keys: Keys
) -> None:
    market = make_market(50, seed=5)
    signals = plants(market)
    await seed(client, keys, market, upto=50)
    async with run_scorecard() as svc:
        await publish(client, keys.signals, signals)
        await publish(client, keys.bars, [market[c][-1] for c in CODES])
        await until(lambda: settled_all(client, keys, market, signals, 50))
        await until(lambda: groups_idle(client, keys))
        await until(lambda: _no_dirty(client, keys))
        before = await snapshot(client, keys)
        scored = svc.scorer.stats.scored if svc.scorer else 0
        # everything again, as new entries, and the same signals through the history handler
        await publish(client, keys.signals, signals)
        await publish(client, keys.bars, [b for c in CODES for b in market[c][-25:]])
        assert svc.scorer is not None
        await svc.scorer.score(signals)
        await until(lambda: groups_idle(client, keys))
        await svc.scorer.sweep()
        await svc.scorer.refresh()
        assert svc.scorer.stats.scored == scored
        assert await snapshot(client, keys) == before


async def _no_dirty(client: Redis, keys: Keys) -> bool:
    return not await client.exists(keys.score_dirty) and await client.exists(keys.scorecard(PERIOD))


async def test_a_restart_mid_stream_resumes(run_scorecard, until, client: Redis, keys: Keys) -> None:
    market = make_market(45, seed=9)
    signals = plants(market)
    await seed(client, keys, market, upto=20)
    trend = TrendStore(client, keys)
    async with run_scorecard():
        await publish(client, keys.signals, [s for s in signals if s.bar_ts < market[s.code][20].ts])
        for i in range(20, 30):
            await trend.append([market[c][i] for c in CODES])
            await publish(client, keys.bars, [market[c][i] for c in CODES])
        await until(lambda: groups_idle(client, keys))
    # down: bars and signals go on arriving on the streams
    for i in range(30, 45):
        await trend.append([market[c][i] for c in CODES])
        await publish(client, keys.bars, [market[c][i] for c in CODES])
    await publish(client, keys.signals, [s for s in signals if s.bar_ts >= market[s.code][20].ts])
    async with run_scorecard():
        await until(lambda: settled_all(client, keys, market, signals, 45))
        for sig in signals:
            rec = await outcome(client, keys, sig)
            assert rec is not None
            for i, h in enumerate(HORIZONS):
                check(rec, expected(market, sig, h, 45), i)


async def test_provisional_signals_are_scored_only_once_confirmed(
    run_scorecard, until, client: Redis, keys: Keys
) -> None:
    market = make_market(30, seed=11)
    await seed(client, keys, market, upto=30)
    prov, withdrawn, closed = planted(
        market, [("600000.SH", 5, "BUY"), ("600001.SH", 6, "BUY"), ("600000.SH", 5, "BUY")]
    )
    prov = prov.model_copy(update={"id": "p1", "provisional": True, "status": "provisional"})
    withdrawal = withdrawn.model_copy(
        update={"id": "w1", "provisional": True, "status": "withdrawn", "withdraws": "p0"}
    )
    confirmed = closed.model_copy(update={"status": "confirmed", "confirms": "p1"})
    async with run_scorecard() as svc:
        await publish(client, keys.signals, [prov, withdrawal, confirmed])
        await until(lambda: groups_idle(client, keys))
        assert await outcome(client, keys, confirmed) is not None
        assert await outcome(client, keys, prov) is None
        assert await outcome(client, keys, withdrawal) is None
        assert svc.scorer is not None and svc.scorer.stats.provisional == 2


def row(rows: dict[bytes, bytes], strategy: str, market: str, h: int) -> ScoreRow:
    return ScoreRow.model_validate_json(rows[f"{strategy}|{market}|{h}".encode()])


async def test_the_figures_are_the_planted_signals_own(
    run_scorecard, until, client: Redis, keys: Keys
) -> None:
    market = make_market(60, seed=13)
    signals = plants(market)
    await seed(client, keys, market, upto=60)
    async with run_scorecard():
        await publish(client, keys.signals, signals)
        await until(lambda: settled_all(client, keys, market, signals, 60))
        await until(lambda: _no_dirty(client, keys))
        rows = await client.hgetall(keys.scorecard(PERIOD))
    for h in HORIZONS:
        for strategy in ("ma_cross", "trend_continuation", "*"):
            for mkt in ("SH主板", "*"):
                mine = [s for s in signals if strategy in ("*", s.strategy) and mkt in ("*", s.market)]
                outs = [expected(market, s, h, 60) for s in mine]
                rets = [o.ret for o in outs if o is not None]
                r = row(rows, strategy, mkt, h)
                assert r.signals == len(mine) and r.pending == len(mine) - len(rets)
                assert r.mean_return.n == r.hit_rate.n == len(rets)
                if len(rets) < 3:  # the test's minimum sample
                    assert r.mean_return.value is None and "too few" in (r.mean_return.note or "")
                    continue
                assert r.hit_rate.value == pytest.approx(sum(x > 0 for x in rets) / len(rets))
                assert r.mean_return.value == pytest.approx(statistics.fmean(rets), abs=1e-12)
                assert r.median_return.value == pytest.approx(statistics.median(rets), abs=1e-12)
                vs = [o.vs_mkt for o in outs if o is not None and o.vs_mkt is not None]
                assert r.vs_market.n == len(vs)
                if len(vs) >= 3:
                    assert r.vs_market.value == pytest.approx(statistics.fmean(vs), abs=1e-12)
                buckets = {b.bucket: b for b in r.buckets}
                for lo in (0.0, 0.2, 0.4, 0.6, 0.8):
                    inside = [
                        o.ret
                        for s, o in zip(mine, outs, strict=True)
                        if o is not None and lo <= s.confidence < lo + 0.2 + (1e-9 if lo == 0.8 else 0)
                    ]
                    b = buckets[f"{lo:.1f}-{lo + 0.2:.1f}"]
                    assert b.mean_return.n == len(inside)
                    if len(inside) >= 3:
                        assert b.hit_rate.value == pytest.approx(sum(x > 0 for x in inside) / len(inside))
                    else:
                        assert b.hit_rate.value is None and b.hit_rate.note
                if strategy == "trend_continuation":
                    firsts = [o.first for o in outs if o is not None]
                    st = r.stop_target
                    assert (st.n, st.target, st.stop, st.both, st.neither) == (
                        len(firsts),
                        firsts.count("target"),
                        firsts.count("stop"),
                        firsts.count("both"),
                        firsts.count("neither"),
                    )
    # CSI 300 (000300.SH) is stored: the figure against it exists
    assert row(rows, "*", "*", 1).vs_csi300.value is not None
    meta = json.loads(await client.hget(keys.scorecard_meta, "state") or b"{}")
    assert meta["scored"] == len(signals) and meta["periods"] == [PERIOD]
