"""The edit_file tool: replace one exact piece of text in a file (issue 13 item 4; an
addition to contract 7.3's catalogue, docs/local-model.md).

A unified diff or a ``*** Begin Patch`` body asks a model to reproduce line numbers,
indentation and context lines exactly; a small model fails at that (it echoes the format
instead, docs/local-model.md) but fills ``{path, old_text, new_text}`` reliably. This tool
only turns such a request into a unified diff (:func:`runtime.patching.make_unified_diff`)
of the file as read, with the file's SHA-256 as the precondition, and hands it to the
apply_patch tool: writing, path policy, the revision token, the envelope and the optional
verification runs stay in one place. The success output is apply_patch's, plus the
``diff`` that was applied.
"""

from __future__ import annotations

import asyncio
import bisect
import hashlib
from typing import Any

from runtime.patching import codes as patch_codes
from runtime.patching import make_unified_diff
from runtime.patching.apply import size_refusal
from runtime.settings import Settings
from runtime.tools import files, patch
from runtime.tools.context import ToolContext
from runtime.tools.errors import ToolError

__all__ = ["ALREADY_APPLIED", "NOT_FOUND", "NOT_UNIQUE", "check_edit_arguments", "edit_file"]

ALREADY_APPLIED = "EDIT_ALREADY_APPLIED"
NOT_FOUND = "EDIT_TEXT_NOT_FOUND"
NOT_UNIQUE = "EDIT_TEXT_NOT_UNIQUE"
_LINES_NAMED = 10  # occurrences listed in a NOT_UNIQUE error


def check_edit_arguments(args: dict[str, Any], settings: Settings) -> None:
    """Argument rules of edit_file, applied before it reads the file and to an approver's
    edited arguments: ``path`` passes the full path policy, and neither ``old_text`` nor
    ``new_text`` exceeds the patch size limit (``max_patch_bytes``,
    :func:`runtime.patching.apply.size_refusal`): the diff the tool makes holds each of
    them whole, so apply_patch would refuse it.

    Raises:
        ToolError: ``PATCH_TOO_LARGE`` with the field at fault.
        PathPolicyError: ``path`` breaks the policy.
    """
    files.check_path_arguments(args, settings)
    for name in ("old_text", "new_text"):
        too_large = size_refusal(str(args[name]), settings.max_patch_bytes, what=name)
        if too_large is not None:
            raise ToolError(too_large, code=patch_codes.PATCH_TOO_LARGE, field=name)


async def edit_file(args: dict[str, Any], ctx: ToolContext, settings: Settings) -> dict[str, Any]:
    """Replace the one occurrence of ``old_text`` in ``path`` with ``new_text``.

    Args:
        args: ``path``, ``old_text`` (exact, case and whitespace included; must occur once),
            ``new_text`` (empty: ``old_text`` is removed).

    Returns:
        apply_patch's envelope for the diff (success: ``ok``, ``applied_files``,
        ``revision_token``, ``verification_plan`` ...) plus ``diff``; or, when the file
        already has ``new_text`` and no ``old_text`` outside it (the edit was made before,
        also when ``old_text == new_text``), ``ok`` with code ``EDIT_ALREADY_APPLIED``, no
        applied files and an empty ``diff``, writing nothing.

    Raises:
        ToolError: ``EDIT_TEXT_NOT_FOUND`` (``old_text`` is not in the file),
            ``EDIT_TEXT_NOT_UNIQUE`` (it occurs more than once: the message names the
            lines), ``PATCH_TOO_LARGE`` (:func:`check_edit_arguments`), or a path-policy /
            missing-file error from the read.
    """
    check_edit_arguments(args, settings)
    ws = ctx.workspace
    rel, data, text = await asyncio.to_thread(files.read_text, ws, args["path"])
    old, new = args["old_text"], args["new_text"]
    if _already_applied(text, old, new):
        # Already done (a repeated call, a retried request): succeed without writing, so a
        # repeat neither fails confusingly nor applies twice when new_text contains old_text.
        return {"ok": True, "code": ALREADY_APPLIED, "applied_files": [],
                "summary": f"{rel} already has new_text in place of old_text; nothing changed",
                "revision_token": ws.revision_token, "diff": ""}  # fmt: skip
    count = text.count(old)
    if count == 0:
        raise ToolError(
            f"old_text was not found in {rel}; read the file with "
            "coding_agent_read_file_range and copy the text exactly (spaces included)",
            code=NOT_FOUND,
            field="old_text",
        )
    if count > 1:
        lines = _occurrence_lines(text, old)
        named = ", ".join(str(n) for n in lines[:_LINES_NAMED])
        raise ToolError(
            f"old_text occurs {count} times in {rel} (lines {named}); include more of the "
            "surrounding text so that it occurs once",
            code=NOT_UNIQUE,
            field="old_text",
        )
    diff = make_unified_diff(rel, text, text.replace(old, new, 1))
    output = await patch.apply_patch(
        {
            "patch": diff,
            "strip": 1,
            "atomic": True,
            "allow_create": False,
            "allow_delete": False,
            # The file as it was read: a concurrent change fails the edit, never loses work.
            "expected_hashes": {rel: hashlib.sha256(data).hexdigest()},
        },
        ctx,
        settings,
    )
    if isinstance(output, dict) and not output.get("error"):
        output["diff"] = diff
    return output


def _already_applied(text: str, old: str, new: str) -> bool:
    """Whether the edit is in the file already: ``new`` occurs, and every occurrence of
    ``old`` lies inside an occurrence of ``new`` (none at all, or only within the text
    that replaced it when ``new`` contains ``old``; ``old == new`` counts as made). An
    ``old`` that contains ``new`` (a removal) still occurring is an edit to make."""
    if not new:  # a removal: made once old no longer occurs
        return old not in text
    if new not in text:
        return False
    new_starts = _starts(text, new)
    for start in _starts(text, old):
        # An occurrence of new covering [start, start + len(old)) starts in this window.
        lowest = start + len(old) - len(new)
        at = bisect.bisect_left(new_starts, lowest)
        if at == len(new_starts) or new_starts[at] > start:
            return False
    return True


def _starts(text: str, needle: str) -> list[int]:
    """Start offsets of every occurrence of ``needle`` (overlapping ones too), ascending."""
    found, at = [], text.find(needle)
    while at != -1:
        found.append(at)
        at = text.find(needle, at + 1)
    return found


def _occurrence_lines(text: str, needle: str) -> list[int]:
    """1-based line numbers where each occurrence of ``needle`` starts."""
    lines, start = [], 0
    while (at := text.find(needle, start)) != -1:
        lines.append(text.count("\n", 0, at) + 1)
        start = at + 1
    return lines
