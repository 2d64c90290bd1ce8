"""Work out what one file section of a patch does to the workspace, in memory.

Rules per operation (contract 7.4 plus docs/design.md 8.9):

- create: refused by ``allow_create=False`` (``create_not_allowed``) or when the name is
  taken (``target_exists``); a unified create is its hunks applied to an empty file.
- delete: refused by ``allow_delete=False`` (``delete_not_allowed``); a missing file is
  ``file_missing`` for a unified diff and silently nothing for Begin Patch; a unified
  delete's hunks must match and remove everything (else ``deletion_mismatch``).
- update: the file must exist (``file_missing``), except that an update made only of
  ``@@ -0,0 ...`` additions to a missing file is taken as a create; a rename (``rename
  to`` / ``*** Move to:``) creates one file and deletes another, so it needs both
  ``allow_create`` and ``allow_delete``, and its destination must be free
  (``target_exists``).

Final newline (ours: preserved): a patched file ends with a newline exactly when the patch
says so with ``\\ No newline at end of file`` markers, and otherwise keeps what the file
had (a new or empty file gets one).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from runtime.patching import codes
from runtime.patching.failures import file_failure, hunk_failure
from runtime.patching.locate import Spliced, apply_hunks, apply_segments
from runtime.patching.model import Failure, FileOp, Hunk, ParseIssue
from runtime.patching.textfile import TextFile, mostly_crlf
from runtime.patching.workspace import Workspace


@dataclass(slots=True)
class OpOutcome:
    """Staged changes of one operation (relative path -> bytes, None deletes) or failures."""

    changes: dict[str, bytes | None] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    offsets: list[dict[str, Any]] = field(default_factory=list)


def run_op(
    op: FileOp,
    source: str,
    destination: str | None,
    workspace: Workspace,
    *,
    allow_create: bool,
    allow_delete: bool,
) -> OpOutcome:
    """Compute ``op``'s effect on ``workspace`` without staging it.

    Args:
        op: the parsed operation.
        source: ``op.path`` after the path policy (the file created, for a create).
        destination: ``op.move_to`` after the path policy, or None.
        workspace: current contents, including earlier operations of the same patch.
        allow_create: the caller's ``allow_create`` flag.
        allow_delete: the caller's ``allow_delete`` flag.
    """
    current = workspace.read(source)
    lines = TextFile.from_bytes(current).lines if current is not None else []
    if op.issues:
        return OpOutcome(failures=[_issue_failure(source, issue, lines) for issue in op.issues])
    if op.kind == "create":
        return _create(op, source, workspace, allow_create=allow_create)
    if op.kind == "delete":
        return _delete(op, source, current, allow_delete=allow_delete)
    if current is None:
        if destination is None and _only_adds_at_start(op):
            # `--- a/x` + `@@ -0,0 +1,n @@` for a file that does not exist yet: what models
            # write for a new file; it cannot mean anything but a create.
            return _create(op, source, workspace, allow_create=allow_create)
        return OpOutcome(failures=[file_failure(source, codes.FILE_MISSING)])
    renamed = destination is not None and destination != source
    if renamed and not allow_create:
        return OpOutcome(failures=[file_failure(source, codes.CREATE_NOT_ALLOWED, lines)])
    if renamed and not allow_delete:
        return OpOutcome(failures=[file_failure(source, codes.DELETE_NOT_ALLOWED, lines)])
    if renamed and destination is not None and workspace.occupied(destination):
        return OpOutcome(failures=[file_failure(destination, codes.TARGET_EXISTS)])
    text = TextFile.from_bytes(current)
    new_text, outcome = _patched(op, source, text)
    if outcome.failures:
        return outcome
    if renamed and destination is not None:
        outcome.changes = {destination: new_text.to_bytes(), source: None}
        for item in outcome.offsets:
            item["path"] = destination
    else:
        outcome.changes = {source: new_text.to_bytes()}
    return outcome


def _create(op: FileOp, path: str, workspace: Workspace, *, allow_create: bool) -> OpOutcome:
    if not allow_create:
        return OpOutcome(failures=[file_failure(path, codes.CREATE_NOT_ALLOWED)])
    if workspace.occupied(path):
        existing = workspace.read(path)
        lines = TextFile.from_bytes(existing).lines if existing is not None else []
        return OpOutcome(failures=[file_failure(path, codes.TARGET_EXISTS, lines)])
    if op.add_lines is not None:
        return OpOutcome(changes={path: TextFile(list(op.add_lines), True).to_bytes()})
    new_text, outcome = _patched(op, path, TextFile([], False))
    if not outcome.failures:
        outcome.changes = {path: new_text.to_bytes()}
    return outcome


def _delete(op: FileOp, path: str, current: bytes | None, *, allow_delete: bool) -> OpOutcome:
    if not allow_delete:
        return OpOutcome(failures=[file_failure(path, codes.DELETE_NOT_ALLOWED)])
    if current is None:
        if op.missing_ok:
            return OpOutcome()
        return OpOutcome(failures=[file_failure(path, codes.FILE_MISSING)])
    if op.hunks:
        text = TextFile.from_bytes(current)
        remaining, outcome = _patched(op, path, text)
        if outcome.failures:
            return outcome
        if remaining.lines:
            return OpOutcome(failures=[file_failure(path, codes.DELETION_MISMATCH, text.lines)])
    return OpOutcome(changes={path: None})


def _patched(op: FileOp, path: str, text: TextFile) -> tuple[TextFile, OpOutcome]:
    """Apply ``op``'s hunks or segments to ``text``."""
    crlf = text.crlf if text.lines else _patch_is_crlf(op)
    spliced: Spliced
    if op.segments:
        spliced = apply_segments(path, text.lines, op.segments, crlf=crlf)
        final_newline = text.final_newline or not text.lines
    else:
        spliced = apply_hunks(path, text.lines, op.hunks, crlf=crlf)
        final_newline = _final_newline(text, op.hunks)
    offsets = [
        {
            "path": path,
            "hunk_index": moved.hunk_index,
            "expected_start_line": moved.expected_start_line,
            "applied_start_line": moved.applied_start_line,
            "offset": moved.offset,
        }
        for moved in spliced.moved
    ]
    outcome = OpOutcome(failures=spliced.failures, offsets=offsets)
    return TextFile(spliced.lines, final_newline), outcome


def _final_newline(text: TextFile, hunks: tuple[Hunk, ...]) -> bool:
    if any(hunk.new_lacks_newline for hunk in hunks):
        return False
    if any(hunk.old_lacks_newline for hunk in hunks):
        return True  # the old side lacked it and the new side does not: the patch adds it
    return text.final_newline or not text.lines


def _only_adds_at_start(op: FileOp) -> bool:
    return bool(op.hunks) and all(h.old_start == 0 and not h.old_side for h in op.hunks)


def _patch_is_crlf(op: FileOp) -> bool:
    """For a new or empty file: do the patch's added lines use CRLF?"""
    added = [line.text for hunk in op.hunks for line in hunk.lines if line.kind == "+"]
    added += [line.text for seg in op.segments for line in seg.lines if line.kind == "+"]
    return mostly_crlf(added)


def _issue_failure(path: str, issue: ParseIssue, lines: list[str]) -> Failure:
    if issue.hunk_index > 0:
        return hunk_failure(path, issue.hunk_index, issue.line, 1, issue.reason, lines)
    return file_failure(path, issue.reason, lines)
