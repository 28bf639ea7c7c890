"""Results, the machine description, the table and RESULTS.md."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import platform
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from rich.console import Console
from rich.table import Table

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
LIBS = ("faststream", "redis", "numpy", "pandas", "ta-lib", "fastapi", "uvicorn", "pydantic")


@dataclass
class Result:
    bench: str
    metric: str
    value: float
    unit: str
    baseline: str = ""
    baseline_value: float | None = None
    higher_is_better: bool = True
    target: str = ""
    met: bool | None = None

    @property
    def ratio(self) -> float | None:
        if self.baseline_value in (None, 0) or self.value == 0:
            return None
        assert self.baseline_value is not None
        r = self.value / self.baseline_value
        return r if self.higher_is_better else 1 / r


def fmt(v: float | None) -> str:
    if v is None:
        return ""
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.3g}"


def machine(server_version: str) -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    libs = []
    for name in LIBS:
        with contextlib.suppress(metadata.PackageNotFoundError):
            libs.append(f"{name} {metadata.version(name)}")
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": str(os.cpu_count()),
        "cpu": cpu,
        "python": platform.python_version(),
        "server": server_version,
        "libraries": ", ".join(libs),
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=RESULTS.parent,
        ).stdout.strip(),
    }


def table(results: list[Result]) -> Table:
    t = Table(title="marketbus benchmarks (ratio: marketbus vs baseline, >1 is better)")
    for col in ("benchmark", "metric", "marketbus", "baseline", "ratio", "target", "met"):
        t.add_column(col)
    for r in results:
        base = f"{fmt(r.baseline_value)} ({r.baseline})" if r.baseline else ""
        met = "" if r.met is None else ("yes" if r.met else "NO")
        t.add_row(r.bench, r.metric, f"{fmt(r.value)} {r.unit}", base, fmt(r.ratio), r.target, met)
    return t


def markdown(results: list[Result], info: dict[str, str], mode: str) -> str:
    lines = [
        "# Benchmark results",
        "",
        f"Produced by `uv run python -m benchmarks{' --quick' if mode == 'quick' else ''}` "
        "(rewritten on every run). Ratios compare marketbus with a baseline measured in the same "
        "run on the same machine; absolute figures on these shared 2-core machines wander by "
        "30-40%, ratios much less.",
        "",
        "| machine | |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in info.items()],
        f"| mode | {mode} |",
        "",
        "| benchmark | metric | marketbus | baseline | ratio | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        base = f"{fmt(r.baseline_value)} ({r.baseline})" if r.baseline else ""
        met = "" if r.met is None else ("yes" if r.met else "**no**")
        lines.append(
            f"| {r.bench} | {r.metric} | {fmt(r.value)} {r.unit} | {base} | {fmt(r.ratio)} | "
            f"{r.target} | {met} |"
        )
    return "\n".join(lines) + "\n"


def show(results: list[Result]) -> None:
    Console(width=170).print(table(results))
