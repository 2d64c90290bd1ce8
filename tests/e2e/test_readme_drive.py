"""The README's "Driving it yourself" block, run as written with bash against a real
``runwright serve`` (issue 13 item 5): it must wait for the server, create what it needs,
start a run and print the run's event stream to its end.

The block is taken verbatim from README.md (the fenced block after the ``drive-block``
marker). Only the environment differs from a reader's shell: ``DATABASE_URL`` points at this
test's database, ``RUNWRIGHT_PORT`` at a free port, and the default model at a scripted
OpenAI-compatible server on loopback that edits the heading, so the run ends in a revision.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

from tests.support.fixtures_openai import scripted_openai  # noqa: F401 - fixture
from tests.support.scripted_openai import (
    ScriptedOpenAI,
    ScriptedToolCall,
    text_reply,
    tool_call_reply,
)

ROOT = Path(__file__).resolve().parents[2]
BLOCK_TIMEOUT = 240.0

HEADING_PATCH = """\
--- a/src/App.tsx
+++ b/src/App.tsx
@@ -34,3 +34,3 @@
       <header className="chat__header">
-        <h1>Chat</h1>
+        <h1>My Chat</h1>
       </header>
"""


def drive_block() -> str:
    """The bash block that follows the ``drive-block`` marker in README.md."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- drive-block:.*?-->\n```bash\n(.+?)\n```", readme, re.S)
    assert match, "README lost its marked 'Driving it yourself' block"
    return match.group(1)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _events(stdout: str) -> list[dict]:
    return [json.loads(line[6:]) for line in stdout.splitlines() if line.startswith("data: ")]


def test_the_block_runs_as_written_and_streams_the_run_to_its_end(
    database_url: str,
    tmp_path: Path,
    scripted_openai: ScriptedOpenAI,  # noqa: F811
) -> None:
    scripted_openai.push(
        tool_call_reply(ScriptedToolCall("coding_agent_apply_patch", {"patch": HEADING_PATCH}))
    )
    scripted_openai.push(text_reply("I renamed the heading in src/App.tsx to My Chat."))
    # The reader runs the block from the repository root, where .venv lives.
    (tmp_path / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    script = tmp_path / "drive.sh"
    script.write_text(drive_block() + "\n", encoding="utf-8")
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "RUNWRIGHT_PORT": str(_free_port()),
        "RUNWRIGHT_DEFAULT_MODEL_BASE_URL": scripted_openai.base_url,
        "RUNWRIGHT_DEFAULT_MODEL_ID": "scripted-model",
    }
    env.pop("RUNWRIGHT_DATA_DIR", None)  # the block exports its own
    proc = subprocess.Popen(
        ["bash", str(script)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # the block's background server is in this group
    )
    try:
        stdout, stderr = proc.communicate(timeout=BLOCK_TIMEOUT)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # anything the block left behind
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{stderr[-4000:]}\n{stdout[-2000:]}"
    events = _events(stdout)
    kinds = [e["event"] for e in events]
    assert kinds, f"no events printed:\n{stdout[-2000:]}\n{stderr[-4000:]}"
    assert kinds[0] == "run.accepted", kinds
    assert kinds[-1] == "run.completed", kinds  # the stream ran to the run's end
    assert "tool.completed" in kinds and "revision.created" in kinds, kinds
    assert [e["seq"] for e in events] == sorted({e["seq"] for e in events})  # in order, once
    assert "My Chat" in "".join(
        e["payload"].get("content", "") for e in events if e["event"] == "assistant.delta"
    )
    # The block leaves the reader's shell variables alone.
    assert not re.search(r"^(USER|HOME|PATH)=", drive_block(), re.M)
    assert "Traceback" not in stderr
