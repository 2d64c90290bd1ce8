"""run_targeted_tests / build_worker_precheck: allowlist, timeout, output cap, and
cancellation killing the whole process group (contract 7.3, DESIGN.md 3.5)."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest

from runtime.tools import Toolpack
from runtime.tools.commands import check_allowlisted
from runtime.tools.errors import ToolPermissionError
from runtime.workspace import Workspace
from tests.unit.toolpack_fixtures import make_context, make_settings

PY = sys.executable

SCRIPTS = {
    "ok.py": "import os\nprint('out', os.environ.get('RUNWRIGHT_JWT_SECRET'))\n",
    "fail.py": "import sys\nsys.stderr.write('boom')\nsys.exit(3)\n",
    "loud.py": "import time\nprint('x' * 100000, flush=True)\ntime.sleep(30)\n",
    # The leader ignores SIGTERM (forcing the SIGKILL escalation) and starts a child in its
    # process group; both pids are written out for the test to check.
    "spin.py": (
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "open('pids.txt', 'w').write(f'{child.pid} ' + str(__import__('os').getpid()))\n"
        "time.sleep(60)\n"
    ),
}


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Toolpack, Workspace]:
    allow = tuple(f"{PY} {name}" for name in SCRIPTS) + ("npm run lint",)
    cfg = make_settings(
        tmp_path,
        command_allowlist=allow,
        test_timeout_seconds=1.5,
        max_command_output_bytes=300,
    )
    ws = Workspace(tmp_path / "ws")
    for name, text in SCRIPTS.items():
        (ws.root / name).write_text(text)
    return Toolpack(cfg), ws


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie is dead, just not reaped


async def run(tp: Toolpack, ws: Workspace, command: object) -> dict:
    return await tp.call("coding_agent_run_targeted_tests", {"command": command}, make_context(ws))


async def test_passing_and_failing_commands(
    setup: tuple[Toolpack, Workspace], monkeypatch: pytest.MonkeyPatch
) -> None:
    tp, ws = setup
    monkeypatch.setenv("RUNWRIGHT_JWT_SECRET", "server-secret-value")
    out = await run(tp, ws, [PY, "ok.py"])
    assert out["status"] == "passed" and out["ok"] is True
    assert out["command"] == f"{PY} ok.py"
    result = out["result"]
    assert result["code"] == 0 and result["stdout"] == "out None\n"  # no server secrets
    assert result["sandbox_id"] == ws.sandbox_id and result["revision_token"].startswith(
        "sandbox-seq-"
    )
    out = await run(tp, ws, f"{PY} fail.py")
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
    out = await run(tp, ws, f"{PY} loud.py")
    assert time.monotonic() - started < 10
    result = out["result"]
    assert out["status"] == "failed" and result["code"] == 124 and result["timed_out"]
    assert result["stdout"] == "x" * 300 + "... [truncated]"
    assert "Command timed out after 1.5 seconds" in result["stderr"]


async def test_cancelling_the_call_kills_the_process_group(
    setup: tuple[Toolpack, Workspace],
) -> None:
    tp, ws = setup
    task = asyncio.create_task(run(tp, ws, f"{PY} spin.py"))
    pid_file = ws.root / "pids.txt"
    for _ in range(200):
        if pid_file.exists() and len(pid_file.read_text().split()) == 2:
            break
        await asyncio.sleep(0.05)
    pids = [int(p) for p in pid_file.read_text().split()]
    assert all(alive(p) for p in pids)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The call returned only after the group was gone (SIGTERM ignored -> SIGKILL).
    assert not any(alive(p) for p in pids)


async def test_missing_program_reports_127(tmp_path: Path) -> None:
    cfg = make_settings(tmp_path, command_allowlist=("definitely-not-a-program-xyz --run",))
    ws = Workspace(tmp_path / "ws")
    out = await Toolpack(cfg).call(
        "coding_agent_run_targeted_tests",
        {"command": "definitely-not-a-program-xyz --run"},
        make_context(ws),
    )
    assert out["ok"] is False and out["result"]["code"] == 127
