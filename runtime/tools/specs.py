"""The coding toolpack's catalogue: every tool's name, timeout, inputs and handler
(contract 7.3), and its OpenAI function schema."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from runtime.settings import Settings
from runtime.tools import checkpoints, commands, edit, files, index, patch
from runtime.tools.arguments import (
    CONTENT_ALIASES,
    FROM_ALIASES,
    NEW_TEXT_ALIASES,
    OLD_TEXT_ALIASES,
    PATCH_ALIASES,
    PATH_ALIASES,
    TO_ALIASES,
    Field,
    bind_arguments,
)
from runtime.tools.context import ToolContext

Handler = Callable[[dict[str, Any], ToolContext, Settings], Awaitable[dict[str, Any]]]
#: A tool's argument rules on its bound arguments (no I/O): raises the tool's error.
Check = Callable[[dict[str, Any], Settings], None]
PREFIX = "coding_agent_"


@dataclass(frozen=True)
class ToolSpec:
    """One tool: ``slug`` (e.g. ``read_file``), timeout in seconds, inputs, handler, and
    ``check``: the rules its arguments must pass that need no workspace (path policy,
    command allowlist, size limits), the same functions the tool applies when it runs."""

    slug: str
    timeout: float
    description: str
    fields: tuple[Field, ...]
    handler: Handler
    check: Check | None = None

    def checked_arguments(self, raw: object, settings: Settings) -> dict[str, Any]:
        """Bind ``raw`` arguments (:func:`runtime.tools.arguments.bind_arguments`) and
        apply :attr:`check`: what an approver's edited arguments must pass at decision
        time (:func:`runtime.approvals.check_arguments`). The tool checks again when it
        runs (symlinks, existing files, the workspace's state).

        Raises:
            ToolError: ``TOOL_INPUT_VALIDATION_FAILED`` or the rule's code, with its field.
            PathPolicyError: a path breaks the policy.
        """
        args = bind_arguments(self.fields, raw)
        if self.check is not None:
            self.check(args, settings)
        return args

    @property
    def name(self) -> str:
        """The function name the model calls, ``coding_agent_<slug>``."""
        return PREFIX + self.slug

    def openai_tool(self) -> dict[str, Any]:
        """The chat-completions ``tools`` entry: a function with JSON Schema parameters."""
        properties = {f.name: _schema(f) for f in self.fields}
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": {
                    "type": "object",
                    "properties": properties,
                    "required": [f.name for f in self.fields if f.required],
                },
            },
        }


_JSON_TYPES = {"str": "string", "text": "string", "int": "integer", "bool": "boolean"}


def _schema(field: Field) -> dict[str, Any]:
    if field.kind == "command":
        schema: dict[str, Any] = {
            "anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "string"}]
        }
    elif field.kind == "object":
        schema = {"type": "object", "additionalProperties": {"type": "string"}}
    else:
        schema = {"type": _JSON_TYPES[field.kind]}
    if field.minimum is not None:
        schema["minimum"] = field.minimum
    if field.maximum is not None:
        schema["maximum"] = field.maximum
    if field.default is not None:
        schema["default"] = field.default
    if field.description:
        schema["description"] = field.description
    return schema


def _path(required: bool = True) -> Field:
    return Field(
        "path", aliases=PATH_ALIASES, required=required,
        description="Workspace-relative file path, e.g. src/App.tsx",
    )  # fmt: skip


def _int(name: str, default: int | None, lo: int, hi: int | None, text: str) -> Field:
    return Field(name, "int", default=default, minimum=lo, maximum=hi, description=text)


_QUERY = Field("query", aliases=("q", "search", "pattern", "term", "keyword"), required=True,
               description="Case-insensitive text to look for")  # fmt: skip
_COMMAND = Field("command", "command", aliases=("cmd", "commands"),
                 description="Allowlisted command as tokens or a shell-style string")  # fmt: skip

TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec("list_files", 15, "List workspace file paths.",
             (_int("limit", 500, 1, 10000, "Maximum paths returned"),), files.list_files),
    ToolSpec("read_file", 20, "Read a whole file.", (_path(),), files.read_file,
             files.check_path_arguments),
    ToolSpec(
        "read_file_range", 20,
        "Read a line range of a file (prefer this over read_file for large files).",
        (
            _path(),
            _int("start_line", None, 1, None, "First line (1-based, default 1)"),
            _int("end_line", None, 1, None, "Last line (default start_line)"),
            _int("context_before", 0, 0, 200, "Extra lines before the range"),
            _int("context_after", 0, 0, 200, "Extra lines after the range"),
            _int("max_bytes", 12000, 256, 50000, "Content byte cap"),
            Field("with_line_numbers", "bool", default=False,
                  description="Render lines as 'N: text'"),
        ),
        files.read_file_range,
        files.check_path_arguments,
    ),
    ToolSpec(
        "workspace_index", 30, "File metadata and symbol outlines, ranked by an optional query.",
        (
            _int("limit", 300, 1, 2000, "Maximum files returned"),
            Field("query", aliases=("q", "search"), description="Optional ranking query"),
            _int("max_symbols_per_file", 16, 1, 64, "Symbols listed per file"),
        ),
        index.workspace_index,
    ),
    ToolSpec(
        "collect_context", 30, "Numbered code snippets around matches of a query, in a budget.",
        (
            _QUERY,
            _int("max_snippets", 10, 1, 40, "Maximum snippets"),
            _int("max_total_bytes", 12000, 512, 80000, "Total content byte budget"),
            _int("context_before", 6, 0, 60, "Lines before each match"),
            _int("context_after", 6, 0, 60, "Lines after each match"),
        ),
        index.collect_context,
    ),
    ToolSpec("search_code", 20, "Case-insensitive substring search over file lines.",
             (_QUERY, _int("max_results", 30, 1, 200, "Maximum matches")), index.search_code),
    ToolSpec(
        "write_file", 25, "Deprecated and usually disabled: use coding_agent_apply_patch.",
        (_path(), Field("content", aliases=CONTENT_ALIASES, required=True,
                        description="Full new file content")),
        files.write_file,
        files.check_write_arguments,
    ),
    ToolSpec(
        "apply_patch", 45, "Apply a unified diff or *** Begin Patch edit to the workspace.",
        (
            Field("patch", aliases=PATCH_ALIASES, required=True, description="The patch text"),
            _int("strip", 1, 0, 3, "Leading path components to strip (a/, b/)"),
            Field("atomic", "bool", default=True, description="All files or none"),
            Field("allow_create", "bool", default=True, description="Allow new files"),
            Field("allow_delete", "bool", default=True, description="Allow deletions"),
            Field("expected_hashes", "object", aliases=("expectedHashes",),
                  description="path -> sha256 (optionally 'sha256:'-prefixed) preconditions"),
        ),
        patch.apply_patch,
        patch.check_patch_arguments,
    ),
    ToolSpec(
        "edit_file", 45,
        "Replace one exact piece of text in a file (old_text must occur exactly once).",
        (
            _path(),
            Field("old_text", aliases=OLD_TEXT_ALIASES, required=True,
                  description="The exact text to replace, spaces included"),
            Field("new_text", "text", aliases=NEW_TEXT_ALIASES, required=True,
                  description="The text to put in its place (empty: remove old_text)"),
        ),
        edit.edit_file,
        edit.check_edit_arguments,
    ),
    ToolSpec(
        "rename_file", 25, "Rename or move a file.",
        (
            Field("from_path", aliases=FROM_ALIASES, inner=PATH_ALIASES, required=True,
                  description="Existing file path"),
            Field("to_path", aliases=TO_ALIASES, inner=PATH_ALIASES, required=True,
                  description="New file path (must not exist)"),
        ),
        files.rename_file,
        files.check_rename_arguments,
    ),
    ToolSpec("delete_file", 20, "Delete a file (a missing file is not an error).",
             (_path(),), files.delete_file, files.check_delete_arguments),
    ToolSpec("snapshot_files", 30, "All text files with their content.", (),
             files.snapshot_files),
    ToolSpec("run_targeted_tests", 300, "Run an allowlisted test/lint/typecheck command.",
             (_COMMAND,), commands.run_targeted_tests, commands.check_tests_arguments),
    ToolSpec("build_worker_precheck", 360, "Run the production build (npm run build).", (),
             commands.build_worker_precheck),
    ToolSpec(
        "create_checkpoint", 60, "Save the workspace as a checkpoint revision.",
        (Field("entry_file", aliases=("entryFile", "entry"), description="App entry file"),),
        checkpoints.create_checkpoint,
        checkpoints.check_create_arguments,
    ),
    ToolSpec(
        "restore_checkpoint", 60, "Restore the workspace from a checkpoint revision.",
        (Field("checkpoint_revision_id", aliases=("checkpoint_id", "checkpointId",
               "checkpointRevisionId", "revision_id"), required=True,
               description="Checkpoint revision id"),),
        checkpoints.restore_checkpoint,
        checkpoints.check_restore_arguments,
    ),
)  # fmt: skip


_BY_NAME: dict[str, ToolSpec] = {
    **{spec.slug: spec for spec in TOOLS},
    **{spec.name: spec for spec in TOOLS},
}


def spec_for(name: str) -> ToolSpec | None:
    """The tool called ``name`` (``coding_agent_<slug>`` or the bare slug), or None."""
    return _BY_NAME.get(name)
