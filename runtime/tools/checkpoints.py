"""create_checkpoint / restore_checkpoint (contract 7.3), delegated to the context's
:class:`CheckpointHost`; the toolpack itself never touches storage."""

from __future__ import annotations

import uuid
from typing import Any

from runtime.paths import normalize_path
from runtime.settings import Settings
from runtime.tools.context import CheckpointHost, ToolContext
from runtime.tools.errors import VALIDATION_FAILED, ToolError

CHECKPOINTS_UNAVAILABLE = "CHECKPOINTS_UNAVAILABLE"


def _host(ctx: ToolContext) -> CheckpointHost:
    if ctx.checkpoints is None:
        raise ToolError("Checkpoints are unavailable", code=CHECKPOINTS_UNAVAILABLE)
    return ctx.checkpoints


def check_create_arguments(args: dict[str, Any], settings: Settings) -> None:
    """Argument rules of create_checkpoint: an ``entry_file``, when given, passes the full
    path policy (contract 7.5).

    Raises:
        PathPolicyError: field ``entry_file``.
    """
    if args["entry_file"]:
        normalize_path(args["entry_file"], field="entry_file")


async def create_checkpoint(
    args: dict[str, Any], ctx: ToolContext, settings: Settings
) -> dict[str, Any]:
    """``{checkpoint_revision_id, created_at, file_count, entry_file}`` from the host; the
    optional ``entry_file`` passes the path policy first (contract 7.5)."""
    host = _host(ctx)
    entry = args["entry_file"]
    entry_file = normalize_path(entry, field="entry_file") if entry else None
    return await host.create_checkpoint(ctx, entry_file)


def check_restore_arguments(args: dict[str, Any], settings: Settings) -> None:
    """Argument rules of restore_checkpoint that need no storage: the id is a revision id
    (a UUID). Whether it names a revision of the run's app only the host can tell (when the
    tool runs; an approver's edited id also at the decision, by the run service).

    Raises:
        ToolError: ``TOOL_INPUT_VALIDATION_FAILED`` (field ``checkpoint_revision_id``).
    """
    checkpoint_id(args)


def checkpoint_id(args: dict[str, Any]) -> uuid.UUID:
    """The ``checkpoint_revision_id`` of restore_checkpoint's bound ``args``.

    Raises:
        ToolError: ``TOOL_INPUT_VALIDATION_FAILED`` (field ``checkpoint_revision_id``).
    """
    raw = str(args["checkpoint_revision_id"]).strip()
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise ToolError(
            f"Invalid checkpoint id: {raw[:100]}", code=VALIDATION_FAILED,
            field="checkpoint_revision_id",
        ) from None  # fmt: skip


async def restore_checkpoint(
    args: dict[str, Any], ctx: ToolContext, settings: Settings
) -> dict[str, Any]:
    """``{restored_revision_id, from_checkpoint_revision_id, entry_file, file_count}``
    from the host (which refuses another app's checkpoint with a permission error)."""
    revision_id = checkpoint_id(args)
    host = _host(ctx)
    return await host.restore_checkpoint(ctx, str(revision_id))
