"""File tools of the coding toolpack (contract 7.3, 7.5): happy paths, clamps, envelopes."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from runtime.tools import ToolContext, Toolpack
from runtime.workspace import Workspace
from tests.unit import toolpack_fixtures as fx
from tests.unit.toolpack_fixtures import make_context, make_settings

ctx = fx.ctx
settings = fx.settings
toolpack = fx.toolpack
workspace = fx.workspace  # pytest fixtures used by name

APP = "line one\nline two\nline three\nline four\nline five\n"


async def call(tp: Toolpack, name: str, args: object, ctx: ToolContext) -> dict:
    return await tp.call(f"coding_agent_{name}", args, ctx)  # type: ignore[arg-type]


async def test_list_read_and_snapshot(toolpack: Toolpack, ctx: ToolContext) -> None:
    ctx.workspace.materialise({"src/App.tsx": APP, "index.html": "<html/>", "b.md": "b"})
    out = await call(toolpack, "list_files", {"limit": 2}, ctx)
    assert out["paths"] == ["b.md", "index.html"] and out["count"] == 2
    assert out["revision_token"] == "sandbox-seq-1"
    assert out["sandbox_id"] == ctx.workspace.sandbox_id
    out = await call(toolpack, "read_file", {"file_path": "./src//App.tsx"}, ctx)
    assert out["path"] == "src/App.tsx" and out["content"] == APP
    assert out["size_bytes"] == len(APP)
    assert out["sha256"] == hashlib.sha256(APP.encode()).hexdigest()
    out = await call(toolpack, "snapshot_files", "{}", ctx)
    assert out["file_count"] == 3 and out["files"]["b.md"] == "b"


async def test_read_errors_become_envelopes(toolpack: Toolpack, ctx: ToolContext) -> None:
    out = await call(toolpack, "read_file", {"path": "src/missing.ts"}, ctx)
    assert out == {"error": "File not found: src/missing.ts", "code": "TOOL_EXECUTION_FAILED"}
    out = await call(toolpack, "read_file", {"path": "../../etc/passwd.txt"}, ctx)
    assert out == {
        "error": "Path traversal is not allowed",
        "code": "BUILDER_PATCH_POLICY_VIOLATION",
        "field": "path",
    }
    out = await call(toolpack, "read_file", {"path": ".env"}, ctx)
    assert out["code"] == "BUILDER_PATCH_POLICY_VIOLATION"
    assert out["error"] == "Unsupported file extension: (none)"
    (ctx.workspace.root / "logo.png").write_bytes(b"\x89PNG\x00")
    out = await call(toolpack, "read_file", {"path": "logo.png"}, ctx)
    assert out["error"] == "File is not UTF-8 text: logo.png"
    (ctx.workspace.root / "dir.ts").mkdir()
    out = await call(toolpack, "read_file", {"path": "dir.ts"}, ctx)
    assert out["error"] == "File not found: dir.ts"


async def test_symlink_escape_refused_by_tools(
    toolpack: Toolpack, ctx: ToolContext, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("s3cret")
    os.symlink(secret, ctx.workspace.root / "leak.txt")
    out = await call(toolpack, "read_file_range", {"path": "leak.txt"}, ctx)
    assert out["code"] == "BUILDER_PATCH_POLICY_VIOLATION"
    assert "s3cret" not in str(out) and str(tmp_path) not in str(out)


async def test_read_file_range_numbering_and_clamps(toolpack: Toolpack, ctx: ToolContext) -> None:
    ctx.workspace.materialise({"a.ts": APP})

    async def rng(**kw: object) -> dict:
        return await call(toolpack, "read_file_range", {"path": "a.ts", **kw}, ctx)

    out = await rng(start_line=2, end_line=3, with_line_numbers=True)
    assert out["content"] == "2: line two\n3: line three"
    assert (out["start_line"], out["end_line"], out["line_count"]) == (2, 3, 2)  # window lines
    assert out["sha256"] == hashlib.sha256(APP.encode()).hexdigest()
    out = await rng()  # start 1, end = start
    assert (out["start_line"], out["end_line"], out["content"]) == (1, 1, "line one")
    out = await rng(start_line=4, end_line=2)  # end < start -> start
    assert (out["start_line"], out["end_line"]) == (4, 4)
    out = await rng(start_line=3, context_before=1, context_after=500)  # 500 -> 200, clamped
    assert (out["start_line"], out["end_line"]) == (2, 5)
    out = await rng(start_line=99)
    assert (out["start_line"], out["end_line"], out["content"]) == (5, 5, "line five")
    out = await rng(start_line=0, end_line=-3)
    assert (out["start_line"], out["end_line"]) == (1, 1)
    ctx.workspace.write_text("empty.ts", "")
    out = await call(toolpack, "read_file_range", {"path": "empty.ts", "start_line": 7}, ctx)
    assert (out["start_line"], out["end_line"], out["content"], out["line_count"]) == (
        1, 1, "", 0,
    )  # fmt: skip


async def test_read_file_range_truncates_at_max_bytes(toolpack: Toolpack, ctx: ToolContext) -> None:
    ctx.workspace.write_text("big.ts", "é" * 1000 + "\n")
    out = await call(toolpack, "read_file_range", {"path": "big.ts", "max_bytes": 10}, ctx)
    assert out["truncated"] is True
    assert len(out["content"].encode()) == 256  # minimum 256, cut on a char boundary
    out = await call(toolpack, "read_file_range", {"path": "big.ts", "max_bytes": 99999}, ctx)
    assert out["truncated"] is False and len(out["content"]) == 1000


async def test_write_file_is_disabled_by_default(toolpack: Toolpack, ctx: ToolContext) -> None:
    out = await call(toolpack, "write_file", {"path": "a.ts", "content": "x"}, ctx)
    assert out == {
        "error": "coding_agent_write_file is deprecated and disabled; use coding_agent_apply_patch",
        "code": "LEGACY_WRITE_FILE_DISABLED",
    }
    assert not (ctx.workspace.root / "a.ts").exists()


async def test_write_file_when_enabled(tmp_path: Path) -> None:
    cfg = make_settings(tmp_path, enable_legacy_write_file=True)
    ws = Workspace(tmp_path / "ws")
    ctx = make_context(ws)
    out = await Toolpack(cfg).call(
        "coding_agent_write_file", {"filePath": "src/new.ts", "text": "export {}\n"}, ctx
    )
    assert out == {
        "sandbox_id": ws.sandbox_id,
        "path": "src/new.ts",
        "status": "written",
        "revision_token": "sandbox-seq-1",
    }
    assert ws.read_text("src/new.ts") == "export {}\n"
    out = await Toolpack(cfg).call(
        "coding_agent_write_file", {"path": "tool.py", "content": "x"}, ctx
    )
    assert out["error"] == "Unsupported file extension: .py"


async def test_rename_and_delete(toolpack: Toolpack, ctx: ToolContext) -> None:
    ctx.workspace.materialise({"a.ts": "1", "b.ts": "2"})
    out = await call(toolpack, "rename_file", {"from": "a.ts", "to": "src/c.ts"}, ctx)
    assert out["status"] == "renamed" and out["to_path"] == "src/c.ts"
    assert out["revision_token"] == "sandbox-seq-2"
    out = await call(toolpack, "rename_file", {"from_path": "a.ts", "to_path": "d.ts"}, ctx)
    assert out == {"error": "File not found: a.ts", "code": "TOOL_EXECUTION_FAILED"}
    out = await call(toolpack, "rename_file", {"from_path": "b.ts", "to_path": "src/c.ts"}, ctx)
    assert out["error"] == "Target file already exists: src/c.ts"
    out = await call(toolpack, "delete_file", {"path": "b.ts"}, ctx)
    assert out["status"] == "deleted" and out["revision_token"] == "sandbox-seq-3"
    out = await call(toolpack, "delete_file", {"path": "b.ts"}, ctx)  # missing: not an error
    assert out["status"] == "deleted" and out["revision_token"] == "sandbox-seq-3"
    assert ctx.workspace.list_files() == ["src/c.ts"]


async def test_unknown_tool_and_schemas(toolpack: Toolpack, ctx: ToolContext) -> None:
    out = await toolpack.call("coding_agent_format_disk", {}, ctx)
    assert out["code"] == "TOOL_NOT_FOUND"
    tools = toolpack.openai_tools()
    names = [t["function"]["name"] for t in tools]
    assert len(names) == 16 and all(n.startswith("coding_agent_") for n in names)
    by_name = {t["function"]["name"]: t["function"]["parameters"] for t in tools}
    assert by_name["coding_agent_rename_file"]["required"] == ["from_path", "to_path"]
    assert by_name["coding_agent_read_file_range"]["properties"]["max_bytes"]["maximum"] == 50000
    assert toolpack.tool_timeout("coding_agent_apply_patch") == 45
    assert toolpack.tool_timeout("coding_agent_list_files") == 15
    assert toolpack.tool_timeout("coding_agent_build_worker_precheck") == 360
