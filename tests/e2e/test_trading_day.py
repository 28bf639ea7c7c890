"""Issue 11, acceptance: one recorded trading day, exactly right, restarts and auctions included.

``marketbus up --feed auto`` polls the provider simulator (500 codes, over real HTTP) through one
whole trading day, Friday 2026-11-20, on an accelerated market clock that the simulator and every
service share (09:10 to past 16:00). On the way:

- the simulator serves indicative auction prices (09:15-09:25, volume 0), the 09:25 result,
  frozen stamps over lunch and the final snapshot again and again after 15:00;
- a future-dated snapshot and a price far outside the limit band are planted in the simulator
  (``POST /_control/plant``), which records exactly what it served;
- the quotes process is killed (SIGKILL) at about 10:30:20 and stopped (SIGTERM) at about 16:00;
  the supervisor of ``marketbus up`` starts it again each time.

Then the test computes, independently from the snapshots the service accepted (the ticks
stream), what every 1m, 5m, 15m, 30m, 60m and 1d bar must be (:func:`expected_bars`, a small aggregator of its
own), and checks that every stored bar equals it (the first 1m bar at 09:30, none in the auction
or over lunch), that no published bar was replaced by a smaller one, that the rejected ticks are
exactly the planted ones (no stale storm after a restart, no other dead letter), and that every
code got an indicative auction tick and its closing snapshot. About 145 s of wall time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil
import pytest
import redis

from marketbus.clock import MarketClock, parse_clock, wall_ms
from marketbus.keys import Keys
from marketbus.server import free_port
from marketbus.sessions import is_trading_day, shanghai_ms
from marketbus.trend import unpack
from marketbus.wire import text
from quotes.providersim.launch import SimProcess, running_simulator

pytestmark = pytest.mark.e2e

DAY = dt.date(2026, 11, 20)  # a Friday, a trading day
CODES = 500
SPEED = 240.0  # market seconds per wall second: 09:10 -> 16:00 in 103 s
POLL_INTERVAL = "0.2"  # wall seconds between polls: every 48 market seconds (when the box keeps up)
LEAD_S = 45.0  # wall seconds from the simulator's start to 09:10 market time, for the stack to
# start before the auction opens: 5-18 s measured on a 2-core box busy with other test runs, so
# more than twice the worst seen (the market clock is linear: the stack cannot start it later)

FUTURE_CODE, FUTURE_AT, FUTURE_SHIFT_S = "000001.SZ", (10, 5), 1800  # a snapshot 30 min ahead
BAND_CODE, BAND_AT = "600519.SH", (14, 0)  # a price 50 % over the previous close (10 % board)
KILL_AT = (10, 30, 20)  # SIGKILL of the quotes process
TERM_AT = (16, 0, 0)  # SIGTERM of the quotes process
PERIODS = ("1m", "5m", "15m", "30m", "60m", "1d")  # 1w and 1M: tests/unit/quotes/test_periods_aggregate.py
STEP_MINUTES = {"1m": 1, "5m": 5, "15m": 15, "30m": 30, "60m": 60}

H, M, S = 3_600_000, 60_000, 1_000
AUCTION_OPEN, AUCTION_RESULT, OPEN = 9 * H + 15 * M, 9 * H + 25 * M, 9 * H + 30 * M
MORNING_CLOSE, AFTERNOON_OPEN, CLOSE = 11 * H + 30 * M, 13 * H, 15 * H
GRACE = 10 * S
DAY0 = shanghai_ms(DAY.year, DAY.month, DAY.day)  # 00:00 Asia/Shanghai of the day


def at(hour: int, minute: int, second: int = 0) -> int:
    return DAY0 + hour * H + minute * M + second * S


def hhmmss(ts: float) -> str:
    tod = int(ts - DAY0)
    return f"{tod // H:02d}:{tod % H // M:02d}:{tod % M // S:02d}"


# --- the reference aggregator (independent of quotes.aggregate) ---------------------------------


AUCTION = -1  # an auction tick: no bar


def minute_of(ts: int, volume: float) -> int | None:
    """The start of the 1m bar a tick of the day belongs to, AUCTION for an indicative tick, None
    for a tick that belongs to no bar at all (the service must have rejected it)."""
    tod = ts - DAY0
    if AUCTION_OPEN <= tod < AUCTION_RESULT:
        return AUCTION  # indicative auction price, no trade
    if AUCTION_RESULT <= tod < OPEN:
        return DAY0 + OPEN if volume > 0 else AUCTION  # the auction result folds into 09:30
    if OPEN <= tod < MORNING_CLOSE or AFTERNOON_OPEN <= tod < CLOSE:
        return ts - tod % M
    if MORNING_CLOSE <= tod < MORNING_CLOSE + GRACE:
        return DAY0 + MORNING_CLOSE - M  # 11:30:0x belongs to the 11:29 bar
    if CLOSE <= tod < CLOSE + GRACE:
        return DAY0 + CLOSE - M  # 15:00:0x belongs to the 14:59 bar
    return None


def bar_start(minute: int, period: str) -> int:
    """Intraday bars tile each session from its open (09:30, 13:00): 60m bars end at 10:30, 11:30,
    14:00, 15:00."""
    if period == "1d":
        return DAY0
    session_open = AFTERNOON_OPEN if minute - DAY0 >= AFTERNOON_OPEN else OPEN
    return minute - (minute - DAY0 - session_open) % (STEP_MINUTES[period] * M)


@dataclass
class RefBar:
    ts: int
    open: float
    high: float
    low: float
    close: float
    base_volume: float  # day-cumulative before the bar (at the last tick before it)
    base_amount: float
    volume: float = 0.0  # day-cumulative at the bar's last tick
    amount: float = 0.0

    def row(self) -> tuple[float, ...]:
        return (self.ts, self.open, self.high, self.low, self.close,
                self.volume - self.base_volume, round(self.amount - self.base_amount, 2))  # fmt: skip


def expected_bars(ticks: list[dict[str, Any]]) -> dict[str, dict[int, tuple[float, ...]]]:
    """period -> bar time -> (ts, open, high, low, close, volume, amount) of one code, from its
    accepted ticks in stream order. 1m/5m bars are labelled by their start; a bar's volume and
    amount are the day-cumulative figures at its last tick less those at the last tick before
    it; the 1d bar opens at the provider's open field, its high and low take the provider's
    fields beside the prices, its volume and amount are the day's cumulative figures."""
    out: dict[str, dict[int, tuple[float, ...]]] = {p: {} for p in PERIODS}
    open_bars: dict[str, RefBar] = {}
    trades = [(t, minute_of(t["ts"], t["volume"])) for t in ticks]
    first = next((m for _, m in trades if m is not None), None)
    # a code first seen after its first bar (no auction, no 09:30 tick) counts from that tick
    cum_v = cum_a = 0.0
    if first is not None and first not in (AUCTION, DAY0 + OPEN):
        t0 = next(t for t, m in trades if m is not None)
        cum_v, cum_a = t0["volume"], t0["amount"]
    for tick, minute in trades:
        if minute is None or minute == AUCTION:
            continue
        price = tick["price"]
        volume, amount = max(cum_v, tick["volume"]), max(cum_a, tick["amount"])
        for period in PERIODS:
            start = bar_start(minute, period)
            bar = open_bars.get(period)
            if bar is not None and bar.ts != start:
                out[period][bar.ts] = bar.row()
                bar = None
            if bar is None:
                if period == "1d":
                    bar = RefBar(start, price, price, price, price, 0.0, 0.0)
                else:
                    bar = RefBar(start, price, price, price, price, cum_v, cum_a)
                open_bars[period] = bar
            bar.high, bar.low, bar.close = max(bar.high, price), min(bar.low, price), price
            if period == "1d":
                if tick.get("open"):
                    bar.open = tick["open"]
                if tick.get("high"):
                    bar.high = max(bar.high, tick["high"])
                if tick.get("low"):
                    bar.low = min(bar.low, tick["low"])
            bar.volume, bar.amount = volume, amount
        cum_v, cum_a = volume, amount
    for period, bar in open_bars.items():
        out[period][bar.ts] = bar.row()
    return out


