"""The apply_patch tool over runtime.patching (contract 7.3-7.4, section 10 patch tests)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from runtime.tools import ToolContext, Toolpack
from runtime.workspace import Workspace
from tests.support.sandbox import needs_bwrap
from tests.unit import toolpack_fixtures as fx
from tests.unit.toolpack_fixtures import make_context, make_settings

ctx = fx.ctx
settings = fx.settings
toolpack = fx.toolpack
workspace = fx.workspace  # pytest fixtures used by name

APP = "export default function App() {\n  return <h1>Old</h1>\n}\n"
GOOD = (
    "diff --git a/src/App.tsx b/src/App.tsx\n"
    "--- a/src/App.tsx\n+++ b/src/App.tsx\n"
    "@@ -1,3 +1,3 @@\n export default function App() {\n-  return <h1>Old</h1>\n"
    "+  return <h1>New</h1>\n }\n"
)
BAD = GOOD.replace("-  return <h1>Old</h1>", "-  return <h1>Nope</h1>")


async def apply(tp: Toolpack, ctx: ToolContext, **args: object) -> dict:
    return await tp.call("coding_agent_apply_patch", args, ctx)


async def test_apply_patch_success_updates_file_and_token(
    toolpack: Toolpack, ctx: ToolContext
) -> None:
    ctx.workspace.materialise({"src/App.tsx": APP})
    out = await apply(toolpack, ctx, patch=GOOD)
    assert out["ok"] is True and out["code"] == "PATCH_APPLIED"
    assert out["applied_files"] == ["src/App.tsx"]
    assert out["revision_token"] == "sandbox-seq-2" == ctx.workspace.revision_token
    assert out["sandbox_id"] == ctx.workspace.sandbox_id
    assert "verification_plan" in out and "verification_runs" not in out
    rng = await toolpack.call(
        "coding_agent_read_file_range",
        {"path": "src/App.tsx", "start_line": 2, "with_line_numbers": True},
        ctx,
    )
    assert rng["content"] == "2:   return <h1>New</h1>"


async def test_apply_patch_mismatch_is_a_failure_without_mutation(
    toolpack: Toolpack, ctx: ToolContext
) -> None:
    ctx.workspace.materialise({"src/App.tsx": APP})
    out = await apply(toolpack, ctx, input={"unifiedDiff": BAD})
    assert out["error"] and out["code"] == "PATCH_HUNK_MISMATCH"
    assert out["result"]["applied_files"] == []
    assert out["failures"][0]["reason"] in ("context_mismatch", "deletion_mismatch")
    assert out["refresh_windows"] and out["refresh_windows"][0]["path"] == "src/App.tsx"
    assert ctx.workspace.read_text("src/App.tsx") == APP
    assert out["revision_token"] == "sandbox-seq-1"  # nothing changed, no bump


async def test_apply_patch_precondition_hash(toolpack: Toolpack, ctx: ToolContext) -> None:
    ctx.workspace.materialise({"src/App.tsx": APP})
    out = await apply(
        toolpack,
        ctx,
        patch=GOOD,
        preconditions={"expected_hashes": {"src/App.tsx": "sha256:deadbeef"}},
    )
    assert out["code"] == "PATCH_PRECONDITION_FAILED"
    assert ctx.workspace.read_text("src/App.tsx") == APP
    good_hash = "sha256:" + hashlib.sha256(APP.encode()).hexdigest().upper()
    out = await apply(toolpack, ctx, patch=GOOD, expected_hashes={"src/App.tsx": good_hash})
    assert out["code"] == "PATCH_APPLIED"


async def test_apply_patch_begin_patch_format(toolpack: Toolpack, ctx: ToolContext) -> None:
    ctx.workspace.materialise({"src/App.tsx": APP})
    patch = (
        "*** Begin Patch\n*** Update File: src/App.tsx\n@@\n"
        "-  return <h1>Old</h1>\n+  return <h1>Begin</h1>\n*** End Patch\n"
    )
    out = await apply(toolpack, ctx, value=json.dumps({"patch": patch}))
    assert out["code"] == "PATCH_APPLIED", out
    assert "<h1>Begin</h1>" in ctx.workspace.read_text("src/App.tsx")


async def test_apply_patch_policy_and_validation(toolpack: Toolpack, ctx: ToolContext) -> None:
    escape = "--- a/../x.ts\n+++ b/../x.ts\n@@ -0,0 +1 @@\n+x\n"
    out = await apply(toolpack, ctx, patch=escape)
    assert out["code"] == "PATCH_POLICY_VIOLATION"
    out = await apply(toolpack, ctx, strip=1)
    assert out["code"] == "TOOL_INPUT_VALIDATION_FAILED" and out["fields"] == ["patch"]


@needs_bwrap  # the verification commands run in the sandbox
async def test_auto_verify_runs_first_two_allowlisted_commands(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    ws.materialise({"src/App.tsx": APP})
    (ws.root / "check.js").write_text("console.log('checked')\n")
    cfg = make_settings(
        tmp_path,
        auto_verify_patch=True,
        command_allowlist=("node check.js", "definitely-missing-xyz", "npm run x"),
    )
    tp = Toolpack(cfg)
    out = await tp.call("coding_agent_apply_patch", {"patch": GOOD}, make_context(ws))
    runs = out["verification_runs"]
    assert [r["code"] for r in runs] == [0, 127]
    assert runs[0]["stdout"] == "checked\n"
    assert tp.tool_timeout("coding_agent_apply_patch") > 45
