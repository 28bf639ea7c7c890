"""The reason marketbus exists: no project code may create or borrow event loops (DESIGN.md)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = re.compile(
    r"new_event_loop|run_until_complete|run_coroutine_threadsafe|get_event_loop\(|BackgroundScheduler"
)


def offending_lines() -> list[str]:
    hits = []
    for base in ("shared", "services", "benchmarks"):
        for path in (ROOT / base).rglob("*.py"):
            if ".venv" in path.parts or "tests" in path.parts:
                continue
            for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if FORBIDDEN.search(line):
                    hits.append(f"{path.relative_to(ROOT)}:{no}: {line.strip()}")
    return hits


def test_project_code_creates_no_event_loops() -> None:
    assert offending_lines() == []


def test_the_check_would_catch_a_violation(tmp_path: Path) -> None:
    assert FORBIDDEN.search("loop = asyncio.new_event_loop()")
    assert FORBIDDEN.search("asyncio.get_event_loop().run_until_complete(x)")
    assert FORBIDDEN.search("from apscheduler.schedulers.background import BackgroundScheduler")
    assert not FORBIDDEN.search("loop = asyncio.get_running_loop()")