# --- reading what the stack wrote ------------------------------------------------------------------


def xrange_all(r: redis.Redis, key: str) -> Iterator[tuple[bytes, dict[bytes, bytes]]]:
    start = "-"
    while True:
        chunk: list[tuple[bytes, dict[bytes, bytes]]] = r.xrange(key, start, "+", count=10_000)  # type: ignore[assignment]
        if not chunk:
            return
        yield from chunk
        last = chunk[-1][0].decode()
        ms, _, seq = last.partition("-")
        start = f"{ms}-{int(seq) + 1}"


@dataclass
class Recorded:
    ticks: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    rejected: list[tuple[str, dict[str, Any], str]] = field(default_factory=list)  # reason, tick, error
    other_dead: list[str] = field(default_factory=list)  # dead letters of other streams (signals)
    published: list[dict[str, Any]] = field(default_factory=list)
    stored: dict[tuple[str, str], dict[int, tuple[float, ...]]] = field(default_factory=dict)


def read_recorded(r: redis.Redis, keys: Keys, codes: list[str]) -> Recorded:
    rec = Recorded()
    for _id, entry in xrange_all(r, keys.ticks):
        tick = orjson.loads(entry[b"data"])
        rec.ticks[tick["code"]].append(tick)
    for _id, entry in xrange_all(r, keys.dlq):
        stream, error = entry.get(b"stream", b"").decode(), entry.get(b"error", b"").decode()
        if stream == keys.ticks:
            rec.rejected.append((error.partition(":")[0], orjson.loads(entry[b"data"]), error))
        else:
            rec.other_dead.append(f"{stream}: {error}")
    for _id, entry in xrange_all(r, keys.bars):
        rec.published.append(orjson.loads(entry[b"data"]))
    pipe = r.pipeline(transaction=False)
    names = [(code, period) for code in codes for period in PERIODS]
    for code, period in names:
        pipe.get(keys.trend(code, period))
    for name, raw in zip(names, pipe.execute(), strict=True):
        rows = unpack(raw)
        rec.stored[name] = {int(row[0]): tuple(float(x) for x in row) for row in rows}
    return rec


