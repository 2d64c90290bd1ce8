"""The house lint rules hold on the whole tree (pyproject.toml: ruff's rules and format,
mypy on the product's packages), so a change that breaks them fails CI instead of
surfacing sessions later."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _run(*argv: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.mark.parametrize("command", [("check", "."), ("format", "--check", ".")])
def test_ruff(command: tuple[str, ...]) -> None:
    result = _run(str(BIN / "ruff"), *command)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy(tmp_path: Path) -> None:
    result = _run(
        sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "cache"),
        "runtime", "web", "storage", "runwright",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
