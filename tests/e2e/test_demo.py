"""``runwright demo``, the README's main job, end to end: a real process, a real Postgres,
the real local model (Qwen2.5-Coder-0.5B via llama-cpp-python with Runwright's tool-call
handler) and the HTTP API. Needs the [local] extra, which .ci/run installs.

The bundled model itself makes the edit: it calls ``coding_agent_edit_file``, the toolpack
applies it, the run produces a new draft revision and the demo prints its diff. The model is
sampled greedily and reads a fixed first prompt, so its first call is the same every time
(docs/local-model.md records each try and its time). The demo caps the run at 4 tool rounds
and 128 tokens a reply, which bounds the test: about 1.5 min on a loaded 2-core machine
(load average 5-10); the time limit is far above that."""

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

EDITED = "-        <h1>Chat</h1>\n+        <h1>Runwright Chat</h1>\n"


@pytest.mark.timeout(1500)
def test_demo_ends_with_a_real_edit_by_the_local_model(database_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": database_url, "RUNWRIGHT_DATA_DIR": str(tmp_path)}
    for name in ("RUNWRIGHT_MODEL_MAX_OUTPUT_TOKENS", "RUNWRIGHT_MAX_TOOL_ITERATIONS"):
        env.pop(name, None)  # the demo's own caps apply
    result = subprocess.run(
        [sys.executable, "-m", "web.cli", "demo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=1400,
        cwd=Path(__file__).resolve().parents[2],
    )
    out = result.stdout
    assert result.returncode == 0, result.stderr[-3000:] + out[-3000:]
    assert "Created app" in out and "chat-classic" in out
    assert "Tools offered: coding_agent_read_file_range, coding_agent_edit_file" in out
    assert "... waiting for the model (" in out  # the prompt read is reported, not silent
    # The model's own call, applied by the toolpack.
    assert '-> coding_agent_edit_file {"path": "src/App.tsx", ' in out
    assert "<- coding_agent_edit_file ok (changed src/App.tsx)" in out
    assert "[revision.created]" in out
    assert "[run.completed] status=completed" in out
    assert "Status: completed" in out
    assert "Revision: none" not in out
    assert "Changed files (1): src/App.tsx" in out
    assert EDITED in out  # the diff of the new revision, printed