# --- driving the stack ----------------------------------------------------------------------------


class Up:
    """``marketbus up --feed auto`` as a subprocess, its log, and its quotes child."""

    def __init__(self, tmp: Path, env: dict[str, str]) -> None:
        self.log_path = tmp / "up.log"
        self.port = free_port()
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "marketbus.cli", "up", "--feed", "auto", "--port", str(self.port)],
                cwd=tmp, env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def log(self, tail: int = 4000) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-tail:]

    def quotes_pid(self) -> int | None:
        for child in psutil.Process(self.proc.pid).children(recursive=True):
            try:
                if child.cmdline()[-2:] == ["-m", "quotes"] and child.status() != psutil.STATUS_ZOMBIE:
                    return child.pid
            except psutil.NoSuchProcess:
                continue
        return None

    def wait_for(self, predicate: Callable[[], Any], timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"marketbus up exited ({self.proc.returncode}) waiting for {what}:\n{self.log()}"
                )
            try:
                last = predicate()
                if last:
                    return last
            except (OSError, ValueError, redis.RedisError, httpx.HTTPError, psutil.Error) as exc:
                last = exc
            time.sleep(0.05)
        raise AssertionError(
            f"timed out after {timeout:g} s waiting for {what} (last: {last!r}):\n{self.log()}"
        )

    def stop(self, timeout: float = 60.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"marketbus up did not stop within {timeout:g} s:\n{self.log()}") from None

    def kill(self) -> None:
        if self.proc.poll() is not None:
            return
        children = psutil.Process(self.proc.pid).children(recursive=True)
        self.proc.kill()
        self.proc.wait()
        for child in children:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()


