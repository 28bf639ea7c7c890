"""README stays true: every setting is documented, and CI runs the README's test command."""

import re
from pathlib import Path

from marketbus.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def test_every_setting_is_documented() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [n for n in Settings.model_fields if f"`MARKETBUS_{n.upper()}`" not in readme]
    assert missing == []


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    command = re.search(r"^uv run [^\n`]*pytest[^\n`]*$", readme, re.M)
    assert command is not None
    assert command.group(0) in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
