"""Supervision of the ``marketbus up`` children: restart a crashed service, stop on a crash loop.

Like compose's ``restart: unless-stopped``: a child (quotes, signals-N, scorecard, gateway) that exits while
the stack is not stopping is started again after a backoff (0.5 s doubling to 10 s; a child that
ran 60 s before it exited starts again from 0.5 s). Five exits of one child within 60 s are a crash
loop: the whole stack stops with the reason. A watched process (the embedded server) is never
restarted: its exit stops the stack.

- Policy, pure and clock-free (the caller passes the times): :class:`RestartPolicy`,
  :class:`ExitHistory` (``record_exit`` answers :class:`Restart` or :class:`GiveUp`),
  :func:`describe_exit`.
- Shell: :class:`Supervisor` starts the processes, polls them, restarts them when due, and stops
  them all (SIGTERM, then SIGKILL after ``stop_timeout_s``).
"""

from __future__ import annotations

import ctypes
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis

# --------------------------------------------------------------------------------------------
# policy (pure)


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """When and how soon a child that exited is started again."""

    initial_backoff_s: float = 0.5
    max_backoff_s: float = 10.0
    healthy_after_s: float = 60.0  # a child that ran this long starts again from initial_backoff_s
    crash_loop_exits: int = 5  # this many exits of one child ...
    crash_loop_window_s: float = 60.0  # ... within this many seconds stop the stack

    def __post_init__(self) -> None:
        for name in ("initial_backoff_s", "max_backoff_s", "healthy_after_s", "crash_loop_window_s"):
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(f"RestartPolicy.{name} must be > 0, got {value!r}")
        if self.max_backoff_s < self.initial_backoff_s:
            raise ValueError(
                f"RestartPolicy.max_backoff_s ({self.max_backoff_s!r}) is below "
                f"initial_backoff_s ({self.initial_backoff_s!r})"
            )
        if self.crash_loop_exits < 1:
            raise ValueError(f"RestartPolicy.crash_loop_exits must be >= 1, got {self.crash_loop_exits!r}")

    def backoff(self, attempt: int) -> float:
        """Delay before restart ``attempt`` (1-based) of a run of exits without a healthy run between."""
        if attempt < 1:
            raise ValueError(f"restart attempt must be >= 1, got {attempt}")
        delay = self.initial_backoff_s
        for _ in range(attempt - 1):
            delay *= 2
            if delay >= self.max_backoff_s:
                return self.max_backoff_s
        return min(delay, self.max_backoff_s)


@dataclass(frozen=True, slots=True)
class Restart:
    """Start the child again after ``delay_s``; ``attempt`` counts exits since its last healthy run."""

    delay_s: float
    attempt: int


@dataclass(frozen=True, slots=True)
class GiveUp:
    """A crash loop: stop the stack. ``reason`` says how many exits in how long."""

    reason: str


@dataclass(slots=True)
class ExitHistory:
    """The exits of one child, and what to do about the next one. Times are any monotonic seconds."""

    policy: RestartPolicy = field(default_factory=RestartPolicy)
    exits: deque[float] = field(default_factory=deque)
    attempt: int = 0

    def record_exit(self, *, started_at: float, exited_at: float) -> Restart | GiveUp:
        if exited_at < started_at:
            raise ValueError(f"exit at {exited_at} before the start at {started_at}")
        p = self.policy
        if exited_at - started_at >= p.healthy_after_s:
            self.attempt = 0
        self.exits.append(exited_at)
        while self.exits and self.exits[0] <= exited_at - p.crash_loop_window_s:
            self.exits.popleft()
        if len(self.exits) >= p.crash_loop_exits:
            return GiveUp(f"{len(self.exits)} exits within {p.crash_loop_window_s:g} s")
        self.attempt += 1
        return Restart(p.backoff(self.attempt), self.attempt)


def describe_exit(returncode: int) -> str:
    """``code 3``, or ``signal SIGKILL (code -9)`` for a child a signal ended (Popen's negative codes)."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"signal {name} (code {returncode})"
    return f"code {returncode}"


# --------------------------------------------------------------------------------------------
# shell


def die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Children get SIGTERM if their supervisor itself dies, so nothing is left behind."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True, slots=True)
class ChildSpec:
    """One supervised process: its name (``quotes``, ``signals-1``, ``scorecard``...), command line and
    environment."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] | None = None


