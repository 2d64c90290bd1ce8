"""The README stays true: every setting is documented, and CI runs the documented command."""

from __future__ import annotations

import re
from pathlib import Path

from runtime.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_in_the_configuration_table():
    documented = set(re.findall(r"^\| `(RUNWRIGHT_[A-Z0-9_]+|DATABASE_URL)`", README, re.M))
    expected = {
        "DATABASE_URL" if name == "database_url" else f"RUNWRIGHT_{name.upper()}"
        for name in Settings.model_fields
    }
    assert expected - documented == set(), "undocumented settings"
    assert documented - expected == set(), "documented settings that do not exist"


def test_ci_runs_the_readme_test_command_verbatim():
    match = re.search(r"<!-- test-command:.*?-->\n```bash\n(.+?)\n```", README, re.S)
    assert match, "README lost its marked test command"
    command = match.group(1).strip()
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert command in ci_lines
