"""``runwright demo``, the README's main job, end to end: a real process, a real Postgres,
the real local model (Qwen2.5-Coder-0.5B via llama-cpp-python with Runwright's tool-call
handler) and the HTTP API. Needs the [local] extra, which .ci/run installs.

The model reads about 2,700 prompt tokens before its first word (about a minute on 2 idle
cores, far more on a busy machine), so the test has its own time limit. It asserts what the
small model does reliably (the run completes, the wait is reported, events stream); whether
it also patches the file is not reliable (docs/local-model.md)."""

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


@pytest.mark.timeout(1500)
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
        timeout=1400,
        cwd=Path(__file__).resolve().parents[2],
    )
    out = result.stdout
    assert result.returncode == 0, result.stderr[-3000:] + out[-3000:]
    assert "Created app" in out and "chat-classic" in out
    assert "[plan] Coding-agent run started" in out
    assert "... waiting for the model (" in out  # the prompt read is reported, not silent
    assert "assistant: " in out  # text streamed as it was typed
    assert "[run.completed] status=completed" in out
    assert "Status: completed" in out
    assert "Revision: " in out
