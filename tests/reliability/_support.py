"""Helpers of the reliability suite (processes, waiting, bars, expected signals)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from redis.asyncio import Redis

from marketbus.contracts import Bar
from marketbus.keys import Keys
from marketbus.server import free_port
from marketbus.trend import TrendStore, unpack
from marketbus.wire import encode
from signals.evaluate import Target, evaluate_windows, window_ending_at
from signals.strategies import build_strategies

MINUTE = 60_000
T0 = 1_764_000_000_000 // MINUTE * MINUTE


# --- processes ----------------------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def terminate(self, timeout: float = 10.0) -> tuple[int, float]:
        """SIGTERM; (exit code, seconds it took). Kills and fails when it takes longer."""
        t0 = time.monotonic()
        if self.alive:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(
                f"{self.name} did not exit within {timeout} s of SIGTERM:\n{self.log()[-3000:]}"
            ) from None
        return code, time.monotonic() - t0


@dataclass
class Procs:
    tmp: Path
    base_env: dict[str, str]
    started: list[Proc] = field(default_factory=list)

    def start(self, module: str, *, url: str, prefix: str, name: str | None = None, **env: str) -> Proc:
        name = name or module
        path = self.tmp / f"{name}.log"
        full = {
            **self.base_env,
            "MARKETBUS_REDIS_URL": url,
            "MARKETBUS_KEY_PREFIX": prefix,
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        with open(path, "wb") as handle:
            proc = subprocess.Popen(
                [sys.executable, "-m", module], env=full, stdout=handle, stderr=subprocess.STDOUT
            )
        p = Proc(name, proc, path)
        self.started.append(p)
        return p

    def start_gateway(self, *, url: str, prefix: str, name: str = "gateway", **env: str) -> tuple[Proc, str]:
        port = free_port()
        p = self.start("gateway", url=url, prefix=prefix, name=name, MARKETBUS_PORT=str(port), **env)
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/healthz", p)
        return p, base


def wait_http(url: str, proc: Proc, within_s: float = 30.0) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            if not proc.alive:
                raise AssertionError(f"{proc.name} exited: {proc.log()[-3000:]}") from None
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer within {within_s} s")


# --- waiting ------------------------------------------------------------------------------------


async def wait_for(predicate: Callable[[], object], within_s: float, what: str, every: float = 0.1) -> object:
    """Await (or call) ``predicate`` until it returns something truthy."""
    import asyncio
    import inspect

    deadline = time.monotonic() + within_s
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within_s} s waiting for {what}")
        await asyncio.sleep(every)


async def group_info(client: Redis, stream: str, group: str) -> dict[str, object] | None:
    try:
        groups = await client.xinfo_groups(stream)
    except Exception:
        return None
    for g in groups:
        name = g["name"].decode() if isinstance(g["name"], bytes) else g["name"]
        if name == group:
            return dict(g)
    return None


async def group_drained(client: Redis, stream: str, group: str) -> bool:
    g = await group_info(client, stream, group)
    return g is not None and g["pending"] == 0 and g["lag"] == 0


# --- bars ---------------------------------------------------------------------------------------


def random_walk_bars(code: str, n: int, seed: int, t0: int = T0, period: str = "1m") -> list[Bar]:
    """Bars of a volatile random walk with volume bursts: every strategy fires now and then."""
    rng = np.random.default_rng(seed)
    step = {"1m": MINUTE, "5m": 5 * MINUTE, "1d": 86_400_000}[period]
    closes = 10.0 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    vols = rng.lognormal(10, 0.6, n) * np.where(rng.random(n) < 0.05, 4.0, 1.0)
    out = []
    prev = closes[0]
    for i in range(n):
        c = round(float(closes[i]), 3)
        hi = max(prev, c) * (1 + abs(rng.normal(0, 0.004)))
        lo = min(prev, c) * (1 - abs(rng.normal(0, 0.004)))
        out.append(
            Bar(
                code=code,
                period=period,  # type: ignore[arg-type]
                ts=t0 + i * step,
                open=round(float(prev), 3),
                high=round(float(hi), 3),
                low=round(float(lo), 3),
                close=c,
                volume=round(float(vols[i])),
                amount=round(float(vols[i]) * c, 2),
            )
        )
        prev = c
    return out


def golden_cross_bars(code: str, n: int = 120, t0: int = T0, period: str = "1m") -> list[Bar]:
    """A slow decline, then a jump on the last bar: SMA5 crosses above SMA20 exactly there."""
    closes = np.round(np.linspace(12.0, 10.0, n), 2)
    closes[-1] = 11.5
    step = {"1m": MINUTE, "5m": 5 * MINUTE, "1d": 86_400_000}[period]
    out = []
    for i, c in enumerate(closes):
        prev = closes[i - 1] if i else c
        out.append(
            Bar(
                code=code,
                period=period,  # type: ignore[arg-type]
                ts=t0 + i * step,
                open=float(prev),
                high=float(max(prev, c)) + 0.01,
                low=float(min(prev, c)) - 0.01,
                close=float(c),
                volume=10_000.0 + 100 * i,
                amount=float(c) * 10_000,
            )
        )
    return out


async def publish_bars(client: Redis, keys: Keys, bars: Sequence[Bar], maxlen: int = 100_000) -> list[str]:
    """As the quotes service does: each bar into its trend series, then on the bars stream."""
    store = TrendStore(client, keys)
    pipe = client.pipeline(transaction=False)
    for bar in bars:
        store.append_in(pipe, bar)
        pipe.xadd(keys.bars, encode(bar), maxlen=maxlen, approximate=True)  # type: ignore[arg-type]
    results = await pipe.execute()
    return [r.decode() for r in results[1::2]]


async def expected_signal_ids(client: Redis, keys: Keys, bars: Sequence[Bar]) -> set[str]:
    """The ids of the signals the windows of these bars define, from the final trend series."""
    series: dict[tuple[str, str], np.ndarray] = {}
    for code, period in {(b.code, b.period) for b in bars}:
        series[(code, period)] = unpack(await client.get(keys.trend(code, period)))
    targets = []
    for bar in bars:
        window = window_ending_at(series[(bar.code, bar.period)], bar.ts)
        assert window is not None, f"bar {bar.code} {bar.ts} is missing from its trend series"
        targets.append(Target(bar.code, bar.period, window))
    signals = evaluate_windows(targets, build_strategies(), {}, 0)
    return {s.id for s in signals}


async def signal_ids(client: Redis, keys: Keys) -> list[str]:
    import orjson

    return [orjson.loads(f[b"data"])["id"] for _, f in await client.xrange(keys.signals)]


# --- ticks --------------------------------------------------------------------------------------


def tick_rows(codes: Sequence[str], start_ms: int, steps: int, step_ms: int, seed: int = 1) -> list[dict]:
    """Tick rows for a replay file: every code quoted every ``step_ms``, cumulative volume and
    amount, prices on a random walk on the code's tick grid. In time order."""
    rng = np.random.default_rng(seed)
    rows = []
    price = {c: 10.0 + i for i, c in enumerate(codes)}
    volume = dict.fromkeys(codes, 0)
    amount = dict.fromkeys(codes, 0.0)
    for k in range(steps):
        ts = start_ms + k * step_ms
        for c in codes:
            places = 3 if c.startswith(("1", "5")) else 2  # on the tick: 0.001 funds, 0.01 stocks
            price[c] = max(0.5, round(price[c] * (1 + rng.normal(0, 0.002)), places))
            inc = int(rng.integers(1, 50)) * 100
            volume[c] += inc
            amount[c] = round(amount[c] + inc * price[c], 2)
            rows.append({"code": c, "ts": ts, "price": price[c], "volume": volume[c], "amount": amount[c]})
    return rows


def write_csv(path: Path, rows: Sequence[dict]) -> Path:
    cols = list(rows[0])
    lines = [",".join(cols)] + [",".join(str(r[c]) for c in cols) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def metrics(client: Redis, keys: Keys) -> dict[str, int]:
    return {k.decode(): int(v) for k, v in (await client.hgetall(keys.metrics)).items()}