class Supervisor:
    """Runs the children, restarts the ones that exit, stops them all.

    ``on_restart(name)`` is called after each restart (``marketbus up`` counts it in Redis); an
    exception it raises is logged and otherwise ignored. ``watched`` are processes started by
    someone else (the embedded server) whose exit stops the stack; they are never restarted nor
    stopped here. ``reason`` holds why :meth:`run` gave up, if it did.
    """

    def __init__(
        self,
        specs: Sequence[ChildSpec],
        *,
        policy: RestartPolicy | None = None,
        on_restart: Callable[[str], None] | None = None,
        log: Callable[[str], None] = _stderr,
        watched: Mapping[str, subprocess.Popen[Any]] | None = None,
        stop_timeout_s: float = 10.0,
        poll_interval_s: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"child names must be unique, got {names}")
        self.specs = {s.name: s for s in specs}
        self.policy = policy or RestartPolicy()
        self.on_restart = on_restart
        self.log = log
        self.watched = dict(watched or {})
        self.stop_timeout_s = stop_timeout_s
        self.poll_interval_s = poll_interval_s
        self.clock = clock
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.started_at: dict[str, float] = {}
        self.history = {name: ExitHistory(self.policy) for name in self.specs}
        self.restarts = dict.fromkeys(self.specs, 0)
        self.reason: str | None = None
        self._due: dict[str, float] = {}  # exited children waiting for their restart: name -> time

    def _spawn(self, name: str) -> None:
        spec = self.specs[name]
        self.procs[name] = subprocess.Popen(
            list(spec.argv),
            env=dict(spec.env) if spec.env is not None else None,
            preexec_fn=die_with_parent,
        )
        self.started_at[name] = self.clock()

    def start(self) -> None:
        """Start every child (in the order given)."""
        for name in self.specs:
            self._spawn(name)

    def _give_up(self, reason: str) -> int:
        self.reason = reason
        self.log(f"{reason}; stopping marketbus")
        return 1

    def step(self, stop_requested: Callable[[], bool]) -> int | None:
        """One round: notice exits, restart the children that are due. An exit code means stop."""
        for wname, wproc in self.watched.items():
            rc = wproc.poll()
            if rc is not None:
                return self._give_up(f"{wname} exited with {describe_exit(rc)} and is not restarted")
        now = self.clock()
        for name, proc in self.procs.items():
            if name in self._due:
                continue
            rc = proc.poll()
            if rc is None:
                continue
            if stop_requested():
                return None
            decision = self.history[name].record_exit(started_at=self.started_at[name], exited_at=now)
            if isinstance(decision, GiveUp):
                return self._give_up(
                    f"{name} exited with {describe_exit(rc)}: a crash loop ({decision.reason})"
                )
            self._due[name] = now + decision.delay_s
            self.log(f"{name} exited with {describe_exit(rc)}; restarting it in {decision.delay_s:g} s")
        for name, due in list(self._due.items()):
            if now < due or stop_requested():
                continue
            del self._due[name]
            try:
                self._spawn(name)
            except OSError as exc:
                return self._give_up(f"cannot restart {name}: {exc}")
            self.restarts[name] += 1
            self.log(f"restarted {name} (pid {self.procs[name].pid}, restart {self.restarts[name]})")
            if self.on_restart is not None:
                try:
                    self.on_restart(name)
                except Exception as exc:  # a counter must never stop the supervision
                    self.log(f"could not record the restart of {name}: {exc}")
        return None

    def run(self, stop_requested: Callable[[], bool]) -> int:
        """Supervise until ``stop_requested()`` (answers 0) or a crash loop / watched exit (answers 1).

        Does not stop the children: call :meth:`stop_all` after it (in a ``finally``).
        """
        while not stop_requested():
            code = self.step(stop_requested)
            if code is not None:
                return code
            time.sleep(self.poll_interval_s)
        return 0

    def stop_all(self) -> int:
        """SIGTERM every running child, SIGKILL the ones still there after ``stop_timeout_s``.

        Answers 1 when a child ended with anything but 0, SIGTERM or SIGINT (an exit already
        handled by a restart does not count), 0 otherwise.
        """
        handled = set(self._due)  # exited, waiting for a restart: already reported
        self._due.clear()
        live = {n: p for n, p in self.procs.items() if p.poll() is None}
        exited = {n: p.returncode for n, p in self.procs.items() if n not in live and n not in handled}
        for p in live.values():
            p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout_s
        worst = 0
        for name, p in live.items():
            try:
                code = p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.log(f"{name} did not stop within {self.stop_timeout_s:g} s; killing it")
                p.kill()
                code = p.wait()
            if code not in (0, -signal.SIGTERM, -signal.SIGINT):
                worst = 1
        for code in exited.values():
            if code not in (0, -signal.SIGTERM, -signal.SIGINT):
                worst = 1
        return worst


def restart_counter(
    client: Any, metrics_key: str, log: Callable[[str], None] = _stderr
) -> Callable[[str], None]:
    """``on_restart`` for :class:`Supervisor`: ``HINCRBY metrics_key restarts:<name> 1`` on a sync client.

    A server that does not answer is logged, not raised: the restart itself already happened.
    """

    def count(name: str) -> None:
        try:
            client.hincrby(metrics_key, f"restarts:{name}", 1)
        except (redis.RedisError, OSError) as exc:
            log(f"could not count the restart of {name} in {metrics_key}: {exc}")

    return count