def market_wait(clock: MarketClock, until: int, up: Up) -> None:
    """Wait (checking the stack) until the market clock reaches ``until``."""
    wall_left = clock.wall_seconds(until - clock.now_ms())
    up.wait_for(lambda: clock.now_ms() >= until, wall_left + 30, f"market time {hhmmss(until)}")


def restart_quotes(up: Up, r: redis.Redis, keys: Keys, sig: signal.Signals, count: int) -> None:
    """Send ``sig`` to the quotes child; wait until the supervisor has started it again (restart
    ``count``) and the new process has restored its day state and beats."""
    pid = up.wait_for(up.quotes_pid, 30, "the quotes process")
    os.kill(pid, sig)
    up.wait_for(lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE,
                30, f"quotes (pid {pid}) to end")  # fmt: skip
    up.wait_for(lambda: int(r.hget(keys.metrics, "restarts:quotes") or 0) >= count, 60,
                f"restart {count} of quotes")  # fmt: skip
    up.wait_for(lambda: (p := up.quotes_pid()) is not None and p != pid, 30, "the new quotes process")
    started = wall_ms()  # the old process is gone: a heartbeat from now on is the new one's
    up.wait_for(lambda: int(r.hget(keys.heartbeats, "quotes") or 0) > started, 60,
                "a heartbeat of the restarted quotes process (after its day state is restored)")  # fmt: skip


def planted(sim: SimProcess) -> dict[str, Any]:
    response = httpx.get(f"{sim.url}/_control/planted", timeout=10)
    response.raise_for_status()
    doc: dict[str, Any] = response.json()
    return doc


# --- the test -------------------------------------------------------------------------------------


