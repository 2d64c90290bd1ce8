"""run_targeted_tests / build_worker_precheck: allowlist, timeout, output cap, and
cancellation killing the whole process group (contract 7.3, docs/design.md 3.5)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from runtime.tools import Toolpack
from runtime.tools.commands import check_allowlisted
from runtime.tools.errors import ToolPermissionError
from runtime.workspace import Workspace
from tests.support.sandbox import host_processes, needs_bwrap
from tests.unit.toolpack_fixtures import make_context, make_settings

pytestmark = needs_bwrap  # every command runs in the real bwrap sandbox

SPIN_MARKER = "spin-marker-7f3a"
SCRIPTS = {
    "ok.js": "console.log('out', process.env.RUNWRIGHT_JWT_SECRET)\n",
    "fail.js": "process.stderr.write('boom'); process.exitCode = 3\n",
    "loud.js": "process.stdout.write('x'.repeat(100000)); setTimeout(() => {}, 30000)\n",
    # The leader ignores SIGTERM (forcing the SIGKILL escalation) and starts a child; both
    # carry a marker in their command line so the test finds them among the host's pids.
    "spin.js": (
        "const { spawn } = require('node:child_process');\n"
        "process.on('SIGTERM', () => {});\n"
        f"spawn('node', ['-e', 'setTimeout(() => {{}}, 60000)', '{SPIN_MARKER}'],"
        " { stdio: 'ignore' });\n"
        "setTimeout(() => {}, 60000);\n"
    ),
}


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Toolpack, Workspace]:
    allow = tuple(f"node {name}" for name in SCRIPTS) + (f"node spin.js {SPIN_MARKER}",)
    allow += ("npm run lint",)
    cfg = make_settings(
        tmp_path,
        command_allowlist=allow,
        test_timeout_seconds=3,
        max_command_output_bytes=300,
    )
    ws = Workspace(tmp_path / "ws")
    for name, text in SCRIPTS.items():
        (ws.root / name).write_text(text)
    return Toolpack(cfg), ws


async def run(tp: Toolpack, ws: Workspace, command: object) -> dict:
    return await tp.call("coding_agent_run_targeted_tests", {"command": command}, make_context(ws))


async def test_passing_and_failing_commands(
    setup: tuple[Toolpack, Workspace], monkeypatch: pytest.MonkeyPatch
) -> None:
    tp, ws = setup
    monkeypatch.setenv("RUNWRIGHT_JWT_SECRET", "server-secret-value")
    out = await run(tp, ws, ["node", "ok.js"])
    assert out["status"] == "passed" and out["ok"] is True
    assert out["command"] == "node ok.js"
    result = out["result"]
    assert result["code"] == 0 and result["stdout"] == "out undefined\n"  # no server secrets
    assert result["sandbox_id"] == ws.sandbox_id and result["revision_token"].startswith(
        "sandbox-seq-"
    )
    out = await run(tp, ws, "node fail.js")
    assert out["status"] == "failed" and out["ok"] is False
    assert (out["result"]["code"], out["result"]["stderr"]) == (3, "boom")


@pytest.mark.parametrize(
    "command",
    [
        "rm -rf /",
        "npm run lint; rm -rf /",
        ["npm", "run", "lint", "&&", "true"],
        "npm run lint > out.txt",
        "npm run lint $(whoami)",
        "npm run  lint extra",
        "",
    ],
)
async def test_commands_off_the_allowlist_are_refused(
    setup: tuple[Toolpack, Workspace], command: object
) -> None:
    tp, ws = setup
    out = await run(tp, ws, command)
    assert out["code"] == "BUILDER_PATCH_POLICY_VIOLATION"
    assert out["error"].startswith("Command is not allowlisted: ")


def test_metacharacters_refused_even_when_allowlisted() -> None:
    with pytest.raises(ToolPermissionError):
        check_allowlisted(["echo", "a|b"], ("echo a|b",))
    check_allowlisted(["npm", "run", "lint"], ("npm run lint",))


async def test_bad_command_types(setup: tuple[Toolpack, Workspace]) -> None:
    tp, ws = setup
    for bad in ({"cmd": "npm"}, 42, ["npm", 1]):
        out = await run(tp, ws, bad)
        assert out["error"] == "command must be an array of tokens or a shell-style string"


async def test_build_precheck_respects_the_allowlist(setup: tuple[Toolpack, Workspace]) -> None:
    tp, ws = setup
    out = await tp.call("coding_agent_build_worker_precheck", {}, make_context(ws))
    assert out["error"] == "Command is not allowlisted: npm run build"


async def test_timeout_kills_and_output_is_capped(setup: tuple[Toolpack, Workspace]) -> None:
    tp, ws = setup
    started = time.monotonic()
    out = await run(tp, ws, "node loud.js")
    assert time.monotonic() - started < 10
    result = out["result"]
    assert out["status"] == "failed" and result["code"] == 124 and result["timed_out"]
    assert result["stdout"] == "x" * 300 + "... [truncated]"
    assert "Command timed out after 3 seconds" in result["stderr"]


async def test_cancelling_the_call_kills_the_process_group(
    setup: tuple[Toolpack, Workspace],
) -> None:
    tp, ws = setup

    def spinning() -> list[int]:
        return host_processes(SPIN_MARKER.encode(), program=b"node\x00")

    task = asyncio.create_task(run(tp, ws, f"node spin.js {SPIN_MARKER}"))
    for _ in range(400):
        if len(spinning()) == 2:
            break
        await asyncio.sleep(0.05)
    assert len(spinning()) == 2, "the command and its child did not start"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The call returned only after the whole tree was gone (SIGTERM ignored -> SIGKILL).
    assert spinning() == []


async def test_missing_program_reports_127(tmp_path: Path) -> None:
    cfg = make_settings(tmp_path, command_allowlist=("definitely-not-a-program-xyz --run",))
    ws = Workspace(tmp_path / "ws")
    out = await Toolpack(cfg).call(
        "coding_agent_run_targeted_tests",
        {"command": "definitely-not-a-program-xyz --run"},
        make_context(ws),
    )
    assert out["ok"] is False and out["result"]["code"] == 127
    assert "definitely-not-a-program-xyz" in out["result"]["stderr"]
