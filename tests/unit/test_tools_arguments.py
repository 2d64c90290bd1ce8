"""Tool argument normalisation (contract 7.2) and the 11 path-resolution tests of
contract section 10 (test_coding_agent_tool_path_resolution.py), re-expressed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from runtime.tools import ToolContext, ToolError, Toolpack
from runtime.tools.arguments import bind_arguments, parse_text
from runtime.tools.commands import parse_command
from runtime.tools.specs import TOOLS
from runtime.workspace import Workspace
from tests.unit import toolpack_fixtures as fx
from tests.unit.toolpack_fixtures import make_context

ctx = fx.ctx
settings = fx.settings
toolpack = fx.toolpack
workspace = fx.workspace  # pytest fixtures used by name

SPECS = {spec.slug: spec for spec in TOOLS}


def bind(slug: str, raw: Any) -> dict[str, Any]:
    return bind_arguments(SPECS[slug].fields, raw)


# ---- contract section 10: the 11 path-resolution tests -------------------------------------


def test_path_found_under_parameters_file_relative_path() -> None:
    raw = {"parameters": {"file": {"relativePath": "src/App.tsx"}}}
    assert bind("read_file", raw)["path"] == "src/App.tsx"


def test_rename_from_and_to_under_payload_source_and_destination() -> None:
    raw = {"payload": {"source": {"path": "src/a.ts"}, "destination": {"toPath": "src/b.ts"}}}
    args = bind("rename_file", raw)
    assert (args["from_path"], args["to_path"]) == ("src/a.ts", "src/b.ts")


def test_path_inside_json_string_args() -> None:
    raw = {"args": json.dumps({"path": "src/App.tsx"})}
    assert bind("read_file", raw)["path"] == "src/App.tsx"


def test_content_via_nested_input_code() -> None:
    raw = {"path": "src/a.ts", "input": {"code": "export {}"}}
    assert bind("write_file", raw)["content"] == "export {}"


def test_write_file_required_fields_satisfied_by_nested_aliases() -> None:
    raw = {"data": {"file": {"filePath": "src/a.ts"}, "payload": {"body": "x = 1"}}}
    args = bind("write_file", raw)
    assert (args["path"], args["content"]) == ("src/a.ts", "x = 1")


def test_write_file_required_fields_satisfied_by_truncated_json_value() -> None:
    raw = {"value": '{"path": "src/App.tsx", "content": "export const A = () => <div>hi'}
    args = bind("write_file", raw)
    assert args["path"] == "src/App.tsx"
    assert args["content"] == "export const A = () => <div>hi"


def test_patch_via_input_unified_diff() -> None:
    diff = "--- a/x.ts\n+++ b/x.ts\n@@ -1 +1 @@\n-a\n+b\n"
    assert bind("apply_patch", {"input": {"unifiedDiff": diff}})["patch"] == diff


def test_apply_patch_required_fields_satisfied_by_json_value() -> None:
    diff = "--- a/x.ts\n+++ b/x.ts\n@@ -1 +1 @@\n-a\n+b\n"
    args = bind("apply_patch", {"value": json.dumps({"patch": diff, "strip": 0})})
    assert args["patch"] == diff
    assert args["strip"] == 0


def test_read_file_range_required_fields_via_input_file_path() -> None:
    args = bind("read_file_range", {"input": {"filePath": "src/a.ts", "start_line": "3"}})
    assert (args["path"], args["start_line"]) == ("src/a.ts", 3)


def test_command_string_is_tokenised() -> None:
    assert parse_command("npm run build") == ["npm", "run", "build"]


def test_dict_command_is_rejected() -> None:
    with pytest.raises(ToolError, match="command must be an array of tokens or a shell-style"):
        parse_command({"cmd": "npm run build"})


# ---- parsing shapes --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        '{"path": "src/a.ts"}',
        '```json\n{"path": "src/a.ts"}\n```',
        json.dumps(json.dumps({"path": "src/a.ts"})),
        "path: src/a.ts",
        "path='src/a.ts', limit=3",
        '{"path": "src/a.ts", "lim',
    ],
)
def test_parse_text_shapes(text: str) -> None:
    assert parse_text(text)["path"] == "src/a.ts"


def test_parse_text_does_not_misread_prose_or_diffs() -> None:
    assert parse_text("--- a/x.ts\n+++ b/x.ts") is None
    assert parse_text("") is None


def test_defaults_clamps_and_coercions() -> None:
    args = bind(
        "read_file_range",
        '{"path": "a.ts", "context_before": 999, "max_bytes": 1, "with_line_numbers": "true"}',
    )
    assert args["context_before"] == 200
    assert args["max_bytes"] == 256
    assert args["with_line_numbers"] is True
    assert args["start_line"] is None and args["context_after"] == 0
    assert bind("apply_patch", {"patch": "x", "strip": 9})["strip"] == 3


def test_expected_hashes_top_level_or_under_preconditions() -> None:
    nested = {"patch": "x", "preconditions": {"expected_hashes": {"a.ts": "sha256:ab"}}}
    assert bind("apply_patch", nested)["expected_hashes"] == {"a.ts": "sha256:ab"}
    assert bind("apply_patch", {"patch": "x", "expected_hashes": {"b": "c"}})[
        "expected_hashes"
    ] == {"b": "c"}


def test_search_depth_is_limited_to_five() -> None:
    raw: dict[str, Any] = {"path": "deep.ts"}
    for _ in range(5):
        raw = {"input": raw}
    assert bind("read_file", raw)["path"] == "deep.ts"
    with pytest.raises(ToolError):
        bind("read_file", {"input": raw})


# ---- required-field validation ------------------------------------------------------------


async def test_missing_required_fields_envelope(toolpack: Toolpack, ctx: ToolContext) -> None:
    out = await toolpack.call(
        "coding_agent_rename_file", {"zeta": 1, "from_path": "   ", "alpha": 2}, ctx
    )
    assert out == {
        "error": "Missing required fields: from_path, to_path",
        "code": "TOOL_INPUT_VALIDATION_FAILED",
        "fields": ["from_path", "to_path"],
        "received_keys": ["alpha", "from_path", "zeta"],
    }


# ---- docs/design.md 8.7: identity comes from the server-side context only -----------------------


async def test_model_supplied_identity_arguments_are_ignored(
    toolpack: Toolpack, settings: Any, tmp_path: Path
) -> None:
    mine = Workspace(tmp_path / "mine")
    other = Workspace(tmp_path / "other")
    mine.materialise({"src/a.ts": "mine"})
    other.materialise({"src/a.ts": "other tenant's secret"})
    ctx = make_context(mine)
    hostile = {
        "path": "src/a.ts",
        "run_id": "00000000-0000-0000-0000-000000000001",
        "tenant_id": "00000000-0000-0000-0000-000000000002",
        "app_id": "00000000-0000-0000-0000-000000000003",
        "user_id": "00000000-0000-0000-0000-000000000004",
        "sandbox_id": other.sandbox_id,
        "workspace": str(other.root),
        "context": {"run_id": "x", "tenant_id": "y", "path": "../other/src/a.ts"},
    }
    out = await toolpack.call("coding_agent_read_file", hostile, ctx)
    assert out["content"] == "mine"
    assert out["sandbox_id"] == mine.sandbox_id
    # Only declared fields ever reach a handler.
    assert set(bind("read_file", hostile)) == {"path"}
    # A path hidden under an ignored key is not picked up either.
    only_context = {"context": {"path": "src/a.ts"}, "run_id": "x"}
    out = await toolpack.call("coding_agent_read_file", only_context, ctx)
    assert out["code"] == "TOOL_INPUT_VALIDATION_FAILED"
    assert out["received_keys"] == ["context", "run_id"]
