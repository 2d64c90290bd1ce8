"""The edit_file tool (runtime/tools/edit.py): one exact replacement, applied through the
apply_patch tool (same envelope, revision token and precondition), with clear errors when
the text is missing or ambiguous."""

from __future__ import annotations

from runtime.tools import ToolContext, Toolpack
from tests.unit import toolpack_fixtures as fx

ctx = fx.ctx
settings = fx.settings
toolpack = fx.toolpack
workspace = fx.workspace  # pytest fixtures used by name

APP = (
    'import type { ChatMessage } from "./types";\n\n'
    "export function App() {\n"
    "  return (\n"
    "    <header>\n"
    "      <h1>Chat</h1>\n"
    "    </header>\n"
    "  );\n"
    "}\n"
)


async def edit(tp: Toolpack, ctx: ToolContext, **args: object) -> dict:
    return await tp.call("coding_agent_edit_file", args, ctx)


async def test_replaces_the_one_occurrence_and_reports_the_diff(
    toolpack: Toolpack, ctx: ToolContext
) -> None:
    ctx.workspace.materialise({"src/App.tsx": APP})
    out = await edit(toolpack, ctx, path="src/App.tsx", old_text="<h1>Chat</h1>",
                     new_text="<h1>Runwright Chat</h1>")  # fmt: skip
    assert out["ok"] is True and out["code"] == "PATCH_APPLIED"
    assert out["applied_files"] == ["src/App.tsx"]
    assert out["revision_token"] == "sandbox-seq-2" == ctx.workspace.revision_token
    assert "-      <h1>Chat</h1>\n+      <h1>Runwright Chat</h1>\n" in out["diff"]
    assert "verification_plan" in out
    expected = APP.replace("<h1>Chat</h1>", "<h1>Runwright Chat</h1>")
    assert ctx.workspace.read_bytes("src/App.tsx").decode() == expected  # newline kept


async def test_aliases_a_small_model_uses_are_accepted(
    toolpack: Toolpack, ctx: ToolContext
) -> None:
    ctx.workspace.materialise({"src/App.tsx": APP})
    out = await edit(toolpack, ctx, file_path="src/App.tsx", old_string="<h1>Chat</h1>",
                     new_string="<h1>Hi</h1>")  # fmt: skip
    assert out["ok"] is True
    assert "<h1>Hi</h1>" in ctx.workspace.read_bytes("src/App.tsx").decode()


async def test_missing_and_ambiguous_text_change_nothing(
    toolpack: Toolpack, ctx: ToolContext
) -> None:
    ctx.workspace.materialise({"src/App.tsx": APP})
    out = await edit(toolpack, ctx, path="src/App.tsx", old_text="<h1>Gossip</h1>",
                     new_text="<h1>X</h1>")  # fmt: skip
    assert out["code"] == "EDIT_TEXT_NOT_FOUND" and out["field"] == "old_text"
    assert "copy the text exactly" in out["error"]
    out = await edit(toolpack, ctx, path="src/App.tsx", old_text="Chat", new_text="Talk")
    assert out["code"] == "EDIT_TEXT_NOT_UNIQUE"
    assert "occurs 2 times in src/App.tsx (lines 1, 6)" in out["error"]
    out = await edit(toolpack, ctx, path="src/missing.tsx", old_text="a", new_text="b")
    assert out["code"] == "TOOL_EXECUTION_FAILED" and "src/missing.tsx" in out["error"]
    out = await edit(toolpack, ctx, path="../outside.tsx", old_text="a", new_text="b")
    assert out["code"] == "BUILDER_PATCH_POLICY_VIOLATION"
    out = await edit(toolpack, ctx, path="src/App.tsx", old_text="<h1>Chat</h1>")
    assert out["code"] == "TOOL_INPUT_VALIDATION_FAILED" and out["fields"] == ["new_text"]
    assert ctx.workspace.read_bytes("src/App.tsx").decode() == APP
    assert ctx.workspace.revision_token == "sandbox-seq-1"


