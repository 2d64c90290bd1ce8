"""``runwright demo``, the README's main job, end to end: a real process, a real Postgres,
the real local model (SmolLM2 via llama-cpp-python) and the HTTP API (native engine issue
item 8). Needs the [local] extra, which .ci/run installs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from runtime.local_model import unavailable_reason

_REASON = unavailable_reason()

pytestmark = [
    pytest.mark.local_model,
    pytest.mark.skipif(_REASON is not None, reason=_REASON or ""),
]


def test_demo_runs_a_native_run_on_the_local_model(database_url: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "RUNWRIGHT_DATA_DIR": str(tmp_path / "data"),
        "RUNWRIGHT_MODEL_MAX_OUTPUT_TOKENS": "48",
    }
    result = subprocess.run(
        [sys.executable, "-m", "web.cli", "demo", "--prompt", "Say hello in one sentence."],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=Path(__file__).resolve().parents[2],
    )
    out = result.stdout
    assert result.returncode == 0, result.stderr[-3000:] + out[-3000:]
    assert "Created app" in out and "chat-classic" in out
    assert "[plan] Coding-agent run started" in out
    assert "assistant: " in out  # text streamed as it was typed
    assert "[run.completed] status=completed" in out
    assert "Status: completed" in out
    assert "Revision: " in out