def test_one_recorded_trading_day_is_exactly_right(tmp_path: Path, redis_url: str, prefix: str) -> None:
    assert is_trading_day(DAY)
    began = time.monotonic()
    keys = Keys(prefix)
    r = redis.Redis.from_url(redis_url)
    with running_simulator(codes=CODES, seed=7) as sim:
        # the market clock, anchored once the simulator is up: 09:10 in LEAD_S wall seconds
        spec = MarketClock(at(9, 10), wall_ms() + round(LEAD_S * 1000), SPEED).spec()
        clock = parse_clock(spec)  # exactly what the processes read
        sim.control("clock", clock=spec)
        listing = sim.listing()
        codes = sorted(row["code"] for row in listing["securities"])
        traded = sorted(set(codes) - set(listing["suspended"]))
        assert len(codes) >= CODES and FUTURE_CODE in traded and BAND_CODE in traded
        env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETBUS_")}
        env.update(
            MARKETBUS_REDIS_URL=redis_url,
            MARKETBUS_KEY_PREFIX=prefix,
            MARKETBUS_PROVIDER_URL=sim.url,
            MARKETBUS_MARKET_CLOCK=spec,
            MARKETBUS_POLL_INTERVAL=POLL_INTERVAL,
            MARKETBUS_AUTO_CALCULATE_SIGNALS="false",
            MARKETBUS_TICKS_MAXLEN="5000000",  # the whole day stays readable
            MARKETBUS_BARS_MAXLEN="5000000",
            PYTHONUNBUFFERED="1",
        )
        sim.control("plant", code=FUTURE_CODE, at=at(*FUTURE_AT), shift_s=FUTURE_SHIFT_S)
        up = Up(tmp_path, env)
        try:
            up.wait_for(lambda: r.hget(keys.heartbeats, "quotes"), 60, "the first quotes heartbeat")
            ready = clock.now_ms()
            assert ready < at(9, 15), (
                f"the stack was ready at market {hhmmss(ready)}, after the auction began: "
                f"raise LEAD_S ({LEAD_S:g} s)"
            )
            # the previous close of the band code, from its first snapshot, for a price 50 % over it
            quote = up.wait_for(lambda: r.hget(keys.snapshots, BAND_CODE), 120, f"a snapshot of {BAND_CODE}")
            band_price = round(orjson.loads(quote)["pre_close"] * 1.5, 2)
            sim.control("plant", code=BAND_CODE, at=at(*BAND_AT), price=band_price, high=band_price)
            market_wait(clock, at(*KILL_AT), up)
            restart_quotes(up, r, keys, signal.SIGKILL, 1)
            restarted_at = clock.now_ms()
            market_wait(clock, at(*TERM_AT), up)
            restart_quotes(up, r, keys, signal.SIGTERM, 2)
            stopped = up.stop()
            assert stopped == 0, f"marketbus up exited with {stopped}:\n{up.log()}"
        finally:
            up.kill()
        plants = planted(sim)
    rec = read_recorded(r, keys, codes)
    metrics = {text(k): text(v) for k, v in r.hgetall(keys.metrics).items()}
    r.close()
    wall = time.monotonic() - began

    # --- what was fed --------------------------------------------------------------------------
    served = plants["served"]
    assert not plants["pending"], f"plants never served: {plants['pending']}"
    assert len(served) == 2, f"expected 2 planted snapshots served, got {served}"
    accepted = sum(len(v) for v in rec.ticks.values())
    gaps = minute_coverage(rec.ticks, traded)
    print(
        f"\nwall {wall:.0f} s; {accepted} ticks accepted, {len(rec.published)} bars published; "
        f"1m bars per code: min {gaps[0]}, median {gaps[1]} of 240; stack restarted at "
        f"{hhmmss(restarted_at)}; quotes first ready at {hhmmss(ready)}; metrics: {metrics}"
    )
    assert metrics.get("restarts:quotes") == "2", metrics
    missing = [c for c in traded if not rec.ticks.get(c)]
    assert not missing, f"{len(missing)} traded codes have no accepted tick, e.g. {missing[:5]}"
    no_auction = [
        c for c in traded if not any(minute_of(t["ts"], t["volume"]) == AUCTION for t in rec.ticks[c])
    ]
    assert not no_auction, f"{len(no_auction)} codes got no indicative auction tick, e.g. {no_auction[:5]}"
    no_close = [c for c in traded if not any(t["ts"] >= at(15, 0) for t in rec.ticks[c])]
    assert not no_close, (
        f"{len(no_close)} codes got no snapshot stamped at or after 15:00:00 (the close), e.g. "
        f"{[(c, hhmmss(rec.ticks[c][-1]['ts'])) for c in no_close[:5]]}"
    )
    unbarred = [
        (c, hhmmss(t["ts"])) for c in traded for t in rec.ticks[c] if minute_of(t["ts"], t["volume"]) is None
    ]
    assert not unbarred, f"{len(unbarred)} accepted ticks stamped outside every bar, e.g. {unbarred[:5]}"
    order = [(c, hhmmss(a["ts"]), hhmmss(b["ts"])) for c in traded
             for a, b in zip(rec.ticks[c], rec.ticks[c][1:], strict=False) if b["ts"] < a["ts"]]  # fmt: skip
    assert not order, f"{len(order)} accepted ticks older than the one before them, e.g. {order[:5]}"

    # --- rejected: exactly the planted ones ------------------------------------------------------
    want: Counter[tuple[str, str, int, float]] = Counter()
    for snap in served:
        reason = "future" if snap["code"] == FUTURE_CODE else "limit_band"
        want[(reason, snap["code"], snap["ts"], snap["price"])] += 1
    got = Counter((reason, t["code"], t["ts"], t["price"]) for reason, t, _ in rec.rejected)
    extra = got - want
    lost = want - got
    assert not extra and not lost, (
        f"rejected ticks are not exactly the planted ones: not planted but rejected "
        f"{len(extra)} (by reason {dict(Counter(k[0] for k in extra.elements()))}, e.g. "
        f"{[(k[0], k[1], hhmmss(k[2]), k[3]) for k in list(extra)[:5]]}); planted but not rejected "
        f"{[(k[0], k[1], hhmmss(k[2]), k[3]) for k in lost]}; errors: "
        f"{[e for _, _, e in rec.rejected][:5]}"
    )
    assert not rec.other_dead, f"{len(rec.other_dead)} other dead letters, e.g. {rec.other_dead[:5]}"
    for reason, t, _ in rec.rejected:  # a rejected tick never counted as a trade
        assert not any(a["ts"] == t["ts"] and a["price"] == t["price"] for a in rec.ticks[t["code"]]), (
            f"the rejected {reason} tick of {t['code']} at {hhmmss(t['ts'])} is also in the ticks stream"
        )

    # --- every stored bar equals the expected one --------------------------------------------------
    problems: list[str] = []
    for code in codes:
        expected = expected_bars(rec.ticks.get(code, []))
        for period in PERIODS:
            problems += compare(code, period, expected[period], rec.stored[code, period])
        minutes = sorted(rec.stored[code, "1m"])
        if minutes and minutes[0] != at(9, 30):
            problems.append(f"{code} 1m: the first stored bar is {hhmmss(minutes[0])}, not 09:30")
        for period in STEP_MINUTES:
            for ts in rec.stored[code, period]:
                tod = ts - DAY0
                if not (OPEN <= tod < MORNING_CLOSE or AFTERNOON_OPEN <= tod < CLOSE):
                    problems.append(f"{code} {period}: a bar stamped {hhmmss(ts)}, outside the sessions")
    assert not problems, f"{len(problems)} stored bars differ from the expected ones:\n" + "\n".join(
        problems[:40]
    )

    # --- no published bar was replaced by a smaller one ----------------------------------------------
    shrunk = []
    for bar in rec.published:
        if bar["period"] not in PERIODS:
            continue  # 1w (published at 15:00:10, this being a Friday) and 1M: not read here
        stored = rec.stored.get((bar["code"], bar["period"]), {}).get(bar["ts"])
        if stored is None:
            shrunk.append(f"{bar['code']} {bar['period']} {hhmmss(bar['ts'])}: published, not stored")
        elif stored[5] < bar["volume"]:
            shrunk.append(
                f"{bar['code']} {bar['period']} {hhmmss(bar['ts'])}: published volume {bar['volume']:g}, "
                f"stored {stored[5]:g}"
            )
    assert not shrunk, f"{len(shrunk)} published bars were replaced by smaller ones:\n" + "\n".join(
        shrunk[:40]
    )
    published = {(b["code"], b["period"], b["ts"]) for b in rec.published}
    closed = {(c, p, ts) for (c, p), bars in rec.stored.items() for ts in bars}
    assert closed <= published, (
        f"{len(closed - published)} stored bars were never published, e.g. "
        f"{[(c, p, hhmmss(ts)) for c, p, ts in sorted(closed - published)[:5]]}"
    )


