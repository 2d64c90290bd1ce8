"""Checkpoint tools over a CheckpointHost, per-tool timeouts, exception envelopes, and the
contract 3.4 tool.failed diagnostics (contract test 18)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from runtime.settings import Settings
from runtime.tools import ToolContext, Toolpack, ToolPermissionError, tool_failure_diagnostics
from runtime.workspace import Workspace
from tests.unit import toolpack_fixtures as fx
from tests.unit.toolpack_fixtures import make_context

ctx = fx.ctx
settings = fx.settings
toolpack = fx.toolpack
workspace = fx.workspace  # pytest fixtures used by name


REV_0 = "00000000-0000-4000-8000-000000000000"
FOREIGN = "00000000-0000-4000-8000-00000000f0e1"
CRASH = "00000000-0000-4000-8000-00000000c4a5"


class FakeHost:
    """A CheckpointHost recording calls; ``delay`` makes it slow, ``foreign`` refuses."""

    def __init__(self, delay: float = 0.0) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.delay = delay

    async def create_checkpoint(self, ctx: ToolContext, entry_file: str | None) -> dict[str, Any]:
        self.calls.append(("create", (ctx.run_id, entry_file)))
        await asyncio.sleep(self.delay)
        return {"checkpoint_revision_id": "rev-1", "created_at": "t", "file_count": 1,
                "entry_file": entry_file}  # fmt: skip

    async def restore_checkpoint(self, ctx: ToolContext, revision_id: str) -> dict[str, Any]:
        self.calls.append(("restore", (ctx.run_id, revision_id)))
        if revision_id == FOREIGN:
            raise ToolPermissionError("Checkpoint belongs to another app")
        if revision_id == CRASH:
            raise RuntimeError("database went away")
        return {"restored_revision_id": "rev-2", "from_checkpoint_revision_id": revision_id,
                "entry_file": None, "file_count": 1}  # fmt: skip


async def test_checkpoints_unavailable_without_host(toolpack: Toolpack, ctx: ToolContext) -> None:
    out = await toolpack.call("coding_agent_create_checkpoint", {}, ctx)
    assert out == {"error": "Checkpoints are unavailable", "code": "CHECKPOINTS_UNAVAILABLE"}


async def test_checkpoint_tools_delegate_to_host(toolpack: Toolpack, workspace: Workspace) -> None:
    host = FakeHost()
    ctx = make_context(workspace, host)
    out = await toolpack.call(
        "coding_agent_create_checkpoint", {"entry_file": "./src/main.tsx", "run_id": "x"}, ctx
    )
    assert out["checkpoint_revision_id"] == "rev-1" and out["entry_file"] == "src/main.tsx"
    out = await toolpack.call("coding_agent_create_checkpoint", {"entry_file": "../x.ts"}, ctx)
    assert out["code"] == "BUILDER_PATCH_POLICY_VIOLATION" and out["field"] == "entry_file"
    out = await toolpack.call("coding_agent_restore_checkpoint", {"checkpoint_id": REV_0}, ctx)
    assert out["from_checkpoint_revision_id"] == REV_0
    assert host.calls == [
        ("create", (ctx.run_id, "src/main.tsx")),
        ("restore", (ctx.run_id, REV_0)),
    ]
    # An id that is no revision id never reaches the host (an approver's edit is held to
    # the same rule at the decision).
    out = await toolpack.call("coding_agent_restore_checkpoint", {"checkpoint_id": "rev-0"}, ctx)
    assert out == {"error": "Invalid checkpoint id: rev-0", "code": "TOOL_INPUT_VALIDATION_FAILED",
                   "field": "checkpoint_revision_id"}  # fmt: skip
    assert len(host.calls) == 2
    out = await toolpack.call("coding_agent_restore_checkpoint", {"checkpoint_id": FOREIGN}, ctx)
    assert out == {
        "error": "Checkpoint belongs to another app",
        "code": "BUILDER_PATCH_POLICY_VIOLATION",
    }
    out = await toolpack.call("coding_agent_restore_checkpoint", {"checkpoint_id": CRASH}, ctx)
    assert out == {"error": "database went away", "code": "TOOL_EXECUTION_FAILED"}
    out = await toolpack.call("coding_agent_restore_checkpoint", {}, ctx)
    assert out["fields"] == ["checkpoint_revision_id"]


async def test_per_tool_timeout_becomes_an_envelope(
    settings: Settings, workspace: Workspace
) -> None:
    class FastToolpack(Toolpack):
        def tool_timeout(self, name: str) -> float:
            return 0.05

    out = await FastToolpack(settings).call(
        "coding_agent_create_checkpoint", {}, make_context(workspace, FakeHost(delay=5))
    )
    assert out["code"] == "TOOL_TIMEOUT"
    assert out["error"] == "coding_agent_create_checkpoint timed out after 0.05 seconds"


async def test_cancellation_propagates(toolpack: Toolpack, workspace: Workspace) -> None:
    task = asyncio.create_task(
        toolpack.call("coding_agent_create_checkpoint", {}, make_context(workspace, FakeHost(5)))
    )
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


# ---- contract 3.4 -----------------------------------------------------------------------------


def test_patch_failure_diagnostics_contract_test_18() -> None:
    output = {
        "error": "Patch apply failed",
        "code": "PATCH_HUNK_MISMATCH",
        "failures": [
            {
                "path": "src/App.tsx",
                "hunk_index": 1,
                "reason": "context_mismatch",
                "recommended_refresh": {"start_line": 10, "end_line": 40},
            }
        ],
        "result": {"ok": False, "code": "PATCH_HUNK_MISMATCH"},
    }
    [diag] = tool_failure_diagnostics(output)
    assert diag == {
        "message": "Patch apply failed",
        "code": "PATCH_HUNK_MISMATCH",
        "patch_failure_count": 1,
        "recommended_refresh": {"path": "src/App.tsx", "start_line": 10, "end_line": 40},
        "patch_code": "PATCH_HUNK_MISMATCH",
    }


def test_diagnostics_for_plain_failures_and_successes() -> None:
    assert tool_failure_diagnostics({"ok": True}) is None
    assert tool_failure_diagnostics({"error": ""}) is None
    assert tool_failure_diagnostics("error") is None
    assert tool_failure_diagnostics({"error": "x", "code": "C", "field": "path"}) == [
        {"message": "x", "code": "C", "field": "path"}
    ]
    odd = {"error": "x", "failures": [{"path": "a", "recommended_refresh": None}], "result": {}}
    assert tool_failure_diagnostics(odd) == [{"message": "x", "patch_failure_count": 1}]


async def test_diagnostics_on_a_real_mismatch(toolpack: Toolpack, ctx: ToolContext) -> None:
    ctx.workspace.materialise({"src/App.tsx": "a\nb\nc\n"})
    patch = "--- a/src/App.tsx\n+++ b/src/App.tsx\n@@ -2 +2 @@\n-zzz\n+y\n"
    out = await toolpack.call("coding_agent_apply_patch", {"patch": patch}, ctx)
    [diag] = tool_failure_diagnostics(out)
    assert diag["code"] == "PATCH_HUNK_MISMATCH" and diag["patch_failure_count"] == 1
    assert diag["recommended_refresh"]["path"] == "src/App.tsx"
    assert diag["patch_code"] == "PATCH_HUNK_MISMATCH"
