"""``apply_patch``: check, parse, place, then write everything or nothing (contract 7.4)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from runtime.patching import codes
from runtime.patching.failures import policy_failure, precondition_failure
from runtime.patching.model import Failure, FileOp
from runtime.patching.ops import run_op
from runtime.patching.parse_begin_patch import parse_begin_patch
from runtime.patching.parse_unified import parse_unified
from runtime.patching.result import build_result
from runtime.patching.targets import MAX_STRIP, resolve_target
from runtime.patching.textfile import TextFile
from runtime.patching.workspace import Workspace
from runtime.paths import PathPolicyError, normalize_path, resolve_inside
from runtime.textlines import split_lines

DEFAULT_MAX_PATCH_BYTES = 240_000
NO_HUNKS = "No unified diff hunks were detected"


def patch_size(patch: str) -> int:
    """The size a patch is limited by: its UTF-8 bytes (lone surrogates count as 3)."""
    return len(patch.encode("utf-8", "surrogatepass"))


def size_refusal(patch: str, max_patch_bytes: int, *, what: str = "Patch") -> str | None:
    """Why ``patch`` is refused for its size (``PATCH_TOO_LARGE``), or None when it fits.

    The one size rule of what a tool writes (``RUNWRIGHT_MAX_PATCH_BYTES``):
    :func:`apply_patch` applies it to the patch first, write_file to its content and
    edit_file to its texts (``what`` names the one measured, e.g. ``content``;
    :mod:`runtime.tools.files`, :mod:`runtime.tools.edit`); an approver's edited arguments
    are checked by the same tool rules at decision time
    (:func:`runtime.approvals.check_arguments`)."""
    size = patch_size(patch)
    if size > max_patch_bytes:
        return f"{what} is {size} bytes; the limit is {max_patch_bytes} bytes"
    return None


def apply_patch(
    root: Path,
    patch: str,
    *,
    strip: int = 1,
    atomic: bool = True,
    allow_create: bool = True,
    allow_delete: bool = True,
    expected_hashes: Mapping[str, str] | None = None,
    max_patch_bytes: int = DEFAULT_MAX_PATCH_BYTES,
) -> dict[str, Any]:
    """Apply a unified diff or a ``*** Begin Patch`` envelope to the workspace at ``root``.

    Steps, each of which can end the call with its code (contract 7.4):

    1. size over ``max_patch_bytes`` (UTF-8 bytes) -> ``PATCH_TOO_LARGE``;
    2. ``expected_hashes`` (path -> sha256 hex, optional ``sha256:`` prefix; a missing file
       never matches) -> ``PATCH_PRECONDITION_FAILED``, before parsing;
    3. a ``GIT binary patch`` or ``Binary files `` line -> ``PATCH_BINARY_NOT_SUPPORTED``;
    4. parse as unified diff, else as Begin Patch, else ``PATCH_PARSE_FAILED``;
    5. every path through the workspace policy (ours, docs/design.md 8.9) -> any rejection is
       ``PATCH_POLICY_VIOLATION`` and nothing is written, whatever ``atomic`` says;
    6. every file section computed in memory, in patch order, each seeing the earlier ones;
    7. with failures: ``atomic=True`` -> ``PATCH_HUNK_MISMATCH``, nothing written;
       ``atomic=False`` -> sections without failures are written (each section is all or
       nothing) and the code is ``PATCH_PARTIAL_APPLY`` (``PATCH_HUNK_MISMATCH`` if no
       section could be applied); without failures -> ``PATCH_APPLIED``.

    Writes are atomic per file and rolled back across files if one fails.

    Args:
        root: the workspace directory.
        patch: the patch text.
        strip: 0..3; leading components removed from git-prefixed (``a/``, ``b/``) paths
            only, see :mod:`runtime.patching.targets`.
        atomic: all-or-nothing across files.
        allow_create: permit new files (including rename destinations).
        allow_delete: permit deletions (including rename sources).
        expected_hashes: optional preconditions, keys are workspace paths.
        max_patch_bytes: size limit of ``patch`` in bytes.

    Returns:
        The runtime result, see :func:`runtime.patching.result.build_result`.

    Raises:
        ValueError: ``strip`` outside 0..3.
        OSError: writing failed (files already written were restored).
    """
    started = time.perf_counter()
    if not 0 <= strip <= MAX_STRIP:
        raise ValueError(f"strip must be between 0 and {MAX_STRIP}, got {strip}")
    patch_bytes = patch_size(patch)

    def finish(code: str, summary: str, **extra: Any) -> dict[str, Any]:
        return build_result(code, summary, patch_bytes=patch_bytes, started=started, **extra)

    too_large = size_refusal(patch, max_patch_bytes)
    if too_large is not None:
        return finish(codes.PATCH_TOO_LARGE, too_large)
    if expected_hashes:
        try:
            stale = check_preconditions(root, expected_hashes)
        except _Rejected as rejection:
            return finish(
                codes.PATCH_POLICY_VIOLATION,
                f"Patch path rejected by policy: {rejection.path}: {rejection.message}",
                failures=[policy_failure(rejection.path)],
            )
        if stale:
            return finish(
                codes.PATCH_PRECONDITION_FAILED,
                f"{len(stale)} precondition(s) failed",
                failures=stale,
            )
    if is_binary_patch(patch):
        return finish(codes.PATCH_BINARY_NOT_SUPPORTED, "Binary patches are not supported")
    ops = parse_patch(patch, strip)
    if not ops:
        return finish(codes.PATCH_PARSE_FAILED, NO_HUNKS)

    targets: list[tuple[str, str | None]] = []
    rejected: list[Failure] = []
    messages: list[str] = []
    for op in ops:
        try:
            targets.append(_resolve(root, op))
        except _Rejected as rejection:
            rejected.append(policy_failure(rejection.path))
            messages.append(f"{rejection.path or '(empty)'}: {rejection.message}")
    if rejected:
        return finish(
            codes.PATCH_POLICY_VIOLATION,
            "Patch path rejected by policy: " + "; ".join(messages),
            failures=rejected,
        )

    workspace = Workspace(root)
    failures: list[Failure] = []
    offsets: list[dict[str, Any]] = []
    for op, (source, destination) in zip(ops, targets, strict=True):
        outcome = run_op(
            op,
            source,
            destination,
            workspace,
            allow_create=allow_create,
            allow_delete=allow_delete,
        )
        if outcome.failures:
            failures.extend(outcome.failures)
            continue
        workspace.stage(outcome.changes)
        offsets.extend(outcome.offsets)

    changes = workspace.pending()
    if failures and (atomic or not changes):
        return finish(
            codes.PATCH_HUNK_MISMATCH,
            f"Patch not applied: {len(failures)} failure(s); no files were changed",
            failures=failures,
        )
    workspace.commit(changes)
    applied = sorted(changes)
    offsets = [item for item in offsets if item["path"] in changes]
    moved = f"; {len(offsets)} hunk(s) applied at an offset" if offsets else ""
    if failures:
        return finish(
            codes.PATCH_PARTIAL_APPLY,
            f"Patch partially applied: {len(applied)} file(s) changed, "
            f"{len(failures)} failure(s){moved}",
            failures=failures,
            applied_files=applied,
            hunk_offsets=offsets,
        )
    return finish(
        codes.PATCH_APPLIED,
        f"Patch applied: {len(applied)} file(s) changed{moved}",
        applied_files=applied,
        hunk_offsets=offsets,
    )


def is_binary_patch(patch: str) -> bool:
    """A git binary hunk or a ``Binary files ... differ`` line (contract 7.4).

    Only whole lines count, so a source line mentioning "Binary files" is not a binary patch.
    """
    return any(
        line == "GIT binary patch" or line.startswith("Binary files ")
        for line in (raw.rstrip("\r") for raw in split_lines(patch))
    )


def check_preconditions(root: Path, expected: Mapping[str, str]) -> list[Failure]:
    """Compare files under ``root`` with expected sha256 hex digests; one failure per
    mismatch (:func:`stale_preconditions`).

    Raises:
        _Rejected: a key breaks the path policy.
    """

    def read(relative: str) -> bytes | None:
        target = resolve_inside(root, relative)
        return target.read_bytes() if target.is_file() else None

    return stale_preconditions(expected, read)


def stale_preconditions(
    expected: Mapping[str, str], read: Callable[[str], bytes | None]
) -> list[Failure]:
    """The ``expected_hashes`` rule (contract 7.3): each key, a workspace path, must name
    a file whose sha256 hex digest is its value (optional ``sha256:`` prefix, any case);
    one failure per mismatch or missing file. ``read(relative)``: the file's bytes, None
    when it does not exist; the apply reads the workspace, an approval check a paused
    run's stored files.

    Raises:
        _Rejected: a key breaks the path policy (``read`` may raise PathPolicyError too).
    """
    failures: list[Failure] = []
    for raw_path, raw_digest in expected.items():
        try:
            relative = normalize_path(raw_path, field="expected_hashes", check_extension=False)
            data = read(relative)
        except PathPolicyError as error:
            raise _Rejected(str(raw_path), error.message) from error
        wanted = str(raw_digest).strip().lower().removeprefix("sha256:")
        if data is None or hashlib.sha256(data).hexdigest() != wanted:
            lines = TextFile.from_bytes(data).lines if data is not None else []
            failures.append(precondition_failure(relative, lines))
    return failures


def parse_patch(patch: str, strip: int) -> list[FileOp]:
    """Unified diff first (contract 7.4), Begin Patch when the unified reading changes
    nothing; a unified reading made only of parse issues is kept for its failure items."""
    unified = parse_unified(patch, strip)
    if any(op.hunks or op.kind != "update" or op.move_to for op in unified):
        return unified
    return parse_begin_patch(patch, strip) or unified


class _Rejected(Exception):
    """A patch path the policy refused."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


def _resolve(root: Path, op: FileOp) -> tuple[str, str | None]:
    """Policy-checked ``(source, destination)`` of an operation."""
    if op.path == "" and op.issues:
        return "", None  # stray Begin Patch lines: reported as the op's issue, no file
    removal = op.kind == "delete" or op.move_to is not None
    try:
        source = resolve_target(root, op.path, removal=removal)[0]
    except PathPolicyError as error:
        raise _Rejected(op.path, error.message) from error
    if op.move_to is None:
        return source, None
    try:
        return source, resolve_target(root, op.move_to)[0]
    except PathPolicyError as error:
        raise _Rejected(op.move_to, error.message) from error