FIELDS = ("ts", "open", "high", "low", "close", "volume", "amount")


def compare(code: str, period: str, expected: dict[int, tuple[float, ...]],
            stored: dict[int, tuple[float, ...]]) -> list[str]:  # fmt: skip
    out = []
    for ts in sorted(set(expected) | set(stored)):
        want, got = expected.get(ts), stored.get(ts)
        where = f"{code} {period} {hhmmss(ts) if period != '1d' else DAY}"
        if got is None:
            assert want is not None
            out.append(f"{where}: expected {dict(zip(FIELDS[1:], want[1:], strict=True))}, not stored")
            continue
        if want is None:
            out.append(f"{where}: stored {dict(zip(FIELDS[1:], got[1:], strict=True))}, not expected")
            continue
        for i, name in enumerate(FIELDS[1:], start=1):
            tolerance = 0.01 + 1e-9 if name == "amount" else 0.0
            if abs(want[i] - got[i]) > tolerance:
                out.append(f"{where} {name}: expected {want[i]!r}, stored {got[i]!r}")
    return out


def minute_coverage(ticks: dict[str, list[dict[str, Any]]], codes: list[str]) -> tuple[int, int]:
    """(min, median) over codes of the number of session minutes with a trade tick."""
    counts = sorted(
        len({m for t in ticks.get(c, []) if (m := minute_of(t["ts"], t["volume"])) not in (None, AUCTION)})
        for c in codes
    )
    return (counts[0], counts[len(counts) // 2]) if counts else (0, 0)
