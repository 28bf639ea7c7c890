"""The ``marketbus`` command: run the stack, look at it, operate on it.

- ``marketbus up``: server (embedded unless MARKETBUS_REDIS_URL), quotes, signals, scorecard, gateway.
- ``marketbus status``: streams, consumer groups, counters, heartbeats.
- ``marketbus dlq list`` / ``marketbus dlq replay ID``.
- ``marketbus import-history FILE``: daily bars from a Tushare CSV (runs the quotes importer).
- ``marketbus scan``: ask the signals service for a full-market scan and follow its job.
- ``marketbus asyncapi``: print the AsyncAPI document of the bus.
- ``marketbus backfill``: run every strategy over the stored history again (for the scorecard).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Sequence
from typing import Any

import orjson
import redis
from rich.console import Console
from rich.table import Table

from marketbus import calendar, jobs
from marketbus.clock import wall_ms
from marketbus.contracts import PERIODS
from marketbus.feeds import FEED_NAMES
from marketbus.keys import COMMANDS_GROUP, SCORECARD_GROUP, SIGNALS_GROUP, Keys
from marketbus.redis import connect_sync, describe, redact
from marketbus.server import EmbeddedServer, port_in_use
from marketbus.settings import Settings, load_settings
from marketbus.streams import COMMANDS, Publisher
from marketbus.supervisor import ChildSpec, Supervisor, restart_counter

console = Console()
err = Console(stderr=True, soft_wrap=True)
STOP_TIMEOUT_S = 10.0


class UsageError(Exception):
    """A problem the user can fix; printed as one line, no traceback."""


def _check_server(url: str) -> None:
    try:
        connect_sync(url, socket_connect_timeout=3, socket_timeout=3).ping()
    except redis.RedisError as exc:
        raise UsageError(
            f"cannot reach the server at {redact(url)} ({exc}); start it, correct "
            "MARKETBUS_REDIS_URL, or unset it to use the embedded server"
        ) from None


def _wait_http(url: str, procs: dict[str, subprocess.Popen[bytes]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, p in procs.items():
            if p.poll() is not None:
                raise UsageError(f"{name} exited with code {p.returncode} during start; see its log above")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise UsageError(f"the gateway did not answer on {url} within {timeout:.0f} s")


def cmd_up(args: argparse.Namespace) -> int:
    settings = load_settings()
    host = args.host or settings.host
    port = args.port if args.port is not None else settings.port
    if port_in_use(host, port):
        raise UsageError(f"port {port} on {host} is already in use; choose another with --port")
    env = dict(os.environ)
    env.update(
        MARKETBUS_HOST=host,
        MARKETBUS_PORT=str(port),
        MARKETBUS_FEED=args.feed or settings.feed,
        MARKETBUS_SPEED=str(args.speed if args.speed is not None else settings.speed),
        PYTHONUNBUFFERED="1",
    )
    if args.replay_file:
        env["MARKETBUS_REPLAY_FILE"] = args.replay_file
    server: EmbeddedServer | None = None
    if settings.redis_url:
        _check_server(settings.redis_url)
        url = settings.redis_url
    else:
        server = EmbeddedServer().start()
        url = server.url
        console.print(f"embedded valkey-server on {url}")
    env["MARKETBUS_REDIS_URL"] = url

    stop = {"requested": False}

    def on_signal(_signum: int, _frame: object) -> None:
        stop["requested"] = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    names = ["quotes"] + [f"signals-{i + 1}" for i in range(args.signals_workers)] + ["scorecard", "gateway"]
    specs: list[ChildSpec] = []
    for name in names:
        module = name.split("-")[0]
        child_env = dict(env)
        if module == "signals":
            base = env.get("MARKETBUS_CONSUMER_NAME") or uuid.uuid4().hex[:6]
            child_env["MARKETBUS_CONSUMER_NAME"] = f"{name}-{base}"  # unique per worker, kept on restart
        specs.append(ChildSpec(name, (sys.executable, "-m", module), child_env))

    def warn(message: str) -> None:
        err.print(message, style="yellow", markup=False, highlight=False)

    # restarts are counted in the metrics hash (`marketbus status`); a server down is only logged
    counts = connect_sync(url, socket_connect_timeout=2, socket_timeout=2)
    sup = Supervisor(
        specs,
        on_restart=restart_counter(counts, Keys(settings.key_prefix).metrics, log=warn),
        log=warn,
        watched={"the embedded valkey-server": server.proc} if server and server.proc else None,
        stop_timeout_s=STOP_TIMEOUT_S,
    )
    code = 0
    try:
        sup.start()
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        _wait_http(f"http://{shown}:{port}/healthz", sup.procs, timeout=60)
        console.print(
            f"[bold green]marketbus is up[/]: dashboard [link]http://{shown}:{port}/[/link]  "
            f"API docs http://{shown}:{port}/docs  (Ctrl-C stops everything)"
        )
        code = sup.run(lambda: stop["requested"])
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if sup.stop_all():
            code = code or 1
        counts.close()
        if server is not None:
            server.cleanup()
        console.print("marketbus stopped")
    return code


def _client(settings: Settings) -> Any:
    """A sync client answering str (decode_responses), for the operator commands."""
    if not settings.redis_url:
        raise UsageError("MARKETBUS_REDIS_URL is not set: point it at the server `marketbus up` printed")
    _check_server(settings.redis_url)
    return connect_sync(settings.redis_url, decode_responses=True)


def cmd_status(_args: argparse.Namespace) -> int:
    settings = load_settings()
    r = _client(settings)
    keys = Keys(settings.key_prefix)
    table = Table(title=f"marketbus on {redact(settings.redis_url or '')} (prefix {keys.prefix})")
    for col in ("stream", "length", "group", "pending", "lag", "consumers"):
        table.add_column(col)
    for stream, group in (
        (keys.ticks, None),
        (keys.bars, SIGNALS_GROUP),
        (keys.signals, None),
        (keys.commands, COMMANDS_GROUP),
        (keys.dlq, None),
        (keys.signals, SCORECARD_GROUP),
        (keys.signals_history, SCORECARD_GROUP),
        (keys.bars, SCORECARD_GROUP),
    ):
        length = r.xlen(stream) if r.exists(stream) else 0
        info: dict[str, Any] = {}
        if group and r.exists(stream):
            info = next((g for g in r.xinfo_groups(stream) if g["name"] == group), {})
        table.add_row(
            stream,
            str(length),
            group or "",
            str(info.get("pending", "")),
            str(info.get("lag", "")),
            str(info.get("consumers", "")),
        )
    console.print(table)
    for line in describe(settings.redis_url or ""):  # Sentinel: primary, failovers, replica lag
        console.print(line, highlight=False)
    now = wall_ms()
    beats = Table(title="services")
    beats.add_column("service")
    beats.add_column("last heartbeat")
    for name, ms in sorted(r.hgetall(keys.heartbeats).items()):
        beats.add_row(name, f"{(now - float(ms)) / 1000:.1f} s ago")
    console.print(beats)
    _print_feed_state(r, keys, now)
    metrics = r.hgetall(keys.metrics)
    restarts = Table(title="restarts")
    restarts.add_column("service")
    restarts.add_column("count", justify="right")
    for name, value in sorted(metrics.items()):
        if name.startswith("restarts:"):
            restarts.add_row(name.removeprefix("restarts:"), str(value))
    if restarts.row_count:
        console.print(restarts)
    counters = Table(title="counters")
    counters.add_column("counter")
    counters.add_column("value", justify="right")
    for name, value in sorted(metrics.items()):
        if not name.startswith("restarts:"):
            counters.add_row(name, str(value))
    console.print(counters)
    for line in calendar.describe(r.hgetall(keys.calendar), calendar.market_today(settings.market_clock)):
        console.print(line, style="yellow" if line.startswith("warning") else None, highlight=False)
    return 0


def _print_feed_state(r: Any, keys: Keys, now_ms: int) -> None:
    """The market clock the quotes service publishes and its last full poll of the providers."""
    raw_clock = r.get(keys.market_clock)
    if raw_clock:
        clock = json.loads(raw_clock)
        at = dt.datetime.fromtimestamp(clock["ts"] / 1000, dt.timezone(dt.timedelta(hours=8)))
        console.print(
            f"market clock: {at:%Y-%m-%d %H:%M:%S} Asia/Shanghai "
            f"(written {(now_ms - clock['wall']) / 1000:.1f} s ago)",
            highlight=False,
        )
    raw_poll = r.get(keys.poll_stats)
    if raw_poll:
        poll = json.loads(raw_poll)
        providers = ", ".join(f"{name} {n} chunks" for name, n in poll.get("providers", {}).items())
        console.print(
            f"last poll: {poll['duration_ms']:.0f} ms, {poll['codes_covered']} of "
            f"{poll['codes_requested']} codes covered, {providers or 'no provider answered'}, "
            f"{poll.get('failed_chunks', 0)} chunks unanswered",
            highlight=False,
        )


def cmd_dlq(args: argparse.Namespace) -> int:
    settings = load_settings()
    r = _client(settings)
    keys = Keys(settings.key_prefix)
    if args.action == "list":
        table = Table(title=f"{keys.dlq} (newest first)")
        for col in ("id", "from", "entry", "error", "data"):
            table.add_column(col, overflow="fold")
        for entry_id, f in r.xrevrange(keys.dlq, count=args.limit):
            table.add_row(
                entry_id,
                f.get("stream", ""),
                f.get("entry_id", ""),
                f.get("error", ""),
                f.get("data", "")[:120],
            )
        console.print(table)
        return 0
    if not args.id:
        raise UsageError("dlq replay needs the id of a DLQ entry (see `marketbus dlq list`)")
    entries = r.xrange(keys.dlq, args.id, args.id)
    if not entries:
        raise UsageError(f"no DLQ entry {args.id} in {keys.dlq}")
    _, f = entries[0]
    stream = f.get("stream")
    if not stream:
        raise UsageError(f"DLQ entry {args.id} does not name its stream")
    new_id = r.xadd(stream, {"data": f.get("data", "")})
    r.xdel(keys.dlq, args.id)
    console.print(f"replayed {args.id} to {stream} as {new_id}")
    return 0


def cmd_import_history(args: argparse.Namespace) -> int:
    cmd = [sys.executable, "-m", "quotes.importer", args.file, "--period", args.period]
    return subprocess.call(cmd)


def cmd_import_universe(args: argparse.Namespace) -> int:
    return subprocess.call([sys.executable, "-m", "quotes.universe_import", args.file])


def cmd_import_calendar(args: argparse.Namespace) -> int:
    """A Tushare trade_cal CSV into the calendar in Redis; exit 1 when nothing was imported."""
    import asyncio  # one asyncio.run, the command's only loop

    settings = load_settings()
    _client(settings)  # the URL is set and the server answers
    assert settings.redis_url is not None
    try:
        result = asyncio.run(calendar.import_file(settings.redis_url, Keys(settings.key_prefix), args.file))
    except calendar.CalendarFileError as exc:
        err.print(f"marketbus import-calendar: {exc}", highlight=False)
        return 1
    for line in result.render():
        console.print(line, highlight=False, soft_wrap=True)
    text = calendar.warning_for(result.calendar_last_day, calendar.market_today(settings.market_clock))
    if text:
        console.print(f"warning: {text}", style="yellow", highlight=False, soft_wrap=True)
    return 0 if result.imported else 1


def cmd_scan(args: argparse.Namespace) -> int:
    settings = load_settings()
    r = _client(settings)
    keys = Keys(settings.key_prefix)
    cmd = jobs.new_command(source="cli", period=args.period)
    pipe = r.pipeline(transaction=True)
    job = jobs.queue(pipe, keys, Publisher.of(COMMANDS, keys, settings), cmd)
    pipe.execute()
    console.print(f"job {cmd.id} queued")
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        status = jobs.parse(r.get(keys.job(cmd.id))) or job
        if status.state in ("done", "failed"):
            console.print(status.model_dump_json(indent=2))
            return 0 if status.state == "done" else 1
        time.sleep(0.2)
    raise UsageError(f"job {cmd.id} did not finish within {args.timeout} s (is a signals worker up?)")


def cmd_backfill(_args: argparse.Namespace) -> int:
    """Forget the history runs: the signals service runs every strategy over the stored history
    again within seconds (the scorecard scores each signal once, so nothing is counted twice)."""
    settings = load_settings()
    keys = Keys(settings.key_prefix)
    pipe = _client(settings).pipeline(transaction=True)
    pipe.delete(*(keys.backfill_done(p) for p in PERIODS))
    pipe.incr(keys.trend_epoch)  # the workers look again at once, not at their next full check
    gone, _ = pipe.execute()
    console.print(f"forgot the history runs of {gone} period(s); the signals service runs them again")
    return 0


def cmd_asyncapi(args: argparse.Namespace) -> int:
    """Print the AsyncAPI document of the bus (no server needed)."""
    from marketbus.asyncapi import document

    settings = load_settings()
    print(orjson.dumps(document(settings.key_prefix), option=orjson.OPT_INDENT_2).decode())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="marketbus", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the server (embedded unless MARKETBUS_REDIS_URL) and all services")
    up.add_argument("--port", type=int, default=None, help="gateway port (default 8000)")
    up.add_argument("--host", default=None, help="gateway bind address (default 127.0.0.1)")
    up.add_argument(
        "--feed", default=None, choices=FEED_NAMES, help="tick source (default MARKETBUS_FEED, else sim)"
    )
    up.add_argument("--speed", type=float, default=None, help="sim/replay clock speed (default 60)")
    up.add_argument("--replay-file", default=None, help="CSV/Parquet for --feed replay")
    up.add_argument("--signals-workers", type=int, default=1, help="signals processes (default 1)")
    up.set_defaults(fn=cmd_up)
    st = sub.add_parser("status", help="streams, consumer groups, counters, heartbeats")
    st.set_defaults(fn=cmd_status)
    dlq = sub.add_parser("dlq", help="look at dead letters, or put one back")
    dlq.add_argument("action", choices=["list", "replay"])
    dlq.add_argument("id", nargs="?")
    dlq.add_argument("--limit", type=int, default=20)
    dlq.set_defaults(fn=cmd_dlq)
    imp = sub.add_parser("import-history", help="import bars from a Tushare `daily` (or `stk_mins`) CSV")
    imp.add_argument("file")
    imp.add_argument("--period", default="1d", choices=PERIODS)
    imp.set_defaults(fn=cmd_import_history)
    uni = sub.add_parser(
        "import-universe", help="load the universe from a Tushare `stock_basic` or `fund_basic` CSV"
    )
    uni.add_argument("file")
    uni.set_defaults(fn=cmd_import_universe)
    cal = sub.add_parser("import-calendar", help="import trading days from a Tushare `trade_cal` CSV")
    cal.add_argument("file")
    cal.set_defaults(fn=cmd_import_calendar)
    scan = sub.add_parser("scan", help="run the full-market scan now and wait for its result")
    scan.add_argument("--period", default="1d", choices=PERIODS)
    scan.add_argument("--timeout", type=float, default=120.0)
    scan.set_defaults(fn=cmd_scan)
    api = sub.add_parser("asyncapi", help="print the AsyncAPI document: every stream and its message schema")
    api.set_defaults(fn=cmd_asyncapi)
    back = sub.add_parser("backfill", help="run every strategy over the stored history again (scorecard)")
    back.set_defaults(fn=cmd_backfill)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.fn(args))
    except UsageError as exc:
        err.print(f"marketbus: {exc}", highlight=False)
        return 2
    except ValueError as exc:  # settings that do not validate
        err.print(f"marketbus: invalid setting: {exc}".splitlines()[0], highlight=False)
        return 2


if __name__ == "__main__":
    sys.exit(main())