async def test_a_repeated_edit_succeeds_without_applying_twice(
    toolpack: Toolpack, ctx: ToolContext
) -> None:
    ctx.workspace.materialise({"src/App.tsx": APP})
    # new_text contains old_text: a second application would nest it.
    args = {"path": "src/App.tsx", "old_text": "<h1>Chat", "new_text": "<h1>Runwright</h1><h1>Chat"}
    first = await edit(toolpack, ctx, **args)
    assert first["ok"] is True and first["applied_files"] == ["src/App.tsx"]
    edited = ctx.workspace.read_bytes("src/App.tsx").decode()
    again = await edit(toolpack, ctx, **args)
    assert again["ok"] is True and again["code"] == "EDIT_ALREADY_APPLIED"
    assert again["applied_files"] == [] and again["diff"] == ""
    assert "nothing changed" in again["summary"]
    assert ctx.workspace.read_bytes("src/App.tsx").decode() == edited
    assert ctx.workspace.revision_token == first["revision_token"]  # nothing written


async def test_an_edit_whose_new_text_is_part_of_the_old_one_is_applied(
    toolpack: Toolpack, ctx: ToolContext
) -> None:
    """Removing part of a text (new_text inside old_text) is an edit to make, not one made
    before: the file has new_text only as part of old_text. Before, the repeat check
    removed every new_text from the file first, so old_text no longer matched and the call
    answered EDIT_ALREADY_APPLIED with the file unchanged."""
    ctx.workspace.materialise({"src/App.tsx": APP})
    args = {"path": "src/App.tsx", "old_text": "    <header>\n      <h1>Chat</h1>\n",
            "new_text": "    <header>\n"}  # fmt: skip
    removed = APP.replace("      <h1>Chat</h1>\n", "")
    out = await edit(toolpack, ctx, **args)
    assert out["ok"] is True and out["code"] == "PATCH_APPLIED", out
    assert out["applied_files"] == ["src/App.tsx"]
    assert ctx.workspace.read_bytes("src/App.tsx").decode() == removed
    # Now it is made: the same call again changes nothing.
    again = await edit(toolpack, ctx, **args)
    assert again["ok"] is True and again["code"] == "EDIT_ALREADY_APPLIED"
    assert ctx.workspace.read_bytes("src/App.tsx").decode() == removed


async def test_old_text_next_to_a_copy_of_new_text_is_still_replaced(
    toolpack: Toolpack, ctx: ToolContext
) -> None:
    """new_text already appearing elsewhere in the file does not make an edit "done" while
    old_text still occurs outside every copy of it."""
    source = "const a = 1;\nconst b = 2;\n"
    ctx.workspace.materialise({"src/a.ts": source})
    out = await edit(toolpack, ctx, path="src/a.ts", old_text="const b = 2;\n",
                     new_text="2;\n")  # fmt: skip
    assert out["ok"] is True and out["code"] == "PATCH_APPLIED", out
    assert ctx.workspace.read_bytes("src/a.ts").decode() == "const a = 1;\n2;\n"


async def test_an_empty_new_text_removes_the_old_text(toolpack: Toolpack, ctx: ToolContext) -> None:
    """``new_text: ""`` deletes ``old_text`` (before, an empty string counted as a missing
    field: TOOL_INPUT_VALIDATION_FAILED, so a removal could not be asked for directly)."""
    ctx.workspace.materialise({"src/App.tsx": APP})
    args = {"path": "src/App.tsx", "old_text": "      <h1>Chat</h1>\n", "new_text": ""}
    out = await edit(toolpack, ctx, **args)
    assert out["ok"] is True and out["code"] == "PATCH_APPLIED", out
    removed = APP.replace("      <h1>Chat</h1>\n", "")
    assert ctx.workspace.read_bytes("src/App.tsx").decode() == removed
    again = await edit(toolpack, ctx, **args)
    assert again["ok"] is True and again["code"] == "EDIT_ALREADY_APPLIED"
    assert ctx.workspace.read_bytes("src/App.tsx").decode() == removed
    # A blank old_text is still a missing field: it names nothing to replace.
    blank = await edit(toolpack, ctx, path="src/App.tsx", old_text="  ", new_text="x")
    assert blank["code"] == "TOOL_INPUT_VALIDATION_FAILED" and blank["fields"] == ["old_text"]
    spec = next(
        t for t in toolpack.openai_tools() if t["function"]["name"] == "coding_agent_edit_file"
    )
    assert spec["function"]["parameters"]["properties"]["new_text"]["type"] == "string"
